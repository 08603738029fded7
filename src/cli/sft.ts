/**
 * `wm sft --config configs/doge-tiny-sft.yaml [--resume [DIR]] [--<key> VALUE ...]`
 *
 * Supervised fine-tuning from a YAML recipe (src/finetune/config.ts): chat / prompt-completion / text rows,
 * assistant-only loss by default, document-aware packing, the pre-training Trainer underneath (AdamW,
 * cosine_with_min_lr, clipping, eval loss on the held-out split, atomic checkpoints, exact resume, Ctrl-C saves,
 * progress line, metrics.jsonl, loss.html). `wm dpo` (./dpo.ts) shares this file's argument handling.
 */
import * as path from 'node:path';
import { loadBackend } from '../backend';
import { loadFinetuneConfig, runDpo, runSft } from '../finetune';
import { formatDuration } from '../train/progress';

function usage(kind: 'sft' | 'dpo'): string {
  return `usage: wm ${kind} --config FILE [options]

  --config FILE     YAML recipe (sections model, data, ${kind}, training; see configs/*-${kind}.yaml)
  --resume [DIR]    continue from DIR or from the newest checkpoint in the output folder
  --<key> VALUE     override a config key, e.g. --max-steps 50 --output-dir runs/x --init-from runs/doge-tiny/final
                    (qualified keys work too: --${kind}.${kind === 'sft' ? 'packing wrapped' : 'beta 0.1'})
`;
}

interface FinetuneArgs {
  config?: string;
  resume?: string | true;
  overrides: Record<string, string>;
}

export function parseFinetuneArgs(argv: string[], kind: 'sft' | 'dpo'): FinetuneArgs | null {
  const out: FinetuneArgs = { overrides: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') return null;
    if (flag === '--config') out.config = value();
    else if (flag === '--resume') {
      if (inline !== undefined) out.resume = inline;
      else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) out.resume = argv[++i];
      else out.resume = true;
    } else if (flag.startsWith('--')) out.overrides[flag.slice(2)] = value();
    else throw new Error(`unexpected argument '${a}'\n\n${usage(kind)}`);
  }
  return out;
}

/** The body of `wm sft` and `wm dpo`. */
export async function runFinetuneCli(kind: 'sft' | 'dpo', argv: string[]): Promise<void> {
  const args = parseFinetuneArgs(argv, kind);
  if (!args) {
    console.log(usage(kind));
    return;
  }
  if (!args.config) throw new Error(`--config is required\n\n${usage(kind)}`);
  const config = loadFinetuneConfig(args.config, kind, args.overrides);
  const backend = await loadBackend();
  console.error(`${kind}: ${config.model.init_from} on ${backend.name} -> ${config.training.output_dir}`);
  let interrupts = 0;
  let stop: (() => void) | undefined;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1 && stop) {
      console.error('\nCtrl-C: saving a checkpoint after this step (press again to quit without saving)');
      stop();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  try {
    const run = kind === 'sft' ? runSft : runDpo;
    const r = await run(config, {
      resume: args.resume === undefined ? undefined : args.resume === true ? 'latest' : args.resume,
      onTrainer: (trainer) => { stop = () => trainer.requestStop(); },
    });
    const ev = r.lastEval as Record<string, number> | undefined;
    const evText = ev ? `, eval loss ${ev.eval_loss!.toFixed(4)}${kind === 'dpo' ? `, eval rewards/accuracies ${(ev['eval_rewards/accuracies'] ?? NaN).toFixed(3)}` : ''}` : '';
    console.error(`${r.stopped ? 'stopped' : 'done'} at step ${r.steps}: train loss ${r.lastLoss.toFixed(4)}${evText}; ${formatDuration(r.seconds)} in total`);
    const out = config.training.output_dir;
    console.error(`checkpoint: ${r.checkpoint}${r.finalDir ? `; model: ${r.finalDir}` : ' (continue with --resume)'}; metrics: ${path.join(out, 'metrics.jsonl')}, plot: ${path.join(out, 'loss.html')}`);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export async function run(argv: string[]): Promise<void> {
  await runFinetuneCli('sft', argv);
}
