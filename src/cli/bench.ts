/**
 * `wm bench [--only train|decode] [--presets doge-tiny,cheems-tiny] [--steps N] [--json FILE]`: throughput of every
 * benchmark case (Doge and Cheems), one JSON line per measurement on stdout as it finishes, a summary table at the end (stderr), and
 * with `--json FILE` all records as one JSON array (for plots and for scripts/bench-vs-torch.sh).
 *
 *   {"bench":"train","preset":"doge-tiny","backend":"wasm","threads":2,"batch":8,"seq_len":256,"tokens_per_s":...,
 *    "step_ms":...,"forward_ms":...,"backward_ms":...,"clip_ms":...,"optimizer_ms":...,"gflop_per_step":...,
 *    "step_cpu_ms":...,"gflops":...,"forward_gflops":...,"backward_gflops":...,"wasm_heap_mb":...,"rss_mb":...}
 *   {"bench":"decode","preset":"doge-tiny","backend":"wasm","prompt":32,"new_tokens":128,"tokens_per_s":...}
 *
 * Training: one full optimizer step (forward, backward, global-norm clip, AdamW) on random tokens, timed after
 * warm-up steps; the same step is then split into its parts (forward alone, forward+backward, clip, AdamW).
 * GFLOP/s counts the model's matmul FLOPs analytically (`matmulFlopsPerToken`: 2 x multiply-adds of every matmul
 * of the forward pass, attention over all T x T scores as computed; training = 3 x forward), so it says how close
 * the step runs to the machine's GEMM speed. `step_cpu_ms`: CPU time of the process per step (all threads), which
 * other jobs on a shared machine do not inflate (with one thread it is the step's time on an idle core).
 * Memory: `wasm_heap_mb` is the wasm heap's size after the case (it only grows, so it is the high-water mark of the
 * process so far), `rss_mb` the process's peak resident set so far; run one preset per process for per-preset peaks
 * (scripts/bench-vs-torch.sh does).
 * Decoding: greedy with the KV cache, a 32-token prompt and 128 new tokens, median of 3 after a warm-up.
 * The PyTorch reference for scale lives outside the project (../shared/bench/; scripts/bench-vs-torch.sh runs both).
 */
import * as fs from 'node:fs';
import { writeFileAtomic } from '../io/atomic';
import { loadBackend, tf } from '../runtime/backend';
import { createDogeHostDecoder, decodeHeadThreads, type HostDecodable } from '../runtime/doge-host-decoder';
import { DogeForCausalLM, disposeCache, type DogeCache } from '../models/doge';
import { buildModelConfig, createCausalLM } from '../models/auto';
import { allPresets } from '../models/registry';
import { CheemsConfig } from '../models/cheems';
import { DogeConfig } from '../models/doge';
import { variableGradsByName } from '../modules/module';
import { AdamW } from '../train/adamw';
import { sumOfSquares } from '../ops/fused';
import { observeWebGpuDispatches, webGpuDispatches } from '../runtime/webgpu';

/**
 * Kernels run while `f` runs: `kernels` counts tfjs kernel calls (every backend), `dispatches` the GPU programs the
 * webgpu backend submitted for them (0 elsewhere; reshapes and small CPU-side ops dispatch nothing). On a GPU the
 * step time divided by the dispatches says whether a step is dispatch-bound (a few µs each) or compute-bound.
 * `byKernel`: both counts per tfjs kernel name (a custom gradient's own ops count under their names, a GPU program
 * under the innermost kernel that ran it), for scripts/bench-kernels.ts.
 */
