/**
 * `wm eval --model DIR [--model DIR2 ...] [--tasks embedded_chat,embedded,arc_easy,...] [--limit N] [--shots K] [--data DIR | --hub]`
 *
 * Evaluates one or more checkpoints on the same tasks (lighteval v0.7 definitions, spec 3) and perplexity on
 * held-out text, then writes per model `results-<name>.json` (task, metric, value, stderr, n, shots, model, backend,
 * seconds), `results.json` with all rows, `eval.html` (a plotly figure comparing the models) and prints a table.
 * The tokenizer is the one saved with each model (tokenizer.json in the folder) unless --tokenizer is given.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBackend } from '../runtime/backend';
import { writeFileAtomic } from '../io/atomic';
import { loadCausalLM } from '../models/auto';
import { resolveModelDir } from '../io/model-dir';
import type { RouterLayout } from '../modules/cdmoe';
import { loadTokenizer, readRecords } from '../data';
import { evaluatePerplexity, evaluateTasks, formatResultsTable, type EvalResult } from '../eval/run';
import { evalTask, SEED_TASKS } from '../eval/datasets';
import { evalComparisonFigure } from '../viz/eval';
import { writeFigureHtml } from '../viz/show';
import { DEFAULT_BENCHMARK_FAMILIES, DEFAULT_FAMILIES, defaultBenchmark, type DefaultBenchmarkRow, type DefaultFamily } from '../finetune/default-data';
import { defineCommand, flag, num, parseCommandArgs, str, strs, UsageError } from './args';

export const USAGE = `usage: wm eval --model DIR [--model DIR2 ...] [options]

  --model DIR           a checkpoint folder (config.json, model.safetensors, tokenizer.json); repeat to compare models
  --name NAME           a display name per --model, in the same order (default: the shortest ending of the folder
                        paths that tells the models apart, e.g. doge-tiny/final and doge-tiny-sft/final)
  --tasks LIST          comma-separated: embedded_chat, embedded, arc_easy, arc_challenge, piqa, hellaswag, openbookqa,
                        winogrande, mmlu (or mmlu:<subject>), triviaqa; 'seed' = the seed's eight tasks
                        (default: embedded_chat = the embedded questions asked through the chat template, each choice
                        completing the answer sentence; embedded = the same questions in ARC's plain prompt)
  --limit N             at most N evaluation items per task (per MMLU subject)
  --shots K             few-shot examples for every task (default: 5 for the seed's tasks, 0 for embedded)
  --data DIR            benchmark files in the hub datasets' layout: DIR/allenai/ai2_arc/ARC-Easy/test-*.parquet, ...
  --hub                 download the benchmark files from the Hugging Face hub instead (cached; HF_TOKEN, HF_ENDPOINT)
  --ppl INPUT           held-out text for perplexity (text, JSONL or Parquet with a text column, or 'brown'); repeatable
  --ppl-limit N         use at most N documents of the held-out text (default 50)
  --embedded-n N        questions of the embedded benchmark (default 400); --embedded-seed S (default 1234)
  --embedded-families L its question families (default copy,bind: the in-context look-ups; also arith, antonym)
  --max-length N        longest model input (default: the model's max_position_embeddings)
  --batch-size N        requests per forward pass (default 32)
  --seed S              seed of the few-shot draws (default 42)
  --tokenizer DIR       tokenizer folder for every model (default: each model's folder)
  --router-layout L     CDMoE router layout: token (default) or hf
  --out DIR             where results and the figure go (default runs/eval)
`;

export interface EvalArgs {
  models: string[];
  names: string[];
  tasks: string[];
  ppl: string[];
  limit?: number;
  shots?: number;
  data?: string;
  hub: boolean;
  pplLimit: number;
  embeddedN: number;
  embeddedSeed: number;
  /** Question families of the embedded benchmark (default copy,bind). */
  embeddedFamilies: DefaultFamily[];
  maxLength?: number;
  batchSize?: number;
  seed: number;
  tokenizer?: string;
  routerLayout: RouterLayout;
  out: string;
}

export const EVAL_SPEC = defineCommand({
  name: 'wm eval',
  usage: USAGE,
  options: {
    model: { type: 'string', multiple: true },
    name: { type: 'string', multiple: true },
    tasks: { type: 'string', default: 'embedded_chat' },
    limit: { type: 'int', min: 1 },
    shots: { type: 'int', min: 0 },
    data: { type: 'string' },
    hub: { type: 'boolean' },
    ppl: { type: 'string', multiple: true },
    'ppl-limit': { type: 'int', min: 1, default: 50 },
    'embedded-n': { type: 'int', min: 1, default: 400 },
    'embedded-seed': { type: 'int', min: 0, default: 1234 },
    'embedded-families': { type: 'string', default: DEFAULT_BENCHMARK_FAMILIES.join(',') },
    'max-length': { type: 'int', min: 1 },
    'batch-size': { type: 'int', min: 1 },
    seed: { type: 'int', min: 0, default: 42 },
    tokenizer: { type: 'string' },
    'router-layout': { type: 'string', choices: ['token', 'hf'], default: 'token' },
    out: { type: 'string', default: path.join('runs', 'eval') },
  },
});

