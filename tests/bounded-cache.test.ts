// Bounded-cache decoding ("trained with attention, decoded as a state space", src/modules/dmattn-cache.ts): a decoder
// keeping at most keep_window_size keys per kv head gives the logits of the full-cache decoder with the same tie rule
// ('recent') at every step, and of one forward over the whole sequence where no d ties (torch's rule there); Doge
// with GQA, Cheems with a window (per-query-head masks), left padding, every d tied (untrained A = 0: a sliding window),
// flat memory, the fallback with a sliding window, and the DMA config fields in config.json.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../src/tf';
import { loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM, type DogeCache } from '../src/models/doge';
import { CheemsConfig, CheemsForCausalLM } from '../src/models/cheems';
import { DecodingSession } from '../src/generation';
import { Rng } from '../src/ops';
import { maxAbs, maxErr, randomizeDoge } from './parity-helpers';

before(async () => { await loadBackend({ log: false, workload: 'inference' }); });

const dogeSmall = (over: Record<string, unknown> = {}) => new DogeConfig({
  vocab_size: 400, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  keep_window_size: 8, tie_word_embeddings: true, ...over,
});

/** Distinct tokens (no repeated v in layer 0, so no tied d when A != 0). */
function distinctTokens(n: number, vocab: number, seed: number): number[] {
  const rng = new Rng(seed);
  const ids = Array.from({ length: vocab }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) { const j = Math.floor(rng.next() * (i + 1)); [ids[i], ids[j]] = [ids[j], ids[i]]; }
  return ids.slice(0, n);
}

type Model = DogeForCausalLM | CheemsForCausalLM;

/** Feed `tokens` one at a time (after a prompt of `prompt` tokens) through forward with a cache; logits per step. */
function decode(m: Model, tokens: number[], prompt: number, opts: { cacheMode: 'full' | 'bounded'; topkTies?: 'torch' | 'recent' }): { logits: Float32Array[]; slots: number[] } {
  let cache: DogeCache | undefined;
  const logits: Float32Array[] = [], slots: number[] = [];
  for (let i = prompt; i <= tokens.length; i++) {
    const ids = i === prompt ? [tokens.slice(0, prompt)] : [[tokens[i - 1]]];
    if (i === tokens.length) break;
    const out = m.forward({ inputIds: ids, cache: cache as never, useCache: true, logitsToKeep: 1, ...opts });
    logits.push(Float32Array.from(out.logits.dataSync()));
    out.logits.dispose();
    if (cache) tf.dispose(cache.layers as unknown as tf.TensorContainer);
    cache = out.cache as DogeCache;
    const attn = cache.layers.find((l) => 'k' in l) as { k: tf.Tensor };
    slots.push(attn.k.shape[2]!);
  }
  if (cache) tf.dispose(cache.layers as unknown as tf.TensorContainer);
  return { logits, slots };
}

function worst(a: Float32Array[], b: Float32Array[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((l, i) => maxErr(l, b[i]) / maxAbs(b[i])));
}

test('Doge GQA: bounded cache = full cache (same tie rule) = one forward over the sequence (distinct d), cache flat at keep_window_size', () => {
  const m = new DogeForCausalLM(dogeSmall(), { seed: 1 });
  randomizeDoge(m, 7); // A != 0
  const tokens = distinctTokens(120, 400, 3);
  const bounded = decode(m, tokens, 5, { cacheMode: 'bounded' });
  const full = decode(m, tokens, 5, { cacheMode: 'full', topkTies: 'recent' });
  const fullTorch = decode(m, tokens, 5, { cacheMode: 'full' });
  const whole = m.forward({ inputIds: [tokens.slice(0, -1)] });
  const V = 400, W = whole.logits.dataSync() as Float32Array;
  const wholeSteps = bounded.logits.map((_, s) => W.slice((4 + s) * V, (5 + s) * V));
  whole.logits.dispose();
  const eFull = worst(bounded.logits, full.logits), eTorch = worst(bounded.logits, fullTorch.logits), eWhole = worst(bounded.logits, wholeSteps);
  console.log(`Doge GQA keep 8, ${bounded.logits.length} steps: bounded vs full ${eFull.toExponential(2)}, vs full (torch ties) ${eTorch.toExponential(2)}, vs one forward ${eWhole.toExponential(2)}; slots ${bounded.slots.slice(0, 6)}...${bounded.slots.at(-1)}, full ${full.slots.at(-1)}`);
  assert.ok(eFull < 1e-5 && eTorch < 1e-5 && eWhole < 1e-4);
  assert.deepEqual(bounded.slots.slice(0, 5), [5, 6, 7, 8, 8]);
  assert.ok(bounded.slots.every((s, i) => i < 3 || s === 8));
  assert.equal(full.slots.at(-1), 120 - 1);
  m.dispose();
});

