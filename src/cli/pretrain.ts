/**
 * `wm pretrain --config configs/<name>.yaml [--max-steps N --output-dir DIR ...] [--resume [DIR]] [--prepare-default]`
 *
 * Pre-trains any registered model (Doge, Cheems, ...) through `runPretrain` (src/train/pretrain.ts, the way
 * SmallDoge's `pt.py` does with HF Trainer), then prints a few sampled continuations and what to do next.
 */
import * as path from 'node:path';
import { backendLabel, loadBackend } from '../runtime/backend';
import { registeredModels } from '../models/registry';
import { loadPretrainConfig, PretrainConfig } from '../train/config';
import { runPretrain } from '../train/pretrain';
import { formatDuration } from '../train/progress';
import { defineCommand, flag, parseCommandArgs, str, UsageError } from './args';
import { printSummary, resolveRecipe, shippedRecipeNames, SHIPPED_CONFIGS_DIR, withStopSignals } from './training';

export { modelConfigFrom, checkDataAgainstModel } from '../train/pretrain';

const USAGE = `usage: wm pretrain --config FILE [options]

  --config FILE|NAME    YAML config (sections model, data, training) or a shipped recipe name:
                        doge-tiny, doge-tiny-moe, doge-20m, doge-60m, doge-160m, doge-320m
  --resume [DIR]        continue from DIR or from the newest checkpoint in the output folder
  --prepare-default     first prepare the embedded Brown corpus (tokenizer + packed dataset) and train on it
  --overwrite-output-dir  train in a non-empty folder no training run created (its files are left where they are)
  --<key> VALUE         override any config key, e.g. --max-steps 200 --output-dir runs/x --learning-rate 1e-3
                        (qualified keys work too: --model.hidden-size 128)
`;

interface Args {
  config?: string;
  resume?: string | true;
  prepareDefault: boolean;
  overwriteOutputDir?: true;
  overrides: Record<string, string>;
}

export const PRETRAIN_SPEC = defineCommand({
  name: 'wm pretrain',
  usage: USAGE,
  options: {
    config: { type: 'string' },
    resume: { type: 'string', optionalValue: true },
    'prepare-default': { type: 'boolean' },
    'overwrite-output-dir': { type: 'boolean' },
  },
  // Any other --key VALUE overrides a config key; loadPretrainConfig checks the names ("did you mean").
  passThrough: true,
});

export function parseArgs(argv: string[]): Args {
  const a = parseCommandArgs(PRETRAIN_SPEC, argv);
  if (a.help) {
    // the models a config's `model.preset` / `model_type` can name (src/models/registry.ts)
    const models = registeredModels().map((m) => `  ${m.modelType.padEnd(8)} ${m.description}; presets ${m.presets.join(', ')}`).join('\n');
    throw Object.assign(new Error(`${USAGE}\nmodels:\n${models}\n`), { usage: true });
  }
  const out: Args = { prepareDefault: flag(a, 'prepare-default'), overrides: a.rest };
  const config = str(a, 'config');
  if (config !== undefined) out.config = config;
  const resume = a.values.resume;
  if (resume !== undefined) out.resume = resume === true ? true : String(resume);
  return { config: out.config, resume: out.resume, prepareDefault: out.prepareDefault, ...(flag(a, 'overwrite-output-dir') ? { overwriteOutputDir: true } : {}), overrides: out.overrides } as Args;
}

export { SHIPPED_CONFIGS_DIR };

/**
 * `--config` accepts a file or the name of a shipped recipe (`doge-tiny`, `doge-tiny.yaml`,
 * `configs/doge-tiny.yaml` from any folder): a path that exists wins, then the package's configs/.
 */
export function resolveConfigPath(config: string): string {
  return resolveRecipe(config, 'wm pretrain', shippedRecipes());
}

/** "a shipped recipe name (doge-tiny, ...; in <dir>)", for messages. */
function shippedRecipes(): string {
  return `a shipped recipe name (${shippedRecipeNames((n) => !/-(sft|dpo)$/.test(n)).join(', ')}; in ${SHIPPED_CONFIGS_DIR})`;
}

export async function run(argv: string[]): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if ((e as { usage?: boolean }).usage) {
      console.log((e as Error).message);
      return;
    }
    throw e;
  }
  if (!args.config) throw new UsageError(`wm pretrain: --config is required: a YAML file or ${shippedRecipes()}\n\n${USAGE}`);
  const config = loadPretrainConfig(resolveConfigPath(args.config), args.overrides);
  await runCommand(args, config);
}

async function runCommand(args: Args, config: PretrainConfig): Promise<void> {
  const backend = await loadBackend();
  const t = config.training;
  console.error(`pretrain: ${config.model.preset ?? 'custom'} (${registeredModels().map((m) => m.modelType).join(' / ')} registered) on ${backendLabel(backend)} -> ${t.output_dir}`);
  const r = await withStopSignals((onTrainer) => runPretrain(config, {
    prepareDefault: args.prepareDefault,
    resume: args.resume === undefined ? undefined : args.resume === true ? 'latest' : args.resume,
    overwriteOutputDir: args.overwriteOutputDir,
    summary: true,
    log: (line) => console.error(line),
    onTrainer,
  }));
  const evalText = r.lastEval ? `, eval loss ${r.lastEval.eval_loss.toFixed(4)} (perplexity ${r.lastEval.eval_perplexity.toFixed(2)})` : '';
  const lossText = Number.isFinite(r.lastLoss) ? `train loss ${r.lastLoss.toFixed(4)}` : 'no training steps in this session';
  console.error(`${r.stopped ? 'stopped' : 'done'} at step ${r.steps}: ${lossText}${evalText}; ${formatDuration(r.seconds)} in total`);
  console.error(`${r.checkpoint ? `checkpoint: ${r.checkpoint}` : 'no checkpoint'}${r.stopped ? '' : `; model: ${r.finalDir}`}; metrics: ${path.join(t.output_dir, 'metrics.jsonl')}, plot: ${path.join(t.output_dir, 'loss.html')}`);
  if (r.samples.length) {
    console.log(`\nsamples (${r.samplingNote}):`);
    for (const s of r.samples) console.log(`  ${JSON.stringify(s.prompt)} -> ${JSON.stringify(s.text)}`);
  }
  if (!r.stopped) {
    printSummary({
      what: 'pre-trained',
      finalDir: r.finalDir!,
      before: r.evalBefore?.eval_loss,
      after: r.lastEval?.eval_loss,
      next: [
        `wm generate --model ${r.finalDir} --prompt ${JSON.stringify(t.sample_prompts[0] ?? 'The jury said')}`,
        `wm sft --config doge-tiny-sft --init-from ${r.finalDir} --output-dir ${t.output_dir}-sft   (chat fine-tuning of this model)`,
      ],
    });
  }
}
