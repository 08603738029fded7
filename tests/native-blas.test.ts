// The native BLAS path of the wasm backend's BatchMatMul (native/wm_blas.c + src/runtime/native-blas.ts +
// src/runtime/wasm-patches.ts) against the plain tfjs-backend-wasm kernel: every transpose, batch and broadcast case the
// models use, gradients, no leaks, and the addon's own argument checks. The addon must be built and OpenBLAS
// installed for these tests (`pnpm test` builds it and scripts/install-system-deps.sh installs libopenblas0-pthread):
// a missing addon fails here on purpose, while the library itself falls back to XNNPACK.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, loadBackend, type BackendInfo } from '../src/runtime/backend';
import { setWasmNativeBlas, wasmNativeBlas, wasmKernelStats } from '../src/runtime/wasm-patches';
import { loadNativeBlas, nativeBlasSetting, nativeBlasUnavailableReason, type NativeBlas } from '../src/runtime/native-blas';
import { assertMatMulMatchesPlain, maxRelErr, MODEL_MATMUL_CASES, randn, withPlainKernel, type MatMulCase } from './kernel-helpers';

let info: BackendInfo;
let blas: NativeBlas;
before(async () => {
  info = await loadBackend({ backend: 'wasm', log: false, nativeBlas: 'auto' });
  const b = loadNativeBlas();
  assert.ok(b, `native BLAS unavailable: ${nativeBlasUnavailableReason()}`);
  blas = b;
});

test('the addon is built, loads OpenBLAS, and loadBackend reports wasm+openblas', () => {
  assert.match(blas.config, /OpenBLAS/, `loaded ${blas.lib}: ${blas.config}`);
  assert.equal(info.matmul, 'openblas');
  assert.match(info.reason, /matmuls on OpenBLAS/);
  assert.equal(wasmNativeBlas(), blas);
});

// the model's products (kernel-helpers.ts), then the shapes the native path treats specially (rank 4, one-row and
// one-column products on sgemv, tiny products)
const CASES: MatMulCase[] = [
  ...MODEL_MATMUL_CASES,
  [[2, 3, 70, 32], [2, 3, 50, 32], false, true, 'rank-4 batch [batch, heads, seq, dim]'],
  [[1, 256], [1000, 256], false, true, 'decoding lm_head row x W^T (GEMV shape)'],
  [[1, 3], [3, 1], false, false, 'tiny product'],
  [[1, 256], [256, 300], false, false, 'one row, plain B (sgemv transposed)'],
  [[6, 1, 32], [6, 40, 32], false, true, 'decoding attention scores, batched one-row products (sgemv)'],
  [[6, 1, 40], [6, 40, 32], false, false, 'decoding attention output, batched one-row products (sgemv)'],
  [[6, 40, 1], [1, 40, 32], true, false, 'transposed one-row A, shared B'],
  [[70, 48], [48, 1], false, false, 'one column (sgemv)'],
  [[5, 48, 70], [5, 48, 1], true, false, 'batched one column, transposed A'],
  [[3, 70, 48], [48, 1], false, false, 'one column, shared B (folded sgemm)'],
];

for (const [as, bs, tA, tB, what] of CASES) {
  test(`native BatchMatMul == plain kernel: ${what} [${as}]${tA ? '^T' : ''} x [${bs}]${tB ? '^T' : ''}`, () => {
    const a = randn(as, 1), b = randn(bs, 2);
    wasmKernelStats(true);
    const got = tf.matMul(a, b, tA, tB);
    const stats = wasmKernelStats(false)!;
    assert.ok([...stats.keys()].some((k) => k.startsWith('native ')), `ran on the native path (cases: ${[...stats.keys()].join(', ')})`);
    assertMatMulMatchesPlain(got, a, b, tA, tB);
    tf.dispose([a, b, got]);
  });
}

