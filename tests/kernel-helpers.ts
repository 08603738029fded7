// Shared by the kernel-patch tests (ops-kernels: the XNNPACK patches; native-blas: the OpenBLAS path): run an op
// with the plain tfjs-backend-wasm kernel, seeded inputs, and the error measure and tolerance both files use.
import assert from 'node:assert/strict';
import { tf } from '../src/runtime/backend';
import { originalWasmKernels } from '../src/runtime/wasm-patches';
import { Rng } from '../src/ops';

/** Run f with the plain wasm kernel `name` registered instead of the patch, then put the patch back. */
export function withPlainKernel<T>(name: string, f: () => T): T {
  const patched = tf.getKernel(name, 'wasm')!;
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel(originalWasmKernels.get(name)!);
  try {
    return f();
  } finally {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(patched);
  }
}

/** A seeded standard-normal tensor. */
export function randn(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(rng.normalArray(shape.reduce((a, b) => a * b, 1), 1), shape);
}

/** Largest absolute difference relative to the largest entry of `want`. */
export function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let scale = 0, err = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  return err / Math.max(scale, 1e-30);
}

/** Tolerance for a product summed in another order (chunks, BLAS blocking): float32 rounding grows like sqrt(K). */
export function matMulTolerance(aShape: number[], transposeA: boolean): number {
  const K = transposeA ? aShape[aShape.length - 2] : aShape[aShape.length - 1];
  return 2e-6 * Math.max(1, Math.sqrt(K / 1000));
}

/** Assert that `got` = op(a)·op(b) matches the plain wasm BatchMatMul within matMulTolerance. */
export function assertMatMulMatchesPlain(got: tf.Tensor, a: tf.Tensor, b: tf.Tensor, tA: boolean, tB: boolean): void {
  const want = withPlainKernel('BatchMatMul', () => tf.matMul(a, b, tA, tB));
  try {
    assert.deepEqual(got.shape, want.shape);
    const err = maxRelErr(got.dataSync(), want.dataSync());
    const tol = matMulTolerance(a.shape, tA);
    assert.ok(err < tol, `max error ${err} relative to the largest entry (tolerance ${tol})`);
  } finally {
    want.dispose();
  }
}

/** [a shape, b shape, transposeA, transposeB, what it is] */
export type MatMulCase = [number[], number[], boolean, boolean, string];

/** The products a Doge / Cheems training step and decoding make, checked against the plain kernel by both files. */
export const MODEL_MATMUL_CASES: MatMulCase[] = [
  [[96, 48], [48, 80], false, false, 'plain 2-D'],
  [[96, 48], [80, 48], false, true, 'x W^T (linear layer)'],
  [[96, 48], [96, 80], true, false, 'weight gradient x^T dy'],
  [[48, 96], [80, 48], true, true, 'both transposed'],
  [[2100, 40], [2100, 300], true, false, 'weight gradient over many tokens (ragged last chunk when chunked)'],
  [[20, 9000], [9000, 24], false, false, 'very long shared axis (lm_head input gradient)'],
  [[6, 70, 32], [6, 50, 32], false, true, 'attention scores q K^T per batch entry'],
  [[6, 70, 50], [6, 50, 32], false, false, 'attention output p V per batch entry'],
  [[6, 70, 50], [6, 70, 32], true, false, 'attention gradient dS^T q'],
  [[6, 32, 70], [6, 50, 32], true, true, 'batched, both transposed'],
  [[4, 3, 70, 32], [32, 60], false, false, 'batch folded into rows (shared B)'],
  [[4, 70, 32], [60, 32], false, true, 'batch folded into rows, transposed shared B'],
  [[1, 70, 32], [5, 32, 60], false, false, 'shared A, batched B (broadcast)'],
  [[5, 32, 70], [1, 32, 60], true, false, 'transposed A, shared B (broadcast)'],
  [[1, 1, 64], [1, 64, 64], false, false, 'decoding-sized product'],
];
