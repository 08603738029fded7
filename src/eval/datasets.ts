/**
 * Where each task's rows come from (spec 3.5): the hub dataset's own files, read from a local folder in the
 * hub's layout or downloaded through src/data/hub.ts, or rows given in memory (the embedded benchmark).
 *
 *   const task = evalTask('arc_easy');
 *   const { docs, fewshotPool } = await loadTaskDocs(task, { dataDir: 'data/benchmarks', limit: 100 });
 *
 * A local folder holds one sub-folder per dataset named like the hub repo (`allenai/ai2_arc/` or
 * `allenai--ai2_arc/`), with the repo's files inside (`ARC-Easy/test-00000-of-00001.parquet`, ...). Parquet
 * (nested struct/list columns included) and JSONL files are read. A file without a column the task's prompt
 * function needs is an error naming the file, the column and the expected layout; a row with a bad value names
 * the file, the row and the field.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { downloadHubDataset, selectSplitFiles } from '../data/hub';
import { dataRng } from '../ops/random';
import { arcDoc, embeddedChatDoc, hellaswagDoc, mmluOriginalDoc, openbookqaDoc, piqaDoc, triviaqaDoc, winograndeDoc, type TaskDoc } from './tasks';

type Row = Record<string, unknown>;

/** How lighteval picks few-shot examples (spec 3.4). */
export type FewshotSampling = 'random' | 'balanced' | 'sequential';

export interface EvalTaskSpec {
  /** Name on the command line (`arc_easy`, `mmlu`, `mmlu:anatomy`, ...). */
  name: string;
  /** lighteval's task string for the seed's command (documentation). */
  lighteval: string;
  /** Hub dataset and the folder of the config inside the repo (undefined: the repo root). */
  dataset: string;
  subdir?: string;
  evalSplit: string;
  fewshotSplit: string;
  sampling: FewshotSampling;
  /** loglikelihood: multiple choice over the choices; single_token: MMLU original; generative: greedy + qem. */
  kind: 'loglikelihood' | 'single_token' | 'generative';
  /** Reported metrics (names of src/eval/multiple-choice.ts, or `qem`). */
  metrics: string[];
  /** Top-level columns the prompt function reads, and the layout in words (for error messages). */
  columns: string[];
  layout: string;
  /** Shots when none are asked for: the seed ran every task 5-shot. */
  defaultShots: number;
  /** Row -> Doc; `fewshot` builds the row as a shot. */
  doc(row: Row, where: string, fewshot: boolean): TaskDoc;
  /** Contexts through the tokenizer's chat template (lighteval's --use_chat_template), for chat-format docs. */
  chat?: boolean;
  /** MMLU: the row's group (subject); the task score is the mean of the group scores. */
  groupOf?: (row: Row, where: string) => string;
}

const ARC_LAYOUT = 'id, question, choices {text: list<string>, label: list<string>}, answerKey';

function arcTask(name: string, config: string, lighteval: string): EvalTaskSpec {
  return {
    name, lighteval, dataset: 'allenai/ai2_arc', subdir: config, evalSplit: 'test', fewshotSplit: 'train', sampling: 'random',
    kind: 'loglikelihood', metrics: ['acc', 'acc_norm_nospace'], columns: ['question', 'choices', 'answerKey'], layout: ARC_LAYOUT,
    defaultShots: 5, doc: (r, w) => arcDoc(r, w),
  };
}

function mmluSubject(row: Row, where: string): string {
  const s = row.subject;
  if (typeof s !== 'string' || s === '') throw new Error(`${where}: field 'subject' must be a non-empty string (the cais/mmlu 'all' config has it)`);
  return s;
}

