/**
 * A packed split read from disk on demand: memory stays bounded by the number of record batches, not the
 * number of tokens, so a training set larger than RAM can be used.
 *
 * An Arrow IPC stream is a sequence of messages `[0xFFFFFFFF][int32 metadata size][flatbuffer Message][body]`.
 * We read only the message headers (apache-arrow's `Message.decode`), which give each record batch's
 * row count and the positions of its buffers inside the body. For the `input_ids` column
 * (`list<int32>` or `large_list<int32>`) we keep, per batch, the file position of its int32 values and its
 * first offset; row r of that batch is then one positioned read of `seqLen * 4` bytes.
 */
import * as fs from 'node:fs';
import { Field, Message, MessageHeader, Schema, Type } from 'apache-arrow';
import type { PackedDataset } from './packed-dataset';

interface BatchIndex {
  file: number; // index into fds
  rows: number;
  /** Global index of this batch's first row. */
  firstRow: number;
  /** File position of value 0 of the first row. */
  valuesPos: number;
}

/** Buffers a field occupies in a record batch body (validity first), depth first; undefined if unknown. */
function bufferCount(f: Field): number | undefined {
  const t = f.type;
  switch (t.typeId) {
    case Type.Null:
      return 0;
    case Type.Int:
    case Type.Float:
    case Type.Bool:
    case Type.Decimal:
    case Type.Date:
    case Type.Time:
    case Type.Timestamp:
    case Type.Interval:
    case Type.FixedSizeBinary:
    case Type.Duration:
      return 2;
    case Type.Utf8:
    case Type.LargeUtf8:
    case Type.Binary:
    case Type.LargeBinary:
      return 3;
    case Type.List:
    case Type.LargeList: {
      const c = bufferCount(t.children[0]!);
      return c === undefined ? undefined : 2 + c;
    }
    case Type.FixedSizeList: {
      const c = bufferCount(t.children[0]!);
      return c === undefined ? undefined : 1 + c;
    }
    case Type.Struct: {
      let n = 1;
      for (const ch of t.children as Field[]) {
        const c = bufferCount(ch);
        if (c === undefined) return undefined;
        n += c;
      }
      return n;
    }
    default:
      return undefined;
  }
}

/** FieldNodes a field occupies (one per field, depth first). */
function nodeCount(f: Field): number {
  return 1 + ((f.type.children as Field[] | undefined) ?? []).reduce((a, c) => a + nodeCount(c), 0);
}

function readAt(fd: number, pos: number, bytes: number, file: string): Buffer {
  const buf = Buffer.alloc(bytes);
  const n = fs.readSync(fd, buf, 0, bytes, pos);
  if (n !== bytes) throw new Error(`Arrow file ${file} is truncated: wanted ${bytes} bytes at ${pos}, got ${n}`);
  return buf;
}

/** Why a shard cannot be read lazily (then the caller reads it in memory), or its batch index. */
type ScanResult = { ok: true; batches: Omit<BatchIndex, 'file' | 'firstRow'>[]; seqLen: number } | { ok: false; reason: string };

function scanShard(fd: number, file: string, expectSeqLen: number): ScanResult {
  const size = fs.fstatSync(fd).size;
  if (size >= 6 && readAt(fd, 0, 6, file).toString('latin1') === 'ARROW1') return { ok: false, reason: 'Arrow file format, not a stream' };
  let pos = 0;
  let schema: Schema | undefined;
  let col = -1;
  let bufBefore = 0;
  let nodeBefore = 0;
  let large = false;
  let seqLen = expectSeqLen;
  const batches: Omit<BatchIndex, 'file' | 'firstRow'>[] = [];
  while (pos + 4 <= size) {
    let len = readAt(fd, pos, 4, file).readInt32LE(0);
    let hdr = 4;
    if (len === -1) {
      if (pos + 8 > size) break;
      len = readAt(fd, pos + 4, 4, file).readInt32LE(0);
      hdr = 8;
    }
    if (len === 0) break; // end-of-stream marker
    if (len < 0 || pos + hdr + len > size) throw new Error(`Arrow file ${file} is corrupt or truncated: bad message at byte ${pos}`);
    let msg: Message;
    try {
      msg = Message.decode(readAt(fd, pos + hdr, len, file));
    } catch (e) {
      throw new Error(`Arrow file ${file} is corrupt: cannot decode the message at byte ${pos}: ${(e as Error).message}`);
    }
    const bodyStart = pos + hdr + len;
    pos = bodyStart + msg.bodyLength;
    if (pos > size) throw new Error(`Arrow file ${file} is truncated: a record batch body ends at byte ${pos}, the file has ${size}`);
    if (msg.headerType === MessageHeader.Schema) {
      schema = msg.header() as Schema;
      col = schema.fields.findIndex((f) => f.name === 'input_ids');
      if (col < 0) throw new Error(`${file}: column 'input_ids' is missing (columns: ${schema.fields.map((f) => f.name).join(', ')})`);
      const f = schema.fields[col]!;
      large = f.type.typeId === Type.LargeList;
      const child = (f.type.children as Field[] | undefined)?.[0]?.type as { typeId?: Type; bitWidth?: number; isSigned?: boolean } | undefined;
      if ((f.type.typeId !== Type.List && !large) || child?.typeId !== Type.Int || child.bitWidth !== 32) {
        return { ok: false, reason: `input_ids has type ${String(f.type)}` };
      }
      for (const g of schema.fields.slice(0, col)) {
        const c = bufferCount(g);
        if (c === undefined) return { ok: false, reason: `column ${g.name} has type ${String(g.type)}` };
        bufBefore += c;
        nodeBefore += nodeCount(g);
      }
    } else if (msg.headerType === MessageHeader.RecordBatch) {
      if (!schema) throw new Error(`Arrow file ${file} is corrupt: a record batch before the schema`);
      const rb = msg.header() as unknown as { length: number; nodes: { length: number; nullCount: number }[]; buffers: { offset: number; length: number }[]; compression: unknown };
      if (rb.compression) return { ok: false, reason: 'compressed record batches' };
      const rows = Number(rb.length);
      if (rows === 0) continue;
      if (rb.nodes[nodeBefore]!.nullCount > 0) throw new Error(`${file}: column 'input_ids' has null rows`);
      const offsetsBuf = rb.buffers[bufBefore + 1]!;
      const valuesBuf = rb.buffers[bufBefore + 3]!;
      const offBytes = readAt(fd, bodyStart + Number(offsetsBuf.offset), (rows + 1) * (large ? 8 : 4), file);
      const off = (i: number): number => (large ? Number(offBytes.readBigInt64LE(i * 8)) : offBytes.readInt32LE(i * 4));
      for (let r = 0; r < rows; r++) {
        const n = off(r + 1) - off(r);
        if (seqLen < 0) seqLen = n;
        if (n !== seqLen) {
          throw new Error(`${file}: a row of 'input_ids' has ${n} tokens, expected ${seqLen} like the rows before it (not a packed dataset)`);
        }
      }
      batches.push({ rows, valuesPos: bodyStart + Number(valuesBuf.offset) + off(0) * 4 });
    }
    // Dictionary batches and other messages carry nothing for input_ids.
  }
  if (!schema) throw new Error(`Arrow file ${file} is corrupt or truncated: no schema`);
  return { ok: true, batches, seqLen };
}

