// CheemsForCausalLM invariants beyond the fixtures: chunked SSD == recurrence for every chunk size, prefill in pieces
// == one pass, cached == full recomputation (left-padded batch), padded row == unpadded row, all-SSD and
// all-attention patterns, RoPE's relative positions, packed documents, finite logits on 2048 tokens with the
// contract's init, parameter counts, checkpoints, config errors, live tensor counts.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { Rng } from '../src/ops';
import { ssdChunkScan, ssdRecurrentScan, SSDMixer, CDMoE, DynamicMaskAttention } from '../src/modules';
import { CheemsConfig, CheemsForCausalLM, type CheemsCache, type CheemsConfigInput } from '../src/models/cheems';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { loadCausalLM } from '../src/models/auto';
import { AdamW } from '../src/train/adamw';
import { maxAbs, maxErr } from './parity-helpers';

const FIX = path.join(__dirname, 'fixtures', 'cheems');

before(async () => { await loadBackend({ log: false }); });

/** A small random Cheems with non-trivial weights (norms, residuals, A of both signs in attention, A < 0 in SSD). */
function smallModel(overrides: CheemsConfigInput, seed = 1): CheemsForCausalLM {
  const config = new CheemsConfig({
    vocab_size: 61, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
    attn_layer_period: 2, attn_layer_offset: 1, ssd_chunk_size: 4, rope_scaling: null, initializer_range: 0.2, ...overrides,
  });
  const model = new CheemsForCausalLM(config, { seed });
  const rng = new Rng(seed + 100);
  for (const [name, v] of model.parameters()) {
    if (/(layernorm|residual)\.weight$/.test(name)) v.assign(tf.tidy(() => tf.add(v, tf.tensor(rng.normalArray(v.size, 0.1), v.shape))));
    if (/attn\.A$/.test(name)) v.assign(tf.tensor(rng.normalArray(v.size, 1), v.shape));
  }
  return model;
}

function ids(rows: number, T: number, V: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: rows }, () => Array.from({ length: T }, () => Math.floor(rng.next() * V)));
}

function logitsOf(model: CheemsForCausalLM, input: Parameters<CheemsForCausalLM['forward']>[0]): Float32Array {
  const out = model.forward(input);
  const l = Float32Array.from(out.logits.dataSync());
  tf.dispose(out as unknown as tf.TensorContainer);
  return l;
}

test('SSD: chunked scan == recurrence for chunk sizes 1, 2, Q < T, Q = T, Q > T, with and without a starting state', () => {
  const rng = new Rng(3);
  const b = 2, T = 11, h = 3, p = 4, n = 4;
  const x = tf.tensor(rng.normalArray(b * T * h * p, 1), [b, T, h, p]);
  const dt = tf.softplus(tf.tensor(rng.normalArray(b * T * h, 1), [b, T, h]));
  const A = tf.tensor1d([-0.5, -1, -2]);
  const B = tf.tensor(rng.normalArray(b * T * h * n, 1), [b, T, h, n]);
  const C = tf.tensor(rng.normalArray(b * T * h * n, 1), [b, T, h, n]);
  const s0 = tf.tensor(rng.normalArray(b * h * p * n, 1), [b, h, p, n]);
  for (const state0 of [null, s0]) {
    const ref = ssdRecurrentScan(x, dt, A, B, C, state0);
    const scale = maxAbs(ref.y.dataSync());
    for (const Q of [1, 2, 4, 11, 16]) {
      const r = ssdChunkScan(x, dt, A, B, C, Q, state0);
      const ey = maxErr(r.y.dataSync(), ref.y.dataSync()), es = maxErr(r.state.dataSync(), ref.state.dataSync());
      console.log(`ssd chunk ${Q} (T ${T}, state0 ${!!state0}): y err ${ey.toExponential(2)} (scale ${scale.toFixed(1)}), state err ${es.toExponential(2)}`);
      assert.ok(ey <= 1e-5 * Math.max(1, scale) && es <= 1e-5 * Math.max(1, maxAbs(ref.state.dataSync())), `chunk ${Q}`);
      tf.dispose([r.y, r.state]);
    }
    tf.dispose([ref.y, ref.state]);
  }
  // a positive A (growing state) is not clamped: still equal to the recurrence
  const Apos = tf.tensor1d([0.3, 0.1, 0.2]);
  const ref = ssdRecurrentScan(x, dt, Apos, B, C), r = ssdChunkScan(x, dt, Apos, B, C, 4);
  assert.ok(maxErr(r.y.dataSync(), ref.y.dataSync()) <= 1e-5 * maxAbs(ref.y.dataSync()), 'maxErr(r.y.dataSync(), ref.y.dataSync()) <= 1e-5 * maxAbs(ref.y.dataSync())');
  tf.dispose([x, dt, A, B, C, s0, Apos, ref.y, ref.state, r.y, r.state]);
});

