/**
 * Where documents come from. Every source yields records one at a time (bounded memory):
 *   - `{ text }`                  a pre-training document,
 *   - `{ prompt, text }`          an instruction pair (rendered with the chat template when tokenized),
 *   - `{ messages }`              a whole conversation (a `messages` list of {role, content}),
 *   - `{ inputIds }`              an already tokenized row (an `input_ids` column, used when there is no
 *                                 text column and no text column was asked for explicitly).
 *
 * Inputs: `brown` (the embedded corpus), `stories` (generated short stories, src/data/stories.ts), plain text files (UTF-8; `.gz`/`.zst` read transparently, binary refused) (one document per file; very large files one
 * document per blank-line separated paragraph), JSONL (`text` or `prompt`/`text` per line), Parquet
 * (hub shards, any compression hyparquet-compressors reads: snappy, zstd, gzip, brotli, lz4), Arrow IPC
 * streams/files, `datasets` folders written by `save_to_disk` (a split, or a DatasetDict's split), folders
 * of such files, and globs (`data/*.parquet`, `corpus/**\/*.txt`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import type { AsyncBuffer } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { Type } from 'apache-arrow';
import { datasetDictSplits, datasetShardFiles, isIntListType, isStringType, listColumnRows, readArrowBatches } from './arrow';
import { brownCorpusDocuments } from './brown';
import { storyCorpusDocuments } from './stories';
import { readTextLines, readWholeText, sniffCompression, withoutCompressionSuffix } from './input-bytes';
import type { ChatMessage } from './tokenizer';

/** One record of an input: exactly one of `text` (with an optional `prompt`), `messages`, `inputIds`. */
export interface DataRecord {
  text?: string;
  prompt?: string;
  /** A whole conversation (`messages` column/key of chat datasets), rendered with the chat template. */
  messages?: ChatMessage[];
  inputIds?: Int32Array;
}

/** Check a `messages` value (a list of {role, content} strings); errors name where it came from. */
export function toChatMessages(v: unknown, where: string): ChatMessage[] {
  if (!Array.isArray(v)) throw new Error(`${where}: 'messages' must be a list of {role, content}, got ${v === null ? 'null' : typeof v}`);
  return v.map((m: unknown, k) => {
    const o = (m && typeof (m as { toJSON?: unknown }).toJSON === 'function' ? (m as { toJSON(): unknown }).toJSON() : m) as Record<string, unknown> | null;
    if (!o || typeof o.role !== 'string' || typeof o.content !== 'string') {
      throw new Error(`${where}: message ${k} must have string 'role' and 'content', got ${JSON.stringify(o)}`);
    }
    return { role: o.role, content: o.content };
  });
}

export interface SourceOptions {
  /** Column (or JSON key) with the document / answer text; default `text`. */
  textColumn?: string;
  /** Column with the prompt of instruction pairs; default `prompt` (used when present). */
  promptColumn?: string;
  /** Column with whole conversations (list of {role, content}); default `messages`, used when there is no text column. */
  messagesColumn?: string;
  /** Split of a DatasetDict folder; default `train`. */
  split?: string;
  /** Text files larger than this are split into paragraphs instead of read whole (bytes; default 64 MiB). */
  wholeFileLimit?: number;
  /** An explicit file list for this input (e.g. the shards a hub download returned); the input is then only a label. */
  files?: string[];
}

// Text files picked up when a folder is scanned (a named file or a glob is read whatever its extension).
const TEXT_EXTENSIONS = new Set(['.txt', '.text']);

function kindOf(file: string): 'parquet' | 'arrow' | 'jsonl' | 'text' {
  const ext = path.extname(withoutCompressionSuffix(file)).toLowerCase();
  if (ext === '.parquet') return 'parquet';
  if (ext === '.arrow' || ext === '.arrows' || ext === '.ipc' || ext === '.feather') return 'arrow';
  if (ext === '.jsonl' || ext === '.json' || ext === '.ndjson') return 'jsonl';
  return 'text';
}

