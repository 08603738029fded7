// The wasm backend's kernel patches (src/runtime/wasm-patches.ts) against the plain tfjs-backend-wasm kernels they
// replace: the same op is run once with the patched kernel and once with the original kernel re-registered, for the
// shapes and transposes the models use (linear layers and their gradients, attention's batched products, the
// chunked weight gradient over many tokens, broadcast batches, decoding-sized products).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/runtime/backend';
import { originalWasmKernels, installWasmKernelPatches, wasmKernelStats } from '../src/runtime/wasm-patches';
import { Rng } from '../src/ops';
import { assertMatMulMatchesPlain, maxRelErr, MODEL_MATMUL_CASES, randn, withPlainKernel, type MatMulCase } from './kernel-helpers';

// native BLAS off: these tests check the XNNPACK path (tests/native-blas.test.ts checks the native one)
before(async () => { await loadBackend({ backend: 'wasm', log: false, nativeBlas: false }); });

test('the patches are installed on wasm and the originals are kept', () => {
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(installWasmKernelPatches(tf), ['BatchMatMul', 'Slice', 'SplitV', 'Identity', 'GatherV2']);
  for (const k of ['BatchMatMul', 'Slice', 'SplitV', 'Identity', 'GatherV2']) {
    assert.ok(originalWasmKernels.get(k), `original ${k} kept`);
    assert.notEqual(tf.getKernel(k, 'wasm')!.kernelFunc, originalWasmKernels.get(k)!.kernelFunc, `${k} is patched`);
  }
  // other backends untouched
  assert.equal(tf.getKernel('BatchMatMul', 'cpu')!.kernelName, 'BatchMatMul');
});

// the model's products (kernel-helpers.ts; plain 2-D products with a short shared axis and decoding-sized ones are
// left to XNNPACK / the plain kernel by the patch), then shapes that exercise the patch's chunking of long shared axes
const CASES: MatMulCase[] = [
  ...MODEL_MATMUL_CASES,
  [[64, 1100], [300, 1100], false, true, 'long shared axis with transposed B'],
  [[40, 2100], [2100, 300], false, false, 'plain with long shared axis (left to XNNPACK)'],
];

for (const [as, bs, tA, tB, what] of CASES) {
  test(`BatchMatMul patch == plain kernel: ${what} [${as}]${tA ? '^T' : ''} x [${bs}]${tB ? '^T' : ''}`, () => {
    const a = randn(as, 1), b = randn(bs, 2);
    const got = tf.matMul(a, b, tA, tB);
    assertMatMulMatchesPlain(got, a, b, tA, tB);
    tf.dispose([a, b, got]);
  });
}

test('BatchMatMul patch: same gradients as the plain kernel through a linear layer and an attention-shaped product', () => {
  const x = randn([3, 40, 24], 3), w = randn([36, 24], 4), k = randn([3, 30, 24], 5);
  const f = (xx: tf.Tensor, ww: tf.Tensor, kk: tf.Tensor) => {
    const y = tf.matMul(tf.reshape(xx, [120, 24]), ww, false, true); // [120, 36]
    const s = tf.matMul(xx, kk, false, true); // [3, 40, 30]
    return tf.add(tf.sum(tf.square(y)), tf.sum(tf.sin(s)));
  };
  const g = tf.grads(f);
  const got = g([x, w, k]);
  const want = withPlainKernel('BatchMatMul', () => g([x, w, k]));
  for (let i = 0; i < 3; i++) {
    const err = maxRelErr(got[i].dataSync(), want[i].dataSync());
    assert.ok(err < 5e-6, `gradient ${i}: max error ${err}`);
  }
  tf.dispose([x, w, k, ...got, ...want]);
});

test('BatchMatMul patch: no tensors or wasm buffers leak', () => {
  const a = randn([6, 70, 50], 6), b = randn([6, 70, 32], 7);
  const c = randn([2100, 40], 8), d = randn([2100, 300], 9);
  tf.tidy(() => { tf.matMul(a, b, true, false); tf.matMul(c, d, true, false); }); // warm-up
  const before = tf.memory();
  const bytesBefore = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
  for (let i = 0; i < 3; i++) tf.tidy(() => { tf.matMul(a, b, true, false).dataSync(); tf.matMul(c, d, true, false).dataSync(); });
  assert.equal(tf.memory().numTensors, before.numTensors);
  assert.equal((tf.backend() as unknown as { numDataIds(): number }).numDataIds(), bytesBefore);
  tf.dispose([a, b, c, d]);
});

test('BatchMatMul statistics count the patched cases and their FLOPs', () => {
  const a = randn([96, 48], 10), b = randn([96, 80], 11);
  wasmKernelStats(true);
  tf.matMul(a, b, true, false).dispose();
  const s = wasmKernelStats(false)!;
  const tn = s.get('TN batch=1/1');
  assert.ok(tn, `recorded cases: ${[...s.keys()].join(', ')}`);
  assert.equal(tn.calls, 1);
  assert.equal(tn.flops, 2 * 48 * 96 * 80);
  tf.dispose([a, b]);
});