test('model: logits do not depend on ssd_chunk_size (1, 2, 5 < T, 12 = T, 16 > T) on the fixture hybrid-moe and padding-bias models', () => {
  for (const name of ['hybrid-moe', 'padding-bias']) {
    const model = CheemsForCausalLM.fromPretrained(path.join(FIX, name));
    const x = ids(2, 12, model.config.vocab_size, 5);
    const mask = [new Array(12).fill(1), [0, 0, 0, ...new Array(9).fill(1)]];
    const ref = logitsOf(model, { inputIds: x, attentionMask: mask, ssdChunkSize: 12 });
    const scale = maxAbs(ref);
    for (const Q of [1, 2, 5, 16]) {
      const err = maxErr(logitsOf(model, { inputIds: x, attentionMask: mask, ssdChunkSize: Q }), ref);
      console.log(`${name}: chunk ${Q} vs ${12}: logits err ${err.toExponential(2)} (scale ${scale.toFixed(1)})`);
      assert.ok(err <= 1e-5 * scale, 'err <= 1e-5 * scale');
    }
    model.dispose();
  }
});

test('prefill in pieces (8 + 7 + 6) == one pass, and one-token steps continue it; GQA + MoE + a left-padded row', () => {
  const model = CheemsForCausalLM.fromPretrained(path.join(FIX, 'hybrid-moe'));
  const V = model.config.vocab_size;
  const x = ids(2, 21, V, 7);
  const mask = [new Array(21).fill(1), [0, 0, ...new Array(19).fill(1)]];
  const full = logitsOf(model, { inputIds: x, attentionMask: mask });
  let cache: CheemsCache | undefined;
  let worst = 0;
  let start = 0;
  for (const len of [8, 7, 6]) {
    const piece = x.map((r) => r.slice(start, start + len));
    const out = model.forward({ inputIds: piece, attentionMask: mask.map((r) => r.slice(0, start + len)), cache, useCache: true });
    if (cache) tf.dispose(cache.layers as unknown as tf.TensorContainer);
    cache = out.cache;
    const got = out.logits.dataSync();
    for (let b = 0; b < 2; b++) for (let t = 0; t < len; t++) {
      if (mask[b][start + t] === 0) continue; // padded queries are exempt (uniform over another key set)
      const g = got.subarray((b * len + t) * V, (b * len + t + 1) * V), f = full.subarray((b * 21 + start + t) * V, (b * 21 + start + t + 1) * V);
      worst = Math.max(worst, maxErr(g, f));
    }
    out.logits.dispose();
    start += len;
  }
  tf.dispose(cache!.layers as unknown as tf.TensorContainer);
  console.log(`prefill in pieces vs one pass: max err ${worst.toExponential(2)} (scale ${maxAbs(full).toFixed(1)})`);
  assert.ok(worst <= 1e-5 * maxAbs(full), 'worst <= 1e-5 * maxAbs(full)');
  model.dispose();
});

test('generate: left-padded batch, cached == full recomputation (tokens, step logits); padded row == the row alone', () => {
  const model = CheemsForCausalLM.fromPretrained(path.join(FIX, 'hybrid-moe'));
  const prompts = [[5, 9, 13, 2, 40, 7], [33, 4, 8]];
  const la: Float32Array[] = [], lb: Float32Array[] = [];
  const a = model.generate(prompts, { maxNewTokens: 8, eosTokenId: null, onLogits: (l) => la.push(Float32Array.from(l)) });
  const b = model.generate(prompts, { maxNewTokens: 8, eosTokenId: null, useCache: false, onLogits: (l) => lb.push(Float32Array.from(l)) });
  assert.deepEqual(a, b);
  const worst = Math.max(...la.map((l, i) => maxErr(l, lb[i])));
  console.log(`cheems generate cached vs uncached, left-padded batch: tokens identical, step-logit err ${worst.toExponential(2)}`);
  assert.ok(worst < 1e-4, 'worst < 1e-4');
  // bias-free model: a left-padded row gives exactly the tokens of the row alone
  assert.deepEqual(model.generate([prompts[1]], { maxNewTokens: 8, eosTokenId: null })[0], a[1]);
  model.dispose();
});

