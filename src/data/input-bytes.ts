/**
 * The bytes of a text or JSONL input, decompressed and checked: gzip (`.gz`) and Zstandard (`.zst`) files are read
 * transparently (recognised by their magic bytes, whatever the name), other archives and binary files are refused
 * with an error naming the file, the format and the byte offset, instead of becoming a tokenizer or dataset of
 * garbage. Text must be UTF-8: an invalid sequence or a NUL byte is an error naming its byte offset.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { Decompress as ZstdDecompress } from 'fzstd';

export type Compression = 'gzip' | 'zstd' | 'none';

/** Formats recognised by their first bytes that are refused as text input (with what to do instead). */
const MAGIC: { name: string; bytes: number[]; offset?: number; hint: string }[] = [
  { name: 'zip', bytes: [0x50, 0x4b, 0x03, 0x04], hint: 'unzip it first' },
  { name: 'zip', bytes: [0x50, 0x4b, 0x05, 0x06], hint: 'unzip it first' },
  { name: 'bzip2', bytes: [0x42, 0x5a, 0x68], hint: 'decompress it first (bunzip2), or recompress with gzip/zstd' },
  { name: 'xz', bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], hint: 'decompress it first (unxz), or recompress with gzip/zstd' },
  { name: '7z', bytes: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c], hint: 'unpack it first' },
  { name: 'tar', bytes: [0x75, 0x73, 0x74, 0x61, 0x72], offset: 257, hint: 'unpack it first' },
  { name: 'Parquet', bytes: [0x50, 0x41, 0x52, 0x31], hint: 'name it .parquet' },
  { name: 'Arrow', bytes: [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31], hint: 'name it .arrow' },
];

function startsWith(head: Buffer, bytes: number[], offset = 0): boolean {
  return bytes.length > 0 && head.length >= offset + bytes.length && bytes.every((b, i) => head[offset + i] === b);
}

/** How a file is compressed, from its first bytes; throws for archives and binary formats we do not read as text. */
export function sniffCompression(file: string): Compression {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(512);
  const n = fs.readSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
  const h = head.subarray(0, n);
  if (startsWith(h, [0x1f, 0x8b])) return 'gzip';
  if (startsWith(h, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  for (const m of MAGIC) {
    if (startsWith(h, m.bytes, m.offset)) throw new Error(`input ${file}: is a ${m.name} file, not text or JSONL (${m.hint}); readable inputs: text, JSONL, .gz or .zst of those, Parquet, Arrow`);
  }
  return 'none';
}

/** Decompressed byte chunks of a file. */
export function openInputBytes(file: string): AsyncIterable<Buffer> {
  const c = sniffCompression(file);
  const raw = fs.createReadStream(file);
  if (c === 'gzip') return raw.pipe(zlib.createGunzip());
  if (c === 'zstd') return zstdStream(raw, file);
  return raw;
}

async function* zstdStream(raw: Readable, file: string): AsyncGenerator<Buffer> {
  const out: Buffer[] = [];
  const d = new ZstdDecompress((chunk) => { out.push(Buffer.from(chunk)); });
  try {
    for await (const chunk of raw) {
      d.push(new Uint8Array(chunk as Buffer));
      yield* out.splice(0);
    }
    d.push(new Uint8Array(0), true);
    yield* out.splice(0);
  } catch (e) {
    throw new Error(`input ${file}: Zstandard data is corrupt: ${(e as Error).message}`);
  }
}

/**
 * The text of a file as UTF-8 string chunks: decompressed, decoded strictly. A NUL byte or an invalid UTF-8
 * sequence is an error naming the byte offset (of the decompressed stream).
 */
export async function* readTextChunks(file: string): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const c = sniffCompression(file);
  const what = c === 'none' ? '' : ` (after ${c} decompression)`;
  let offset = 0;
  try {
    for await (const chunk of openInputBytes(file)) {
      const nul = chunk.indexOf(0);
      if (nul >= 0) throw new BinaryInputError(`input ${file}: byte ${offset + nul}${what} is NUL: a binary file, not text or JSONL`);
      let text: string;
      try {
        text = decoder.decode(chunk, { stream: true });
      } catch {
        throw new BinaryInputError(`input ${file}: not valid UTF-8 near byte ${offset + firstInvalidUtf8(chunk)}${what}: a binary file or another encoding (convert it to UTF-8)`);
      }
      offset += chunk.length;
      if (text) yield text;
    }
    try {
      const rest = decoder.decode();
      if (rest) yield rest;
    } catch {
      throw new BinaryInputError(`input ${file}: ends inside a UTF-8 sequence (byte ${offset}${what}): truncated or not UTF-8`);
    }
  } catch (e) {
    if (e instanceof BinaryInputError) throw e;
    const code = (e as { code?: string }).code;
    if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') throw new Error(`input ${file}: gzip data is corrupt or truncated: ${(e as Error).message}`);
    throw e;
  }
}

class BinaryInputError extends Error {}

/** Offset of the first byte that starts an invalid UTF-8 sequence in `b` (approximate at chunk edges). */
function firstInvalidUtf8(b: Buffer): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : c >> 5 === 6 ? 2 : c >> 4 === 14 ? 3 : c >> 3 === 30 ? 4 : 0;
    if (n === 0) return i;
    for (let k = 1; k < n; k++) if (i + k < b.length && (b[i + k]! & 0xc0) !== 0x80) return i;
    i += n;
  }
  return 0;
}

/** Lines of a text input (LF or CRLF), decompressed and strictly decoded. */
export async function* readTextLines(file: string): AsyncGenerator<string> {
  let carry = '';
  for await (const chunk of readTextChunks(file)) {
    const parts = (carry + chunk).split('\n');
    carry = parts.pop()!;
    for (const p of parts) yield p.endsWith('\r') ? p.slice(0, -1) : p;
  }
  if (carry !== '') yield carry.endsWith('\r') ? carry.slice(0, -1) : carry;
}

/** The whole text of an input (for small files). */
export async function readWholeText(file: string): Promise<string> {
  let s = '';
  for await (const chunk of readTextChunks(file)) s += chunk;
  return s;
}

/** The file name without a compression suffix (`a.jsonl.gz` -> `a.jsonl`), to pick the reader. */
export function withoutCompressionSuffix(file: string): string {
  const ext = path.extname(file).toLowerCase();
  return ext === '.gz' || ext === '.zst' || ext === '.zstd' ? file.slice(0, -ext.length) : file;
}
