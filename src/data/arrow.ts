/**
 * Arrow IPC reading and the Hugging Face `datasets` folder layout.
 *
 * `datasets.save_to_disk` writes, per split, `data-0000i-of-0000N.arrow` shards in the Arrow IPC *stream*
 * format plus `state.json` (the shard list) and `dataset_info.json` (the features); a DatasetDict adds
 * `dataset_dict.json` with the split names. We read and write exactly that, so `datasets.load_from_disk`
 * opens what we write and we open what it writes. Readers go batch by batch (bounded memory) and accept
 * both the 32-bit (`string`, `list`) and the 64-bit (`large_string`, `large_list`) offset variants.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Data,
  Field,
  Int32,
  List,
  RecordBatch,
  RecordBatchReader,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Type,
  makeData,
} from 'apache-arrow';

// ---------------------------------------------------------------------------------------------- reading

/** The Arrow IPC file format starts with the magic `ARROW1`; the stream format does not. */
function isArrowFileFormat(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(6);
    const n = fs.readSync(fd, head, 0, 6, 0);
    return n === 6 && head.toString('latin1') === 'ARROW1';
  } finally {
    fs.closeSync(fd);
  }
}

/** Record batches of an Arrow IPC stream or file, one at a time; errors name the file. */
export async function* readArrowBatches(file: string): AsyncGenerator<RecordBatch> {
  if (!fs.existsSync(file)) throw new Error(`Arrow file ${file} does not exist`);
  const size = fs.statSync(file).size;
  if (size === 0) throw new Error(`Arrow file ${file} is empty`);
  const fileFormat = isArrowFileFormat(file);
  const handle = fileFormat ? await fs.promises.open(file, 'r') : undefined;
  const stream = fileFormat ? undefined : fs.createReadStream(file);
  try {
    let reader;
    try {
      // The file format needs random access (footer at the end); the stream format is read front to back.
      reader = handle ? await RecordBatchReader.from(handle) : await RecordBatchReader.from(stream!);
    } catch (e) {
      throw new Error(`Arrow file ${file} is corrupt or not Arrow IPC: ${(e as Error).message}`);
    }
    let batches = 0;
    const it = reader[Symbol.asyncIterator]();
    for (;;) {
      let r: IteratorResult<RecordBatch>;
      try {
        r = await it.next();
      } catch (e) {
        throw new Error(`Arrow file ${file} is corrupt or truncated (after ${batches} record batches): ${(e as Error).message}`);
      }
      if (r.done) break;
      batches++;
      yield r.value;
    }
    if (batches === 0 && reader.schema === undefined) {
      throw new Error(`Arrow file ${file} is corrupt or truncated: no schema`);
    }
  } finally {
    // Also when the caller stops early.
    stream?.destroy();
    await handle?.close();
  }
}

/** Is this Arrow type a string column (`string` or `large_string`)? */
export function isStringType(typeId: Type): boolean {
  return typeId === Type.Utf8 || typeId === Type.LargeUtf8;
}

/** Is this a list of integers (`list<int*>` or `large_list<int*>`)? */
export function isIntListType(field: Field): boolean {
  const t = field.type;
  if (t.typeId !== Type.List && t.typeId !== Type.LargeList) return false;
  const child = (t as List).children?.[0]?.type;
  return child !== undefined && child.typeId === Type.Int;
}

/**
 * The rows of a `list<int>` / `large_list<int>` column of one record batch as Int32Array views (no copy
 * when the values are int32). Offsets are BigInt64Array for large_list.
 */
export function listColumnRows(batch: RecordBatch, column: string, file: string): Int32Array[] {
  const vec = batch.getChild(column);
  if (!vec) throw new Error(`${file}: column '${column}' is missing`);
  const out: Int32Array[] = [];
  for (const data of vec.data as Data[]) {
    const offsets = data.valueOffsets as Int32Array | BigInt64Array;
    const child = data.children[0]!;
    let values = child.values as ArrayLike<number | bigint>;
    if (!(values instanceof Int32Array)) {
      // int8/16/64 or uint lists: widen/narrow to int32, checking the range.
      const src = values;
      const conv = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = Number(src[i]!);
        if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw new Error(`${file}: column '${column}' has value ${v} outside int32`);
        conv[i] = v;
      }
      values = conv;
    }
    const vals = values as Int32Array;
    for (let i = 0; i < data.length; i++) {
      if (data.nullCount > 0 && !data.getValid(i)) throw new Error(`${file}: column '${column}' has a null at row ${out.length}`);
      const a = Number(offsets[data.offset + i]!) + child.offset;
      const b = Number(offsets[data.offset + i + 1]!) + child.offset;
      out.push(vals.subarray(a, b));
    }
  }
  return out;
}