test('patterns: all-SSD (offset >= period) and all-attention (period 1), cached == uncached, finite gradients', () => {
  for (const [label, o] of [['all-ssd', { attn_layer_period: 4, attn_layer_offset: 4 }], ['all-attn', { attn_layer_period: 1, attn_layer_offset: 0 }],
    ['moe+bias+untied', { is_moe: true, num_cdmoe_experts: 30, num_cdmoe_heads: 3, num_cdmoe_experts_per_head: 2, expert_retrieval_size: 6, hidden_bias: true, tie_word_embeddings: false, num_key_value_heads: 1 }]] as const) {
    const model = smallModel(o as CheemsConfigInput);
    const kinds = model.config.layersType;
    if (label === 'all-ssd') assert.deepEqual(kinds, ['ssd', 'ssd', 'ssd', 'ssd']);
    if (label === 'all-attn') assert.deepEqual(kinds, ['attn', 'attn', 'attn', 'attn']);
    assert.equal(model.numParameters(), model.config.numParameters(), `${label}: parameter formula`);
    const p = [[3, 1, 4, 1, 5, 9, 2, 6, 5]];
    const la: Float32Array[] = [], lb: Float32Array[] = [];
    const a = model.generate(p, { maxNewTokens: 6, eosTokenId: null, onLogits: (l) => la.push(Float32Array.from(l)) });
    const b = model.generate(p, { maxNewTokens: 6, eosTokenId: null, useCache: false, onLogits: (l) => lb.push(Float32Array.from(l)) });
    assert.deepEqual(a, b, label);
    const err = Math.max(...la.map((l, i) => maxErr(l, lb[i])));
    const x = ids(2, 9, 61, 2);
    const { value, grads } = model.variableGrads(() => model.forward({ inputIds: x, labels: x, training: true }).loss!);
    assert.equal(grads.size, model.parameters().size);
    for (const [n, g] of grads) assert.ok(g.dataSync().every(Number.isFinite), `${label}: gradient ${n} finite`);
    console.log(`${label}: layers ${kinds.join(',')}, cached vs uncached err ${err.toExponential(2)}, loss ${value.dataSync()[0].toFixed(4)}, ${grads.size} finite gradients`);
    tf.dispose([value, ...grads.values()]);
    model.dispose();
  }
});

test('RoPE in SSD and attention: shifting every position by 100 changes nothing but rounding (relative positions)', () => {
  const model = smallModel({});
  const x = ids(2, 10, 61, 9);
  const base = logitsOf(model, { inputIds: x });
  const shifted = logitsOf(model, { inputIds: x, positionIds: x.map((r) => r.map((_, t) => t + 100)) });
  const err = maxErr(base, shifted);
  console.log(`positions + 100: logits err ${err.toExponential(2)} (scale ${maxAbs(base).toFixed(2)})`);
  assert.ok(err <= 1e-4 * maxAbs(base), 'err <= 1e-4 * maxAbs(base)');
  // and positions do matter: reversing them changes the function
  assert.ok(maxErr(base, logitsOf(model, { inputIds: x, positionIds: x.map((r) => r.map((_, t) => 9 - t)) })) > 1e-3, 'maxErr(base, logitsOf(model, { inputIds: x, positionIds: x.map((r) => r.map((_, ');
  model.dispose();
});

test('packed rows: positionIds + documentIds == the documents run one by one (SSD restarts, attention block-diagonal)', () => {
  const model = smallModel({});
  const docs = [[7, 3, 9, 12, 4], [20, 5, 6, 1, 9, 30, 2], [11, 40, 8, 8]];
  const row = docs.flat();
  const docIds = docs.flatMap((d, i) => d.map(() => i));
  const pos = docs.flatMap((d) => d.map((_, t) => t));
  const out = model.forward({ inputIds: [row], labels: [row], positionIds: [pos], documentIds: [docIds], numItemsInBatch: 1 });
  let sep = 0;
  for (const d of docs) {
    const o = model.forward({ inputIds: [d], labels: [d], numItemsInBatch: 1 });
    sep += o.loss!.dataSync()[0];
    tf.dispose(o as unknown as tf.TensorContainer);
  }
  const packed = out.loss!.dataSync()[0];
  console.log(`cheems packed NLL sum ${packed.toFixed(5)} vs documents one by one ${sep.toFixed(5)}`);
  assert.ok(Math.abs(packed - sep) <= 1e-4 * Math.abs(sep), 'Math.abs(packed - sep) <= 1e-4 * Math.abs(sep)');
  const wrapped = model.forward({ inputIds: [row], labels: [row], numItemsInBatch: 1 });
  assert.ok(Math.abs(wrapped.loss!.dataSync()[0] - sep) > 1e-2, 'without documentIds the row is one sequence');
  tf.dispose([out, wrapped] as unknown as tf.TensorContainer);
  model.dispose();
});

