/**
 * `wm sft --config configs/doge-tiny-sft.yaml [--resume [DIR]] [--<key> VALUE ...]`
 *
 * Supervised fine-tuning from a YAML recipe (src/finetune/config.ts): chat / prompt-completion / text rows,
 * assistant-only loss by default, document-aware packing, the pre-training Trainer underneath (AdamW,
 * cosine_with_min_lr, clipping, eval loss on the held-out split, atomic checkpoints, exact resume, Ctrl-C saves,
 * progress line, metrics.jsonl, loss.html). `wm dpo` (./dpo.ts) shares this file's argument handling.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backendLabel, loadBackend } from '../runtime/backend';
import { loadFinetuneConfig, runDpo, runSft } from '../finetune';
import { formatDuration } from '../train/progress';
import { defineCommand, parseCommandArgs, str, UsageError } from './args';

function usage(kind: 'sft' | 'dpo'): string {
  return `usage: wm ${kind} --config FILE|NAME [options]

  --config FILE|NAME  YAML recipe (sections model, data, ${kind}, training) or a shipped one:
                      doge-tiny-${kind}, doge-20m-${kind}, doge-60m-${kind}, doge-160m-${kind}, doge-320m-${kind}
  --resume [DIR]      continue from DIR or from the newest checkpoint of the output folder's run
  --<key> VALUE       override a config key, e.g. --max-steps 50 --output-dir runs/x --init-from runs/doge-tiny/final
                      (qualified keys work too: --${kind}.${kind === 'sft' ? 'packing wrapped' : 'beta 0.1'})
`;
}

const specFor = (kind: 'sft' | 'dpo') => defineCommand({
  name: `wm ${kind}`,
  usage: usage(kind),
  options: { config: { type: 'string' }, resume: { type: 'string', optionalValue: true } },
  // any other --key VALUE overrides a config key (checked by loadFinetuneConfig, with "did you mean")
  passThrough: true,
});

export interface FinetuneArgs {
  config?: string;
  resume?: string | true;
  overrides: Record<string, string>;
}

/** The arguments of `wm sft` / `wm dpo`; null for --help. */
export function parseFinetuneArgs(argv: string[], kind: 'sft' | 'dpo'): FinetuneArgs | null {
  const a = parseCommandArgs(specFor(kind), argv);
  if (a.help) return null;
  const out: FinetuneArgs = { overrides: a.rest };
  const config = str(a, 'config');
  if (config !== undefined) out.config = config;
  const resume = a.values.resume;
  if (resume !== undefined) out.resume = resume === true ? true : String(resume);
  return out;
}

/** The folder of the recipes shipped with the package; `--config doge-tiny-sft` finds them from anywhere. */
const SHIPPED_CONFIGS_DIR = path.join(__dirname, '..', '..', 'configs');

function resolveRecipe(config: string, kind: 'sft' | 'dpo'): string {
  if (fs.existsSync(config)) return config;
  const base = path.basename(config).replace(/\.ya?ml$/, '');
  const shipped = path.join(SHIPPED_CONFIGS_DIR, `${base}.yaml`);
  if (/^[\w.-]+$/.test(base) && fs.existsSync(shipped)) return shipped;
  const names = fs.existsSync(SHIPPED_CONFIGS_DIR) ? fs.readdirSync(SHIPPED_CONFIGS_DIR).filter((f) => f.endsWith(`-${kind}.yaml`)).map((f) => f.replace(/\.yaml$/, '')).sort() : [];
  throw new UsageError(`wm ${kind}: config file not found: ${config}; give a YAML file or a shipped recipe name (${names.join(', ')})`);
}

/** Exit codes after a run stopped by a signal (128 + signal number). */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/** The body of `wm sft` and `wm dpo`. */
export async function runFinetuneCli(kind: 'sft' | 'dpo', argv: string[]): Promise<void> {
  const args = parseFinetuneArgs(argv, kind);
  if (!args) {
    console.log(usage(kind));
    return;
  }
  if (!args.config) throw new UsageError(`wm ${kind}: --config is required\n\n${usage(kind)}`);
  const config = loadFinetuneConfig(resolveRecipe(args.config, kind), kind, args.overrides);
  const backend = await loadBackend();
  console.error(`${kind}: ${config.model.init_from} on ${backendLabel(backend)} -> ${config.training.output_dir}`);
  // Ctrl-C and SIGTERM: checkpoint after the current step, then exit 130 / 143; a second signal quits at once.
  let stoppedBy: string | undefined;
  let stop: (() => void) | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stoppedBy === undefined && stop) {
      stoppedBy = signal;
      console.error(`\n${signal === 'SIGINT' ? 'Ctrl-C' : signal}: saving a checkpoint after this step (${signal === 'SIGINT' ? 'press again' : 'signal again'} to quit without saving)`);
      stop();
    } else {
      process.exit(SIGNAL_EXIT[signal] ?? 1);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const run = kind === 'sft' ? runSft : runDpo;
    const r = await run(config, {
      resume: args.resume === undefined ? undefined : args.resume === true ? 'latest' : args.resume,
      onTrainer: (trainer) => { stop = () => trainer.requestStop(); },
    });
    const ev = r.lastEval as Record<string, number> | undefined;
    const evText = ev ? `, eval loss ${ev.eval_loss!.toFixed(4)}${kind === 'dpo' ? `, eval rewards/accuracies ${(ev['eval_rewards/accuracies'] ?? NaN).toFixed(3)}` : ''}` : '';
    const lossText = Number.isFinite(r.lastLoss) ? `train loss ${r.lastLoss.toFixed(4)}` : 'no training steps in this session';
    console.error(`${r.stopped ? 'stopped' : 'done'} at step ${r.steps}: ${lossText}${evText}; ${formatDuration(r.seconds)} in total`);
    const out = config.training.output_dir;
    console.error(`checkpoint: ${r.checkpoint}${r.finalDir ? `; model: ${r.finalDir}` : ' (continue with --resume)'}; metrics: ${path.join(out, 'metrics.jsonl')}, plot: ${path.join(out, 'loss.html')}`);
    if (r.stopped && stoppedBy) process.exitCode = SIGNAL_EXIT[stoppedBy] ?? 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function run(argv: string[]): Promise<void> {
  await runFinetuneCli('sft', argv);
}
