/**
 * The safetensors format (https://huggingface.co/docs/safetensors), read and written in plain TypeScript.
 *
 * Layout: 8-byte little-endian u64 N, then N bytes of JSON header, then the raw tensor bytes.
 * Header: { "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, "__metadata__": {..} }
 * Offsets are relative to the first byte after the header. Tensors are row-major, little-endian.
 *
 * Floating tensors (F32/F16/BF16/F64) become float32 tfjs tensors; integer ones (I8..I64, U8, BOOL) become
 * int32 (I64/U32 values outside the int32 range are an error, not a silent wrap).
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from './atomic';
import * as path from 'node:path';
import { tf } from '../tf';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U32' | 'BOOL';

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, U32: 4, BOOL: 1,
};

export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Absolute byte offset of the data section in the file (8 + header length). */
  dataStart: number;
}

export interface LoadedSafetensors {
  tensors: Map<string, tf.Tensor>;
  metadata: Record<string, string>;
}

class SafetensorsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

/** The reference library's limit on the JSON header (safetensors' MAX_HEADER_SIZE). */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * Scan the header JSON text before parsing it: refuse nesting deeper than the format has (header object, tensor
 * entry, shape array) and a key that appears twice in one object (JSON.parse would keep the last one silently).
 * Returns an error message with the byte offset, or null.
 */
function scanHeaderJson(text: string): string | null {
  const keys: (Set<string> | null)[] = []; // per open container: its keys (null for an array)
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{' || c === '[') {
      if (keys.length >= 3) return `nesting deeper than 3 levels at header byte ${i} (the format has header > tensor > shape; __metadata__ is a flat string map)`;
      keys.push(c === '{' ? new Set() : null);
    } else if (c === '}' || c === ']') keys.pop();
    else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = keys[keys.length - 1];
      let k = j + 1;
      while (k < text.length && /\s/.test(text[k])) k++;
      if (top && text[k] === ':') {
        let key: string;
        try { key = JSON.parse(text.slice(i, j + 1)) as string; } catch { return null; } // JSON.parse reports it
        if (top.has(key)) return `key ${JSON.stringify(key)} appears twice${keys.length === 1 ? ' (duplicate tensor name)' : ''} (second at header byte ${i})`;
        top.add(key);
      }
      i = j;
    }
  }
  return null;
}

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/**
 * Parse and validate the header of a safetensors buffer (`bytes` is the whole file), as the reference library
 * does: a header of at most 100 MB, no duplicate names, known dtype strings, shapes whose size matches the data
 * range, and data ranges that, sorted by offset, tile the data section exactly (no gaps, no overlaps, nothing
 * after the last tensor); `__metadata__` is a flat string-to-string map.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, file = '<buffer>'): SafetensorsHeader {
  return parseHeaderPrefix(bytes, bytes.byteLength, file);
}

/** parseSafetensorsHeader on the first bytes of a file of `fileSize` bytes (at least 8 + the header length of them). */
function parseHeaderPrefix(bytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  if (fileSize < 8) throw new SafetensorsError(file, `not a safetensors file: only ${fileSize} bytes (need an 8-byte header length)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > fileSize - 8) {
    throw new SafetensorsError(file, `header length ${headerLength} at byte 0 exceeds the file size ${fileSize} (truncated or not safetensors)`);
  }
  if (headerLength > MAX_HEADER_BYTES) throw new SafetensorsError(file, `header length ${headerLength} at byte 0 is over the format's limit of ${MAX_HEADER_BYTES} bytes`);
  let raw: Record<string, unknown>;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
    const problem = scanHeaderJson(text);
    if (problem) throw new SafetensorsError(file, `header (bytes 8..${8 + headerLength}): ${problem}`);
    raw = JSON.parse(text);
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError(file, `header (bytes 8..${8 + headerLength}) is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new SafetensorsError(file, 'header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(raw)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new SafetensorsError(file, `__metadata__ must be a map of strings, got ${Array.isArray(entry) ? 'an array' : JSON.stringify(entry)}`);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__.${k} must be a string, got ${Array.isArray(v) ? 'an array' : typeof v === 'object' && v ? 'an object' : JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new SafetensorsError(file, `tensor '${name}' is not an object with dtype, shape and data_offsets`);
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e.dtype !== 'string' || !hasOwn(BYTES_PER_ELEMENT, e.dtype)) {
      throw new SafetensorsError(file, `tensor '${name}' has unsupported dtype ${JSON.stringify(e.dtype)} (one of ${Object.keys(BYTES_PER_ELEMENT).join(', ')})`);
    }
    const dtype = e.dtype as SafetensorsDtype;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, `tensor '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
    }
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
      throw new SafetensorsError(file, `tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)} (want [begin, end] with 0 <= begin <= end)`);
    }
    const [begin, end] = offsets as [number, number];
    const shape = e.shape as number[];
    const expected = shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[dtype];
    if (!Number.isSafeInteger(expected)) throw new SafetensorsError(file, `tensor '${name}' shape [${shape}] is too large`);
    if (end - begin !== expected) {
      throw new SafetensorsError(file, `tensor '${name}' [${shape}] ${dtype} needs ${expected} bytes but data_offsets span ${end - begin}`);
    }
    if (end > dataLength) {
      throw new SafetensorsError(file, `tensor '${name}' ends at byte ${dataStart + end} but the file has ${fileSize} bytes (truncated)`);
    }
    tensors.set(name, { dtype, shape, dataOffsets: [begin, end] });
  }
  // sorted by offset, the ranges must tile [0, dataLength): each starts where the previous one ended
  const byOffset = [...tensors.entries()].sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let at = 0;
  let prev = '';
  for (const [name, info] of byOffset) {
    const [begin, end] = info.dataOffsets;
    if (begin < at) throw new SafetensorsError(file, `tensor '${name}' data [${begin}, ${end}) overlaps tensor '${prev}' (which ends at ${at}); data ranges must not overlap`);
    if (begin > at) throw new SafetensorsError(file, `tensor '${name}' data starts at ${begin} but ${prev ? `tensor '${prev}' ends` : 'the data section starts'} at ${at}: a gap of ${begin - at} bytes (data ranges must be contiguous)`);
    at = end;
    prev = name;
  }
  if (at !== dataLength) throw new SafetensorsError(file, `the tensors cover ${at} of the ${dataLength} data bytes: ${dataLength - at} bytes after the last tensor (data byte ${at}) belong to none`);
  return { tensors, metadata, dataStart };
}