test('every d tied (A = 0, repeated tokens): bounded = full cache with the recent tie rule, and the cache holds the last keep_window_size positions', () => {
  const m = new DogeForCausalLM(dogeSmall({ keep_window_size: 6 }), { seed: 2 });
  randomizeDoge(m, 9);
  for (const [name, v] of m.parameters()) if (name.endsWith('.A')) v.assign(tf.zeros(v.shape));
  const rng = new Rng(5);
  const tokens = Array.from({ length: 60 }, () => Math.floor(rng.next() * 5)); // a 5-token alphabet: many repeats
  const bounded = decode(m, tokens, 3, { cacheMode: 'bounded' });
  const full = decode(m, tokens, 3, { cacheMode: 'full', topkTies: 'recent' });
  const torch = decode(m, tokens, 3, { cacheMode: 'full', topkTies: 'torch' });
  const e = worst(bounded.logits, full.logits), eTorch = worst(bounded.logits, torch.logits);
  console.log(`ties everywhere: bounded vs full (recent) ${e.toExponential(2)}; vs full with torch's order ${eTorch.toExponential(2)} (a different rule)`);
  assert.ok(e < 1e-5);
  assert.ok(eTorch > 1e-3, 'the tie rule matters here');
  const session = new DecodingSession<DogeCache>(m);
  for (const t of tokens.slice(0, 30)) session.step([[t]]);
  const keys = session.cachedKeys(0)!;
  assert.deepEqual(keys.shape, [1, 2, 6]);
  assert.deepEqual([...keys.keys], [24, 25, 26, 27, 28, 29, 24, 25, 26, 27, 28, 29]);
  session.dispose();
  m.dispose();
});

/** Batch decoding with left padding: prompts (padded to the longest), then `steps` new tokens per row, teacher-forced. */
function decodeBatch(m: Model, prompts: number[][], next: number[][], opts: { cacheMode: 'full' | 'bounded'; topkTies?: 'torch' | 'recent' }): Float32Array[] {
  const L = Math.max(...prompts.map((p) => p.length));
  const mask = prompts.map((p) => [...new Array(L - p.length).fill(0), ...new Array(p.length).fill(1)]);
  let ids = prompts.map((p) => [...new Array(L - p.length).fill(0), ...p]);
  let cache: DogeCache | undefined;
  const logits: Float32Array[] = [];
  for (let s = 0; s <= next[0].length; s++) {
    const out = m.forward({ inputIds: ids, attentionMask: mask, cache: cache as never, useCache: true, logitsToKeep: 1, ...opts });
    logits.push(Float32Array.from(out.logits.dataSync()));
    out.logits.dispose();
    if (cache) tf.dispose(cache.layers as unknown as tf.TensorContainer);
    cache = out.cache as DogeCache;
    if (s === next[0].length) break;
    ids = next.map((r) => [r[s]]);
    mask.forEach((r) => r.push(1));
  }
  if (cache) tf.dispose(cache.layers as unknown as tf.TensorContainer);
  return logits;
}