export function countKernels<T>(f: () => T): { result: T; kernels: number; dispatches: number; byKernel: Map<string, { kernels: number; dispatches: number }> } {
  // Patched on the engine's class, not on the engine: giving the engine object an own property and deleting it again
  // made every later measurement in the process slower (doge-tiny decoding after the training bench, 10 interleaved
  // runs: median 0.875 ms/token with the old patch, 0.787 with this one; the build before kernel counting, 0.78).
  const engine = Object.getPrototypeOf(tf.engine()) as { runKernelFunc: (...a: unknown[]) => unknown };
  const orig = engine.runKernelFunc;
  let kernels = 0;
  const byKernel = new Map<string, { kernels: number; dispatches: number }>();
  const entry = (name: string) => {
    let e = byKernel.get(name);
    if (!e) byKernel.set(name, (e = { kernels: 0, dispatches: 0 }));
    return e;
  };
  const stack: string[] = [];
  engine.runKernelFunc = function (this: unknown, ...a: unknown[]) {
    kernels++;
    const name = (a[0] as { kernelName?: string }).kernelName ?? 'customGrad';
    entry(name).kernels++;
    stack.push(name);
    try {
      return orig.apply(this, a);
    } finally {
      stack.pop();
    }
  };
  observeWebGpuDispatches(() => { entry(stack[stack.length - 1] ?? '(outside kernels)').dispatches++; });
  const d0 = webGpuDispatches();
  try {
    const result = f();
    return { result, kernels, dispatches: webGpuDispatches() - d0, byKernel };
  } finally {
    observeWebGpuDispatches(null);
    engine.runKernelFunc = orig;
  }
}

/** What the bench needs of a model (DogeForCausalLM and CheemsForCausalLM have it). */
export interface BenchModel {
  forward(input: { inputIds: tf.Tensor; labels?: tf.Tensor; training?: boolean; numItemsInBatch?: number; lossOnly?: boolean }): { loss?: tf.Scalar };
  parameters(): Map<string, tf.Variable>;
  numParameters(): number;
  generate(ids: tf.Tensor, options: { maxNewTokens: number; doSample: boolean; eosTokenId: null; onHostDecoder?: (info: { used: boolean }) => void }): number[][];
  dispose(): void;
}

/**
 * One row of the benchmark. `micro`: the batch runs as this many equal micro-batches with gradient accumulation
 * (same tokens per optimizer step). `flopsPerToken(T)`: matmul FLOPs of the forward pass per token at length T
 * (null: not counted yet; the GFLOP/s fields are then null).
 */
interface BenchCase {
  preset: string;
  vocab: number;
  make: () => BenchModel;
  flopsPerToken: ((seqLen: number) => number) | null;
  train?: { batch: number; seqLen: number; micro: number };
  decode?: boolean;
}

/** Forward matmul FLOPs per token of a Doge config at sequence length T (2 x multiply-adds). */
export function dogeMatmulFlopsPerToken(c: DogeConfig, T: number): number {
  const H = c.hidden_size, hd = c.headDim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;
  const attn = 2 * H * (nh + 2 * nkv) * hd // q, k, v
    + 2 * nkv * hd * nkv // dt_proj
    + 2 * nh * hd * H // o_proj
    + 2 * 2 * T * nh * hd; // q k^T and p v over all T keys (the masked half is computed too)
  let ffn = 2 * H * 2 * c.intermediate_size + 2 * c.intermediate_size * H; // gate+up, down
  if (c.is_moe) {
    const K = Math.floor(Math.sqrt(c.num_experts));
    ffn += 2 * H * 2 * K // router
      + 2 * 2 * c.num_experts_per_tok * H; // expert down_embed dots and up_embed mixing
  }
  return c.num_hidden_layers * (attn + ffn) + 2 * H * c.vocab_size; // + lm_head
}

/**
 * Forward matmul FLOPs per token of a dense Cheems config at length T (null for CDMoE configs: not counted yet).
 * SSD layers: the C, B, X, dt projections and o_proj, then the chunked scan at chunk Q with state size n = head_dim:
 * C B^T and its product with X inside each chunk (2 Q n + 2 Q p per head), each chunk's state X^T B (2 p n), the
 * states carried between chunks (2 (T/Q + 1) p n / Q) and C times the entering state (2 n p). Attention layers as
 * Doge's. The scan's small cumulative-sum products are left out.
 */
