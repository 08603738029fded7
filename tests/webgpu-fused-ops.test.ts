// The fused ops' WGSL kernels (src/runtime/webgpu-kernels.ts) on webgpu (Mesa's software adapter without a GPU):
// values and gradients equal the unfused math (tests/fused-cases.ts), each op is one dispatch (two for the
// gradients that have two outputs), and WM_FUSED_KERNELS=0 runs the plain-tfjs fallbacks instead.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/tf';
import { loadBackend } from '../src/runtime/backend';
import { webGpuDispatches } from '../src/runtime/webgpu';
import { FUSED_KERNEL_NAMES, hasFusedKernel, rmsNorm, swigluPacked, dynamicMaskBias, adamwStep, sumOfSquares, applyRope } from '../src/ops/fused';
import { AdamW } from '../src/train/adamw';
import { CASES, assertClose, randn } from './fused-cases';

const saved = process.env.WM_FUSED_KERNELS;
before(async () => {
  delete process.env.WM_FUSED_KERNELS;
  await loadBackend({ backend: 'webgpu', log: false });
});
after(() => {
  if (saved === undefined) delete process.env.WM_FUSED_KERNELS;
  else process.env.WM_FUSED_KERNELS = saved;
});

/** GPU programs `f` dispatched (its result read back, so nothing is pending). */
function dispatchesOf(f: () => tf.Tensor | tf.Tensor[]): number {
  const d0 = webGpuDispatches();
  tf.tidy(() => {
    const out = f();
    for (const t of Array.isArray(out) ? out : [out]) t.dataSync();
  });
  return webGpuDispatches() - d0;
}

function withFusedOff<T>(f: () => T): T {
  process.env.WM_FUSED_KERNELS = '0';
  try {
    return f();
  } finally {
    delete process.env.WM_FUSED_KERNELS;
  }
}

test('webgpu: every fused kernel is registered', () => {
  assert.equal(tf.getBackend(), 'webgpu');
  for (const name of Object.values(FUSED_KERNEL_NAMES)) assert.equal(hasFusedKernel(name), true, name);
});

for (const [name, check] of CASES) {
  test(`webgpu fused kernel: ${name} equals the unfused math, values and gradients`, () => check());
  test(`webgpu, WM_FUSED_KERNELS=0: ${name} (fallback) equals the unfused math`, () => withFusedOff(check));
}

test('webgpu: one dispatch per fused op (two for the two-output gradients), more with WM_FUSED_KERNELS=0', () => {
  const x = randn([4, 6, 32], 1), w = randn([32], 2), gu = randn([4, 6, 20], 3), dt = randn([2, 6, 3], 4), A = tf.tensor1d([-1, -2, -0.5]);
  const ps = [0, 1, 2, 3].map((i) => randn([50, 8], 5 + i));
  const q = randn([2, 6, 3, 8], 9), cos = randn([1, 6, 1, 8], 10), sin = randn([1, 6, 1, 8], 11);
  const ops: [string, () => tf.Tensor | tf.Tensor[], number][] = [
    ['rmsNorm', () => rmsNorm(x, w, 1e-6), 1],
    ['rmsNorm forward + gradient', () => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(rmsNorm(a, b, 1e-6)))([x, w]), 1 + 2],
    ['swigluPacked', () => swigluPacked(gu, 10), 1],
    ['dynamicMaskBias', () => dynamicMaskBias(dt, A, 'exp'), 1],
    ['dynamicMaskBias forward + gradient', () => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(dynamicMaskBias(a, b, 'exp')))([dt, A]), 1 + 2],
    ['adamwStep', () => adamwStep(ps[0], ps[1], ps[2], ps[3], { beta1: 0.9, beta2: 0.95, eps: 1e-8, gradScale: 0.5, decay: 0.99, stepSize: 0.01, bc2Sqrt: 0.3 }), 1],
    ['applyRope', () => applyRope(q, cos, sin), 1],
    ['applyRope forward + gradient', () => tf.grads((a: tf.Tensor) => tf.sum(applyRope(a, cos, sin)))([q]), 1 + 1],
    ['sumOfSquares of 9 tensors', () => sumOfSquares([...ps, ...ps, x]), 2 + 1],
  ];
  for (const [name, f, want] of ops) {
    const fused = dispatchesOf(f);
    const unfused = withFusedOff(() => dispatchesOf(f));
    // the gradient cases also run tfjs' sum and ones-like kernels around the fused op
    if (name.includes('gradient')) assert.ok(fused >= want && fused < unfused, `${name}: ${fused} dispatches fused, ${unfused} unfused`);
    else assert.equal(fused, want, `${name}: ${fused} dispatches (unfused: ${unfused})`);
    assert.ok(unfused > fused, `${name}: unfused ${unfused} <= fused ${fused}`);
  }
  for (const t of [x, w, gu, dt, A, q, cos, sin, ...ps]) t.dispose();
});

test('webgpu: AdamW steps with the fused kernel equal the unfused ones', () => {
  const run = () => {
    const params = new Map([['layer.weight', tf.variable(randn([16, 8], 30))], ['norm.weight', tf.variable(randn([8], 31))]]);
    const opt = new AdamW(params, { beta1: 0.9, beta2: 0.95, weightDecay: 0.1 });
    for (let s = 0; s < 3; s++) {
      const grads = new Map([...params].map(([k, p], i) => [k, randn(p.shape, 40 + 10 * s + i)] as [string, tf.Tensor]));
      opt.applyGradients(grads, 1e-2, 0.7);
      for (const g of grads.values()) g.dispose();
    }
    const out = [...params.values()].map((p) => p.dataSync().slice());
    for (const p of params.values()) p.dispose();
    opt.dispose();
    return out;
  };
  const fused = run();
  const unfused = withFusedOff(run);
  fused.forEach((f, i) => assertClose(f, unfused[i], 1e-6, `parameter ${i}`));
});
