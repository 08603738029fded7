/**
 * `wm sft --config configs/doge-tiny-sft.yaml [--resume [DIR]] [--<key> VALUE ...]`
 *
 * Supervised fine-tuning from a YAML recipe (src/finetune/config.ts): chat / prompt-completion / text rows,
 * assistant-only loss by default, document-aware packing, the pre-training Trainer underneath (AdamW,
 * cosine_with_min_lr, clipping, eval loss on the held-out split, atomic checkpoints, exact resume, Ctrl-C saves,
 * progress line, metrics.jsonl, loss.html). `wm dpo` (./dpo.ts) shares this file's argument handling.
 */
import * as path from 'node:path';
import { backendLabel, loadBackend } from '../runtime/backend';
import { loadFinetuneConfig, runDpo, runSft } from '../finetune';
import { formatDuration } from '../train/progress';
import { defineCommand, flag, parseCommandArgs, str, UsageError } from './args';
import { printSummary, resolveRecipe, shippedRecipeNames, withStopSignals } from './training';

function usage(kind: 'sft' | 'dpo'): string {
  return `usage: wm ${kind} --config FILE|NAME [options]

  --config FILE|NAME  YAML recipe (sections model, data, ${kind}, training) or a shipped one:
                      doge-tiny-${kind}, doge-20m-${kind}, doge-60m-${kind}, doge-160m-${kind}, doge-320m-${kind}
  --resume [DIR]      continue from DIR or from the newest checkpoint of the output folder's run
  --overwrite-output-dir  train in a non-empty folder no training run created (its files are left where they are)
  --<key> VALUE       override a config key, e.g. --max-steps 50 --output-dir runs/x --init-from runs/doge-tiny/final
                      (qualified keys work too: --${kind}.${kind === 'sft' ? 'packing wrapped' : 'beta 0.1'})
`;
}

const specFor = (kind: 'sft' | 'dpo') => defineCommand({
  name: `wm ${kind}`,
  usage: usage(kind),
  options: { config: { type: 'string' }, resume: { type: 'string', optionalValue: true }, 'overwrite-output-dir': { type: 'boolean' } },
  // any other --key VALUE overrides a config key (checked by loadFinetuneConfig, with "did you mean")
  passThrough: true,
});

export interface FinetuneArgs {
  config?: string;
  resume?: string | true;
  overwriteOutputDir?: true;
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
  if (flag(a, 'overwrite-output-dir')) out.overwriteOutputDir = true;
  return out;
}

/** `--config doge-tiny-sft` finds the shipped recipes from anywhere. */
function resolveFinetuneRecipe(config: string, kind: 'sft' | 'dpo'): string {
  return resolveRecipe(config, `wm ${kind}`, `a shipped recipe name (${shippedRecipeNames((n) => n.endsWith(`-${kind}`)).join(', ')})`);
}

/** The body of `wm sft` and `wm dpo`. */
export async function runFinetuneCli(kind: 'sft' | 'dpo', argv: string[]): Promise<void> {
  const args = parseFinetuneArgs(argv, kind);
  if (!args) {
    console.log(usage(kind));
    return;
  }
  if (!args.config) throw new UsageError(`wm ${kind}: --config is required\n\n${usage(kind)}`);
  const config = loadFinetuneConfig(resolveFinetuneRecipe(args.config, kind), kind, args.overrides);
  const backend = await loadBackend();
  console.error(`${kind}: ${config.model.init_from} on ${backendLabel(backend)} -> ${config.training.output_dir}`);
  const run = kind === 'sft' ? runSft : runDpo;
  const r = await withStopSignals((onTrainer) => run(config, {
    resume: args.resume === undefined ? undefined : args.resume === true ? 'latest' : args.resume,
    overwriteOutputDir: args.overwriteOutputDir,
    summary: true,
    onTrainer,
  }));
  const ev = r.lastEval as Record<string, number> | undefined;
  const evText = ev ? `, eval loss ${ev.eval_loss!.toFixed(4)}${kind === 'dpo' ? `, eval rewards/accuracies ${(ev['eval_rewards/accuracies'] ?? NaN).toFixed(3)}` : ''}` : '';
  const lossText = Number.isFinite(r.lastLoss) ? `train loss ${r.lastLoss.toFixed(4)}` : 'no training steps in this session';
  console.error(`${r.stopped ? 'stopped' : 'done'} at step ${r.steps}: ${lossText}${evText}; ${formatDuration(r.seconds)} in total`);
  const out = config.training.output_dir;
  // a run stopped before its first step (Ctrl-C during DPO's reference precompute) has no checkpoint of this session
  const ckpt = r.checkpoint ? `checkpoint: ${r.checkpoint}${r.finalDir ? `; model: ${r.finalDir}` : ' (continue with --resume)'}` : 'no checkpoint';
  console.error(`${ckpt}; metrics: ${path.join(out, 'metrics.jsonl')}, plot: ${path.join(out, 'loss.html')}`);
  if (r.finalDir) {
    const dpoNext = `wm dpo --config doge-tiny-dpo --init-from ${r.finalDir} --output-dir ${out.replace(/-sft$/, '')}-dpo   (preference tuning of this model)`;
    const evalNext = `wm eval --model ${config.model.init_from} --model ${r.finalDir} --name start --name ${kind} --tasks embedded_chat   (compare with the start)`;
    printSummary({
      what: kind === 'sft' ? 'fine-tuned (SFT)' : 'preference-tuned (DPO)', finalDir: r.finalDir,
      before: r.evalBefore?.eval_loss, after: ev?.eval_loss, sample: r.sample,
      next: kind === 'sft' ? [dpoNext, evalNext] : [evalNext, `wm generate --model ${r.finalDir} --prompt "..."`],
    });
  }
}

export async function run(argv: string[]): Promise<void> {
  await runFinetuneCli('sft', argv);
}