export function cheemsMatmulFlopsPerToken(c: CheemsConfig, T: number): number | null {
  if (c.is_moe) return null;
  const H = c.hidden_size, hd = c.headDim, nh = c.num_attention_heads, kvd = c.num_key_value_heads * hd;
  const I = c.intermediate_size, Q = Math.min(c.ssd_chunk_size, T), chunks = Math.ceil(T / Q);
  const ssd = 2 * H * (4 * H + nh) + nh * (2 * Q * hd + 2 * Q * hd + 2 * hd * hd + (2 * (chunks + 1) * hd * hd) / Q + 2 * hd * hd);
  const attn = 2 * H * (H + 2 * kvd) + 2 * kvd * nh + 2 * H * H + 2 * 2 * T * nh * hd;
  const ffn = 2 * 3 * H * I;
  return c.layersType.reduce((n, t) => n + (t === 'ssd' ? ssd : attn) + ffn, 0) + 2 * H * c.vocab_size;
}

/** A benchmark row for any preset `buildModelConfig` knows (Doge and Cheems). */
function modelCase(preset: string, train: BenchCase['train'], decode: boolean): BenchCase {
  const config = buildModelConfig(preset, {});
  return {
    preset, vocab: config.vocab_size, train, decode,
    make: () => createCausalLM(config, { seed: 0 }),
    flopsPerToken: config instanceof DogeConfig ? (T) => dogeMatmulFlopsPerToken(config, T)
      : config instanceof CheemsConfig && !config.is_moe ? (T) => cheemsMatmulFlopsPerToken(config, T)! : null,
  };
}

/**
 * The benchmark table; other model families add rows here (any other registered preset runs at the tiny shapes).
 * Shapes match ../shared/bench (PyTorch reference). Built when the bench runs (the registry is read then).
 */
const defaultCases = (): BenchCase[] => [
  modelCase('doge-tiny', { batch: 8, seqLen: 256, micro: 1 }, true),
  modelCase('doge-tiny-moe', { batch: 8, seqLen: 256, micro: 1 }, true),
  // 4 x 512 at vocab 32768 in one pass: the loss runs fused with lm_head in row chunks (`lossOnly`), so the
  // 268 MB-per-copy logits never exist
  modelCase('doge-20m', { batch: 4, seqLen: 512, micro: 1 }, true),
  modelCase('cheems-tiny', { batch: 8, seqLen: 256, micro: 1 }, true),
  modelCase('cheems-tiny-moe', { batch: 8, seqLen: 256, micro: 1 }, false),
];

