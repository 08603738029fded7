/**
 * `wm data <subcommand>`:
 *   prepare   tokenize, pack, mix, shuffle, split -> datasets folder
 *   default   the offline default corpus (Brown): tokenizer + packed dataset, reused when up to date
 *   download  fetch a hub dataset's data files into the local cache
 *   inspect   print the shape of a packed split and decode its first row
 */
import { parseArgs } from 'node:util';
import { downloadHubDataset } from '../data/hub';
import { checkVocabulary, openPackedDataset } from '../data/loader';
import { prepareDataset, PrepareInput } from '../data/prepare';
import { prepareDefaultCorpus } from '../data/default-corpus';
import { loadTokenizer } from '../data/tokenizer';

const USAGE = `usage:
  wm data prepare --input PATH[@RATIO] [--input ...] --tokenizer DIR --seq-len N --out DIR
                  [--test-examples M] [--seed S] [--text-column text] [--prompt-column prompt] [--split train]
                  [--dataset org/name[@RATIO] [--split train] [--revision main] [--cache DIR] [--max-files K]]
      --split picks the split of hub datasets and of DatasetDict folders (--dataset-split: hub only).
      PATH is a text/JSONL/Parquet/Arrow file, a glob, a folder, a datasets folder, or 'brown' (embedded).
      @RATIO mixes inputs by ratio (the reference mixes four corpora 7:2:0.5:0.5).
  wm data default --out DIR [--vocab-size 4096] [--seq-len 256] [--test-examples M] [--seed S]
  wm data download --dataset org/name [--split train] [--revision main] [--cache DIR] [--max-files K]
  wm data inspect DIR [--tokenizer DIR] [--vocab-size N]`;

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer, got '${v}'`);
  return n;
}

function need<T>(v: T | undefined, name: string): T {
  if (v === undefined) throw new Error(`--${name} is required\n\n${USAGE}`);
  return v;
}

/** `path@7` -> { input: 'path', ratio: 7 }. */
export function parseInputSpec(spec: string): { input: string; ratio?: number } {
  const at = spec.lastIndexOf('@');
  if (at > 0 && /^[0-9.]+$/.test(spec.slice(at + 1))) {
    const ratio = Number(spec.slice(at + 1));
    if (!(ratio > 0)) throw new Error(`--input ${spec}: ratio must be a positive number`);
    return { input: spec.slice(0, at), ratio };
  }
  return { input: spec };
}

async function prepare(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      input: { type: 'string', multiple: true },
      tokenizer: { type: 'string' },
      'seq-len': { type: 'string' },
      out: { type: 'string' },
      'test-examples': { type: 'string' },
      seed: { type: 'string' },
      'text-column': { type: 'string' },
      'prompt-column': { type: 'string' },
      split: { type: 'string' },
      dataset: { type: 'string', multiple: true },
      'dataset-split': { type: 'string' },
      revision: { type: 'string' },
      cache: { type: 'string' },
      'max-files': { type: 'string' },
      'rows-per-shard': { type: 'string' },
    },
  });
  const common = { textColumn: values['text-column'], promptColumn: values['prompt-column'], split: values.split };
  const inputs: PrepareInput[] = (values.input ?? []).map((s) => ({ ...common, ...parseInputSpec(s) }));
  for (const spec of values.dataset ?? []) {
    const { input: dataset, ratio } = parseInputSpec(spec);
    const files = await downloadHubDataset({
      dataset,
      split: values['dataset-split'] ?? values.split ?? 'train',
      revision: values.revision,
      cacheDir: values.cache,
      maxFiles: int(values['max-files'], 'max-files'),
    });
    // All files of one hub dataset form one input of the mix.
    inputs.push({ ...common, input: `hub:${dataset}`, files, ratio });
  }
  if (inputs.length === 0) throw new Error(`at least one --input or --dataset is required\n\n${USAGE}`);
  const stats = await prepareDataset({
    inputs,
    tokenizer: need(values.tokenizer, 'tokenizer'),
    seqLen: need(int(values['seq-len'], 'seq-len'), 'seq-len'),
    outDir: need(values.out, 'out'),
    testExamples: int(values['test-examples'], 'test-examples'),
    seed: int(values.seed, 'seed'),
    rowsPerShard: int(values['rows-per-shard'], 'rows-per-shard'),
  });
  console.log(JSON.stringify(stats));
}

async function defaultCorpus(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      'vocab-size': { type: 'string' },
      'seq-len': { type: 'string' },
      'test-examples': { type: 'string' },
      seed: { type: 'string' },
    },
  });
  const r = await prepareDefaultCorpus({
    outDir: need(values.out, 'out'),
    vocabSize: int(values['vocab-size'], 'vocab-size'),
    seqLen: int(values['seq-len'], 'seq-len'),
    testExamples: int(values['test-examples'], 'test-examples'),
    seed: int(values.seed, 'seed'),
  });
  console.log(JSON.stringify({ ...r, stats: { ...r.stats, inputs: undefined } }));
}

async function download(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dataset: { type: 'string' },
      split: { type: 'string' },
      revision: { type: 'string' },
      cache: { type: 'string' },
      'max-files': { type: 'string' },
    },
  });
  const files = await downloadHubDataset({
    dataset: need(values.dataset, 'dataset'),
    split: values.split,
    revision: values.revision,
    cacheDir: values.cache,
    maxFiles: int(values['max-files'], 'max-files'),
  });
  for (const f of files) console.log(f);
}

async function inspect(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { tokenizer: { type: 'string' }, 'vocab-size': { type: 'string' } },
  });
  const dir = need(positionals[0], 'DIR (positional)');
  const ds = await openPackedDataset(dir);
  console.log(JSON.stringify({ dir: ds.dir, numRows: ds.numRows, seqLen: ds.seqLen, maxTokenId: ds.maxTokenId }));
  const vocab = int(values['vocab-size'], 'vocab-size');
  if (values.tokenizer) {
    const tok = await loadTokenizer(values.tokenizer);
    checkVocabulary(ds, vocab ?? tok.vocabSize);
    console.log(JSON.stringify(tok.decode(ds.row(0))));
  } else if (vocab !== undefined) checkVocabulary(ds, vocab);
}

export async function run(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'prepare') return prepare(rest);
  if (sub === 'default') return defaultCorpus(rest);
  if (sub === 'download') return download(rest);
  if (sub === 'inspect') return inspect(rest);
  if (!sub || sub === '--help' || sub === '-h') {
    console.log(USAGE);
    return;
  }
  throw new Error(`unknown 'wm data' subcommand '${sub}'\n\n${USAGE}`);
}
