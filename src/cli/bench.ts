/**
 * `wm bench [--only train|decode] [--presets doge-tiny,cheems-tiny] [--steps N]`: throughput as JSON lines (Doge and Cheems).
 *
 *   {"bench":"train","preset":"doge-tiny","backend":"wasm","batch":8,"seq_len":256,"tokens_per_s":...,
 *    "step_ms":...,"forward_ms":...,"backward_ms":...,"clip_ms":...,"optimizer_ms":...}
 *   {"bench":"decode","preset":"doge-tiny","backend":"wasm","prompt":32,"new_tokens":128,"tokens_per_s":...}
 *
 * Training: one full optimizer step (forward, backward, global-norm clip, AdamW) on random tokens, timed after
 * warm-up steps; the same step is then split into its parts (forward alone, forward+backward, clip, AdamW)
 * to say where the time goes. Decoding: greedy with the KV cache, a 32-token prompt and 128 new tokens.
 * The PyTorch reference for scale lives outside the project (../shared/bench/); run it side by side.
 */
import { loadBackend, tf } from '../backend';
import { buildModelConfig, createCausalLM } from '../models/auto';
import { variableGradsByName } from '../modules/module';
import { AdamW } from '../train/adamw';

/**
 * `micro`: the batch is run as this many equal micro-batches with gradient accumulation (same tokens per optimizer
 * step). Doge-20M's 4 x 512 batch at vocab 32768 needs ~270 MB per logits-sized tensor and the wasm heap (at most
 * 4 GB, fragmented) runs out in the backward pass, so it runs as 2 x (2 x 512).
 */
interface TrainCase { preset: string; batch: number; seqLen: number; micro: number }
const TRAIN_CASES: TrainCase[] = [
  { preset: 'doge-tiny', batch: 8, seqLen: 256, micro: 1 },
  { preset: 'doge-tiny-moe', batch: 8, seqLen: 256, micro: 1 },
  { preset: 'doge-20m', batch: 4, seqLen: 512, micro: 2 },
  { preset: 'cheems-tiny', batch: 8, seqLen: 256, micro: 1 },
  { preset: 'cheems-tiny-moe', batch: 8, seqLen: 256, micro: 1 },
];
const DECODE_PRESETS = ['doge-tiny', 'doge-20m', 'cheems-tiny'];

function randomIds(batch: number, seqLen: number, vocab: number, seed: number): tf.Tensor2D {
  let s = seed >>> 0;
  const ids = new Int32Array(batch * seqLen);
  for (let i = 0; i < ids.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    ids[i] = s % vocab;
  }
  return tf.tensor2d(ids, [batch, seqLen], 'int32');
}