test('Slice patch == plain kernel (inner, outer and strided blocks, int32)', () => {
  const x = randn([4, 5, 6, 7], 12);
  const xi = tf.cast(tf.mul(x, 100), 'int32');
  const cases: [number[], number[]][] = [[[0, 0, 0, 2], [4, 5, 6, 3]], [[1, 0, 0, 0], [2, 5, 6, 7]], [[1, 2, 3, 1], [2, 2, 2, 5]], [[3, 4, 5, 6], [1, 1, 1, 1]]];
  for (const [begin, size] of cases) {
    for (const t of [x, xi]) {
      const got = tf.slice(t, begin, size);
      const want = withPlainKernel('Slice', () => tf.slice(t, begin, size));
      assert.deepEqual(got.shape, want.shape);
      assert.deepEqual(Array.from(got.dataSync()), Array.from(want.dataSync()), `slice ${begin} ${size} ${t.dtype}`);
      tf.dispose([got, want]);
    }
  }
  tf.dispose([x, xi]);
});

test('SplitV patch == plain kernel (last, middle and first axis, uneven sizes, -1, int32) and its gradient', () => {
  const x = randn([3, 4, 10], 13);
  const xi = tf.cast(tf.mul(x, 100), 'int32');
  const cases: [number | number[], number][] = [[[4, 5, 1], -1], [[3, -1], 2], [2, 1], [[1, 2], 0], [[10], 2]];
  for (const [splits, axis] of cases) {
    for (const t of [x, xi]) {
      const got = tf.split(t, splits, axis);
      const want = withPlainKernel('SplitV', () => tf.split(t, splits, axis));
      assert.equal(got.length, want.length);
      got.forEach((g, i) => {
        assert.deepEqual(g.shape, want[i].shape);
        assert.deepEqual(Array.from(g.dataSync()), Array.from(want[i].dataSync()), `split ${splits} axis ${axis} piece ${i} ${t.dtype}`);
      });
      tf.dispose([...got, ...want]);
    }
  }
  // the gradient (a concat of the pieces' gradients) sees the same pieces
  const w = randn([3, 4, 10], 14);
  const f = (v: tf.Tensor) => { const [a, , c] = tf.split(v, [4, 5, 1], -1); return tf.add(tf.sum(tf.mul(a, tf.slice(w, [0, 0, 0], [3, 4, 4]))), tf.sum(tf.square(c))); };
  const got = tf.grad(f)(x);
  const want = withPlainKernel('SplitV', () => tf.grad(f)(x));
  assert.deepEqual(Array.from(got.dataSync()), Array.from(want.dataSync()));
  tf.dispose([x, xi, w, got, want]);
});

test('Identity patch shares the data and stays correct after the source is disposed', () => {
  const x = randn([3, 4], 13);
  const want = Array.from(x.dataSync());
  const y = tf.tidy(() => tf.clone(x));
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), want);
  y.dispose();
});

test('GatherV2 patch == plain kernel (rows, scalars, inner axis, int32, repeated ids)', () => {
  const x = randn([50, 7], 14);
  const x3 = randn([3, 50, 5], 15);
  const xi = tf.cast(tf.mul(x, 100), 'int32');
  const ids = tf.tensor2d([[3, 3, 49, 0], [7, 1, 1, 2]], [2, 4], 'int32');
  const cases: [tf.Tensor, number][] = [[x, 0], [x3, 1], [xi, 0], [tf.reshape(x, [350, 1]), 0], [tf.reshape(x, [350]), 0], [x3, 2]];
  for (const [t, axis] of cases) {
    const id = axis === 2 ? tf.tensor1d([4, 0, 0, 2], 'int32') : ids;
    const got = tf.gather(t, id, axis);
    const want = withPlainKernel('GatherV2', () => tf.gather(t, id, axis));
    assert.deepEqual(got.shape, want.shape);
    assert.deepEqual(Array.from(got.dataSync()), Array.from(want.dataSync()), `gather [${t.shape}] axis ${axis}`);
    tf.dispose([got, want]);
  }
  assert.throws(() => tf.gather(x, tf.tensor1d([50], 'int32')), /index value 50 is not in \[0, 49\]/);
  tf.dispose([x, x3, xi, ids]);
});

test('chunked lm_head loss: gradients computed with the forward pass scale with the upstream gradient', async () => {
  const { chunkedLmHeadLoss, crossEntropyLoss } = await import('../src/ops');
  const rng = new Rng(2);
  const h = tf.tensor2d(rng.normalArray(9 * 5, 1), [9, 5]);
  const w = tf.tensor2d(rng.normalArray(11 * 5, 0.5), [11, 5]);
  const targets = Int32Array.from([3, -100, 0, 10, 5, 5, 7, 1, 2]);
  // 2.5 x loss + a second use of h: the loss's upstream gradient is 2.5, h also gets another gradient
  const f = (lossFn: (a: tf.Tensor, b: tf.Tensor) => tf.Scalar) => (a: tf.Tensor, b: tf.Tensor) => tf.add(tf.mul(lossFn(a, b), 2.5), tf.sum(tf.square(a)));
  const plain = (a: tf.Tensor, b: tf.Tensor) => crossEntropyLoss(tf.matMul(a, b, false, true) as tf.Tensor2D, targets, 7);
  const chunked = (a: tf.Tensor, b: tf.Tensor) => chunkedLmHeadLoss(a as tf.Tensor2D, b as tf.Tensor2D, targets, 7, 4);
  const g1 = tf.grads(f(plain))([h, w]), g2 = tf.grads(f(chunked))([h, w]);
  for (let i = 0; i < 2; i++) {
    const err = maxRelErr(g2[i].dataSync(), g1[i].dataSync());
    assert.ok(err < 1e-5, `gradient ${i}: relative error ${err}`);
  }
  const before = tf.memory().numTensors;
  tf.tidy(() => { tf.grads(f(chunked))([h, w]); });
  assert.equal(tf.memory().numTensors, before, 'no tensors leak');
  tf.dispose([h, w, ...g1, ...g2]);
});