test('left padding, batch 2: bounded = full cache at every step (distinct tokens); generate runs on it; tensors and cache bytes flat', () => {
  const m = new DogeForCausalLM(dogeSmall({ pad_token_id: 0 }), { seed: 3 });
  randomizeDoge(m, 11);
  const toks = distinctTokens(120, 400, 8).filter((t) => t !== 0);
  const prompts = [toks.slice(0, 7), toks.slice(7, 10)];
  const next = [toks.slice(10, 60), toks.slice(60, 110)];
  const lb = decodeBatch(m, prompts, next, { cacheMode: 'bounded' });
  const lf = decodeBatch(m, prompts, next, { cacheMode: 'full', topkTies: 'recent' });
  const lt = decodeBatch(m, prompts, next, { cacheMode: 'full' });
  const e = worst(lb, lf), et = worst(lb, lt);
  console.log(`left padding: bounded vs full worst logit error ${e.toExponential(2)} (torch ties ${et.toExponential(2)}) over ${lb.length} steps`);
  assert.ok(e < 1e-5 && et < 1e-5);
  const g = m.generate(prompts, { maxNewTokens: 30, eosTokenId: null, fastDecode: false });
  assert.deepEqual(g.map((r) => r.length), [37, 33]);
  // memory: tensors and bytes flat once the window is full
  const session = new DecodingSession<DogeCache>(m);
  const bytes: number[] = [], counts: number[] = [];
  for (let i = 0; i < 40; i++) { session.step([[(i * 7) % 400]]); bytes.push(session.cacheBytes()); counts.push(tf.memory().numTensors); }
  assert.ok(bytes.slice(10).every((b) => b === bytes[10]), `cache bytes ${bytes}`);
  assert.ok(counts.slice(10).every((c) => c === counts[10]), `tensors ${counts}`);
  session.dispose();
  m.dispose();
});

test('Cheems with keep_window_size (per-query-head masks over GQA kv heads): bounded = full; SSD states plus a bounded KV cache', () => {
  const c = CheemsConfig.preset('cheems-tiny', { vocab_size: 300, hidden_size: 32, intermediate_size: 40, num_attention_heads: 4, num_key_value_heads: 2, keep_window_size: 5 });
  assert.equal(c.toJSON().keep_window_size, 5);
  const m = new CheemsForCausalLM(c, { seed: 4 });
  randomizeDoge(m, 13);
  const tokens = distinctTokens(50, 300, 6);
  const bounded = decode(m, tokens, 4, { cacheMode: 'bounded' });
  const full = decode(m, tokens, 4, { cacheMode: 'full', topkTies: 'recent' });
  const e = worst(bounded.logits, full.logits);
  console.log(`Cheems keep 5: bounded vs full ${e.toExponential(2)}; attention slots ${bounded.slots.slice(0, 4)}...${bounded.slots.at(-1)} (<= 2 x 5: union of 2 query heads)`);
  assert.ok(e < 1e-5);
  assert.ok(bounded.slots.every((s) => s <= 10) && bounded.slots.at(-1)! >= 5);
  // without keep_window_size every key stays (the seed), silently
  const seed = new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny', { vocab_size: 300, hidden_size: 32, intermediate_size: 40 }), { seed: 4 });
  assert.equal(decode(seed, tokens.slice(0, 20), 4, { cacheMode: 'bounded' }).slots.at(-1), 19);
  seed.dispose();
  m.dispose();
});

test('sliding_window: the bound would not be exact, so the full cache is kept and the log says so once', () => {
  const m = new DogeForCausalLM(dogeSmall({ sliding_window: 12 }), { seed: 5 });
  const warns: string[] = [];
  const orig = console.warn;
  console.warn = (msg: string) => warns.push(msg);
  try {
    const s1 = decode(m, distinctTokens(20, 400, 1), 3, { cacheMode: 'bounded' }).slots;
    decode(m, distinctTokens(20, 400, 2), 3, { cacheMode: 'bounded' });
    assert.equal(s1.at(-1), 19);
  } finally { console.warn = orig; }
  assert.deepEqual(warns, ['bounded decoding cache: not exact with sliding_window 12 (it expires keys that evicted others); keeping the full cache']);
  m.dispose();
});