export function randomIds(batch: number, seqLen: number, vocab: number, seed: number): tf.Tensor2D {
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
const round = (x: number, d = 1): number => +x.toFixed(d);

/** Wasm heap size in MB (0 on other backends). */
function wasmHeapMb(): number {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8 ? b.wasm.HEAPU8.length / 2 ** 20 : 0;
}

/** Peak resident set of the process so far, MB. */
const rssMb = (): number => process.resourceUsage().maxRSS / 1024;

/** The training loss of one micro-batch, as the Trainer computes it (labels = inputs, summed over `items` targets). */
const lossFn = (model: BenchModel, items: number) => (ids: tf.Tensor2D) => (): tf.Scalar =>
  model.forward({ inputIds: ids, labels: ids, training: true, numItemsInBatch: items, lossOnly: true }).loss as tf.Scalar;

/**
 * One optimizer step as the Trainer runs it (forward + backward per micro-batch with gradient accumulation, the
 * global-norm clip, AdamW); each call returns ms for forward+backward, clip and optimizer.
 */
export function trainStep(model: BenchModel, params: Map<string, tf.Variable>, opt: AdamW, micro: tf.Tensor2D[], items: number): () => { fb: number; clip: number; opt: number } {
  const lossOf = lossFn(model, items);
  return () => {
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
    const normT = tf.tidy(() => tf.sqrt(sumOfSquares([...named.values()]))); // the Trainer's clip (fused on webgpu)
    const norm = normT.dataSync()[0];
    normT.dispose();
    const t2 = now();
    opt.applyGradients(named, 1e-3, Math.min(1, 1 / (norm + 1e-6)));
    params.values().next().value!.dataSync(); // wait for the update (no-op on synchronous backends)
    const t3 = now();
    for (const g of named.values()) g.dispose();
    return { fb: t1 - t0, clip: t2 - t1, opt: t3 - t2 };
  };
}

function benchTrain(c: BenchCase, backend: string, threads: number, steps: number): Record<string, unknown> {
  const t = c.train!;
  const model = c.make();
  const params = model.parameters();
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.95, weightDecay: 0.01 });
  const mb = t.batch / t.micro;
  const micro = Array.from({ length: t.micro }, (_, i) => randomIds(mb, t.seqLen, c.vocab, 1 + i));
  const items = t.batch * (t.seqLen - 1);
  const lossOf = lossFn(model, items);

  const fullStep = trainStep(model, params, opt, micro, items);
  for (let i = 0; i < 2; i++) fullStep(); // warm-up (kernel setup, allocator, cached tables)
  const parts: { fb: number; clip: number; opt: number }[] = [];
  const t0 = now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) parts.push(fullStep());
  const stepMs = (now() - t0) / steps;
  const cpu = process.cpuUsage(c0);
  const stepCpuMs = (cpu.user + cpu.system) / 1000 / steps;
  // Forward alone (training mode, with the loss), to split forward from backward.
  const fwd: number[] = [];
  for (let i = 0; i < Math.max(2, Math.ceil(steps / 2)); i++) {
    const s = now();
    for (const ids of micro) tf.tidy(() => lossOf(ids)().dataSync());
    fwd.push(now() - s);
  }
  const counted = countKernels(fullStep);
  const fb = median(parts.map((p) => p.fb));
  const forward = median(fwd);
  const backward = Math.max(fb - forward, 1e-9);
  const fwdFlops = c.flopsPerToken ? c.flopsPerToken(t.seqLen) * t.batch * t.seqLen : NaN;
  const perSec = (flops: number, ms: number): number | null => (Number.isFinite(flops) ? round(flops / 1e6 / ms) : null);
  const out = {
    bench: 'train', preset: c.preset, backend, threads, batch: t.batch, seq_len: t.seqLen, micro_batches: t.micro,
    tokens_per_s: round((t.batch * t.seqLen) / (stepMs / 1000)),
    step_ms: round(stepMs),
    step_cpu_ms: round(stepCpuMs),
    forward_ms: round(forward),
    backward_ms: round(backward),
    clip_ms: round(median(parts.map((p) => p.clip))),
    optimizer_ms: round(median(parts.map((p) => p.opt))),
    gflop_per_step: Number.isFinite(fwdFlops) ? round((3 * fwdFlops) / 1e9, 2) : null,
    gflops: perSec(3 * fwdFlops, stepMs),
    forward_gflops: perSec(fwdFlops, forward),
    backward_gflops: perSec(2 * fwdFlops, backward),
    wasm_heap_mb: round(wasmHeapMb()),
    rss_mb: round(rssMb()),
    params: model.numParameters(),
    ...kernelFields(counted, stepMs),
  };
  for (const ids of micro) ids.dispose();
  opt.dispose();
  model.dispose();
  return out;
}

/** kernels_per_step (tfjs kernels), gpu_dispatches_per_step (webgpu) and the step's wall time per kernel in µs. */
function kernelFields(c: { kernels: number; dispatches: number }, ms: number, per = 'step', units = 1): Record<string, number | null> {
  const out: Record<string, number | null> = { [`kernels_per_${per}`]: round(c.kernels / units) };
  if (c.dispatches) out[`gpu_dispatches_per_${per}`] = round(c.dispatches / units);
  const n = (c.dispatches || c.kernels) / units;
  out.us_per_kernel = n > 0 ? round((ms * 1000) / n, 2) : null; // null: the host decoder ran no tfjs kernels
  return out;
}