const now = (): number => performance.now();
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function benchTrain(c: TrainCase, backend: string, steps: number): Record<string, unknown> {
  const config = buildModelConfig(c.preset, {});
  const model = createCausalLM(config, { seed: 0 });
  const params = model.parameters();
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.95, weightDecay: 0.01 });
  const mb = c.batch / c.micro;
  const micro = Array.from({ length: c.micro }, (_, i) => randomIds(mb, c.seqLen, config.vocab_size, 1 + i));
  const items = c.batch * (c.seqLen - 1);
  const lossOf = (ids: tf.Tensor2D) => (): tf.Scalar =>
    model.forward({ inputIds: ids, labels: ids, training: true, numItemsInBatch: items, lossOnly: true }).loss as tf.Scalar;

  // Times one step's parts; returns ms for forward+backward, clip, optimizer.
  const fullStep = (): { fb: number; clip: number; opt: number } => {
    const t0 = now();
    const named = new Map<string, tf.Tensor>();
    for (const ids of micro) {
      const { value, grads } = variableGradsByName(params, lossOf(ids));
      value.dataSync();
      value.dispose();
      for (const [name, g] of grads) {
        const prev = named.get(name);
        named.set(name, prev ? tf.add(prev, g) : g);
        if (prev) { prev.dispose(); g.dispose(); }
      }
    }
    const t1 = now();
    const normT = tf.tidy(() => tf.sqrt(tf.addN([...named.values()].map((g) => tf.sum(tf.square(g))))));
    const norm = normT.dataSync()[0];
    normT.dispose();
    const t2 = now();
    opt.applyGradients(named, 1e-3, Math.min(1, 1 / (norm + 1e-6)));
    params.values().next().value!.dataSync(); // wait for the update (no-op on synchronous backends)
    const t3 = now();
    for (const g of named.values()) g.dispose();
    return { fb: t1 - t0, clip: t2 - t1, opt: t3 - t2 };
  };
  for (let i = 0; i < 2; i++) fullStep(); // warm-up (kernel compilation, allocator)
  const parts: { fb: number; clip: number; opt: number }[] = [];
  const t0 = now();
  for (let i = 0; i < steps; i++) parts.push(fullStep());
  const stepMs = (now() - t0) / steps;
  // Forward alone (training mode, with the loss), to split forward from backward.
  const fwd: number[] = [];
  for (let i = 0; i < Math.max(2, Math.ceil(steps / 2)); i++) {
    const t = now();
    for (const ids of micro) tf.tidy(() => lossOf(ids)().dataSync());
    fwd.push(now() - t);
  }
  const fb = median(parts.map((p) => p.fb));
  const forward = median(fwd);
  const out = {
    bench: 'train', preset: c.preset, backend, batch: c.batch, seq_len: c.seqLen, micro_batches: c.micro,
    tokens_per_s: +((c.batch * c.seqLen) / (stepMs / 1000)).toFixed(1),
    step_ms: +stepMs.toFixed(1),
    forward_ms: +forward.toFixed(1),
    backward_ms: +(fb - forward).toFixed(1),
    clip_ms: +median(parts.map((p) => p.clip)).toFixed(1),
    optimizer_ms: +median(parts.map((p) => p.opt)).toFixed(1),
    params: model.numParameters(),
  };
  for (const ids of micro) ids.dispose();
  opt.dispose();
  model.dispose();
  return out;
}

async function benchDecode(preset: string, backend: string): Promise<Record<string, unknown>> {
  const config = buildModelConfig(preset, {});
  const model = createCausalLM(config, { seed: 0 });
  const prompt = randomIds(1, 32, config.vocab_size, 2);
  const newTokens = 128;
  const gen = async (): Promise<void> => {
    // no end-of-sequence token: always exactly newTokens steps
    const [row] = model.generate(prompt, { maxNewTokens: newTokens, doSample: false, eosTokenId: null });
    if (row.length !== 32 + newTokens) throw new Error(`decode bench: generated ${row.length - 32} tokens, expected ${newTokens}`);
  };
  await gen(); // warm-up
  const t0 = now();
  await gen();
  const dt = (now() - t0) / 1000;
  prompt.dispose();
  model.dispose();
  return { bench: 'decode', preset, backend, prompt: 32, new_tokens: newTokens, tokens_per_s: +(newTokens / dt).toFixed(1) };
}

export async function run(argv: string[]): Promise<void> {
  let only: string | undefined;
  let presets: string[] | undefined;
  let steps = 5;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') only = argv[++i];
    else if (a === '--presets') presets = argv[++i].split(',');
    else if (a === '--steps') steps = Number(argv[++i]);
    else if (a === '--help' || a === '-h') {
      console.log('usage: wm bench [--only train|decode] [--presets doge-tiny,doge-tiny-moe,doge-20m,cheems-tiny,cheems-tiny-moe] [--steps N]');
      return;
    } else throw new Error(`wm bench: unknown argument '${a}'`);
  }
  if (only && only !== 'train' && only !== 'decode') throw new Error(`--only must be 'train' or 'decode', got '${only}'`);
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`--steps must be a positive integer, got ${steps}`);
  const backend = (await loadBackend()).name;
  if (only !== 'decode') {
    for (const c of TRAIN_CASES) {
      if (presets && !presets.includes(c.preset)) continue;
      console.log(JSON.stringify(benchTrain(c, backend, c.preset === 'doge-20m' ? Math.max(2, Math.ceil(steps / 2)) : steps)));
    }
  }
  if (only !== 'train') {
    for (const p of DECODE_PRESETS) {
      if (presets && !presets.includes(p)) continue;
      console.log(JSON.stringify(await benchDecode(p, backend)));
    }
  }
}