/** Parsed and checked `wm eval` arguments; null for --help. Unknown task names fail here, before any model loads. */
export function parseEvalArgs(argv: string[]): EvalArgs | null {
  const p = parseCommandArgs(EVAL_SPEC, argv);
  if (p.help) return null;
  const a: EvalArgs = {
    models: strs(p, 'model'), names: strs(p, 'name'),
    tasks: str(p, 'tasks')!.split(',').map((t) => t.trim()).filter(Boolean).flatMap((t) => (t === 'seed' ? SEED_TASKS : [t])),
    ppl: strs(p, 'ppl'), limit: num(p, 'limit'), shots: num(p, 'shots'), data: str(p, 'data'), hub: flag(p, 'hub'),
    pplLimit: num(p, 'ppl-limit')!, embeddedN: num(p, 'embedded-n')!, embeddedSeed: num(p, 'embedded-seed')!,
    embeddedFamilies: str(p, 'embedded-families')!.split(',').map((f) => f.trim()).filter(Boolean) as DefaultFamily[],
    maxLength: num(p, 'max-length'), batchSize: num(p, 'batch-size'), seed: num(p, 'seed')!, tokenizer: str(p, 'tokenizer'),
    routerLayout: str(p, 'router-layout') as RouterLayout, out: str(p, 'out')!,
  };
  if (a.models.length === 0) throw new UsageError(`wm eval: --model DIR is required\n\n${USAGE}`);
  if (a.names.length && a.names.length !== a.models.length) throw new UsageError(`wm eval: ${a.names.length} --name for ${a.models.length} --model`);
  a.names = a.names.length ? a.names : defaultModelNames(a.models);
  checkModelNames(a.names);
  if (a.tasks.length === 0) throw new UsageError('wm eval: --tasks is empty');
  const fourChoice: DefaultFamily[] = DEFAULT_FAMILIES.filter((f) => f !== 'define');
  for (const f of a.embeddedFamilies) if (!fourChoice.includes(f)) throw new UsageError(`wm eval: --embedded-families: '${f}' is not one of ${fourChoice.join(', ')}`);
  if (a.embeddedFamilies.length === 0) throw new UsageError('wm eval: --embedded-families is empty');
  for (const t of a.tasks) {
    try {
      evalTask(t);
    } catch (e) {
      throw new UsageError(`wm eval: ${(e as Error).message}`);
    }
  }
  const needFiles = a.tasks.filter((t) => !EMBEDDED_TASKS.includes(t));
  if (needFiles.length && !a.data && !a.hub) throw new UsageError(`wm eval: tasks ${needFiles.join(', ')} need --data DIR or --hub`);
  if (a.data && a.hub) throw new UsageError('wm eval: give --data DIR or --hub, not both');
  if (a.data && !fs.existsSync(a.data)) throw new Error(`--data ${a.data} does not exist`);
  for (const m of a.models) if (!fs.existsSync(path.join(m, 'config.json'))) throw new Error(`--model ${m}: no config.json in that folder`);
  return a;
}

/**
 * Default model names: the last k folders of each model's path, with the smallest k that makes them all differ
 * (runs/doge-tiny/final, runs/doge-tiny-sft/final -> doge-tiny/final, doge-tiny-sft/final).
 */
export function defaultModelNames(dirs: string[]): string[] {
  const parts = dirs.map((d) => path.resolve(d).split(path.sep).filter(Boolean));
  const same = parts.findIndex((p, i) => parts.findIndex((q) => q.join('/') === p.join('/')) !== i);
  if (same >= 0) throw new UsageError(`wm eval: --model ${dirs[same]} is given twice (the same folder as an earlier --model)`);
  const longest = Math.max(...parts.map((p) => p.length));
  for (let k = 1; k <= longest; k++) {
    const names = parts.map((p) => p.slice(-k).join('/'));
    if (new Set(names).size === names.length && new Set(names.map(resultsFileName)).size === names.length) return names;
  }
  return parts.map((p) => p.join('/'));
}

/** `results-<name>.json` with the name made safe as a file name (folders become `--`). */
export function resultsFileName(name: string): string {
  return `results-${name.replace(/[/\\]+/g, '--').replace(/[^\w.-]+/g, '_').replace(/^\.+/, '_')}.json`;
}