const TASKS: EvalTaskSpec[] = [
  arcTask('arc_easy', 'ARC-Easy', 'lighteval|arc:easy|5|0'),
  arcTask('arc_challenge', 'ARC-Challenge', 'leaderboard|arc:challenge|5|0'),
  {
    name: 'piqa', lighteval: 'lighteval|piqa|5|0', dataset: 'ybisk/piqa', evalSplit: 'validation', fewshotSplit: 'train', sampling: 'balanced',
    kind: 'loglikelihood', metrics: ['acc', 'acc_norm_nospace'], columns: ['goal', 'sol1', 'sol2', 'label'], layout: 'goal, sol1, sol2, label int',
    defaultShots: 5, doc: (r, w) => piqaDoc(r, w),
  },
  {
    name: 'hellaswag', lighteval: 'leaderboard|hellaswag|5|0', dataset: 'Rowan/hellaswag', evalSplit: 'validation', fewshotSplit: 'train', sampling: 'random',
    kind: 'loglikelihood', metrics: ['acc', 'acc_norm'], columns: ['activity_label', 'ctx_a', 'ctx_b', 'endings', 'label'],
    layout: 'ind, activity_label, ctx_a, ctx_b, ctx, endings list<string>, source_id, split, split_type, label string', defaultShots: 5,
    doc: (r, w) => hellaswagDoc(r, w),
  },
  {
    name: 'openbookqa', lighteval: 'lighteval|openbookqa|5|0', dataset: 'allenai/openbookqa', subdir: 'main', evalSplit: 'test', fewshotSplit: 'train', sampling: 'balanced',
    kind: 'loglikelihood', metrics: ['acc', 'acc_norm_nospace'], columns: ['question_stem', 'choices', 'answerKey'],
    layout: 'id, question_stem, choices {text: list<string>, label: list<string>}, answerKey', defaultShots: 5, doc: (r, w) => openbookqaDoc(r, w),
  },
  {
    name: 'winogrande', lighteval: 'leaderboard|winogrande|5|0', dataset: 'allenai/winogrande', subdir: 'winogrande_xl', evalSplit: 'validation', fewshotSplit: 'train', sampling: 'random',
    kind: 'loglikelihood', metrics: ['acc'], columns: ['sentence', 'option1', 'option2', 'answer'], layout: 'sentence, option1, option2, answer string "1"/"2"',
    defaultShots: 5, doc: (r, w) => winograndeDoc(r, w),
  },
  {
    name: 'mmlu', lighteval: 'original|mmlu|5|0', dataset: 'cais/mmlu', subdir: 'all', evalSplit: 'test', fewshotSplit: 'dev', sampling: 'sequential',
    kind: 'single_token', metrics: ['acc'], columns: ['question', 'subject', 'choices', 'answer'], layout: 'question, subject, choices list<string>, answer int',
    defaultShots: 5, doc: (r, w, fewshot) => mmluOriginalDoc(r, undefined, w, { fewshot }), groupOf: mmluSubject,
  },
  {
    name: 'triviaqa', lighteval: 'lighteval|triviaqa|5|0', dataset: 'mandarjoshi/trivia_qa', subdir: 'rc.nocontext', evalSplit: 'validation', fewshotSplit: 'train', sampling: 'balanced',
    kind: 'generative', metrics: ['qem'], columns: ['question', 'answer'], layout: 'question, question_id, question_source, entity_pages, search_results, answer {aliases list<string>, ...}',
    defaultShots: 5, doc: (r, w) => triviaqaDoc(r, w),
  },
  {
    name: 'embedded', lighteval: '(offline four-choice benchmark, ARC layout)', dataset: 'embedded', evalSplit: 'test', fewshotSplit: 'train', sampling: 'random',
    kind: 'loglikelihood', metrics: ['acc', 'acc_norm_nospace'], columns: ['question', 'choices', 'answerKey'], layout: ARC_LAYOUT, defaultShots: 0,
    doc: (r, w) => arcDoc(r, w),
  },
  {
    name: 'embedded_chat', lighteval: '(offline four-choice benchmark asked through the chat template)', dataset: 'embedded', evalSplit: 'test', fewshotSplit: 'train',
    sampling: 'random', kind: 'loglikelihood', metrics: ['acc', 'acc_norm_nospace'], columns: ['question', 'choices', 'answerKey', 'answer_prefix'],
    layout: `${ARC_LAYOUT}, answer_prefix`, defaultShots: 0, chat: true, doc: (r, w) => embeddedChatDoc(r, w),
  },
];

/** Every task name `wm eval --tasks` accepts (plus `mmlu:<subject>`). */
export const EVAL_TASK_NAMES = TASKS.map((t) => t.name);

