/**
 * MQAR training recipes: the defaults of `trainMqar`, `runMqarGrid` and `wm mqar`.
 *
 * `tuned` is the recipe found by measurement on a 2-core CPU in Zoology's smoke setting (V 256, L 64, K 4, zero
 * filler, 10k examples, batch 64), where attention and DMAttn (with a top-k window of 2K keys) reach >= 0.99 at d 64
 * and d 128 on 3 of 3 seeds (docs/mqar-recipe.md has every attempt, seeds, steps and wall times). What matters:
 *   - depth-scaled init of the projections that write into the residual stream (std 0.02 / sqrt(2 * layers), GPT-2's
 *     and Zoology's choice): with plain 0.02 every run stays on the ~0.27 plateau;
 *   - a schedule that keeps the learning rate near its peak while the lookup circuit forms: cosine over 10 epochs
 *     with early stop at 0.99 (the jump comes after 200-400 steps, before the schedule has decayed much); the same
 *     lr decayed over 4 epochs stalls at d 64; in the paper-style setting (K = L/4, random filler) the plateau lasts
 *     ~2000 steps: attention at L 32 stayed on it for 3000 steps with the 10-epoch cosine and jumped with a 20-epoch
 *     one (`epochs: 20`; L 64 likewise with 20 epochs);
 *   - for DMAttn, no q/k RMSNorm: with it the normalised q and k turn with every Adam step of their small (0.02)
 *     weights, and d 64 stays on the plateau;
 *   - for DMAttn, a curriculum for the top-k window: the full window (no top-k) until the test accuracy reaches
 *     0.99, then the window shrinks linearly from L to 2K keys over 300 steps, and only accuracies at 2K count. Top-k
 *     from the first step keeps keys chosen by tie-breaking (A = 0 gives every key the same mask value) and stays
 *     below 0.46 in 10 epochs; a shrink over 100 steps collapsed on 2 of 3 seeds at d 128; at exactly K keys the
 *     model collapses (layer 1's previous-token key and layer 2's K context values compete for the same slots);
 *   - for DMAttn, A = -1 (dt_proj std 0.02): breaks the ties of the mask values and gives dt_proj a gradient, which
 *     is proportional to A and zero at the HF init A = 0.
 * `full-window` is the tuned recipe before the top-k curriculum: DMAttn with keep_window_size = L (no top-k, i.e.
 * attention plus a learned per-key bias), A = 0; same for every other mixer. It reaches 0.99 in fewer steps.
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
  /** DMAttn: keys kept per query, `K` (the number of kv pairs, the authors' MQAR script), `2*K`, `L` (no top-k) or an expression in L. */
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

export const MQAR_RECIPES: Record<'tuned' | 'full-window' | 'first', MqarRecipe> = {
  tuned: {
    init: 'scaled', lrs: [1e-3], epochs: 10, warmupFraction: 0.05, weightDecay: 0.1, stopAccuracy: 0.99,
    keepWindowSize: '2*K', qkNorm: false, dmattnA: -1, dtProjStd: 0.02, keepWindowShrinkAtAccuracy: 0.99, keepWindowShrinkSteps: 300,
  },
  'full-window': { init: 'scaled', lrs: [1e-3], epochs: 10, warmupFraction: 0.05, weightDecay: 0.1, stopAccuracy: 0.99, keepWindowSize: 'L', qkNorm: false, dmattnA: 0, dtProjStd: 0.02 },
  first: { init: 'plain', lrs: [1e-3, 3e-3], epochs: 4, warmupFraction: 0.05, weightDecay: 0.1, stopAccuracy: 0.99, keepWindowSize: 'K', qkNorm: true, dmattnA: 0, dtProjStd: 0.02 },
};

export type MqarRecipeName = keyof typeof MQAR_RECIPES;

export function mqarRecipe(name: string = 'tuned'): MqarRecipe {
  const r = (MQAR_RECIPES as Record<string, MqarRecipe | undefined>)[name];
  if (!r) throw new Error(`MQAR: unknown recipe '${name}'; choose one of ${Object.keys(MQAR_RECIPES).join(', ')}`);
  return r;
}