// ----------------------------------------------------------------------------------------------- globs

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` matches any number of folders (also none)
      re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Files under `dir`, sorted, at most `depth` levels down (1 = only `dir` itself). */
function walk(dir: string, out: string[], depth = Infinity): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (depth > 1) walk(p, out, depth - 1);
    } else if (e.isFile()) out.push(p);
  }
}

/** Expand a glob (`*`, `?`, `**`) into sorted file paths; throws naming the pattern if nothing matches. */
export function expandGlob(pattern: string): string[] {
  // path.join in walk() normalises (`./a` -> `a`), so normalise the pattern the same way.
  const norm = path.normalize(pattern).split(path.sep).join('/');
  const firstWild = norm.search(/[*?]/);
  const baseEnd = norm.lastIndexOf('/', firstWild);
  const base = baseEnd < 0 ? '.' : norm.slice(0, baseEnd) || '/';
  if (!fs.existsSync(base)) throw new Error(`input ${pattern}: folder ${base} does not exist`);
  const all: string[] = [];
  // Without `**` a pattern cannot match deeper than its own number of path segments.
  const rest = norm.slice(baseEnd + 1);
  walk(base, all, rest.includes('**') ? Infinity : rest.split('/').length);
  const re = globToRegExp(norm);
  const matches = all.filter((f) => re.test(f.split(path.sep).join('/')));
  if (matches.length === 0) throw new Error(`input ${pattern}: no files match`);
  return matches;
}

// ----------------------------------------------------------------------------------------------- text

async function* readTextFile(file: string, o: SourceOptions): AsyncGenerator<DataRecord> {
  // .gz / .zst are decompressed, binary files and invalid UTF-8 are refused (src/data/input-bytes.ts).
  const size = fs.statSync(file).size;
  if (size <= (o.wholeFileLimit ?? 64 * 2 ** 20) && sniffCompression(file) === 'none') {
    const text = await readWholeText(file);
    if (text.trim() !== '') yield { text };
    return;
  }
  // Larger than we want in one string (or compressed, size unknown): one document per paragraph, streamed.
  const rl = readTextLines(file);
  let para: string[] = [];
  for await (const line of rl) {
    if (line.trim() === '') {
      if (para.length) yield { text: para.join('\n') };
      para = [];
    } else para.push(line);
  }
  if (para.length) yield { text: para.join('\n') };
}

// ---------------------------------------------------------------------------------------------- jsonl

async function* readJsonl(file: string, o: SourceOptions): AsyncGenerator<DataRecord> {
  const textKey = o.textColumn ?? 'text';
  const promptKey = o.promptColumn ?? 'prompt';
  const rl = readTextLines(file);
  let lineNo = 0;
  for await (const line of rl) {
    lineNo++;
    if (line.trim() === '') continue;
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${file}:${lineNo}: not valid JSON: ${(e as Error).message}`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`${file}:${lineNo}: expected a JSON object per line`);
    if (textKey in obj) {
      const text = obj[textKey];
      if (typeof text !== 'string') throw new Error(`${file}:${lineNo}: key '${textKey}' must be a string, got ${typeof text}`);
      const prompt = obj[promptKey];
      if (prompt !== undefined && typeof prompt !== 'string') throw new Error(`${file}:${lineNo}: key '${promptKey}' must be a string, got ${typeof prompt}`);
      yield prompt === undefined ? { text } : { prompt, text };
    } else if ((o.messagesColumn ?? 'messages') in obj && o.textColumn === undefined) {
      yield { messages: toChatMessages(obj[o.messagesColumn ?? 'messages'], `${file}:${lineNo}`) };
    } else if (Array.isArray(obj.input_ids) && o.textColumn === undefined) {
      yield { inputIds: Int32Array.from(obj.input_ids as number[]) };
    } else {
      throw new Error(`${file}:${lineNo}: key '${textKey}' is missing (keys: ${Object.keys(obj).join(', ')})`);
    }
  }
}

// -------------------------------------------------------------------------------------------- parquet

/** A hyparquet AsyncBuffer reading byte ranges of a file on demand (the file is never read whole). */
async function fileAsyncBuffer(file: string): Promise<AsyncBuffer & { close(): Promise<void> }> {
  const fh = await fs.promises.open(file, 'r');
  const byteLength = (await fh.stat()).size;
  return {
    byteLength,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = end ?? byteLength;
      const buf = Buffer.alloc(Math.max(0, stop - start));
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      return buf.buffer.slice(buf.byteOffset, buf.byteOffset + bytesRead) as ArrayBuffer;
    },
    close: () => fh.close(),
  };
}

interface ParquetColumnInfo {
  name: string;
  type: string;
  isString: boolean;
  isIntList: boolean;
  isList: boolean;
}

function parquetColumns(metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>): ParquetColumnInfo[] {
  const root = parquetSchema(metadata);
  return root.children.map((c) => {
    const el = c.element;
    const isString =
      el.type === 'BYTE_ARRAY' && (el.converted_type === 'UTF8' || el.logical_type?.type === 'STRING' || el.converted_type === 'JSON');
    // list<int>: a LIST group whose leaf is an INT32/INT64
    let leaf = c;
    while (leaf.children.length === 1) leaf = leaf.children[0]!;
    const isIntList = c.children.length > 0 && (leaf.element.type === 'INT32' || leaf.element.type === 'INT64');
    const type = el.type ?? (c.children.length ? `group ${el.converted_type ?? ''}`.trim() : 'unknown');
    return { name: el.name, type: `${type}${el.converted_type ? ` (${el.converted_type})` : ''}`, isString, isIntList, isList: c.children.length > 0 };
  });
}

