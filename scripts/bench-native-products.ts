/**
 * Per-product A/B of the wasm backend's BatchMatMul: native BLAS path vs XNNPACK path (same patch, native off), CPU
 * time per call (robust on a shared machine with WM_WASM_THREADS=1), plus cblas_sgemv against sgemm for the
 * decoding products (one row times a weight matrix).
 *
 *   WM_WASM_THREADS=1 npx tsx scripts/bench-native-products.ts
 */
import { tf, loadBackend } from '../src/runtime/backend';
import { setWasmNativeBlas, wasmNativeBlas } from '../src/runtime/wasm-patches';

const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

// [name, a shape, b shape, transposeA, transposeB]
const PRODUCTS: [string, number[], number[], boolean, boolean][] = [
  ['doge-tiny linear x W^T [2048x256]x[768x256]^T', [2048, 256], [768, 256], false, true],
  ['doge-tiny linear dX = dY W [2048x768]x[768x256]', [2048, 768], [768, 256], false, false],
  ['doge-tiny linear dW = dY^T X [2048x768]^T x [2048x256]', [2048, 768], [2048, 256], true, false],
  ['doge-tiny lm_head [2048x256]x[4096x256]^T', [2048, 256], [4096, 256], false, true],
  ['attention q K^T [32,256,64]x[32,256,64]^T', [32, 256, 64], [32, 256, 64], false, true],
  ['attention dS^T q [32,256,256]^T x [32,256,64]', [32, 256, 256], [32, 256, 64], true, false],
  ['doge-20m lm_head chunk [512x256]x[32768x256]^T', [512, 256], [32768, 256], false, true],
  ['doge-20m lm_head dX [512x32768]x[32768x256]', [512, 32768], [32768, 256], false, false],
  ['decode doge-20m lm_head [1x256]x[32768x256]^T', [1, 256], [32768, 256], false, true],
  ['decode doge-tiny lm_head [1x256]x[4096x256]^T', [1, 256], [4096, 256], false, true],
  ['decode linear [1x256]x[768x256]^T', [1, 256], [768, 256], false, true],
  ['decode attention [4,1,64]x[4,40,64]^T', [4, 1, 64], [4, 40, 64], false, true],
];

async function main(): Promise<void> {
  await loadBackend({ backend: 'wasm' });
  const blas = wasmNativeBlas();
  if (!blas) throw new Error('native BLAS not in use');
  console.log('| product | GFLOP | XNNPACK path ms | native ms | speed-up |\n|---|---|---|---|---|');
  for (const [name, as, bs, tA, tB] of PRODUCTS) {
    const a = tf.randomNormal(as), b = tf.randomNormal(bs);
    const M = tA ? as[as.length - 1] : as[as.length - 2], K = tA ? as[as.length - 2] : as[as.length - 1];
    const N = tB ? bs[bs.length - 2] : bs[bs.length - 1];
    const batch = Math.max(as.length > 2 ? as[0] : 1, bs.length > 2 ? bs[0] : 1);
    const flop = 2 * batch * M * N * K;
    const reps = Math.max(3, Math.min(2000, Math.round(3e9 / flop)));
    const time = (native: boolean): number => {
      setWasmNativeBlas(native ? blas : null);
      tf.matMul(a, b, tA, tB).dispose();
      let best = Infinity;
      for (let r = 0; r < 3; r++) {
        const c0 = cpuMs();
        for (let i = 0; i < reps; i++) tf.matMul(a, b, tA, tB).dispose();
        best = Math.min(best, (cpuMs() - c0) / reps);
      }
      return best;
    };
    const x = time(false), n = time(true);
    console.log(`| ${name} | ${(flop / 1e9).toFixed(3)} | ${x.toFixed(3)} (${(flop / x / 1e6).toFixed(0)} GFLOP/s) | ${n.toFixed(3)} (${(flop / n / 1e6).toFixed(0)} GFLOP/s) | ${(x / n).toFixed(2)}x |`);
    tf.dispose([a, b]);
  }
  setWasmNativeBlas(blas);
  // GEMV vs sgemm with M = 1 on plain arrays (decoding's lm_head of doge-20m: W [32768, 256], y = W x)
  for (const [V, H] of [[32768, 256], [4096, 256], [768, 256]]) {
    const w = new Float32Array(V * H).map(() => Math.random()), x = new Float32Array(H).map(() => Math.random()), y = new Float32Array(V);
    const reps = Math.round(2e9 / (2 * V * H));
    const t = (f: () => void) => { f(); const c0 = cpuMs(); for (let i = 0; i < reps; i++) f(); return (cpuMs() - c0) / reps; };
    const gemv = t(() => blas.sgemv(w, x, y, 1, V, H, 0, 0, 0));
    const gemm = t(() => blas.sgemm(x, w, y, 1, 1, V, H, 0, 1, 0, 0));
    console.log(`decode [1x${H}] x [${V}x${H}]^T: sgemv ${gemv.toFixed(3)} ms, sgemm M=1 ${gemm.toFixed(3)} ms`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
