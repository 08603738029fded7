/** The one-line progress report of the training loop. */

/** `75` -> `1m15s`, `3725` -> `1h02m05s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m${String(sec).padStart(2, '0')}s`;
  if (m > 0) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

export interface ProgressInfo {
  step: number;
  maxSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerS: number;
  elapsedS: number;
  /** Seconds per step recently (for the ETA). */
  secondsPerStep: number;
}

/** `step 120/600 | loss 5.4321 | lr 2.00e-03 | grad norm 0.812 | 3456 tok/s | elapsed 1m23s | eta 4m10s` */
export function formatProgress(p: ProgressInfo): string {
  const width = String(p.maxSteps).length;
  const eta = (p.maxSteps - p.step) * p.secondsPerStep;
  return [
    `step ${String(p.step).padStart(width)}/${p.maxSteps}`,
    `loss ${p.loss.toFixed(4)}`,
    `lr ${p.lr.toExponential(2)}`,
    `grad norm ${p.gradNorm.toFixed(3)}`,
    `${Math.round(p.tokensPerS)} tok/s`,
    `elapsed ${formatDuration(p.elapsedS)}`,
    `eta ${formatDuration(eta)}`,
  ].join(' | ');
}