/**
 * The header of a `.safetensors` file, reading only its first 8 + N bytes (the checks that need the data section use
 * the file's size): what a caller compares with a config before allocating anything.
 */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new SafetensorsError(file, `cannot be opened: ${(e as Error).message}`);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const prefix = Buffer.alloc(Math.min(8, size));
    fs.readSync(fd, prefix, 0, prefix.length, 0);
    const n = prefix.length === 8 ? Number(prefix.readBigUInt64LE(0)) : 0;
    const head = Buffer.alloc(8 + Math.min(n, Math.max(0, size - 8), MAX_HEADER_BYTES + 1));
    fs.readSync(fd, head, 0, head.length, 0);
    return parseHeaderPrefix(new Uint8Array(head.buffer, head.byteOffset, head.byteLength), size, file);
  } finally {
    fs.closeSync(fd);
  }
}

/** bfloat16 -> float32: the 16 bits are the high half of a float32. */
function bf16ToF32(src: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const u32 = new Uint32Array(out.buffer);
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  for (let i = 0; i < n; i++) u32[i] = dv.getUint16(2 * i, true) << 16;
  return out;
}

/** IEEE half -> float32, including subnormals, infinities and NaN. */
function f16ToF32(src: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  for (let i = 0; i < n; i++) {
    const h = dv.getUint16(2 * i, true);
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

function decode(info: TensorInfo, src: Uint8Array, name: string, file: string): Float32Array | Int32Array {
  const n = info.shape.reduce((a, b) => a * b, 1);
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (info.dtype) {
    case 'F32': { const out = new Float32Array(n); for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true); return out; }
    case 'F64': { const out = new Float32Array(n); for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true); return out; }
    case 'F16': return f16ToF32(src, n);
    case 'BF16': return bf16ToF32(src, n);
    case 'I32': { const out = new Int32Array(n); for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true); return out; }
    case 'I16': { const out = new Int32Array(n); for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true); return out; }
    case 'I8': { const out = new Int32Array(n); for (let i = 0; i < n; i++) out[i] = dv.getInt8(i); return out; }
    case 'U8': case 'BOOL': { const out = new Int32Array(n); for (let i = 0; i < n; i++) out[i] = dv.getUint8(i); return out; }
    case 'U32': case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = info.dtype === 'I64' ? Number(dv.getBigInt64(8 * i, true)) : dv.getUint32(4 * i, true);
        if (v > 2147483647 || v < -2147483648) throw new SafetensorsError(file, `tensor '${name}' element ${i} = ${v} does not fit in int32`);
        out[i] = v;
      }
      return out;
    }
  }
}

