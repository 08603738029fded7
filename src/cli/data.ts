/**
 * `wm data <subcommand>`:
 *   prepare   tokenize, pack, mix, shuffle, split -> datasets folder
 *   default   the offline default corpus (Brown): tokenizer + packed dataset, reused when up to date
 *   download  fetch a hub dataset's data files into the local cache
 *   inspect   print the shape of a packed split and decode its first row
 */
import { downloadHubDataset } from '../data/hub';
import { checkVocabulary, openPackedDataset } from '../data/loader';
import { prepareDataset, PrepareInput } from '../data/prepare';
import { prepareDefaultCorpus } from '../data/default-corpus';
import { loadTokenizer } from '../data/tokenizer';
import { CommandSpec, defineCommand, flag, num, parseCommandArgs, ParsedArgs, str, strs, UsageError } from './args';

const USAGE = `usage:
  wm data prepare --input PATH[@RATIO] [--input ...] --tokenizer DIR --seq-len N --out DIR
                  [--overwrite] [--test-examples M] [--seed S] [--text-column text] [--prompt-column prompt]
                  [--split train] [--dataset org/name[@RATIO] [--split train] [--revision main] [--cache DIR] [--max-files K]]
      --out must be a new or empty folder, or one an earlier 'wm data prepare' wrote (then --overwrite replaces
      the files its manifest lists, and nothing else).
      --split picks the split of hub datasets and of DatasetDict folders (--dataset-split: hub only).
      PATH is a text/JSONL/Parquet/Arrow file, a glob, a folder, a datasets folder, or 'brown' / 'stories' (embedded).
      @RATIO mixes inputs by ratio (the reference mixes four corpora 7:2:0.5:0.5).
  wm data default --out DIR [--vocab-size 4096] [--seq-len 256] [--test-examples M] [--seed S]
  wm data download --dataset org/name [--split train] [--revision main] [--cache DIR] [--max-files K]
  wm data inspect DIR [--tokenizer DIR] [--vocab-size N]`;

const SPECS = {
  prepare: defineCommand({
    name: 'wm data prepare',
    usage: USAGE,
    options: {
      input: { type: 'string', multiple: true },
      tokenizer: { type: 'string', required: true },
      'seq-len': { type: 'int', required: true, min: 2 },
      out: { type: 'string', required: true },
      overwrite: { type: 'boolean' },
      'test-examples': { type: 'int', min: 0 },
      seed: { type: 'int', min: 0 },
      'text-column': { type: 'string' },
      'prompt-column': { type: 'string' },
      split: { type: 'string' },
      dataset: { type: 'string', multiple: true },
      'dataset-split': { type: 'string' },
      revision: { type: 'string' },
      cache: { type: 'string' },
      'max-files': { type: 'int', min: 1 },
      'rows-per-shard': { type: 'int', min: 1 },
    },
  }),
  default: defineCommand({
    name: 'wm data default',
    usage: USAGE,
    options: {
      out: { type: 'string', required: true },
      'vocab-size': { type: 'int', min: 258 },
      'seq-len': { type: 'int', min: 2 },
      'test-examples': { type: 'int', min: 0 },
      seed: { type: 'int', min: 0 },
    },
  }),
  download: defineCommand({
    name: 'wm data download',
    usage: USAGE,
    options: {
      dataset: { type: 'string', required: true },
      split: { type: 'string' },
      revision: { type: 'string' },
      cache: { type: 'string' },
      'max-files': { type: 'int', min: 1 },
    },
  }),
  inspect: defineCommand({
    name: 'wm data inspect',
    usage: USAGE,
    positionals: { min: 1, max: 1, name: 'the split folder DIR' },
    options: { tokenizer: { type: 'string' }, 'vocab-size': { type: 'int', min: 1 } },
  }),
} satisfies Record<string, CommandSpec>;