// ------------------------------------------------------------------------------ datasets folder metadata

export interface DatasetState {
  _data_files: { filename: string }[];
  _fingerprint: string;
  _format_columns: string[] | null;
  _format_kwargs: Record<string, unknown>;
  _format_type: string | null;
  _output_all_columns: boolean;
  _split: string | null;
}

/**
 * `wm_shards.json`, written next to state.json by `writePackedSplit`: the rows and bytes of every shard, so a shard
 * cut short (even exactly at a record-batch boundary, which still reads as a valid Arrow stream) or replaced is
 * an error on open instead of silently fewer rows. Folders written by other tools have none and are read as is.
 */
export const SHARD_MANIFEST = 'wm_shards.json';
export const SHARD_MANIFEST_FORMAT = 'wonderful-matrices/shards/1';

export interface ShardRecord {
  filename: string;
  rows: number;
  bytes: number;
}

export interface ShardManifest {
  format: string;
  seqLen: number;
  numRows: number;
  shards: ShardRecord[];
}

function writeShardManifest(splitDir: string, m: ShardManifest): void {
  fs.writeFileSync(path.join(splitDir, SHARD_MANIFEST), JSON.stringify(m, null, 2));
}

/** The shard manifest of a split folder, or undefined when it has none. */
export function readShardManifest(splitDir: string): ShardManifest | undefined {
  const file = path.join(splitDir, SHARD_MANIFEST);
  if (!fs.existsSync(file)) return undefined;
  let m: ShardManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as ShardManifest;
  } catch (e) {
    throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (m.format !== SHARD_MANIFEST_FORMAT || !Array.isArray(m.shards)) throw new Error(`${file}: not a '${SHARD_MANIFEST_FORMAT}' manifest`);
  return m;
}

/** Check the shard files' sizes against the manifest (before reading them). */
export function checkShardSizes(splitDir: string, m: ShardManifest): void {
  for (const s of m.shards) {
    const file = path.join(splitDir, s.filename);
    if (!fs.existsSync(file)) throw new Error(`${file} is missing (listed in ${SHARD_MANIFEST} with ${s.rows} rows)`);
    const size = fs.statSync(file).size;
    if (size !== s.bytes) {
      throw new Error(`${file} has ${size} bytes but ${SHARD_MANIFEST} records ${s.bytes} (${s.rows} rows): the shard is truncated or was replaced; re-run wm data prepare`);
    }
  }
}

/** Check the rows read against the manifest (after reading). */
export function checkShardRows(splitDir: string, m: ShardManifest, numRows: number): void {
  if (numRows !== m.numRows) {
    throw new Error(`${splitDir}: read ${numRows} rows but ${SHARD_MANIFEST} records ${m.numRows}: a shard is incomplete; re-run wm data prepare`);
  }
}

