/**
 * `wm eval --model DIR [--model DIR2 ...] [--tasks embedded,arc_easy,...] [--limit N] [--shots K] [--data DIR | --hub]`
 *
 * Evaluates one or more checkpoints on the same tasks (lighteval v0.7 definitions, spec 3) and perplexity on
 * held-out text, then writes per model `results-<name>.json` (task, metric, value, stderr, n, shots, model, backend,
 * seconds), `results.json` with all rows, `eval.html` (a plotly figure comparing the models) and prints a table.
 * The tokenizer is the one saved with each model (tokenizer.json in the folder) unless --tokenizer is given.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBackend } from '../backend';
import { DogeForCausalLM } from '../models/doge';
import type { RouterLayout } from '../modules/cdmoe';
import { loadTokenizer, readRecords } from '../data';
import { evaluatePerplexity, evaluateTasks, formatResultsTable, type EvalResult } from '../eval/run';
import { evalTask, SEED_TASKS } from '../eval/datasets';
import { evalComparisonFigure } from '../viz/eval';
import { writeFigureHtml } from '../viz/show';

export const USAGE = `usage: wm eval --model DIR [--model DIR2 ...] [options]

  --model DIR           a checkpoint folder (config.json, model.safetensors, tokenizer.json); repeat to compare models
  --name NAME           a display name per --model, in the same order (default: the folder name)
  --tasks LIST          comma-separated: embedded, arc_easy, arc_challenge, piqa, hellaswag, openbookqa, winogrande,
                        mmlu (or mmlu:<subject>), triviaqa; 'seed' = the seed's eight tasks (default: embedded)
  --limit N             at most N evaluation items per task (per MMLU subject)
  --shots K             few-shot examples for every task (default: 5 for the seed's tasks, 0 for embedded)
  --data DIR            benchmark files in the hub datasets' layout: DIR/allenai/ai2_arc/ARC-Easy/test-*.parquet, ...
  --hub                 download the benchmark files from the Hugging Face hub instead (cached; HF_TOKEN, HF_ENDPOINT)
  --ppl INPUT           held-out text for perplexity (text, JSONL or Parquet with a text column, or 'brown'); repeatable
  --ppl-limit N         use at most N documents of the held-out text (default 50)
  --embedded-n N        questions of the embedded benchmark (default 400); --embedded-seed S (default 1234)
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
  maxLength?: number;
  batchSize?: number;
  seed: number;
  tokenizer?: string;
  routerLayout: RouterLayout;
  out: string;
}

function int(flag: string, v: string, min = 0): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} must be an integer >= ${min}, got '${v}'`);
  return n;
}

export function parseEvalArgs(argv: string[]): EvalArgs {
  const a: EvalArgs = {
    models: [], names: [], tasks: ['embedded'], ppl: [], hub: false, pplLimit: 50, embeddedN: 400, embeddedSeed: 1234, seed: 42,
    routerLayout: 'token', out: path.join('runs', 'eval'),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--help': case '-h': throw Object.assign(new Error(USAGE), { usage: true });
      case '--model': a.models.push(value()); break;
      case '--name': a.names.push(value()); break;
      case '--tasks': a.tasks = value().split(',').map((t) => t.trim()).filter(Boolean).flatMap((t) => (t === 'seed' ? SEED_TASKS : [t])); break;
      case '--limit': a.limit = int(flag, value(), 1); break;
      case '--shots': a.shots = int(flag, value()); break;
      case '--data': a.data = value(); break;
      case '--hub': a.hub = true; break;
      case '--ppl': a.ppl.push(value()); break;
      case '--ppl-limit': a.pplLimit = int(flag, value(), 1); break;
      case '--embedded-n': a.embeddedN = int(flag, value(), 1); break;
      case '--embedded-seed': a.embeddedSeed = int(flag, value()); break;
      case '--max-length': a.maxLength = int(flag, value(), 1); break;
      case '--batch-size': a.batchSize = int(flag, value(), 1); break;
      case '--seed': a.seed = int(flag, value()); break;
      case '--tokenizer': a.tokenizer = value(); break;
      case '--router-layout': {
        const v = value();
        if (v !== 'token' && v !== 'hf') throw new Error(`--router-layout must be token or hf, got '${v}'`);
        a.routerLayout = v;
        break;
      }
      case '--out': a.out = value(); break;
      default: throw new Error(`unexpected argument '${arg}'\n\n${USAGE}`);
    }
  }
  if (a.models.length === 0) throw new Error(`--model DIR is required\n\n${USAGE}`);
  if (a.names.length && a.names.length !== a.models.length) throw new Error(`${a.names.length} --name for ${a.models.length} --model`);
  for (const t of a.tasks) evalTask(t); // unknown task names fail before any model loads
  const needFiles = a.tasks.some((t) => t !== 'embedded');
  if (needFiles && !a.data && !a.hub) throw new Error(`tasks ${a.tasks.filter((t) => t !== 'embedded').join(', ')} need --data DIR or --hub`);
  if (a.data && a.hub) throw new Error('give --data DIR or --hub, not both');
  if (a.data && !fs.existsSync(a.data)) throw new Error(`--data ${a.data} does not exist`);
  for (const m of a.models) if (!fs.existsSync(path.join(m, 'config.json'))) throw new Error(`--model ${m}: no config.json in that folder`);
  return a;
}

/** The embedded four-choice benchmark (ARC layout): evaluation rows and a disjoint few-shot pool. */
export function embeddedBenchmarkRows(seed: number, n: number): { eval: Record<string, unknown>[]; fewshot: Record<string, unknown>[] } {
  let gen: ((o: { seed?: number; n?: number }) => Record<string, unknown>[]) | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    gen = (require('../finetune/default-data') as { defaultBenchmark?: typeof gen }).defaultBenchmark;
  } catch {
    gen = undefined;
  }
  if (!gen) throw new Error('task embedded needs the embedded data generator (src/finetune/default-data), which is not in this build');
  return { eval: gen({ seed, n }), fewshot: gen({ seed: seed + 1, n: 50 }) };
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
  let args: EvalArgs;
  try {
    args = parseEvalArgs(argv);
  } catch (e) {
    if ((e as { usage?: boolean }).usage) { console.log(USAGE); return; }
    throw e;
  }
  await loadBackend();
  const embedded = args.tasks.includes('embedded') ? embeddedBenchmarkRows(args.embeddedSeed, args.embeddedN) : undefined;
  const texts = args.ppl.length ? await heldOutTexts(args.ppl, args.pplLimit) : [];
  fs.mkdirSync(args.out, { recursive: true });
  const all: EvalResult[] = [];
  for (const [i, dir] of args.models.entries()) {
    const name = args.names[i] ?? path.basename(path.resolve(dir));
    const modelType = (JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { model_type?: string }).model_type;
    if (modelType !== undefined && modelType !== 'doge') throw new Error(`--model ${dir}: model_type '${modelType}' is not supported by wm eval yet (doge)`);
    const tok = await loadTokenizer(args.tokenizer ?? dir);
    const model = DogeForCausalLM.fromPretrained(dir, { routerLayout: args.routerLayout });
    if (tok.vocabSize > model.config.vocab_size) throw new Error(`--model ${dir}: the tokenizer has ${tok.vocabSize} ids but the model only ${model.config.vocab_size}`);
    const t0 = Date.now();
    console.error(`[eval] ${name} (${dir}): ${args.tasks.join(', ')}${texts.length ? ' + perplexity' : ''}`);
    try {
      const rows = await evaluateTasks(model, tok, {
        tasks: args.tasks, limit: args.limit, shots: args.shots, dataDir: args.data, hub: args.hub, seed: args.seed, maxLength: args.maxLength,
        batchSize: args.batchSize, modelName: name, embeddedRows: embedded,
      });
      if (texts.length) rows.push(...evaluatePerplexity(model, tok, texts, { modelName: name, maxLength: args.maxLength, batchSize: args.batchSize }));
      all.push(...rows);
      const file = path.join(args.out, `results-${name.replace(/[^\w.-]+/g, '_')}.json`);
      const doc = { model: name, modelDir: path.resolve(dir), date: new Date().toISOString(), seconds: (Date.now() - t0) / 1000, options: { ...args, models: undefined, names: undefined }, results: rows };
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(doc, null, 2));
      fs.renameSync(`${file}.tmp`, file);
      console.error(`[eval] ${name}: wrote ${file}`);
    } finally {
      model.dispose();
    }
  }
  fs.writeFileSync(path.join(args.out, 'results.json'), JSON.stringify(all, null, 2));
  const html = writeFigureHtml(evalComparisonFigure(all, { title: `evaluation: ${[...new Set(all.map((r) => r.model))].join(' vs ')}` }), path.join(args.out, 'eval.html'));
  console.log(formatResultsTable(all));
  console.error(`[eval] results in ${path.join(args.out, 'results.json')}, figure ${html}`);
}
