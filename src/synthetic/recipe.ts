/**
 * MQAR training recipes: the defaults of `trainMqar`, `runMqarGrid` and `wm mqar`.
 *
 * `tuned` is the recipe found by measurement on a 2-core CPU in Zoology's smoke setting (V 256, L 64, K 4, zero
 * filler, 10k examples, batch 64), where attention and DMAttn reach >= 0.99 at d 64 and d 128
 * (docs/mqar-recipe.md has every attempt, seeds, steps and wall times). What matters, in order:
 *   - depth-scaled init of the projections that write into the residual stream (std 0.02 / sqrt(2 * layers), GPT-2's
 *     and Zoology's choice): with plain 0.02 every run stays on the ~0.27 plateau;
 *   - a schedule that keeps the learning rate near its peak while the lookup circuit forms: cosine over 10 epochs
 *     with early stop at 0.99 (the jump comes after 250-400 steps, before the schedule has decayed much); the same
 *     lr decayed over 4 epochs stalls at d 64;
 *   - for DMAttn, no q/k RMSNorm: with it the normalised q and k turn with every Adam step of their small (0.02)
 *     weights, and d 64 stays on the plateau;
 *   - for DMAttn, keep_window_size = L (no top-k): with the authors' K the kept keys start out decided by
 *     tie-breaking (A = 0 gives every key the same mask value) and the context is mostly not among them; that
 *     variant stayed below 0.46 in 10 epochs. A top-k window learns with a curriculum (trainMqar's
 *     keepWindowShrinkStart / keepWindowShrinkSteps, `--keep-window 8 --keep-window-start 400 --keep-window-shrink 300
 *     --dmattn-a -1`): full window first, then narrowed; it holds 0.99 down to 2K keys and collapses at exactly K.
 * `first` is this project's first recipe (everything plain, q/k norm on, keep window K, lr sweep 1e-3 and 3e-3 over
 * 4 epochs), kept to reproduce the plateau.
 */
import type { LengthExpr, MqarInit } from './results';

export interface MqarRecipe {
  init: MqarInit;
  /** Learning rates swept per cell (the best is kept). */
  lrs: number[];
  /** Epochs of the cosine schedule (training stops earlier at stopAccuracy). */
  epochs: number;
  warmupFraction: number;
  weightDecay: number;
  stopAccuracy: number;
  /** DMAttn: keys kept per query, `K` (the number of kv pairs, the authors' MQAR script), `L` (no top-k) or an expression in L. */
  keepWindowSize: LengthExpr;
  /** DMAttn: per-head q/k RMSNorm. */
  qkNorm: boolean;
  /** DMAttn: initial A of the dynamic mask exp(A * softplus(dt_proj(v))). */
  dmattnA: number;
  /** DMAttn: std of dt_proj. */
  dtProjStd: number;
  /** DMAttn curriculum: steps over which the window shrinks from L to keepWindowSize (unset: no curriculum). */
  keepWindowShrinkSteps?: number;
  /** DMAttn curriculum: the shrinking starts at the first evaluation with this accuracy (full window until then). */
  keepWindowShrinkAtAccuracy?: number;
}

export const MQAR_RECIPES: Record<'tuned' | 'first', MqarRecipe> = {
  tuned: { init: 'scaled', lrs: [1e-3], epochs: 10, warmupFraction: 0.05, weightDecay: 0.1, stopAccuracy: 0.99, keepWindowSize: 'L', qkNorm: false, dmattnA: 0, dtProjStd: 0.02 },
  first: { init: 'plain', lrs: [1e-3, 3e-3], epochs: 4, warmupFraction: 0.05, weightDecay: 0.1, stopAccuracy: 0.99, keepWindowSize: 'K', qkNorm: true, dmattnA: 0, dtProjStd: 0.02 },
};

export type MqarRecipeName = keyof typeof MQAR_RECIPES;

export function mqarRecipe(name: string = 'tuned'): MqarRecipe {
  const r = (MQAR_RECIPES as Record<string, MqarRecipe | undefined>)[name];
  if (!r) throw new Error(`MQAR: unknown recipe '${name}'; choose one of ${Object.keys(MQAR_RECIPES).join(', ')}`);
  return r;
}