test('a fresh model with the contract init (SSD A = -(h+1)) gives finite logits on 2048 tokens; the seed init A = +1 does not', () => {
  const model = new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny', { num_hidden_layers: 2, attn_layer_period: 2, attn_layer_offset: 1 }), { seed: 0 });
  const x = ids(1, 2048, 4096, 1);
  const l = logitsOf(model, { inputIds: x, logitsToKeep: 2048 });
  assert.equal(l.length, 2048 * 4096);
  assert.ok(l.every(Number.isFinite), 'finite logits at 2048 tokens');
  for (const [n, v] of model.parameters()) if (n.endsWith('ssd.A')) v.assign(tf.onesLike(v));
  const bad = logitsOf(model, { inputIds: x, logitsToKeep: 1 });
  assert.ok(!bad.every(Number.isFinite), 'A = +1 (the seed init) overflows');
  model.dispose();
});

test('parameter counts: the spec numbers for the default config (dense and MoE) and the model agrees with the formula', () => {
  assert.equal(new CheemsConfig().numParameters(), 369_493_248);
  assert.equal(new CheemsConfig({ is_moe: true }).numParameters(), 1_452_672_256);
  const tiny = new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny'));
  assert.equal(tiny.numParameters(), tiny.config.numParameters());
  console.log(`cheems-tiny: ${tiny.numParameters()} parameters, layers ${tiny.config.layersType.join(',')}`);
  tiny.dispose();
});