function benchDecode(c: BenchCase, backend: string, threads: number, newTokens: number): Record<string, unknown> {
  const model = c.make();
  const prompt = randomIds(1, 32, c.vocab, 2);
  // which decoder generate ran after the prompt: the runtime's host decoder, or model.forward per token
  let decoder = 'tfjs';
  let headThreads = 0; // the host decoder's lm_head OpenBLAS threads, read when it is created (as it does)
  const onHostDecoder = (info: { used: boolean }) => { if (info.used) { decoder = 'fast'; headThreads = decodeHeadThreads(); } };
  const cpu: number[] = [];
  const gen = (): number => {
    const t0 = now(), c0 = process.cpuUsage();
    // no end-of-sequence token: always exactly newTokens steps
    const [row] = model.generate(prompt, { maxNewTokens: newTokens, doSample: false, eosTokenId: null, onHostDecoder });
    if (row.length !== 32 + newTokens) throw new Error(`decode bench: generated ${row.length - 32} tokens, expected ${newTokens}`);
    const u = process.cpuUsage(c0);
    cpu.push((u.user + u.system) / 1000);
    return now() - t0;
  };
  gen(); // warm-up
  cpu.length = 0;
  const ms = median([gen(), gen(), gen()]);
  const cpuMs = median(cpu);
  const counted = countKernels(gen); // kernels of a whole generation (prompt + new tokens), reported per token
  prompt.dispose();
  model.dispose();
  return {
    bench: 'decode', preset: c.preset, backend, threads, prompt: 32, new_tokens: newTokens, decoder,
    // the fast decoder's lm_head product runs on this many OpenBLAS threads (WM_DECODE_THREADS, auto)
    ...(decoder === 'fast' ? { lm_head_threads: headThreads } : {}),
    tokens_per_s: round(newTokens / (ms / 1000)), ms_per_token: round(ms / newTokens, 3),
    // process CPU time (all threads) per generated token: less inflated than wall time on a busy machine
    cpu_ms_per_token: round(cpuMs / newTokens, 3),
    wasm_heap_mb: round(wasmHeapMb()), rss_mb: round(rssMb()),
    ...kernelFields(counted, ms / newTokens, 'token', newTokens),
  };
}

/**
 * Decoding at a given context length with the bounded vs the full cache (doge-tiny, keep_window_size 2048): the cache
 * is filled with random keys (a step's cost does not depend on their values), then 16 tokens are decoded by the tfjs
 * path (model.forward with the cache) and, with the native BLAS, by the host decoder. Bounded: min(context, 2048) keys
 * per kv head and layer; full: every key. Per context the two caches are measured 3 times each, alternating which
 * goes first, and the median is reported; one untimed round runs first. Without that, the case measured first paid
 * one-time costs (kernel and buffer setup, the host decoder's tables) and the bounded cache read up to 2x slower.
 */