class DiskPackedDataset implements PackedDataset {
  readonly numRows: number;
  maxTokenId = -1;
  minTokenId = Infinity;
  constructor(
    readonly dir: string,
    private readonly files: string[],
    private readonly fds: number[],
    private readonly batches: BatchIndex[],
    readonly seqLen: number,
  ) {
    const last = batches[batches.length - 1];
    this.numRows = last ? last.firstRow + last.rows : 0;
  }

  /** The batch holding global row i (binary search over first rows). */
  private locate(i: number): BatchIndex {
    let lo = 0;
    let hi = this.batches.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.batches[mid]!.firstRow <= i) lo = mid;
      else hi = mid - 1;
    }
    return this.batches[lo]!;
  }

  row(i: number): Int32Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.numRows) throw new Error(`PackedDataset ${this.dir}: row ${i} out of range [0, ${this.numRows})`);
    const b = this.locate(i);
    const out = new Int32Array(this.seqLen);
    const bytes = this.seqLen * 4;
    const pos = b.valuesPos + (i - b.firstRow) * bytes;
    const n = fs.readSync(this.fds[b.file]!, new Uint8Array(out.buffer), 0, bytes, pos);
    if (n !== bytes) throw new Error(`${this.files[b.file]}: short read of row ${i}`);
    return out;
  }

  /** One sequential pass to find the largest and smallest ids (kept to check the model's vocabulary). */
  computeMaxTokenId(): void {
    const chunk = new Int32Array(1 << 18);
    let max = -1;
    let min = Infinity;
    for (const b of this.batches) {
      let left = b.rows * this.seqLen;
      let pos = b.valuesPos;
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        fs.readSync(this.fds[b.file]!, new Uint8Array(chunk.buffer, 0, n * 4), 0, n * 4, pos);
        for (let k = 0; k < n; k++) {
          if (chunk[k]! > max) max = chunk[k]!;
          if (chunk[k]! < min) min = chunk[k]!;
        }
        left -= n;
        pos += n * 4;
      }
    }
    this.maxTokenId = max;
    this.minTokenId = min;
  }

  close(): void {
    for (const fd of this.fds) fs.closeSync(fd);
    this.fds.length = 0;
  }
}

/**
 * Index the shards of a packed split for reading rows from disk; undefined when a shard is in a form we
 * only read in memory (Arrow file format, compressed batches, unusual column types before input_ids).
 */
export function openPackedOnDisk(splitDir: string, shardFiles: string[]): (PackedDataset & { close(): void }) | undefined {
  const fds: number[] = [];
  const batches: BatchIndex[] = [];
  let seqLen = -1;
  let firstRow = 0;
  try {
    for (const [k, file] of shardFiles.entries()) {
      const fd = fs.openSync(file, 'r');
      fds.push(fd);
      const scan = scanShard(fd, file, seqLen);
      if (!scan.ok) {
        fds.forEach((d) => fs.closeSync(d));
        return undefined;
      }
      if (scan.seqLen >= 0) seqLen = scan.seqLen;
      for (const b of scan.batches) {
        batches.push({ ...b, file: k, firstRow });
        firstRow += b.rows;
      }
    }
  } catch (e) {
    fds.forEach((d) => fs.closeSync(d));
    throw e;
  }
  if (firstRow === 0) {
    fds.forEach((d) => fs.closeSync(d));
    throw new Error(`${splitDir}: the split has no rows`);
  }
  const ds = new DiskPackedDataset(splitDir, shardFiles, fds, batches, seqLen);
  ds.computeMaxTokenId();
  return ds;
}