/**
 * Which columns to read from a Parquet file and how: `text` (+ `prompt`) as strings, or an `input_ids`
 * list of ints when there is no text column (and none was asked for). Throws naming the file and column.
 * `metadata` is hyparquet's FileMetaData (typed `object` here so the published .d.ts does not import the ES-only
 * hyparquet package).
 */
export function parquetReadPlan(
  file: string,
  metadata: object,
  o: SourceOptions = {},
): { mode: 'text' | 'ids' | 'messages'; columns: string[]; prompt: boolean } {
  const textKey = o.textColumn ?? 'text';
  const promptKey = o.promptColumn ?? 'prompt';
  const cols = parquetColumns(metadata as Awaited<ReturnType<typeof parquetMetadataAsync>>);
  const byName = new Map(cols.map((c) => [c.name, c]));
  const text = byName.get(textKey);
  const prompt = byName.get(promptKey);
  const ids = byName.get('input_ids');
  if (text) {
    if (!text.isString) throw new Error(`Parquet file ${file}: column '${textKey}' has type ${text.type}, expected a string column`);
    if (prompt && !prompt.isString) throw new Error(`Parquet file ${file}: column '${promptKey}' has type ${prompt.type}, expected a string column`);
    return { mode: 'text', columns: prompt ? [promptKey, textKey] : [textKey], prompt: !!prompt };
  }
  const messagesKey = o.messagesColumn ?? 'messages';
  const messages = byName.get(messagesKey);
  if (messages && o.textColumn === undefined) {
    if (!messages.isList) throw new Error(`Parquet file ${file}: column '${messagesKey}' has type ${messages.type}, expected a list of {role, content}`);
    return { mode: 'messages', columns: [messagesKey], prompt: false };
  }
  if (ids?.isIntList && o.textColumn === undefined) return { mode: 'ids', columns: ['input_ids'], prompt: false };
  throw new Error(`Parquet file ${file}: column '${textKey}' is missing (columns: ${cols.map((c) => c.name).join(', ')})`);
}

async function* readParquet(file: string, o: SourceOptions): AsyncGenerator<DataRecord> {
  const buffer = await fileAsyncBuffer(file);
  try {
    yield* readParquetBuffer(file, buffer, o);
  } finally {
    await buffer.close();
  }
}

async function* readParquetBuffer(file: string, buffer: AsyncBuffer, o: SourceOptions): AsyncGenerator<DataRecord> {
  const textKey = o.textColumn ?? 'text';
  const promptKey = o.promptColumn ?? 'prompt';
  let metadata;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (e) {
    throw new Error(`Parquet file ${file} is corrupt or truncated: ${(e as Error).message}`);
  }
  const { mode, columns, prompt } = parquetReadPlan(file, metadata, o);
  // One row group at a time: hub shards have row groups of ~100 MB or less, so memory stays bounded.
  let rowStart = 0;
  for (const [g, rg] of metadata.row_groups.entries()) {
    const rowEnd = rowStart + Number(rg.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = await parquetReadObjects({ file: buffer, metadata, columns, rowStart, rowEnd, compressors });
    } catch (e) {
      throw new Error(`Parquet file ${file} is corrupt or truncated (row group ${g}): ${(e as Error).message}`);
    }
    for (const [i, r] of rows.entries()) {
      if (mode === 'messages') {
        yield { messages: toChatMessages(r[columns[0]!], `Parquet file ${file}: row ${rowStart + i}`) };
        continue;
      }
      if (mode === 'ids') {
        const v = r.input_ids;
        if (!Array.isArray(v)) throw new Error(`Parquet file ${file}: row ${rowStart + i} of 'input_ids' is ${v === null ? 'null' : typeof v}`);
        yield { inputIds: Int32Array.from(v as (number | bigint)[], Number) };
        continue;
      }
      const t = r[textKey];
      if (typeof t !== 'string') throw new Error(`Parquet file ${file}: row ${rowStart + i} of column '${textKey}' is ${t === null ? 'null' : typeof t}`);
      if (prompt) {
        const p = r[promptKey];
        if (typeof p !== 'string') throw new Error(`Parquet file ${file}: row ${rowStart + i} of column '${promptKey}' is ${p === null ? 'null' : typeof p}`);
        yield { prompt: p, text: t };
      } else yield { text: t };
    }
    rowStart = rowEnd;
  }
}

// ---------------------------------------------------------------------------------------------- arrow