/** The seed's task list (its lighteval command, spec 3.4). */
export const SEED_TASKS = ['mmlu', 'triviaqa', 'arc_easy', 'arc_challenge', 'piqa', 'hellaswag', 'openbookqa', 'winogrande'];

/**
 * A task by name; `mmlu:<subject>` is MMLU restricted to one subject, and lighteval's own strings
 * (`lighteval|arc:easy|5|0`, the seed's command) name a task with its shots. Unknown names are an error listing the
 * known ones.
 */
export function evalTask(name: string): EvalTaskSpec & { subject?: string; shots?: number } {
  if (name.includes('|')) {
    const [suite, task, shots] = name.split('|');
    const t = TASKS.find((x) => x.lighteval.startsWith(`${suite}|${task}|`));
    if (!t) throw new Error(`unknown task '${name}' (lighteval tasks: ${TASKS.filter((x) => x.lighteval.includes('|')).map((x) => x.lighteval).join(', ')})`);
    if (shots !== undefined && !/^\d+$/.test(shots)) throw new Error(`task '${name}': the shots field '${shots}' is not a number`);
    return shots === undefined ? t : { ...t, shots: Number(shots) };
  }
  const [base, subject] = name.split(':');
  const t = TASKS.find((x) => x.name === base);
  if (!t || (subject !== undefined && base !== 'mmlu')) {
    throw new Error(`unknown task '${name}' (tasks: ${EVAL_TASK_NAMES.join(', ')}, or mmlu:<subject> such as mmlu:anatomy)`);
  }
  return subject ? { ...t, name, subject } : t;
}

// ---------------------------------------------------------------------------------------------- files

/** The repo folder of `dataset` inside a local data folder: `DIR/org/name`, `DIR/org--name` or `DIR/name`. */
export function localDatasetRoot(dataDir: string, dataset: string): string {
  const [org, name] = dataset.split('/');
  const candidates = [path.join(dataDir, org, name ?? ''), path.join(dataDir, `${org}--${name}`), path.join(dataDir, name ?? org)];
  const found = candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isDirectory());
  if (!found) throw new Error(`data folder ${dataDir} has no folder for ${dataset} (looked for ${candidates.map((c) => path.relative(dataDir, c)).join(', ')})`);
  return found;
}

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(root, p).split(path.sep).join('/'));
    }
  };
  walk(root);
  return out;
}

/** Local files of one split of a task (the config's folder when it exists, else the whole repo folder). */
export function localSplitFiles(dataDir: string, task: EvalTaskSpec, split: string): string[] {
  const root = localDatasetRoot(dataDir, task.dataset);
  const base = task.subdir && fs.existsSync(path.join(root, task.subdir)) ? path.join(root, task.subdir) : root;
  const files = selectSplitFiles(listFiles(base), split).filter((f) => /\.(parquet|jsonl|json|ndjson)$/i.test(f));
  if (files.length === 0) throw new Error(`${base}: no Parquet or JSONL files for split '${split}' of ${task.dataset} (expected e.g. ${task.subdir ?? 'data'}/${split}-00000-of-00001.parquet)`);
  return files.map((f) => path.join(base, ...f.split('/')));
}

/** One row and where it came from (`file: row i`). */
export interface SourcedTaskRow {
  row: Row;
  where: string;
}

/**
 * Rows of Parquet/JSONL files with the given top-level columns (only those are read from Parquet), at most
 * `limit` of them. A file without one of the columns is an error naming it and the expected layout.
 */
