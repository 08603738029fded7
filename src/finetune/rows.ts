/**
 * Raw rows (every column) of fine-tuning inputs: JSONL, Parquet, Arrow IPC, `datasets` folders (their Arrow
 * shards), folders and globs of those (resolved like `wm data`), `--dataset org/name` from the hub (the files
 * `downloadHubDataset` returns), and `embedded:chats` / `embedded:prefs` (the generated default data).
 * Nested columns (message lists, structs) come back as plain JSON values. Each row carries where it came from,
 * so errors can name the file and row.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { readArrowBatches } from '../data/arrow';
import { resolveInputFiles } from '../data/sources';
import { defaultChats, defaultPreferences } from './default-data';

export interface SourcedRow {
  row: Record<string, unknown>;
  /** `file row N` (1-based), for error messages. */
  where: string;
}

/** Arrow / hyparquet values -> plain JSON (vectors to arrays, structs to objects, bigints to numbers). */
function plain(v: unknown): unknown {
  if (v === null || v === undefined) return v;
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
  if (typeof v === 'object') {
    // Arrow struct rows and vectors both have toJSON (object / array); vectors of numbers may only have toArray
    const o = v as { toJSON?: () => unknown; toArray?: () => unknown };
    if (v instanceof Date) return v.toISOString();
    if (typeof o.toJSON === 'function') return plain(o.toJSON());
    if (typeof o.toArray === 'function') return plain(Array.from(o.toArray() as Iterable<unknown>));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}

/** Read every row of an input (see the file header). `split` picks a DatasetDict split or the embedded test split. */
export async function readFinetuneRows(input: string, opts: { split?: string; files?: string[]; n?: number; seed?: number } = {}): Promise<SourcedRow[]> {
  if (input === 'embedded:chats' || input === 'embedded:prefs') {
    const split = opts.split === 'test' ? 'test' : 'train';
    const gen = input === 'embedded:chats'
      ? defaultChats({ seed: opts.seed ?? 0, n: opts.n ?? (split === 'test' ? 200 : 4000), split }).map((c) => ({ messages: c.messages, family: c.family }))
      : defaultPreferences({ seed: opts.seed ?? 0, n: opts.n ?? (split === 'test' ? 100 : 1000), split }).map((p) => ({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected, family: p.family, rejected_kind: p.rejectedKind }));
    return gen.map((row, i) => ({ row, where: `${input} (${split}) row ${i + 1}` }));
  }
  const files = opts.files ?? resolveInputFiles(input, { split: opts.split });
  const out: SourcedRow[] = [];
  for (const file of files) {
    const ext = path.extname(file).toLowerCase();
    const base = path.basename(file);
    if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') {
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (!line.trim()) return;
        let row: unknown;
        try {
          row = JSON.parse(line);
        } catch (e) {
          throw new Error(`${file} line ${i + 1}: not valid JSON: ${(e as Error).message}`);
        }
        if (!row || typeof row !== 'object' || Array.isArray(row)) throw new Error(`${file} line ${i + 1}: a row must be a JSON object`);
        out.push({ row: row as Record<string, unknown>, where: `${base} line ${i + 1}` });
      });
    } else if (ext === '.parquet') {
      const buf = fs.readFileSync(file);
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
      const rows = (await parquetReadObjects({ file: ab, compressors })) as Record<string, unknown>[];
      rows.forEach((r, i) => out.push({ row: plain(r) as Record<string, unknown>, where: `${base} row ${i + 1}` }));
    } else if (['.arrow', '.arrows', '.ipc', '.feather'].includes(ext)) {
      let i = 0;
      for await (const batch of readArrowBatches(file)) {
        for (const r of batch) out.push({ row: plain(r) as Record<string, unknown>, where: `${base} row ${++i}` });
      }
    } else {
      throw new Error(`${file}: fine-tuning data must be JSONL, Parquet or Arrow (rows with columns), not '${ext || 'no extension'}'`);
    }
  }
  if (!out.length) throw new Error(`input ${input}: no rows`);
  return out;
}