async function* readArrow(file: string, o: SourceOptions): AsyncGenerator<DataRecord> {
  const textKey = o.textColumn ?? 'text';
  const promptKey = o.promptColumn ?? 'prompt';
  let row = 0;
  for await (const batch of readArrowBatches(file)) {
    const fields = batch.schema.fields;
    const text = fields.find((f) => f.name === textKey);
    const prompt = fields.find((f) => f.name === promptKey);
    const ids = fields.find((f) => f.name === 'input_ids');
    if (text) {
      if (!isStringType(text.typeId)) throw new Error(`Arrow file ${file}: column '${textKey}' has type ${String(text.type)}, expected string or large_string`);
      if (prompt && !isStringType(prompt.typeId)) throw new Error(`Arrow file ${file}: column '${promptKey}' has type ${String(prompt.type)}, expected string or large_string`);
      const tv = batch.getChild(textKey)!;
      const pv = prompt ? batch.getChild(promptKey)! : undefined;
      for (let i = 0; i < batch.numRows; i++, row++) {
        const t = tv.get(i) as string | null;
        if (t === null) throw new Error(`Arrow file ${file}: row ${row} of column '${textKey}' is null`);
        if (pv) {
          const p = pv.get(i) as string | null;
          if (p === null) throw new Error(`Arrow file ${file}: row ${row} of column '${promptKey}' is null`);
          yield { prompt: p, text: t };
        } else yield { text: t };
      }
    } else if (fields.some((f) => f.name === (o.messagesColumn ?? 'messages')) && o.textColumn === undefined) {
      const key = o.messagesColumn ?? 'messages';
      const f = fields.find((x) => x.name === key)!;
      if (f.type.typeId !== Type.List && f.type.typeId !== Type.LargeList) {
        throw new Error(`Arrow file ${file}: column '${key}' has type ${String(f.type)}, expected a list of {role, content}`);
      }
      const mv = batch.getChild(key)!;
      for (let i = 0; i < batch.numRows; i++, row++) {
        const v = mv.get(i) as { toArray(): unknown[] } | null;
        yield { messages: toChatMessages(v === null ? null : v.toArray(), `Arrow file ${file}: row ${row}`) };
      }
    } else if (ids && o.textColumn === undefined) {
      if (!isIntListType(ids)) throw new Error(`Arrow file ${file}: column 'input_ids' has type ${String(ids.type)}, expected list<int32> or large_list<int32>`);
      for (const r of listColumnRows(batch, 'input_ids', file)) {
        row++;
        yield { inputIds: r };
      }
    } else {
      throw new Error(`Arrow file ${file}: column '${textKey}' is missing (columns: ${fields.map((f) => f.name).join(', ')})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------- inputs

/** The files an input names (a file, a glob, a folder of files, or a `datasets` folder's shards). */
export function resolveInputFiles(input: string, o: SourceOptions = {}): string[] {
  if (/[*?]/.test(input)) return expandGlob(input);
  if (!fs.existsSync(input)) throw new Error(`input ${input} does not exist`);
  if (fs.statSync(input).isFile()) return [input];
  const splits = datasetDictSplits(input);
  if (splits) {
    const split = o.split ?? 'train';
    if (!splits.includes(split)) throw new Error(`input ${input}: DatasetDict has no split '${split}' (splits: ${splits.join(', ')})`);
    return datasetShardFiles(path.join(input, split));
  }
  if (fs.existsSync(path.join(input, 'state.json'))) return datasetShardFiles(input);
  const files: string[] = [];
  walk(input, files);
  const data = files.filter((f) => !path.basename(f).startsWith('.') && (kindOf(f) !== 'text' || TEXT_EXTENSIONS.has(path.extname(withoutCompressionSuffix(f)).toLowerCase())));
  if (data.length === 0) throw new Error(`input ${input}: folder has no .txt/.jsonl/.parquet/.arrow files`);
  return data;
}

/** Records of one input (`brown`, `stories`, a file, glob or folder), in order. */
export async function* readRecords(input: string, o: SourceOptions = {}): AsyncGenerator<DataRecord> {
  if (input === 'brown' || input === 'embedded:brown') {
    for (const text of brownCorpusDocuments()) yield { text };
    return;
  }
  if (input === 'stories' || input === 'embedded:stories') {
    for (const text of storyCorpusDocuments()) yield { text };
    return;
  }
  for (const file of o.files ?? resolveInputFiles(input, o)) {
    if (!fs.existsSync(file)) throw new Error(`input ${input}: file ${file} does not exist`);
    const kind = kindOf(file);
    if ((kind === 'parquet' || kind === 'arrow') && withoutCompressionSuffix(file) !== file) {
      throw new Error(`input ${file}: compressed ${kind} files are not read; decompress it first (Parquet and Arrow compress internally)`);
    }
    if (kind === 'parquet') yield* readParquet(file, o);
    else if (kind === 'arrow') yield* readArrow(file, o);
    else if (kind === 'jsonl') yield* readJsonl(file, o);
    else yield* readTextFile(file, o);
  }
}