test('native BatchMatMul: same gradients as the plain kernel through a linear layer and attention products', () => {
  const x = randn([3, 40, 24], 3), w = randn([36, 24], 4), k = randn([3, 30, 24], 5);
  const f = (xx: tf.Tensor, ww: tf.Tensor, kk: tf.Tensor) => {
    const y = tf.matMul(tf.reshape(xx, [120, 24]), ww, false, true); // [120, 36]
    const s = tf.matMul(xx, kk, false, true); // [3, 40, 30]
    const o = tf.matMul(tf.softmax(s), kk); // [3, 40, 24]
    return tf.add(tf.add(tf.sum(tf.square(y)), tf.sum(tf.sin(s))), tf.sum(tf.mul(o, xx)));
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

test('native BatchMatMul: no tensors or wasm buffers leak', () => {
  const a = randn([6, 70, 50], 6), b = randn([6, 70, 32], 7), c = randn([2100, 40], 8), d = randn([2100, 300], 9);
  tf.tidy(() => { tf.matMul(a, b, true, false); tf.matMul(c, d, true, false); }); // warm-up
  const before = tf.memory().numTensors;
  const ids = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
  for (let i = 0; i < 3; i++) tf.tidy(() => { tf.matMul(a, b, true, false).dataSync(); tf.matMul(c, d, true, false).dataSync(); });
  assert.equal(tf.memory().numTensors, before);
  assert.equal((tf.backend() as unknown as { numDataIds(): number }).numDataIds(), ids);
  tf.dispose([a, b, c, d]);
});

test('setWasmNativeBlas(null) switches back to the XNNPACK path (same numbers)', () => {
  const a = randn([96, 48], 10), b = randn([80, 48], 11);
  const nat = tf.matMul(a, b, false, true);
  setWasmNativeBlas(null);
  try {
    wasmKernelStats(true);
    const x = tf.matMul(a, b, false, true);
    const keys = [...wasmKernelStats(false)!.keys()];
    assert.deepEqual(keys, ['NT batch=1/1']);
    assert.ok(maxRelErr(x.dataSync(), nat.dataSync()) < 2e-6);
    x.dispose();
  } finally {
    setWasmNativeBlas(blas);
  }
  tf.dispose([a, b, nat]);
});

test('the addon refuses arrays too small for the dimensions and non-Float32Array arguments', () => {
  const a = new Float32Array(6), b = new Float32Array(6), c = new Float32Array(4);
  blas.sgemm(a.fill(1), b.fill(2), c, 1, 2, 2, 3, 0, 0, 0, 0);
  assert.deepEqual([...c], [6, 6, 6, 6]);
  assert.throws(() => blas.sgemm(a, b, c, 2, 2, 2, 3, 0, 0, 6, 6), /do not fit the arrays/);
  assert.throws(() => blas.sgemm(a, b, new Float32Array(3), 1, 2, 2, 3, 0, 0, 0, 0), /do not fit the arrays/);
  assert.throws(() => blas.sgemm(new Int32Array(6) as unknown as Float32Array, b, c, 1, 2, 2, 3, 0, 0, 0, 0), /expected a Float32Array/);
  const y = new Float32Array(2);
  blas.sgemv(new Float32Array([1, 2, 3, 4, 5, 6]), new Float32Array([1, 1, 1]), y, 1, 2, 3, 0, 0, 0); // [2,3] x [3]
  assert.deepEqual([...y], [6, 15]);
  const z = new Float32Array(3);
  blas.sgemv(new Float32Array([1, 2, 3, 4, 5, 6]), new Float32Array([1, 1]), z, 1, 3, 2, 1, 0, 0); // [2,3]^T x [2]
  assert.deepEqual([...z], [5, 7, 9]);
  assert.throws(() => blas.sgemv(new Float32Array(6), new Float32Array(3), new Float32Array(2), 2, 2, 3, 0, 6, 0), /do not fit the arrays/);
});

test('WM_NATIVE_BLAS parsing: 0/1/auto, anything else is refused', () => {
  assert.equal(nativeBlasSetting(undefined, undefined), 'auto');
  assert.equal(nativeBlasSetting(undefined, '0'), 'off');
  assert.equal(nativeBlasSetting(undefined, '1'), 'on');
  assert.equal(nativeBlasSetting(false, '1'), 'off');
  assert.equal(nativeBlasSetting(true, '0'), 'on');
  assert.throws(() => nativeBlasSetting(undefined, 'yes'), /WM_NATIVE_BLAS must be 0, 1 or auto, got 'yes'/);
});

test('a process with WM_NATIVE_BLAS=0 runs XNNPACK; a required BLAS that is not OpenBLAS fails naming why', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-native-'));
  const file = path.join(dir, 'probe.ts');
  fs.writeFileSync(file, `import { loadBackend } from ${JSON.stringify(path.join(__dirname, '..', 'src', 'runtime', 'backend'))};
loadBackend({ backend: 'wasm', log: false }).then((i) => console.log('matmul=' + i.matmul), (e) => console.log('error=' + e.message));\n`);
  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', file], { env: { ...process.env, WM_WASM_THREADS: '1', ...env }, encoding: 'utf8' });
    return r.stdout + r.stderr;
  };
  try {
    assert.match(run({ WM_NATIVE_BLAS: '0' }), /matmul=xnnpack/);
    assert.match(run({ WM_NATIVE_BLAS: '1' }), /matmul=openblas/);
    // libm is a shared library without OpenBLAS's symbols: refused, and required means loadBackend fails
    const out = run({ WM_NATIVE_BLAS: '1', WM_BLAS_LIB: 'libm.so.6' });
    assert.match(out, /error=native BLAS was required .*libm\.so\.6 is not OpenBLAS or MKL/);
    assert.match(run({ WM_BLAS_LIB: 'libm.so.6' }), /matmul=xnnpack/); // auto: falls back
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