/** Parse; `undefined` when --help was asked for (and printed). */
function parse(spec: CommandSpec, argv: string[]): ParsedArgs | undefined {
  const a = parseCommandArgs(spec, argv);
  if (a.help) { console.log(USAGE); return undefined; }
  return a;
}

/** `path@7` -> { input: 'path', ratio: 7 }. */
export function parseInputSpec(spec: string): { input: string; ratio?: number } {
  const at = spec.lastIndexOf('@');
  if (at > 0 && /^[0-9.]+$/.test(spec.slice(at + 1))) {
    const ratio = Number(spec.slice(at + 1));
    if (!(ratio > 0)) throw new UsageError(`--input ${spec}: ratio must be a positive number`);
    return { input: spec.slice(0, at), ratio };
  }
  return { input: spec };
}

async function prepare(argv: string[]): Promise<void> {
  const a = parse(SPECS.prepare, argv);
  if (!a) return;
  const common = { textColumn: str(a, 'text-column'), promptColumn: str(a, 'prompt-column'), split: str(a, 'split') };
  const inputs: PrepareInput[] = strs(a, 'input').map((s) => ({ ...common, ...parseInputSpec(s) }));
  for (const spec of strs(a, 'dataset')) {
    const { input: dataset, ratio } = parseInputSpec(spec);
    const files = await downloadHubDataset({
      dataset,
      split: str(a, 'dataset-split') ?? str(a, 'split') ?? 'train',
      revision: str(a, 'revision'),
      cacheDir: str(a, 'cache'),
      maxFiles: num(a, 'max-files'),
    });
    // All files of one hub dataset form one input of the mix.
    inputs.push({ ...common, input: `hub:${dataset}`, files, ratio });
  }
  if (inputs.length === 0) throw new UsageError(`wm data prepare: at least one --input or --dataset is required\n\n${USAGE}`);
  const stats = await prepareDataset({
    inputs,
    tokenizer: str(a, 'tokenizer')!,
    seqLen: num(a, 'seq-len')!,
    outDir: str(a, 'out')!,
    overwrite: flag(a, 'overwrite'),
    testExamples: num(a, 'test-examples'),
    seed: num(a, 'seed'),
    rowsPerShard: num(a, 'rows-per-shard'),
  });
  console.log(JSON.stringify(stats));
}

async function defaultCorpus(argv: string[]): Promise<void> {
  const a = parse(SPECS.default, argv);
  if (!a) return;
  const r = await prepareDefaultCorpus({
    outDir: str(a, 'out')!,
    vocabSize: num(a, 'vocab-size'),
    seqLen: num(a, 'seq-len'),
    testExamples: num(a, 'test-examples'),
    seed: num(a, 'seed'),
  });
  console.log(JSON.stringify({ ...r, stats: { ...r.stats, inputs: undefined } }));
}

async function download(argv: string[]): Promise<void> {
  const a = parse(SPECS.download, argv);
  if (!a) return;
  const files = await downloadHubDataset({
    dataset: str(a, 'dataset')!,
    split: str(a, 'split'),
    revision: str(a, 'revision'),
    cacheDir: str(a, 'cache'),
    maxFiles: num(a, 'max-files'),
  });
  for (const f of files) console.log(f);
}

async function inspect(argv: string[]): Promise<void> {
  const a = parse(SPECS.inspect, argv);
  if (!a) return;
  const dir = a.positionals[0];
  const ds = await openPackedDataset(dir);
  console.log(JSON.stringify({ dir: ds.dir, numRows: ds.numRows, seqLen: ds.seqLen, maxTokenId: ds.maxTokenId }));
  const vocab = num(a, 'vocab-size');
  const tokDir = str(a, 'tokenizer');
  if (tokDir) {
    const tok = await loadTokenizer(tokDir);
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
  throw new UsageError(`wm data: unknown subcommand '${sub}' (prepare, default, download, inspect)\n\n${USAGE}`);
}
