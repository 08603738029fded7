// Comparison helpers shared by the parity tests.
import assert from 'node:assert/strict';
import { tf } from '../src/runtime/backend';
import { Rng } from '../src/ops';

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Overwrite every parameter of a Doge-like model with seeded values of realistic size: norms and residual scales
 * 1 + 0.2 N(0, 1), the dynamic-mask A around -0.5 (so d differs per key), everything else 0.15 N(0, 1).
 */
export function randomizeDoge(model: { parameters(): Map<string, tf.Variable> }, seed: number): void {
  const rng = new Rng(seed);
  for (const [name, v] of model.parameters()) {
    const vals = new Float32Array(v.size);
    const isNorm = name.endsWith('norm.weight') || name.endsWith('residual');
    for (let i = 0; i < v.size; i++) vals[i] = isNorm ? 1 + 0.2 * rng.normal() : name.endsWith('.A') ? -0.5 + 0.5 * rng.normal() : 0.15 * rng.normal();
    const t = tf.tensor(vals, v.shape);
    v.assign(t);
    t.dispose();
  }
}