function benchCacheRows(backend: string): Record<string, unknown>[] {
  const config = DogeConfig.preset('doge-tiny');
  const model = new DogeForCausalLM(config, { seed: 0 });
  const nkv = config.num_key_value_heads, hd = config.headDim, keep = config.keep_window_size, steps = 16, reps = 3;
  const makeCache = (context: number, bounded: boolean): DogeCache => {
    const S = bounded ? Math.min(context, keep) : context;
    const layers = model.layers.map(() => ({
      k: tf.randomNormal([1, nkv, S, hd]), v: tf.randomNormal([1, nkv, S, hd]), d: tf.randomUniform([1, nkv, S]),
      ...(bounded ? { keys: Int32Array.from({ length: nkv * S }, (_, i) => context - S + (i % S)) } : {}),
    }));
    return bounded ? { layers, length: context, mask: null, bounded: true } : { layers, length: context, mask: null };
  };
  const bytesOf = (c: DogeCache) => c.layers.reduce((a, l) => a + 4 * (l.k.size + l.v.size + l.d.size), 0);
  /** One measurement: ms per token of both paths, and the cache's bytes before and after. */
  const measure = (context: number, mode: 'bounded' | 'full') => {
    const cache0 = makeCache(context, mode === 'bounded');
    const bytes = bytesOf(cache0);
    // tfjs path: one forward per token with the cache
    let cache = cache0;
    let t0 = now();
    for (let i = 0; i < steps; i++) {
      const o = model.forward({ inputIds: [[(i * 13) % config.vocab_size]], cache, useCache: true });
      o.logits.dispose();
      if (cache !== cache0) disposeCache(cache);
      cache = o.cache!;
    }
    const tfjsMs = (now() - t0) / steps;
    const bytesAfter = bytesOf(cache);
    if (cache !== cache0) disposeCache(cache);
    // host decoder (wasm + native BLAS)
    let hostMs: number | null = null;
    const choice = createDogeHostDecoder(model as unknown as HostDecodable, cache0, context + steps + 1);
    if (choice.stepper) {
      t0 = now();
      for (let i = 0; i < steps; i++) choice.stepper.step((i * 13) % config.vocab_size);
      hostMs = (now() - t0) / steps;
      choice.stepper.dispose();
    }
    disposeCache(cache0);
    return { tfjsMs, hostMs, bytes, bytesAfter };
  };
  measure(256, 'bounded'); // untimed: first-use costs
  measure(256, 'full');
  const out: Record<string, unknown>[] = [];
  for (const context of [256, 1024, 4096, 16384]) {
    const runs = { bounded: [] as ReturnType<typeof measure>[], full: [] as ReturnType<typeof measure>[] };
    for (let r = 0; r < reps; r++) {
      for (const mode of r % 2 ? (['full', 'bounded'] as const) : (['bounded', 'full'] as const)) runs[mode].push(measure(context, mode));
    }
    for (const mode of ['bounded', 'full'] as const) {
      const m = runs[mode];
      const host = m.every((x) => x.hostMs !== null) ? median(m.map((x) => x.hostMs!)) : null;
      out.push({
        bench: 'decode-cache', preset: 'doge-tiny', backend, keep_window_size: keep, context, cache: mode, steps, reps,
        tfjs_ms_per_token: round(median(m.map((x) => x.tfjsMs)), 3), host_ms_per_token: host === null ? null : round(host, 3),
        cache_bytes: m[0].bytes, cache_bytes_after: m[0].bytesAfter, rss_mb: round(rssMb()),
      });
    }
  }
  model.dispose();
  return out;
}