/** The arrow shard files of a `save_to_disk` split folder, from its state.json. */
export function datasetShardFiles(splitDir: string): string[] {
  const stateFile = path.join(splitDir, 'state.json');
  if (!fs.existsSync(stateFile)) throw new Error(`${splitDir} is not a datasets folder: ${stateFile} is missing`);
  let state: DatasetState;
  try {
    state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as DatasetState;
  } catch (e) {
    throw new Error(`${stateFile} is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(state._data_files) || state._data_files.length === 0) {
    throw new Error(`${stateFile}: '_data_files' must be a non-empty list of {filename}`);
  }
  return state._data_files.map((f) => {
    const file = path.join(splitDir, f.filename);
    if (!fs.existsSync(file)) throw new Error(`${stateFile} lists ${f.filename} but ${file} is missing`);
    return file;
  });
}

/** The split folders of a DatasetDict folder (dataset_dict.json), or undefined if it is not one. */
export function datasetDictSplits(dir: string): string[] | undefined {
  const f = path.join(dir, 'dataset_dict.json');
  if (!fs.existsSync(f)) return undefined;
  const dict = JSON.parse(fs.readFileSync(f, 'utf8')) as { splits?: unknown };
  if (!Array.isArray(dict.splits)) throw new Error(`${f}: 'splits' must be a list of split names`);
  return dict.splits as string[];
}

/** `Features` of a packed split: `input_ids` is a sequence of int32 (the JSON `datasets` writes). */
export const PACKED_FEATURES = {
  input_ids: { feature: { dtype: 'int32', _type: 'Value' }, _type: 'Sequence' },
};

// ---------------------------------------------------------------------------------------------- writing

/** Rows per record batch, as `datasets`' ArrowWriter (writer_batch_size 1000). */
const ROWS_PER_BATCH = 1000;

/** A fingerprint is any 16 hex chars to `datasets`; derive one from the content description. */
function fingerprint(s: string): string {
  // FNV-1a 64-bit over the string, in two 32-bit halves.
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < s.length; i++) {
    h1 = Math.imul(h1 ^ s.charCodeAt(i), 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ s.charCodeAt(i), 0x5bd1e995) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}

function packedSchema(): Schema {
  const listType = new List(new Field('item', new Int32(), true));
  // datasets reads its features back from this metadata key first.
  const meta = new Map([['huggingface', JSON.stringify({ info: { features: PACKED_FEATURES } })]]);
  return new Schema([new Field('input_ids', listType, true)], meta);
}

/** One record batch of `rows` blocks of `seqLen` tokens: `values` is [rows * seqLen] int32. */
function packedBatch(schema: Schema, values: Int32Array, seqLen: number): RecordBatch {
  const rows = values.length / seqLen;
  const listType = schema.fields[0]!.type as List;
  const offsets = new Int32Array(rows + 1);
  for (let i = 0; i <= rows; i++) offsets[i] = i * seqLen;
  const child = makeData({ type: new Int32(), length: values.length, nullCount: 0, data: values });
  const list = makeData({ type: listType, length: rows, nullCount: 0, valueOffsets: offsets, child });
  const struct = makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children: [list] });
  return new RecordBatch(schema, struct);
}

/** Write one Arrow IPC stream file from batches of packed rows. */
async function writeStreamFile(file: string, schema: Schema, chunks: Iterable<Int32Array>, seqLen: number): Promise<void> {
  const writer = new RecordBatchStreamWriter();
  const out = fs.createWriteStream(file);
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  (writer.toNodeStream() as NodeJS.ReadableStream).pipe(out);
  writer.reset(undefined, schema);
  for (const values of chunks) writer.write(packedBatch(schema, values, seqLen));
  writer.finish();
  await done;
}

export interface WriteSplitOptions {
  seqLen: number;
  numRows: number;
  /** Row i as [seqLen] int32 (called in order 0..numRows-1). */
  row: (i: number) => Int32Array;
  /** Max rows per shard (default: ~500 MB of tokens per shard like datasets' max_shard_size). */
  rowsPerShard?: number;
  split?: string | null;
}

/** Write a `save_to_disk`-style split folder of packed rows (`input_ids`: list<int32>). */
export async function writePackedSplit(splitDir: string, o: WriteSplitOptions): Promise<void> {
  fs.mkdirSync(splitDir, { recursive: true });
  const schema = packedSchema();
  const rowsPerShard = Math.max(1, o.rowsPerShard ?? Math.floor((500 * 2 ** 20) / (4 * o.seqLen)));
  const numShards = Math.max(1, Math.ceil(o.numRows / rowsPerShard));
  const files: { filename: string }[] = [];
  const shards: ShardRecord[] = [];
  for (let s = 0; s < numShards; s++) {
    const filename = `data-${String(s).padStart(5, '0')}-of-${String(numShards).padStart(5, '0')}.arrow`;
    const start = s * rowsPerShard;
    const end = Math.min(o.numRows, start + rowsPerShard);
    function* chunks(): Generator<Int32Array> {
      for (let b = start; b < end; b += ROWS_PER_BATCH) {
        const n = Math.min(ROWS_PER_BATCH, end - b);
        const values = new Int32Array(n * o.seqLen);
        for (let r = 0; r < n; r++) values.set(o.row(b + r), r * o.seqLen);
        yield values;
      }
    }
    // An empty split still gets one shard with the schema and no batches.
    await writeStreamFile(path.join(splitDir, filename), schema, chunks(), o.seqLen);
    files.push({ filename });
    shards.push({ filename, rows: end - start, bytes: fs.statSync(path.join(splitDir, filename)).size });
  }
  writeShardManifest(splitDir, { format: SHARD_MANIFEST_FORMAT, seqLen: o.seqLen, numRows: o.numRows, shards });
  const state: DatasetState = {
    _data_files: files,
    _fingerprint: fingerprint(`${splitDir}:${o.numRows}:${o.seqLen}:${Date.now()}`),
    _format_columns: null,
    _format_kwargs: {},
    _format_type: null,
    _output_all_columns: false,
    _split: o.split ?? null,
  };
  const info = { citation: '', description: '', features: PACKED_FEATURES, homepage: '', license: '' };
  fs.writeFileSync(path.join(splitDir, 'state.json'), JSON.stringify(state, null, 2));
  fs.writeFileSync(path.join(splitDir, 'dataset_info.json'), JSON.stringify(info, null, 2));
}

/** Write `dataset_dict.json` ({"splits": [...]}) of a DatasetDict folder. */
export function writeDatasetDict(dir: string, splits: string[]): void {
  fs.writeFileSync(path.join(dir, 'dataset_dict.json'), JSON.stringify({ splits }));
}
