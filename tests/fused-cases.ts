// The fused ops of src/ops/fused.ts against the unfused math written out here with plain tfjs ops (gradients by
// tfjs autodiff) or on the host in float64. Shared by tests/fused-ops.test.ts (the default backend, wasm: the ops
// run their fallbacks) and tests/webgpu-fused-ops.test.ts (the webgpu kernels of src/runtime/webgpu-kernels.ts).
import assert from 'node:assert/strict';
import { tf } from '../src/tf';
import { Rng } from '../src/ops';
import { adamwStep, applyRope, dynamicMaskBias, rmsNorm, sumOfSquares, swigluPacked } from '../src/ops/fused';
import { RotaryEmbedding } from '../src/modules/rope';

export function randn(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => rng.normal() * scale), shape);
}

/** max |a - b| <= tol * max(1, max |b|), with the position of the worst entry in the message. */
export function assertClose(a: tf.Tensor | ArrayLike<number>, b: tf.Tensor | ArrayLike<number>, tol: number, what: string): void {
  const av = a instanceof tf.Tensor ? a.dataSync() : a;
  const bv = b instanceof tf.Tensor ? b.dataSync() : b;
  if (a instanceof tf.Tensor && b instanceof tf.Tensor) assert.deepEqual(a.shape, b.shape, `${what}: shape`);
  assert.equal(av.length, bv.length, `${what}: size`);
  let scale = 1, worst = 0, at = -1;
  for (let i = 0; i < bv.length; i++) scale = Math.max(scale, Math.abs(bv[i]));
  for (let i = 0; i < bv.length; i++) {
    const d = Math.abs(av[i] - bv[i]);
    if (!(d <= worst)) { worst = d; at = i; }
  }
  assert.ok(worst <= tol * scale, `${what}: max |diff| ${worst} at ${at} (${av[at]} vs ${bv[at]}) > ${tol} x ${scale}`);
}

/** Gradients of sum(f(xs) * R) w.r.t. xs (R a fixed random weighting, so every output entry matters). */
function gradsOf(f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], seed: number): { y: tf.Tensor; grads: tf.Tensor[] } {
  const y = f(...xs);
  const R = randn(y.shape, seed);
  const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), R)))(xs);
  return { y, grads };
}

const TOL = 2e-5;

