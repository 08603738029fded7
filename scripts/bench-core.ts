/**
 * Throughput of the Doge core on the current backend (default: wasm, as in tests; WM_BACKEND to change):
 *   - training step (forward + backward + Adam update) tokens/s for doge-tiny (batch 8 x 256) and the doge-20m shape (4 x 512)
 *   - greedy decoding tokens/s with the KV cache (prompt 32, 128 new tokens, batch 1)
 *   - with --profile: kernel-time share by kernel (BatchMatMul, ...) of one doge-tiny forward+backward
 * Usage: npx tsx scripts/bench-core.ts [--steps N] [--only tiny|20m] [--no-decode] [--profile]
 * Timings are noisy on a shared 2-core machine: compare ratios.
 */
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

function randomIds(B: number, T: number, V: number, seed: number): tf.Tensor {
  let s = seed;
  const a = new Int32Array(B * T).map(() => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s % V; });
  return tf.tensor2d(a, [B, T], 'int32');
}

function benchTrain(name: string, preset: string, B: number, T: number, steps: number): void {
  const model = new DogeForCausalLM(DogeConfig.preset(preset), { seed: 0 });
  const opt = tf.train.adam(1e-3, 0.9, 0.95, 1e-8);
  const ids = randomIds(B, T, model.config.vocab_size, 1);
  const vars = [...model.parameters().values()];
  const step = () => {
    const cost = opt.minimize(() => model.forward({ inputIds: ids, labels: ids, training: true, lossOnly: true }).loss!, true, vars);
    cost?.dataSync();
    cost?.dispose();
  };
  step(); // warm-up (kernel setup, cached masks/rope tables)
  const before = tf.memory().numTensors;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  const dt = (performance.now() - t0) / 1000 / steps;
  console.log(JSON.stringify({ bench: 'train', model: name, backend: tf.getBackend(), batch: B, seq: T, secPerStep: +dt.toFixed(3), tokensPerSec: Math.round((B * T) / dt), params: model.numParameters(), tensorLeak: tf.memory().numTensors - before }));
  // forward only
  const f0 = performance.now();
  tf.tidy(() => { model.forward({ inputIds: ids, labels: ids }).loss!.dataSync(); });
  const fdt = (performance.now() - f0) / 1000;
  console.log(JSON.stringify({ bench: 'forward', model: name, tokensPerSec: Math.round((B * T) / fdt), sec: +fdt.toFixed(3) }));
  ids.dispose();
  opt.dispose();
  model.dispose();
}

function benchDecode(name: string, preset: string): void {
  const model = new DogeForCausalLM(DogeConfig.preset(preset), { seed: 0 });
  const prompt = [Array.from({ length: 32 }, (_, i) => (i * 37) % model.config.vocab_size)];
  model.generate(prompt, { maxNewTokens: 128, eosTokenId: null }); // warm-up (JIT, cached transposed weights)
  const rates: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    const out = model.generate(prompt, { maxNewTokens: 128, eosTokenId: null });
    if (out[0].length !== 160) throw new Error('decode produced the wrong length');
    rates.push(128 / ((performance.now() - t0) / 1000));
  }
  rates.sort((a, b) => a - b);
  console.log(JSON.stringify({ bench: 'decode', model: name, backend: tf.getBackend(), prompt: 32, newTokens: 128, runs: rates.map(Math.round), medianTokensPerSec: Math.round(rates[1]) }));
  model.dispose();
}

/** Kernel time of one forward+backward by kernel name (tf.profile; profiling itself adds overhead). */
async function profileTrain(preset: string, B: number, T: number): Promise<void> {
  const model = new DogeForCausalLM(DogeConfig.preset(preset), { seed: 0 });
  const ids = randomIds(B, T, model.config.vocab_size, 1);
  const step = () => {
    const { value, grads } = model.variableGrads(() => model.forward({ inputIds: ids, labels: ids, training: true, lossOnly: true }).loss!);
    value.dataSync(); value.dispose();
    for (const g of grads.values()) g.dispose();
  };
  step();
  const info = await tf.profile(() => { step(); return tf.scalar(0); });
  const by = new Map<string, number>();
  let total = 0;
  for (const k of info.kernels) { const ms = k.kernelTimeMs as number; total += ms; by.set(k.name, (by.get(k.name) ?? 0) + ms); }
  const top = [...by.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${(100 * v / total).toFixed(0)}%`);
  console.log(JSON.stringify({ bench: 'profile-train', model: preset, kernels: info.kernels.length, kernelMs: Math.round(total), top }));
  ids.dispose();
  model.dispose();
}

async function main(): Promise<void> {
  await loadBackend({ backend: process.env.WM_BACKEND ?? 'wasm' });
  const steps = Number(arg('steps', '3'));
  const only = arg('only', 'all');
  const decode = !process.argv.includes('--no-decode');
  if (only === 'all' || only === 'tiny') {
    if (process.argv.includes('--profile')) await profileTrain('doge-tiny', 8, 256);
    benchTrain('doge-tiny', 'doge-tiny', 8, 256, steps);
    if (decode) benchDecode('doge-tiny', 'doge-tiny');
  }
  if (only === 'all' || only === '20m') {
    benchTrain('doge-20m', 'doge-20m', 4, 512, steps);
    if (decode) benchDecode('doge-20m', 'doge-20m');
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
