/**
 * One way to write a user-visible file: a temporary file created new in the same folder (O_CREAT | O_EXCL, which
 * never follows a symlink), flushed, then renamed over the target. A reader sees the old file or the complete new
 * one, never half of one, and a symlink planted at the target is replaced by the file, its target untouched.
 *
 *   writeFileAtomic('runs/eval/results.json', JSON.stringify(rows));
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

let counter = 0;

/** Write `data` to `file` atomically (see the header); creates the folder. Errors name the file. */
export function writeFileAtomic(file: string, data: string | Uint8Array, options: { fsync?: boolean } = {}): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${counter++}`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.byteLength;) off += fs.writeSync(fd, bytes, off, bytes.byteLength - off);
    // fsync before the rename: after a power loss the file is the old one or the complete new one
    if (options.fsync ?? true) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file); // replaces a symlink at `file` itself, never writes through it
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    const hint = err.code === 'ENOSPC' ? ' (disk full; the previous version of the file, if any, is unchanged)' : '';
    throw Object.assign(new Error(`writing ${file} failed: ${err.message}${hint}`), { code: err.code, cause: e });
  }
}
