/**
 * The rule of every command that writes a folder: never delete or replace what this program did not write.
 *
 * - A folder that does not exist, or is empty, is used as is.
 * - A folder written earlier by the same command is recognised by its manifest (e.g. `wm_prepare.json`, which lists
 *   the entries it wrote). It is replaced only with `overwrite`, and then only the listed entries are; anything
 *   else in the folder stays.
 * - Any other non-empty folder is refused, with or without `overwrite` (the message names what is in the way).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface ClaimFolderOptions {
  /** For messages: `wm data prepare`. */
  command: string;
  /** The manifest file name inside the folder (written by the command; lists its entries under `files`). */
  manifest: string;
  /** Top-level entries (files or folders) the command is about to write. */
  entries: string[];
  /** Replace what an earlier run of the command wrote (per its manifest). */
  overwrite?: boolean;
  /** The option that turns `overwrite` on, for the message (default `--overwrite`). */
  overwriteFlag?: string;
  /** Entries an older manifest without a `files` list implies. */
  legacyEntries?: string[];
}

/** Returns the entries of a previous run to replace (empty for a new or empty folder). Throws when refused. */
export function claimOutputFolder(dir: string, o: ClaimFolderOptions): string[] {
  if (!fs.existsSync(dir)) return [];
  if (!fs.statSync(dir).isDirectory()) throw new Error(`${o.command}: output ${dir} exists and is not a folder`);
  const present = fs.readdirSync(dir);
  if (present.length === 0) return [];
  const flagName = o.overwriteFlag ?? '--overwrite';
  const manifestFile = path.join(dir, o.manifest);
  if (fs.existsSync(manifestFile)) {
    let owned: string[];
    try {
      const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { files?: unknown };
      owned = Array.isArray(m.files) ? m.files.map(String) : (o.legacyEntries ?? []);
    } catch {
      owned = o.legacyEntries ?? [];
    }
    owned = [...new Set([...owned, o.manifest])].filter((e) => !e.includes('/') && !e.includes('\\') && e !== '..' && e !== '.');
    if (!o.overwrite) {
      throw new Error(`${o.command}: ${dir} already holds the output of an earlier ${o.command} (${o.manifest}); pass ${flagName} to replace it ` +
        `(only the ${owned.length} entries its manifest lists are replaced), or choose another folder`);
    }
    const clash = o.entries.filter((e) => present.includes(e) && !owned.includes(e));
    if (clash.length) {
      throw new Error(`${o.command}: ${dir} has '${clash[0]}', which the earlier ${o.command} did not write (not in ${o.manifest}); not replacing it. Move it away or choose another folder`);
    }
    return owned.filter((e) => present.includes(e));
  }
  const clash = o.entries.filter((e) => present.includes(e));
  if (clash.length) {
    throw new Error(`${o.command}: ${dir} is not empty and was not written by ${o.command} (no ${o.manifest}; it has '${clash[0]}'${clash.length > 1 ? ` and ${clash.length - 1} more of the entries to write` : ''}); ` +
      `nothing is replaced. Choose a new or empty folder`);
  }
  throw new Error(`${o.command}: ${dir} is not empty (${present.length} entries, e.g. '${present[0]}') and was not written by ${o.command} (no ${o.manifest}); ` +
    'choose a new or empty folder');
}

/**
 * Move the finished entries of `tmpDir` into `dir`: entries of the previous run (`replace`) are removed only once
 * the new ones are complete, one rename per entry. Nothing else in `dir` is touched.
 */
export function installEntries(tmpDir: string, dir: string, entries: string[], replace: string[]): void {
  fs.mkdirSync(dir, { recursive: true });
  const trash = path.join(dir, `.wm-replaced-${process.pid}-${Date.now()}`);
  for (const e of replace) {
    if (!fs.existsSync(path.join(dir, e))) continue;
    fs.mkdirSync(trash, { recursive: true });
    fs.renameSync(path.join(dir, e), path.join(trash, e));
  }
  for (const e of entries) fs.renameSync(path.join(tmpDir, e), path.join(dir, e));
  fs.rmSync(trash, { recursive: true, force: true });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/**
 * Remove what a killed run of a folder-writing command left behind: `<dir>.tmp-<pid>-<time>` siblings and
 * `<dir>/.wm-replaced-<pid>-<time>` folders whose process no longer runs. Returns the removed paths.
 */
export function removeStaleTemporaries(dir: string): string[] {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  const base = path.basename(abs);
  const removed: string[] = [];
  const sweep = (folder: string, re: RegExp) => {
    if (!fs.existsSync(folder)) return;
    for (const name of fs.readdirSync(folder)) {
      const m = re.exec(name);
      if (!m || pidAlive(Number(m[1]))) continue;
      fs.rmSync(path.join(folder, name), { recursive: true, force: true });
      removed.push(path.join(folder, name));
    }
  };
  const esc = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  sweep(parent, new RegExp(`^${esc}\\.tmp-(\\d+)-\\d+$`));
  sweep(abs, /^\.wm-replaced-(\d+)-\d+$/);
  return removed;
}