export interface DecodeSafetensorsOptions {
  /**
   * Accept NaN and +-Infinity in floating tensors (default false: a checkpoint with them decodes garbage, e.g.
   * token 0 forever, so loading it is an error naming the tensor and the element).
   */
  allowNonFinite?: boolean;
}

/** `[i, j, ...]` of flat element `k` in a row-major tensor of `shape`. */
function unravel(k: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = k % shape[d];
    k = Math.floor(k / shape[d]);
  }
  return idx;
}

/** Throw naming the tensor if any value is NaN or infinite (counts them, names the first). */
function checkFinite(values: Float32Array, info: TensorInfo, name: string, file: string): void {
  let first = -1;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v !== 0) { // false only for finite v (NaN - NaN and Inf - Inf are NaN)
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return;
  const byte = info.dataOffsets[0] + first * BYTES_PER_ELEMENT[info.dtype];
  throw new SafetensorsError(file, `tensor '${name}' [${info.shape}] has ${count} non-finite value(s); the first is ${values[first]} at index [${unravel(first, info.shape)}] ` +
    `(data byte ${byte}): the checkpoint is corrupt or diverged (use an earlier checkpoint)`);
}

/** Decode a whole safetensors buffer into tfjs tensors (the caller owns and disposes them). */
export function decodeSafetensors(bytes: Uint8Array, file = '<buffer>', options: DecodeSafetensorsOptions = {}): LoadedSafetensors {
  const header = parseSafetensorsHeader(bytes, file);
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const [name, info] of header.tensors) {
      const [b, e] = info.dataOffsets;
      try {
        const values = decode(info, bytes.subarray(header.dataStart + b, header.dataStart + e), name, file);
        if (values instanceof Float32Array && !options.allowNonFinite) checkFinite(values, info, name, file);
        tensors.set(name, tf.tensor(values, info.shape, values instanceof Float32Array ? 'float32' : 'int32'));
      } catch (err) {
        if (err instanceof SafetensorsError) throw err;
        // tfjs and V8 errors (an array too large, out of memory) name neither the file nor the tensor
        throw new SafetensorsError(file, `tensor '${name}' [${info.shape}] ${info.dtype} (data bytes ${b}..${e}) could not be loaded: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  return { tensors, metadata: header.metadata };
}

/** Read a `.safetensors` file. Errors name the file and the tensor or byte offset at fault (also NaN/Inf values). */
export function loadSafetensors(file: string, options: DecodeSafetensorsOptions = {}): LoadedSafetensors {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such safetensors file`);
  return decodeSafetensors(new Uint8Array(fs.readFileSync(file)), file, options);
}

export type NamedTensors = Map<string, tf.Tensor> | Record<string, tf.Tensor>;

/**
 * Encode tensors as safetensors: float32 as F32, int32 as I32, bool as BOOL. Tensors are written in sorted
 * name order (as the Python library does) with 8-byte aligned offsets.
 */
export function encodeSafetensors(tensors: NamedTensors, metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    let bytes: Uint8Array;
    let dtype: SafetensorsDtype;
    if (t.dtype === 'float32') { dtype = 'F32'; bytes = new Uint8Array(Float32Array.from(t.dataSync() as Float32Array).buffer); }
    else if (t.dtype === 'int32') { dtype = 'I32'; bytes = new Uint8Array(Int32Array.from(t.dataSync() as Int32Array).buffer); }
    else if (t.dtype === 'bool') { dtype = 'BOOL'; bytes = Uint8Array.from(t.dataSync() as Uint8Array); }
    else throw new Error(`saveSafetensors: tensor '${name}' has dtype ${t.dtype}, which safetensors export does not support`);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  // The header is padded with spaces so the data section starts 8-byte aligned.
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.byteLength;
  for (const c of chunks) { out.set(c, pos); pos += c.byteLength; }
  return out;
}

/** Write a `.safetensors` file atomically (temporary file in the same folder, then rename). */
export function saveSafetensors(file: string, tensors: NamedTensors, metadata: Record<string, string> = { format: 'pt' }): void {
  const bytes = encodeSafetensors(tensors, metadata);
  writeFileAtomic(file, bytes); // fsync'd temp + rename: the old file or the complete new one, never a hole
}