test('DMA config fields: defaults are HF and stay out of config.json; window_size is keep_window_size; saved and loaded', () => {
  const d = new DogeConfig({ window_size: 64, dynamic_mask_bias: 'linear', dynamic_mask_select: 'key' });
  assert.equal(d.keep_window_size, 64);
  const j = d.toJSON();
  assert.equal(j.dynamic_mask_bias, 'linear');
  assert.equal(j.dynamic_mask_select, 'key');
  assert.equal('dynamic_mask_type' in j, false);
  assert.equal('window_size' in j, false);
  assert.equal('dynamic_mask_bias' in new DogeConfig({}).toJSON(), false);
  assert.throws(() => new DogeConfig({ dynamic_mask_type: 'sigmoid' as never }), /DogeConfig: dynamic_mask_type must be 'topk' or 'relu', got "sigmoid"/);
  assert.throws(() => new DogeConfig({ window_size: 8, keep_window_size: 16 }), /DogeConfig: window_size \(8\) is another name of keep_window_size \(16\)/);
  assert.throws(() => new CheemsConfig({ keep_window_size: 0 }), /CheemsConfig: keep_window_size must be an integer >= 1 or null, got 0/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-dma-'));
  const m = new DogeForCausalLM(dogeSmall({ dynamic_mask_bias: 'linear', dynamic_mask_type: 'relu' }), { seed: 1 });
  m.savePretrained(dir);
  const back = DogeForCausalLM.fromPretrained(dir);
  assert.equal(back.config.dynamic_mask_bias, 'linear');
  assert.equal(back.layers[0].attn.dynamicMaskType, 'relu');
  const cm = new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny', { window_size: 16, dynamic_mask_bias: 'linear' }), { seed: 1 });
  cm.savePretrained(dir);
  const cb = CheemsForCausalLM.fromPretrained(dir);
  assert.equal(cb.config.keep_window_size, 16);
  assert.equal(cb.config.dynamic_mask_bias, 'linear');
  for (const x of [m, back, cm, cb]) x.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('long inputs at inference: chunked through the cache = one pass (logits, loss; Doge and Cheems); too long is a clear error', async () => {
  const { INFERENCE_MEMORY } = await import('../src/models/causal-lm');
  const saved = { ...INFERENCE_MEMORY };
  const d = new DogeForCausalLM(dogeSmall({ keep_window_size: 16 }), { seed: 6 });
  randomizeDoge(d, 15);
  const cm = new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny', { vocab_size: 400, hidden_size: 32, intermediate_size: 40, ssd_chunk_size: 8, keep_window_size: 12 }), { seed: 6 });
  randomizeDoge(cm, 15);
  const ids = [distinctTokens(150, 400, 9), distinctTokens(150, 400, 10)];
  const mask = [new Array(150).fill(1), [0, 0, 0, ...new Array(147).fill(1)]];
  // no loss target read at a padding position (position t predicts labels[t + 1])
  const labels = ids.map((r, b) => r.map((t, j) => (j > 0 && mask[b][j - 1] ? t : -100)));
  // padding query rows see no key: one pass averages all T keys there, a chunk the keys it holds; compare real rows
  const real = (l: tf.Tensor) => tf.tidy(() => tf.concat([tf.slice(l, [0, 0, 0], [1, 150, -1]), tf.slice(l, [1, 3, 0], [1, 147, -1])], 1).dataSync());
  try {
    for (const m of [d, cm] as Model[]) {
      const one = m.forward({ inputIds: ids, attentionMask: mask, labels });
      INFERENCE_MEMORY.chunkBytes = 64 * 1024; // forces chunks of ~16-40 rows
      const chunked = m.forward({ inputIds: ids, attentionMask: mask, labels });
      INFERENCE_MEMORY.chunkBytes = saved.chunkBytes;
      const e = maxErr(real(one.logits), real(chunked.logits)) / maxAbs(real(one.logits));
      const le = Math.abs(one.loss!.dataSync()[0] - chunked.loss!.dataSync()[0]);
      console.log(`${m.constructor.name}: chunked vs one pass logits ${e.toExponential(2)}, loss ${le.toExponential(2)}`);
      assert.ok(e < 1e-5 && le < 1e-5);
      tf.dispose([one.logits, one.loss!, chunked.logits, chunked.loss!]);
    }
    INFERENCE_MEMORY.linearBytes = 512 * 1024;
    INFERENCE_MEMORY.chunkBytes = 64 * 1024;
    assert.throws(() => d.forward({ inputIds: [distinctTokens(400, 400, 1)] }),
      /^Error: forward: batch 1 x 400 tokens needs about 0\.8 MB \(logits 0\.6 MB, hidden states 0\.1 MB, KV cache 0\.1 MB\), more than the 0\.5 MB an inference forward may hold; pass lossOnly or logitsToKeep, a bounded cache, or a shorter input$/);
  } finally {
    Object.assign(INFERENCE_MEMORY, saved);
  }
  d.dispose(); cm.dispose();
});

test('host decoder with a bounded cache (native BLAS): the tokens and logits of the tfjs bounded decoder; slots stay keep_window_size + 1', async (t) => {
  const { wasmNativeBlas } = await import('../src/runtime/wasm-patches');
  if (!wasmNativeBlas()) { t.skip('no native BLAS'); return; }
  for (const over of [{}, { dynamic_mask_bias: 'linear' }, { num_key_value_heads: 1 }]) {
    const m = new DogeForCausalLM(dogeSmall({ vocab_size: 64, keep_window_size: 8, ...over }), { seed: 8 });
    randomizeDoge(m, 17);
    const lf: Float32Array[] = [], lp: Float32Array[] = [];
    const used: boolean[] = [];
    const opts = { maxNewTokens: 150, eosTokenId: null, cache: 'bounded' as const };
    const fast = m.generate([[3, 9, 4, 1, 5, 9, 2, 6, 5, 3]], { ...opts, fastDecode: true, onHostDecoder: (i) => used.push(i.used), onLogits: (l) => lf.push(Float32Array.from(l)) });
    const plain = m.generate([[3, 9, 4, 1, 5, 9, 2, 6, 5, 3]], { ...opts, fastDecode: false, onLogits: (l) => lp.push(Float32Array.from(l)) });
    const e = worst(lf, lp);
    console.log(`host decoder bounded ${JSON.stringify(over)}: worst logit error vs tfjs bounded ${e.toExponential(2)} over ${lf.length} steps (tokens repeat: ties resolved alike)`);
    assert.deepEqual(used, [true]);
    assert.deepEqual(fast, plain);
    assert.ok(e < 1e-4);
    m.dispose();
  }
});

test('host decoder, bounded cache with per-query-head masks (dynamicMaskHeads query, GQA): union slots, same tokens and logits', async (t) => {
  const { wasmNativeBlas } = await import('../src/runtime/wasm-patches');
  if (!wasmNativeBlas()) { t.skip('no native BLAS'); return; }
  const { DynamicMaskAttention } = await import('../src/modules/dmattn');
  const m = new DogeForCausalLM(dogeSmall({ vocab_size: 64, keep_window_size: 6 }), { seed: 9 });
  // every layer's attention replaced by one with a dynamic mask per query head (as the decoder-options test does)
  for (const l of m.layers) {
    const a = new DynamicMaskAttention({ hiddenSize: 32, numHeads: 4, numKvHeads: 2, keepWindowSize: 6, dynamicMaskHeads: 'query' }, { rng: new Rng(3), std: 0.02 });
    Object.defineProperty(l, 'attn', { value: a });
  }
  randomizeDoge(m, 19);
  for (const l of m.layers) randomizeDoge(l.attn, 23);
  const lf: Float32Array[] = [], lp: Float32Array[] = [], used: boolean[] = [];
  const opts = { maxNewTokens: 60, eosTokenId: null, cache: 'bounded' as const };
  const fast = m.generate([[3, 9, 4, 1, 5]], { ...opts, fastDecode: true, onHostDecoder: (i) => used.push(i.used), onLogits: (l) => lf.push(Float32Array.from(l)) });
  const plain = m.generate([[3, 9, 4, 1, 5]], { ...opts, fastDecode: false, onLogits: (l) => lp.push(Float32Array.from(l)) });
  const e = worst(lf, lp);
  console.log(`host decoder bounded, per-query-head masks: worst logit error ${e.toExponential(2)} over ${lf.length} steps`);
  assert.deepEqual(used, [true]);
  assert.deepEqual(fast, plain);
  assert.ok(e < 1e-4);
  for (const l of m.layers) l.attn.dispose();
  m.dispose();
});

test('keepBest (the eviction of a bounded step) keeps exactly what sorting every candidate keeps, ties included', async () => {
  const { keepBest } = await import('../src/modules/dmattn-cache');
  const rng = new Rng(3);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rng.next() * 40);
    // few distinct values: many ties, which the 'recent' order breaks by the later index
    const d = Array.from({ length: n }, () => Math.floor(rng.next() * 4));
    const idx = Array.from({ length: n }, (_, i) => i);
    const before = (x: number, y: number) => d[x] > d[y] || (d[x] === d[y] && x > y);
    for (const keep of [1, n - 12, n - 9, n - 8, n - 3, n - 1, n, n + 2].filter((k) => k >= 1)) {
      const sorted = [...idx].sort((x, y) => (before(x, y) ? -1 : 1)).slice(0, keep);
      assert.deepEqual([...keepBest(idx, keep, before)].sort((a, b) => a - b), sorted.sort((a, b) => a - b), `n ${n} keep ${keep}`);
    }
  }
  assert.deepEqual(keepBest([5, 2, 9], 2, (x, y) => x > y).sort(), [5, 9]);
});