export async function readTaskRows(files: string[], columns: string[], layout: string, limit = Infinity): Promise<SourcedTaskRow[]> {
  const out: SourcedTaskRow[] = [];
  for (const file of files) {
    if (out.length >= limit) break;
    if (/\.parquet$/i.test(file)) {
      // benchmark files are small (a few MB to a few tens of MB): read whole, then only the needed columns are decoded
      const bytes = fs.readFileSync(file);
      const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
      {
        let metadata;
        try {
          metadata = await parquetMetadataAsync(buffer);
        } catch (e) {
          throw new Error(`Parquet file ${file} is corrupt or truncated: ${(e as Error).message}`);
        }
        const have = parquetSchema(metadata).children.map((c) => c.element.name);
        const missing = columns.filter((c) => !have.includes(c));
        if (missing.length) throw new Error(`Parquet file ${file}: column '${missing[0]}' is missing (columns: ${have.join(', ')}); expected the layout ${layout}`);
        const total = Number(metadata.num_rows);
        const rowEnd = Math.min(total, limit - out.length);
        const rows = (await parquetReadObjects({ file: buffer, metadata, columns, rowStart: 0, rowEnd, compressors })) as Row[];
        rows.forEach((row, i) => out.push({ row, where: `${file}: row ${i}` }));
      }
    } else {
      const rl = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
      let lineNo = 0;
      let checked = false;
      for await (const line of rl) {
        lineNo++;
        if (line.trim() === '') continue;
        if (out.length >= limit) break;
        let row: Row;
        try {
          row = JSON.parse(line) as Row;
        } catch (e) {
          throw new Error(`${file}:${lineNo}: not valid JSON: ${(e as Error).message}`);
        }
        if (row === null || typeof row !== 'object' || Array.isArray(row)) throw new Error(`${file}:${lineNo}: expected a JSON object per line`);
        if (!checked) {
          const missing = columns.filter((c) => !(c in row));
          if (missing.length) throw new Error(`${file}:${lineNo}: field '${missing[0]}' is missing (fields: ${Object.keys(row).join(', ')}); expected the layout ${layout}`);
          checked = true;
        }
        out.push({ row, where: `${file}:${lineNo}` });
      }
      rl.close();
    }
  }
  return out;
}

// -------------------------------------------------------------------------------------------- loading

export interface TaskDataOptions {
  /** Local folder with the datasets in the hub's layout. */
  dataDir?: string;
  /** Download from the hub (cached; HF_TOKEN, HF_ENDPOINT) instead. */
  hub?: boolean;
  /** Rows in memory (the embedded benchmark, tests): evaluation rows and few-shot rows in the task's layout. */
  rows?: { eval: object[]; fewshot?: object[] };
  /** At most this many evaluation rows (per MMLU subject); default all. */
  limit?: number;
  /** Hub download options (defaults: $WM_CACHE, $HF_ENDPOINT, $HF_TOKEN). */
  cacheDir?: string;
  endpoint?: string;
  log?: boolean;
}

/** Evaluation items of a task and its few-shot pool, as Docs; MMLU items carry their subject. */
export interface TaskDocs {
  docs: { doc: TaskDoc; where: string; group?: string }[];
  fewshotPool: { doc: TaskDoc; where: string; group?: string }[];
}

async function splitFiles(task: EvalTaskSpec, split: string, o: TaskDataOptions): Promise<string[]> {
  if (o.dataDir) return localSplitFiles(o.dataDir, task, split);
  if (o.hub) return downloadHubDataset({ dataset: task.dataset, subdir: task.subdir, split, cacheDir: o.cacheDir, endpoint: o.endpoint, log: o.log });
  throw new Error(`task ${task.name}: give a data folder (--data DIR) or --hub to read ${task.dataset}`);
}

