/**
 * Learning-rate schedules, as multipliers of the base learning rate at optimizer step `s` (0-based, the way
 * torch's LambdaLR evaluates them: the first update uses multiplier(0)).
 *
 * - `warmup_stable_decay` (doge-spec 2.2, HF `get_wsd_schedule`, linear warmup and linear decay):
 *     s < W: (s/W)(1-r)+r;  s < W+S: 1;  s < W+S+D: (1-(s-W-S)/D)(1-r)+r;  after: r
 *   with S = total - W - D when not given and r = min_lr_ratio.
 * - `cosine`: linear warmup, then half a cosine from 1 to 0 over the remaining steps (HF `get_cosine_schedule_with_warmup`).
 * - `linear`: linear warmup, then linear decay to 0 at the last step (HF `get_linear_schedule_with_warmup`).
 * - `constant`: linear warmup (if any), then 1 (HF `constant_with_warmup`; plain `constant` when W = 0).
 * - `cosine_with_min_lr` (the seed's SFT/DPO schedule, HF `get_cosine_with_min_lr_schedule_with_warmup`): linear
 *   warmup, then half a cosine from 1 down to r = minLrRatio (HF's `min_lr_rate`):  c (1 - r) + r.
 */
export type ScheduleType = 'warmup_stable_decay' | 'cosine' | 'linear' | 'constant' | 'constant_with_warmup' | 'cosine_with_min_lr';
export const SCHEDULE_TYPES: readonly ScheduleType[] = ['warmup_stable_decay', 'cosine', 'linear', 'constant', 'constant_with_warmup', 'cosine_with_min_lr'];

export interface ScheduleSpec {
  type: ScheduleType;
  /** Total optimizer steps of the run (max_steps). */
  totalSteps: number;
  /** W: warmup steps. */
  warmupSteps: number;
  /** D: decay steps (warmup_stable_decay only). */
  decaySteps?: number;
  /** S: stable steps (warmup_stable_decay only); default totalSteps - W - D. */
  stableSteps?: number;
  /** r: the floor of the decay, as a fraction of the base LR (warmup_stable_decay, cosine_with_min_lr). */
  minLrRatio?: number;
}

/** The LR multiplier at step `s` (0-based). */
export function lrMultiplier(spec: ScheduleSpec, s: number): number {
  const W = spec.warmupSteps;
  switch (spec.type) {
    case 'warmup_stable_decay': {
      const r = spec.minLrRatio ?? 0;
      const D = spec.decaySteps ?? 0;
      const S = spec.stableSteps ?? Math.max(0, spec.totalSteps - W - D);
      if (s < W) return (s / W) * (1 - r) + r;
      if (s < W + S) return 1;
      if (s < W + S + D) return (1 - (s - W - S) / D) * (1 - r) + r;
      return r;
    }
    case 'cosine': {
      if (s < W) return s / Math.max(1, W);
      const progress = (s - W) / Math.max(1, spec.totalSteps - W);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
    case 'cosine_with_min_lr': {
      if (s < W) return s / Math.max(1, W);
      const r = spec.minLrRatio ?? 0;
      const progress = (s - W) / Math.max(1, spec.totalSteps - W);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)) * (1 - r) + r);
    }
    case 'linear': {
      if (s < W) return s / Math.max(1, W);
      return Math.max(0, (spec.totalSteps - s) / Math.max(1, spec.totalSteps - W));
    }
    case 'constant':
    case 'constant_with_warmup':
      return s < W ? s / Math.max(1, W) : 1;
    default:
      throw new Error(`unknown lr_scheduler_type '${(spec as { type: string }).type}'; choose one of ${SCHEDULE_TYPES.join(', ')}`);
  }
}
