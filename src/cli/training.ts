/**
 * What `wm pretrain`, `wm sft` and `wm dpo` share around the library's runs (runPretrain, runSft, runDpo): shipped
 * recipes by name, Ctrl-C / SIGTERM (checkpoint after the current step, exit 130 / 143), and the closing
 * "what you got and what next" summary.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainerControl } from '../train/trainer';
import { UsageError } from './args';

/** The folder of the recipes shipped with the package (configs/ next to dist/ and src/). */
export const SHIPPED_CONFIGS_DIR = path.join(__dirname, '..', '..', 'configs');

/** Names of the shipped recipes that `keep` accepts (e.g. `-sft` ones), sorted. */
export function shippedRecipeNames(keep: (name: string) => boolean): string[] {
  return fs.existsSync(SHIPPED_CONFIGS_DIR) ? fs.readdirSync(SHIPPED_CONFIGS_DIR).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, '')).filter(keep).sort() : [];
}

/**
 * `--config` accepts a file or the name of a shipped recipe (`doge-tiny`, `doge-tiny.yaml`, `configs/doge-tiny.yaml`
 * from any folder): a path that exists wins, then the package's configs/; else a UsageError listing `names`.
 */
export function resolveRecipe(config: string, command: string, namesText: string): string {
  if (fs.existsSync(config)) return config;
  const base = path.basename(config).replace(/\.ya?ml$/, '');
  const shipped = path.join(SHIPPED_CONFIGS_DIR, `${base}.yaml`);
  if (/^[\w.-]+$/.test(base) && fs.existsSync(shipped)) return shipped;
  throw new UsageError(`${command}: config file not found: ${config}; give a YAML file or ${namesText}`);
}

/** Exit codes after a run stopped by a signal (128 + signal number), so `wm pretrain ... && next` stops too. */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Run `start` with Ctrl-C and SIGTERM (docker stop, Slurm, Kubernetes, timeout) handled: the first signal asks the
 * trainer to checkpoint after the current step (the run then returns `stopped`, and the exit code becomes 130 / 143),
 * a second one quits at once.
 */
export async function withStopSignals<R extends { stopped: boolean }>(start: (onTrainer: (trainer: TrainerControl) => void) => Promise<R>): Promise<R> {
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
    const r = await start((trainer) => { stop = () => trainer.requestStop(); });
    if (r.stopped && stoppedBy) process.exitCode = SIGNAL_EXIT[stoppedBy] ?? 1;
    return r;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export interface RunSummary {
  /** 'pre-trained', 'fine-tuned (SFT)', ... */
  what: string;
  finalDir: string;
  /** Held-out loss before the first step and at the end (undefined when not measured). */
  before?: number;
  after?: number;
  /** A sample of the final model. */
  sample?: { prompt: string; reply: string };
  /** Commands to run next. */
  next: string[];
}

export function printSummary(s: RunSummary): void {
  const lines = [`\nwhat you got: a ${s.what} model in ${s.finalDir}`];
  if (s.before !== undefined && s.after !== undefined) {
    lines.push(`  held-out loss ${s.before.toFixed(4)} -> ${s.after.toFixed(4)} (${s.after < s.before ? 'better' : 'not better'} than before training)`);
  } else if (s.after !== undefined) {
    lines.push(`  held-out loss ${s.after.toFixed(4)}`);
  }
  if (s.sample) lines.push(`  sample: ${JSON.stringify(s.sample.prompt.slice(-120))} -> ${JSON.stringify(s.sample.reply.slice(0, 160))}`);
  lines.push('next:');
  for (const n of s.next) lines.push(`  ${n}`);
  console.error(lines.join('\n'));
}