test('checkpoints: save -> loadCausalLM gives the same logits; seed names; strict loading names the tensor', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cheems-'));
  const model = smallModel({ is_moe: true, num_cdmoe_experts: 16, num_cdmoe_heads: 2, num_cdmoe_experts_per_head: 2, expert_retrieval_size: 4 });
  try {
    model.savePretrained(path.join(dir, 'm'));
    const names = [...model.parameters().keys()];
    for (const n of ['model.word_embed.weight', 'model.layers.0.ssd.A', 'model.layers.1.attn.dt_proj.weight', 'model.layers.0.post_sequence_residual.weight',
      'model.layers.0.feed_forward.keys', 'model.layers.0.feed_forward.queries.weight', 'model.final_layernorm.weight']) assert.ok(names.includes(n), n);
    assert.ok(!names.includes('lm_head.weight'), 'tied: no lm_head.weight');
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'm', 'config.json'), 'utf8'));
    assert.equal(cfg.model_type, 'cheems');
    const back = loadCausalLM(path.join(dir, 'm'));
    assert.ok(back instanceof CheemsForCausalLM, 'back instanceof CheemsForCausalLM');
    const x = ids(1, 7, 61, 4);
    assert.deepEqual(logitsOf(back as CheemsForCausalLM, { inputIds: x }), logitsOf(model, { inputIds: x }));
    back.dispose();
    // a Doge folder opens as Doge
    const doge = new DogeForCausalLM(DogeConfig.preset('doge-tiny', { num_hidden_layers: 1, vocab_size: 64, hidden_size: 32, intermediate_size: 32 }));
    doge.savePretrained(path.join(dir, 'd'));
    const d2 = loadCausalLM(path.join(dir, 'd'));
    assert.ok(d2 instanceof DogeForCausalLM, 'd2 instanceof DogeForCausalLM');
    tf.dispose([doge, d2] as unknown as tf.TensorContainer);
    doge.dispose(); d2.dispose();
    // strict loading: a wrong shape names the tensor, a missing tensor names it
    const other = new CheemsForCausalLM(new CheemsConfig({ ...model.config.toJSON(), intermediate_size: 24 }));
    const params = other.parameters() as Map<string, tf.Tensor>;
    assert.throws(() => model.loadState(params), /tensor 'model\.layers\.0\.feed_forward\.gate_proj\.weight' has shape \[24,32\] but the config needs \[40,32\]/);
    params.delete('model.final_layernorm.weight');
    assert.throws(() => model.loadState(params), /missing tensor 'model\.final_layernorm\.weight'/);
    other.dispose();
  } finally {
    model.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('config: defaults, layer pattern, and errors that name the field', () => {
  const c = new CheemsConfig();
  assert.equal(c.layersType.filter((t) => t === 'attn').length, 4);
  assert.deepEqual(c.layersType.map((t, i) => (t === 'attn' ? i : -1)).filter((i) => i >= 0), [7, 15, 23, 31]);
  assert.equal(c.num_key_value_heads, 8);
  assert.deepEqual(CheemsConfig.fromJSON({ ...c.toJSON(), transformers_version: '4.48', _name_or_path: 'x' }).toJSON().transformers_version, '4.48');
  const bad: Array<[CheemsConfigInput, RegExp]> = [
    [{ hidden_size: 100, num_attention_heads: 8 }, /hidden_size \(100\) must be divisible by num_attention_heads \(8\)/],
    [{ num_attention_heads: 8, num_key_value_heads: 3 }, /num_attention_heads \(8\) must be a multiple of num_key_value_heads \(3\)/],
    [{ dynamic_mask_ratio: 0.3 }, /dynamic_mask_ratio \(0\.3\) is not supported/],
    [{ is_moe: true, num_cdmoe_experts: 50, num_cdmoe_experts_per_head: 8 }, /num_cdmoe_experts_per_head \(8\) exceeds floor\(sqrt\(num_cdmoe_experts\)\) = 7/],
    [{ is_moe: true, expert_retrieval_size: 7 }, /expert_retrieval_size \(7\) must be even/],
    [{ hidden_bias: 'yes' as unknown as boolean }, /hidden_bias must be true or false/],
    [{ sliding_window: 5 }, /sliding_window is not a Cheems config field/],
    [{ keep_window_size: 0 }, /keep_window_size must be an integer >= 1 or null, got 0/],
    [{ model_type: 'doge' }, /model_type must be "cheems"/],
    [{ attn_layer_offset: -1 }, /attn_layer_offset must be >= 0/],
    [{ pad_token_id: 40000 }, /pad_token_id \(40000\) must be in \[0, vocab_size=32768\)/],
    [{ rope_scaling: { type: 'yarn' } }, /rope_scaling\.rope_type 'yarn' is not supported/],
  ];
  for (const [input, re] of bad) assert.throws(() => new CheemsConfig(input), re);
  assert.throws(() => CheemsConfig.preset('cheems-huge'), /unknown preset 'cheems-huge' \(choose one of cheems-tiny, cheems-tiny-moe, cheems-default\)/);
});

test('standalone modules: SSDMixer, product-key CDMoE (the seed API), per-query-head DMAttn', () => {
  const rng = new Rng(8);
  const x = tf.tensor(rng.normalArray(2 * 6 * 16, 1), [2, 6, 16]);
  const run = (): void => {
    const ssd = new SSDMixer({ hiddenSize: 16, numHeads: 2, chunkSize: 4, seed: 3 });
    const moe = new CDMoE({ hiddenSize: 16, intermediateSize: 24, numExperts: 64, router: 'product-keys', numHeads: 4, numExpertsPerTok: 3, retrievalSize: 8, seed: 1 });
    const attn = new DynamicMaskAttention({ hiddenSize: 16, numHeads: 4, numKvHeads: 2, qkNorm: false, keepWindowSize: null, dynamicMaskHeads: 'query', aInit: 'ones', seed: 2 });
    const y1 = ssd.apply(x), r = moe.apply(x, { outputRouting: true }), y3 = attn.apply(x);
    assert.deepEqual(y1.shape, [2, 6, 16]);
    assert.deepEqual(r.out.shape, [2, 6, 16]);
    assert.deepEqual(r.expertIds!.shape, [12, 4, 3]);
    assert.deepEqual(y3.shape, [2, 6, 16]);
    assert.deepEqual([...attn.parameters().keys()].filter((k) => /A|dt_proj/.test(k)).map((k) => [k, attn.parameters().get(k)!.shape]),
      [['A', [4]], ['dt_proj.weight', [4, 8]]]); // per query head: A [nh], dt_proj [nh, nkv * hd]
    // the seed's standalone DMAttn takes positions: a common shift changes nothing but rounding (RoPE is relative)
    const shifted = attn.apply(x, { positionIds: Array.from({ length: 12 }, (_, i) => (i % 6) + 50) });
    const shift = maxErr(shifted.dataSync(), y3.dataSync());
    assert.ok(shift < 1e-5 * Math.max(1, maxAbs(y3.dataSync())), `DMAttn with positions + 50 moved by ${shift}`);
    shifted.dispose();
    // causality of the SSD: changing the last token leaves earlier outputs unchanged
    const x2 = tf.tidy(() => tf.concat([tf.slice(x, [0, 0, 0], [2, 5, 16]), tf.ones([2, 1, 16])], 1));
    const y2 = ssd.apply(x2);
    const causal = maxErr(tf.tidy(() => tf.slice(y1, [0, 0, 0], [2, 5, 16]).dataSync()), tf.tidy(() => tf.slice(y2, [0, 0, 0], [2, 5, 16]).dataSync()));
    assert.ok(causal < 1e-6, `SSD output before the changed token moved by ${causal}`);
    tf.dispose([y1, y2, x2, y3, r.out, r.expertIds!, r.expertWeights!]);
    ssd.dispose(); moe.dispose(); attn.dispose();
  };
  // one dispose walk frees every Variable and every cached tensor (RoPE tables, transposed weights); the second run
  // starts after the library's shared shape constants (triangular masks, the RoPE half-swap) exist
  run();
  const before = tf.memory().numTensors;
  run();
  assert.equal(tf.memory().numTensors, before, 'tensors left after disposing the standalone modules');
  x.dispose();
});

test('live tensor counts: flat over 200 training steps and 500 decoded tokens, for Cheems and Doge', () => {
  // small on purpose (the counts, not the speed, are tested): one SSD and one attention layer, MoE
  const cheems = smallModel({ num_hidden_layers: 2, hidden_size: 16, intermediate_size: 16, is_moe: true, num_cdmoe_experts: 16, num_cdmoe_heads: 2,
    num_cdmoe_experts_per_head: 2, expert_retrieval_size: 4 });
  const doge = new DogeForCausalLM(DogeConfig.preset('doge-tiny', { num_hidden_layers: 1, vocab_size: 61, hidden_size: 16, intermediate_size: 16 }));
  for (const [label, model] of [['cheems', cheems], ['doge', doge]] as const) {
    const params = model.parameters();
    const opt = new AdamW(params, { weightDecay: 0.01 });
    const x = tf.tensor2d(ids(2, 8, 61, 1), [2, 8], 'int32');
    const counts: number[] = [];
    let first = 0, last = 0;
    for (let step = 0; step < 200; step++) {
      const { value, grads } = model.variableGrads(() => model.forward({ inputIds: x, labels: x, training: true }).loss!);
      opt.applyGradients(grads, 1e-3);
      if (step === 0) first = value.dataSync()[0];
      last = value.dataSync()[0];
      tf.dispose([value, ...grads.values()]);
      counts.push(tf.memory().numTensors);
    }
    assert.ok(counts.slice(1).every((c) => c === counts[1]), `${label}: tensor count grows during training (${counts[1]} -> ${counts[199]})`);
    assert.ok(last < first, `${label}: loss goes down (${first} -> ${last})`);
    // a first call builds the inference caches (transposed weights, RoPE tables, scan constants) the module keeps
    model.generate([[1, 2, 3]], { maxNewTokens: 3, eosTokenId: null });
    const before = tf.memory().numTensors;
    const during: number[] = [];
    const out = model.generate([[1, 2, 3]], { maxNewTokens: 500, eosTokenId: null, onToken: () => during.push(tf.memory().numTensors) });
    assert.equal(out[0].length, 503);
    assert.equal(tf.memory().numTensors, before, `${label}: tensors left after generate`);
    assert.ok(during.slice(2).every((c) => c === during[2]), `${label}: tensor count grows while decoding`);
    console.log(`${label}: 200 steps at ${counts[1]} live tensors (loss ${first.toFixed(3)} -> ${last.toFixed(3)}), 500 tokens at ${during[2]}`);
    x.dispose();
  }
  cheems.dispose();
  doge.dispose();
});
