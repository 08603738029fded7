// Prints the WebGPU adapter and a square fp32 matmul's speed as JSON lines (scripts/gpu-check.sh runs it from the
// GPU bundle as `wm gpu-probe N`). Usage: node --import tsx scripts/gpu-probe.ts [N] (default 4096). The product of all-ones matrices is checked (every
// entry = N) so a device that returns zeros cannot report a speed.
import { tf, loadBackend } from '../src/runtime/backend';
import { webGpuAdapter } from '../src/runtime/webgpu';

export async function run(argv: string[]): Promise<void> {
  const n = Number(argv[0] ?? 4096);
  if (!(Number.isInteger(n) && n >= 16)) throw new Error(`gpu-probe: N must be an integer >= 16, got '${argv[0]}'`);
  const info = await loadBackend({ backend: process.env.WM_BACKEND || 'webgpu' });
  console.log(JSON.stringify({ check: 'adapter', backend: info.name, reason: info.reason, ...webGpuAdapter() }));
  const ones = tf.ones([n, n]);
  const check = tf.matMul(ones, ones);
  const got = (await check.data())[n * n - 1];
  check.dispose();
  if (got !== n) throw new Error(`matmul check: ones(${n}) @ ones(${n}) gave ${got} instead of ${n}`);
  const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
  for (let i = 0; i < 2; i++) { const w = tf.matMul(a, b); await w.data(); w.dispose(); }
  const reps = n >= 2048 ? 20 : 5;
  const t0 = performance.now();
  let last: tf.Tensor | null = null;
  for (let i = 0; i < reps; i++) { last?.dispose(); last = tf.matMul(a, b); }
  await last!.data(); // the queue runs in order: the last product done means all are
  const s = (performance.now() - t0) / 1000;
  last!.dispose();
  console.log(JSON.stringify({ check: 'matmul', backend: info.name, n, dtype: 'float32', reps, ms_per_matmul: +(s * 1000 / reps).toFixed(3), tflops: +((2 * n ** 3 * reps) / s / 1e12).toFixed(3) }));
}

// run directly (tsx); inside the GPU bundle the bundle's entry calls run()
if (/gpu-probe\.ts$/.test(process.argv[1] ?? '')) {
  run(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  });
}