const refRmsNorm = (x: tf.Tensor, w: tf.Tensor, eps: number) => tf.mul(tf.div(x, tf.sqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w);

export function checkRmsNorm(): void {
  tf.tidy(() => {
    // a block norm (w [D]), per-head norms (w [heads, D]) and a row longer than the kernel's 64 threads
    for (const [xs, ws, seed] of [[[2, 5, 16], [16], 1], [[2, 3, 4, 8], [4, 8], 2], [[3, 100], [100], 3]] as [number[], number[], number][]) {
      const x = randn(xs, seed), w = tf.add(randn(ws, seed + 10, 0.3), 1);
      const got = gradsOf((a, b) => rmsNorm(a, b, 1e-6), [x, w], seed + 20);
      const want = gradsOf((a, b) => refRmsNorm(a, b, 1e-6), [x, w], seed + 20);
      assertClose(got.y, want.y, TOL, `rmsNorm [${xs}] x [${ws}] value`);
      assertClose(tf.tidy(() => rmsNorm(x, w, 1e-6)), want.y, TOL, `rmsNorm [${xs}] value outside gradient recording`);
      assertClose(got.grads[0], want.grads[0], TOL, `rmsNorm [${xs}] dx`);
      assertClose(got.grads[1], want.grads[1], TOL, `rmsNorm [${xs}] dw`);
    }
  });
}

export function checkSwigluPacked(): void {
  tf.tidy(() => {
    const I = 7;
    const gu = randn([3, 5, 2 * I], 4, 2);
    const ref = (x: tf.Tensor) => {
      const g = tf.slice(x, [0, 0, 0], [-1, -1, I]), u = tf.slice(x, [0, 0, I], [-1, -1, I]);
      return tf.mul(tf.mul(g, tf.sigmoid(g)), u);
    };
    const got = gradsOf((x) => swigluPacked(x, I), [gu], 5);
    const want = gradsOf(ref, [gu], 5);
    assertClose(got.y, want.y, TOL, 'swigluPacked value');
    assertClose(tf.tidy(() => swigluPacked(gu, I)), want.y, TOL, 'swigluPacked value outside gradient recording');
    assertClose(got.grads[0], want.grads[0], TOL, 'swigluPacked d gu');
    assert.throws(() => swigluPacked(gu, 6), /last axis of gu is 14, expected 2 x 6/);
  });
}

export function checkDynamicMaskBias(): void {
  tf.tidy(() => {
    // dt spans softplus' three regimes (very negative: exp, ordinary: log1p(exp), large: x)
    const dt = tf.concat([randn([2, 5, 3], 6, 3), tf.tile(tf.tensor([-30, 0.5, 25, -20, 40, 1, 2, -3, 0], [1, 3, 3]), [2, 1, 1])], 1);
    const A = tf.tensor1d([-0.5, -1.25, 0.3]);
    for (const kind of ['exp', 'linear'] as const) {
      const ref = (d: tf.Tensor, a: tf.Tensor) => {
        const x = tf.mul(a, tf.softplus(d));
        return tf.transpose(kind === 'exp' ? tf.exp(x) : x, [0, 2, 1]);
      };
      const got = gradsOf((d, a) => dynamicMaskBias(d, a, kind), [dt, A], 7);
      const want = gradsOf(ref, [dt, A], 7);
      assert.deepEqual(got.y.shape, [2, 3, 8]);
      assertClose(got.y, want.y, TOL, `dynamicMaskBias ${kind} value`);
      assertClose(tf.tidy(() => dynamicMaskBias(dt, A, kind)), want.y, TOL, `dynamicMaskBias ${kind} value outside gradient recording`);
      assertClose(got.grads[0], want.grads[0], TOL, `dynamicMaskBias ${kind} d dt`);
      assertClose(got.grads[1], want.grads[1], TOL, `dynamicMaskBias ${kind} dA`);
    }
    assert.throws(() => dynamicMaskBias(dt, tf.ones([2]), 'exp'), /dt must be \[B, T, nm\] and A \[nm\], got \[2,8,3\] and \[2\]/);
  });
}

export function checkAdamWStep(): void {
  tf.tidy(() => {
    const n = 1000;
    const p = randn([10, 100], 8), m = randn([10, 100], 9, 0.1), v = tf.abs(randn([10, 100], 10, 0.01)), g = randn([10, 100], 11);
    const h = { beta1: 0.9, beta2: 0.95, eps: 1e-8, gradScale: 0.5, decay: 1 - 1e-3 * 0.1, stepSize: 1e-3 / (1 - 0.9 ** 3), bc2Sqrt: Math.sqrt(1 - 0.95 ** 3) };
    const [P, M, Vv, G] = [p, m, v, g].map((t) => t.dataSync());
    const want = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
    for (let i = 0; i < n; i++) {
      const gi = G[i] * h.gradScale;
      const mi = h.beta1 * M[i] + (1 - h.beta1) * gi;
      const vi = h.beta2 * Vv[i] + (1 - h.beta2) * gi * gi;
      want[1][i] = mi;
      want[2][i] = vi;
      want[0][i] = P[i] * h.decay - (h.stepSize * mi) / (Math.sqrt(vi) / h.bc2Sqrt + h.eps);
    }
    const got = adamwStep(p, m, v, g, h);
    ['p', 'm', 'v'].forEach((name, i) => {
      assert.deepEqual(got[i].shape, [10, 100]);
      assertClose(got[i], want[i], 1e-6, `adamwStep ${name}`);
    });
    // gradScale 1 and decay 1 (the fallback skips those multiplications)
    const plain = adamwStep(p, m, v, g, { ...h, gradScale: 1, decay: 1 });
    const gi = G[0], mi = h.beta1 * M[0] + (1 - h.beta1) * gi, vi = h.beta2 * Vv[0] + (1 - h.beta2) * gi * gi;
    assertClose([plain[0].dataSync()[0]], [P[0] - (h.stepSize * mi) / (Math.sqrt(vi) / h.bc2Sqrt + h.eps)], 1e-6, 'adamwStep p without scale and decay');
  });
}

export function checkSumOfSquares(): void {
  tf.tidy(() => {
    // more tensors than one dispatch takes (7), one larger than a dispatch's 64 x 256 threads, a scalar
    const shapes = [[100000], [3, 4], [7], [1], [], [2, 3, 5], [64, 64], [9], [300, 7], [5, 5]];
    const xs = shapes.map((s, i) => randn(s, 20 + i));
    let want = 0;
    for (const x of xs) for (const a of x.dataSync()) want += a * a;
    const got = sumOfSquares(xs);
    assert.deepEqual(got.shape, []);
    assertClose(got, [want], 1e-4, 'sumOfSquares'); // float32 sums of 100k terms (tfjs' own sum included)
    assert.equal(sumOfSquares([]).dataSync()[0], 0);
    assertClose(sumOfSquares([xs[1]]), [tf.sum(tf.square(xs[1])).dataSync()[0]], 1e-6, 'sumOfSquares of one tensor');
  });
}

export function checkRope(): void {
  const rope = new RotaryEmbedding({ headDim: 8 });
  tf.tidy(() => {
    const B = 2, T = 5, H = 3, hd = 8;
    // shared tables [1, T, 1, hd] (positions 0..T-1) and per-row tables [B, T, 1, hd] (packed positions)
    for (const positions of [0, [3, 4, 5, 6, 7, 0, 1, 2, 0, 1]] as (number | number[])[]) {
      const { cos, sinSigned } = rope.tables(positions, B, T);
      const x = randn([B, T, H, hd], 50);
      // rot(x) = [-x2, x1]; sinSigned = [-sin, sin], so [x2, x1] * sinSigned = rot(x) * [sin, sin]
      const ref = (a: tf.Tensor) => tf.add(tf.mul(a, cos), tf.mul(tf.concat([tf.slice(a, [0, 0, 0, hd / 2], [-1, -1, -1, hd / 2]), tf.slice(a, [0, 0, 0, 0], [-1, -1, -1, hd / 2])], 3), sinSigned));
      const got = gradsOf((a) => applyRope(a, cos, sinSigned), [x], 51);
      const want = gradsOf(ref, [x], 51);
      const what = typeof positions === 'number' ? 'shared tables' : 'per-row tables';
      assertClose(got.y, want.y, TOL, `applyRope ${what} value`);
      assertClose(tf.tidy(() => applyRope(x, cos, sinSigned)), want.y, TOL, `applyRope ${what} value outside gradient recording`);
      assertClose(got.grads[0], want.grads[0], TOL, `applyRope ${what} dx`);
    }
  });
  rope.dispose();
}

export const CASES: [string, () => void][] = [
  ['applyRope', checkRope],
  ['rmsNorm', checkRmsNorm],
  ['swigluPacked', checkSwigluPacked],
  ['dynamicMaskBias', checkDynamicMaskBias],
  ['adamwStep', checkAdamWStep],
  ['sumOfSquares', checkSumOfSquares],
];