/** Human-readable summary of the records. */
function summary(records: Record<string, unknown>[]): string {
  const lines: string[] = [];
  const train = records.filter((r) => r.bench === 'train');
  if (train.length) {
    lines.push('train          batch  tok/s   step ms = fwd + bwd + clip + opt       GFLOP/s (fwd/bwd)   CPU ms/step  heap / RSS MB');
    for (const r of train) {
      lines.push(`${String(r.preset).padEnd(14)} ${`${r.batch}x${r.seq_len}`.padEnd(6)} ${String(r.tokens_per_s).padStart(6)}  `
        + `${String(r.step_ms).padStart(7)} = ${r.forward_ms} + ${r.backward_ms} + ${r.clip_ms} + ${r.optimizer_ms}`.padEnd(38)
        + (r.gflops === null ? '     – (not counted)' : `${String(r.gflops).padStart(6)} (${r.forward_gflops}/${r.backward_gflops})`).padEnd(20)
        + `${String(r.step_cpu_ms).padStart(10)}   ${r.wasm_heap_mb} / ${r.rss_mb}`
        + `   kernels/step ${r.gpu_dispatches_per_step ?? r.kernels_per_step}, ${r.us_per_kernel} µs/kernel`);
    }
  }
  const dec = records.filter((r) => r.bench === 'decode');
  if (dec.length) {
    lines.push('decode         tok/s   ms/token  CPU ms/token  decoder   (prompt 32, --new-tokens (128), greedy, KV cache)');
    for (const r of dec) lines.push(`${String(r.preset).padEnd(14)} ${String(r.tokens_per_s).padStart(5)}   ${String(r.ms_per_token).padStart(8)}  ${String(r.cpu_ms_per_token).padStart(12)}  ${r.decoder}`
      + `   kernels/token ${r.gpu_dispatches_per_token ?? r.kernels_per_token}, ${r.us_per_kernel} µs/kernel`);
  }
  const cache = records.filter((r) => r.bench === 'decode-cache');
  if (cache.length) {
    lines.push('decode-cache   context  cache    tfjs ms/token  host ms/token  cache bytes   (doge-tiny, keep_window_size 2048, 16 steps, median of 3)');
    for (const r of cache) {
      lines.push(`doge-tiny      ${String(r.context).padStart(7)}  ${String(r.cache).padEnd(7)}  ${String(r.tfjs_ms_per_token).padStart(13)}  ${String(r.host_ms_per_token ?? '-').padStart(13)}  ${String(r.cache_bytes).padStart(11)}`);
    }
  }
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<void> {
  const CASES = defaultCases();
  let only: string | undefined;
  let presets: string[] | undefined;
  let steps = 5;
  let jsonFile: string | undefined;
  // smaller shapes than the table's (scripts/gpu-check.sh --smoke on a software adapter); the records say which ran
  const shape: { batch?: number; seqLen?: number; newTokens?: number } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') only = argv[++i];
    else if (a === '--presets') presets = argv[++i].split(',');
    else if (a === '--steps') steps = Number(argv[++i]);
    else if (a === '--json') jsonFile = argv[++i];
    else if (a === '--batch' || a === '--seq-len' || a === '--new-tokens') {
      const v = Number(argv[++i]);
      if (!(Number.isInteger(v) && v >= 1)) throw new Error(`${a} must be a positive integer, got '${argv[i]}'`);
      shape[a === '--batch' ? 'batch' : a === '--seq-len' ? 'seqLen' : 'newTokens'] = v;
    }
    else if (a === '--help' || a === '-h') {
      console.log(`usage: wm bench [--only train|decode|cache] [--presets ${CASES.map((c) => c.preset).join(',')}] [--steps N] [--json FILE] [--batch N] [--seq-len N] [--new-tokens N]`);
      return;
    } else throw new Error(`wm bench: unknown argument '${a}'`);
  }
  if (only && only !== 'train' && only !== 'decode' && only !== 'cache') throw new Error(`--only must be 'train', 'decode' or 'cache', got '${only}'`);
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`--steps must be a positive integer, got ${steps}`);
  if (jsonFile === '') throw new Error('--json needs a file name');
  for (const p of presets ?? []) {
    if (CASES.some((c) => c.preset === p)) continue;
    // any other registered model's preset runs at the tiny shapes (src/models/registry.ts)
    if (!allPresets().includes(p)) throw new Error(`wm bench: unknown preset '${p}' (choose from ${[...new Set([...CASES.map((c) => c.preset), ...allPresets()])].join(', ')})`);
    CASES.push(modelCase(p, { batch: 8, seqLen: 256, micro: 1 }, true));
  }
  const info = await loadBackend();
  const backend = info.name;
  // what ran the products on wasm ('openblas' = native BLAS, 'xnnpack'); shown as wasm+openblas in the table
  const matmul = info.matmul ?? null;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const threads = backend === 'wasm' ? (require('@tensorflow/tfjs-backend-wasm') as { getThreadsCount(): number }).getThreadsCount() : 0;
  const records: Record<string, unknown>[] = [];
  const emit = (r: Record<string, unknown>): void => { r.matmul = matmul; records.push(r); console.log(JSON.stringify(r)); };
  const selected = CASES.filter((c) => !presets || presets.includes(c.preset))
    .map((c) => (c.train && (shape.batch || shape.seqLen) ? { ...c, train: { batch: shape.batch ?? c.train.batch, seqLen: shape.seqLen ?? c.train.seqLen, micro: 1 } } : c));
  if (only !== 'decode' && only !== 'cache') {
    for (const c of selected) if (c.train) emit(benchTrain(c, backend, threads, c.train.batch * c.train.seqLen > 2048 ? Math.max(2, Math.ceil(steps / 2)) : steps));
  }
  if (only !== 'train' && only !== 'cache') {
    for (const c of selected) if (c.decode) emit(benchDecode(c, backend, threads, shape.newTokens ?? 128));
  }
  // decode ms/token and cache bytes vs context, bounded vs full cache
  if ((only === undefined && !presets) || only === 'cache') for (const r of benchCacheRows(backend)) emit(r);
  console.error(summary(records));
  if (jsonFile) writeFileAtomic(jsonFile, JSON.stringify({ backend: matmul && matmul !== 'xnnpack' ? `${backend}+${matmul}` : backend, matmul, threads, date: new Date().toISOString(), records }, null, 1) + '\n');
}