/** Names must be unique, also as file names: each model's results file is its own. */
function checkModelNames(names: string[]): void {
  names.forEach((n, i) => {
    if (!n.trim()) throw new UsageError(`wm eval: --name ${i + 1} is empty`);
    const j = names.findIndex((m, k) => k !== i && resultsFileName(m) === resultsFileName(n));
    if (j >= 0 && j > i) {
      throw new UsageError(names[j] === n
        ? `wm eval: two models are named '${n}' (--model ${i + 1} and ${j + 1}): each needs its own name for its column and results file; give --name per model`
        : `wm eval: the names '${n}' and '${names[j]}' would share the results file ${resultsFileName(n)}; give other --name values`);
    }
  });
}

/** The tasks whose rows are generated (src/finetune/default-data.ts), not read from files. */
const EMBEDDED_TASKS = ['embedded', 'embedded_chat'];

/** The embedded four-choice benchmark (ARC layout): evaluation rows and a few-shot pool from another seed. */
export function embeddedBenchmarkRows(seed: number, n: number, families: DefaultFamily[] = [...DEFAULT_BENCHMARK_FAMILIES]): { eval: DefaultBenchmarkRow[]; fewshot: DefaultBenchmarkRow[] } {
  return { eval: defaultBenchmark({ seed, n, families }), fewshot: defaultBenchmark({ seed: seed + 1, n: 50, families }) };
}

async function heldOutTexts(inputs: string[], limit: number): Promise<string[]> {
  const texts: string[] = [];
  for (const input of inputs) {
    for await (const r of readRecords(input)) {
      if (texts.length >= limit) break;
      const t = r.text ?? (r.messages ? r.messages.map((m) => m.content).join('\n') : undefined);
      if (t && t.trim()) texts.push(r.prompt ? `${r.prompt}\n${t}` : t);
    }
  }
  if (texts.length === 0) throw new Error(`--ppl ${inputs.join(', ')}: no text documents`);
  return texts;
}

export async function run(argv: string[]): Promise<void> {
  const args = parseEvalArgs(argv);
  if (!args) { console.log(USAGE); return; }
  await loadBackend();
  const embedded = args.tasks.some((t) => EMBEDDED_TASKS.includes(t)) ? embeddedBenchmarkRows(args.embeddedSeed, args.embeddedN, args.embeddedFamilies) : undefined;
  const texts = args.ppl.length ? await heldOutTexts(args.ppl, args.pplLimit) : [];
  fs.mkdirSync(args.out, { recursive: true });
  const all: EvalResult[] = [];
  const writeAll = () => writeFileAtomic(path.join(args.out, 'results.json'), JSON.stringify(all, null, 2));
  for (const [i, given] of args.models.entries()) {
    const dir = resolveModelDir(given); // a run folder stands for its final/ model
    const name = args.names[i];
    const tok = await loadTokenizer(args.tokenizer ?? dir);
    // Doge or Cheems, by config.json's model_type (--router-layout applies to Doge MoE only)
    const model = loadCausalLM(dir, { routerLayout: args.routerLayout });
    if (tok.vocabSize > model.config.vocab_size) throw new Error(`--model ${dir}: the tokenizer has ${tok.vocabSize} ids but the model only ${model.config.vocab_size}`);
    const t0 = Date.now();
    console.error(`[eval] ${name} (${dir}): ${args.tasks.join(', ')}${texts.length ? ' + perplexity' : ''}`);
    const file = path.join(args.out, resultsFileName(name));
    const rows: EvalResult[] = [];
    // each task's rows are saved as soon as it finishes: a later crash loses nothing already computed
    const save = (done: EvalResult[], complete: boolean) => {
      rows.push(...done);
      all.push(...done);
      const doc = { model: name, modelDir: path.resolve(dir), date: new Date().toISOString(), seconds: (Date.now() - t0) / 1000, complete, options: { ...args, models: undefined, names: undefined }, results: rows };
      writeFileAtomic(file, JSON.stringify(doc, null, 2));
      writeAll();
    };
    try {
      await evaluateTasks(model, tok, {
        tasks: args.tasks, limit: args.limit, shots: args.shots, dataDir: args.data, hub: args.hub, seed: args.seed, maxLength: args.maxLength,
        batchSize: args.batchSize, modelName: name, embeddedRows: embedded, onTask: (done) => save(done, false),
      });
      save(texts.length ? evaluatePerplexity(model, tok, texts, { modelName: name, maxLength: args.maxLength, batchSize: args.batchSize }) : [], true);
      console.error(`[eval] ${name}: wrote ${file}`);
    } catch (e) {
      if (rows.length) console.error(`[eval] ${name}: failed after ${[...new Set(rows.map((r) => r.task))].join(', ')}; their results are in ${file}`);
      throw e;
    } finally {
      model.dispose();
    }
  }
  writeAll();
  const html = writeFigureHtml(evalComparisonFigure(all, { title: `evaluation: ${[...new Set(all.map((r) => r.model))].join(' vs ')}` }), path.join(args.out, 'eval.html'));
  console.log(formatResultsTable(all));
  console.error(`[eval] results in ${path.join(args.out, 'results.json')}, figure ${html}`);
}