/** Read, check and convert the rows of a task (see the file header). */
export async function loadTaskDocs(task: EvalTaskSpec & { subject?: string }, o: TaskDataOptions = {}, needFewshot = true): Promise<TaskDocs> {
  const limit = o.limit ?? Infinity;
  let evalRows: SourcedTaskRow[];
  let shotRows: SourcedTaskRow[] = [];
  if (o.rows) {
    const label = task.dataset === 'embedded' ? `${task.name} benchmark` : `${task.name} rows`;
    evalRows = o.rows.eval.map((row, i) => ({ row: row as Row, where: `${label}: row ${i}` }));
    shotRows = (o.rows.fewshot ?? []).map((row, i) => ({ row: row as Row, where: `${label} (few-shot): row ${i}` }));
  } else {
    if (task.dataset === 'embedded') throw new Error(`task ${task.name}: rows are generated in memory (pass rows, or use wm eval, which generates them)`);
    // MMLU limits per subject: read everything, cut after grouping
    evalRows = await readTaskRows(await splitFiles(task, task.evalSplit, o), task.columns, `${task.dataset} ${task.layout}`, task.groupOf ? Infinity : limit);
    if (needFewshot) shotRows = await readTaskRows(await splitFiles(task, task.fewshotSplit, o), task.columns, `${task.dataset} ${task.layout}`);
  }
  const convert = (rows: SourcedTaskRow[], fewshot: boolean) => rows.map(({ row, where }) => ({ doc: task.doc(row, where, fewshot), where, group: task.groupOf?.(row, where) }));
  let docs = convert(evalRows, false);
  let fewshotPool = convert(shotRows, true);
  if (task.subject) {
    docs = docs.filter((d) => d.group === task.subject);
    fewshotPool = fewshotPool.filter((d) => d.group === task.subject);
    if (docs.length === 0) throw new Error(`task ${task.name}: no rows with subject '${task.subject}' in ${task.dataset}`);
  }
  if (task.groupOf && Number.isFinite(limit)) {
    const seen = new Map<string, number>();
    docs = docs.filter((d) => { const n = seen.get(d.group!) ?? 0; seen.set(d.group!, n + 1); return n < limit; });
  } else if (docs.length > limit) docs = docs.slice(0, limit);
  if (docs.length === 0) throw new Error(`task ${task.name}: no evaluation rows`);
  docs.forEach((d) => {
    const golds = Array.isArray(d.doc.gold) ? d.doc.gold : [d.doc.gold];
    if (golds.some((g) => g < 0)) throw new Error(`${d.where}: no gold label (an unlabeled test row); evaluate a labeled split`);
  });
  return { docs, fewshotPool };
}

// ------------------------------------------------------------------------------------------- few-shot

function shuffled<T>(xs: T[], next: () => number): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** `n` distinct elements drawn uniformly (all of them, shuffled, when the pool is that small). */
function draw<T>(pool: T[], n: number, next: () => number): T[] {
  if (pool.length <= n) return shuffled(pool, next);
  const picked = new Set<number>();
  while (picked.size < n) picked.add(Math.floor(next() * pool.length));
  return [...picked].map((i) => pool[i]);
}

/**
 * The shots of every evaluation item (spec 3.4): `sequential` = the first K of the pool; `balanced` = one fixed
 * set cycling over the gold answers; `random` = K new draws per item. The item itself (same query) is never its
 * own shot; MMLU shots come from the item's own subject. The draws use this project's seeded generator, so they
 * are not lighteval's exact shots (the same kind of sample).
 */
export function selectShots(task: EvalTaskSpec, data: TaskDocs, k: number, seed = 42): TaskDoc[][] {
  if (k === 0) return data.docs.map(() => []);
  const next = dataRng(seed);
  const poolOf = (group?: string) => (task.groupOf ? data.fewshotPool.filter((d) => d.group === group) : data.fewshotPool);
  const fixed = new Map<string, TaskDoc[]>();
  const fixedSet = (group: string | undefined): TaskDoc[] => {
    const key = group ?? '';
    if (!fixed.has(key)) {
      const pool = poolOf(group).map((d) => d.doc);
      if (task.sampling === 'sequential') fixed.set(key, pool.slice(0, k + 1));
      else {
        // balanced: shuffle, then take one example per gold answer in turn
        const byTarget = new Map<string, TaskDoc[]>();
        for (const d of shuffled(pool, next)) {
          const t = JSON.stringify(d.gold);
          if (!byTarget.has(t)) byTarget.set(t, []);
          byTarget.get(t)!.push(d);
        }
        const queues = [...byTarget.values()];
        const set: TaskDoc[] = [];
        while (set.length < k + 1 && queues.some((q) => q.length)) for (const q of queues) if (q.length && set.length < k + 1) set.push(q.shift()!);
        fixed.set(key, set);
      }
    }
    return fixed.get(key)!;
  };
  return data.docs.map(({ doc, group }) => {
    const pool = task.sampling === 'random' ? draw(poolOf(group), k + 1, next).map((d) => d.doc) : fixedSet(group);
    const shots = pool.filter((s) => s.query !== doc.query).slice(0, k);
    if (shots.length < k) throw new Error(`task ${task.name}: ${k} shots asked for but the few-shot split has only ${shots.length} usable examples${group ? ` for ${group}` : ''}`);
    return shots;
  });
}
