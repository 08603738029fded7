// The Doge host decoder (src/runtime/doge-host-decoder.ts) against the plain tfjs path of DogeForCausalLM: per-step
// logits and greedy tokens (dense, MoE, GQA 3:1 with biases and an untied lm_head, keep_window_size top-k at decode,
// sliding window), seeded sampling, that generate really uses it, fallbacks (no native BLAS, batch > 1, dynamic RoPE
// past its range), the WM_FAST_DECODE switch, and no tensor growth over generation.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM, type DogeCache } from '../src/models/doge';
import { createDogeHostDecoder, decodeHeadThreads, dogeHostDecoderUnsupported, runningOtherTasks } from '../src/runtime/doge-host-decoder';
import { DecodingSession, fastDecodeEnabled, type GenerateOptions } from '../src/generation';
import { setWasmNativeBlas, wasmNativeBlas } from '../src/runtime/wasm-patches';
import { hostDecoderFor, registerHostDecoder, registeredHostDecoders, unregisterHostDecoder } from '../src/runtime/host-decoders';
import type { MLP } from '../src/modules/mlp';
import { maxAbs, maxErr, randomizeDoge } from './parity-helpers';

before(async () => { await loadBackend({ log: false, workload: 'inference' }); });

/** Per-step logit error relative to the step's largest logit; the tfjs path's own cache-vs-recompute bound is 1e-4. */
const TOL = 1e-5;

function model(config: DogeConfig | Record<string, unknown>, seed: number): DogeForCausalLM {
  const m = new DogeForCausalLM(config instanceof DogeConfig ? config : new DogeConfig(config), { seed });
  randomizeDoge(m, seed + 100);
  return m;
}

const small = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  vocab_size: 64, hidden_size: 36, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 6, num_key_value_heads: 2,
  keep_window_size: 2048, tie_word_embeddings: false, attention_bias: true, mlp_bias: true, ...over,
});

/** generate with and without the host decoder; counts how often generate asked the runtime for one and got one. */
function both(m: DogeForCausalLM, prompt: number[][], opts: GenerateOptions): { fast: number[][]; plain: number[][]; worst: number; used: number; reason: string | null } {
  let used = 0;
  let reason: string | null = null;
  const lf: Float32Array[] = [], lp: Float32Array[] = [];
  const fast = m.generate(prompt, { ...opts, fastDecode: true, onLogits: (l) => lf.push(Float32Array.from(l)), onHostDecoder: (i) => { if (i.used) used++; reason = i.reason; } });
  const plain = m.generate(prompt, { ...opts, fastDecode: false, onLogits: (l) => lp.push(Float32Array.from(l)), onHostDecoder: () => assert.fail('fastDecode: false asked for a host decoder') });
  assert.equal(lf.length, lp.length);
  const worst = Math.max(...lf.map((l, i) => maxErr(l, lp[i]) / maxAbs(lp[i])));
  return { fast, plain, worst, used, reason };
}

// Equal tokens give equal dynamic-mask values d in exact arithmetic (d depends on v, which has no position); with
// keep_window_size < S the top-k then breaks a tie whose winner depends on the last bit of rounding, and that differs
// between BLAS kernels (the tfjs path's prefill sgemm vs its decode sgemv, OpenBLAS's Haswell vs Zen kernels): a tie,
// not an error, yet a 0.1 logit difference. So the cases with a top-k window generate distinct tokens only (a huge
// repetition penalty, the same in both paths; the test checks that they are distinct).
const DISTINCT: GenerateOptions = { repetitionPenalty: 1e6 };

const CASES: Array<{ name: string; config: () => DogeConfig | Record<string, unknown>; promptLen: number; newTokens: number; distinct?: boolean }> = [
  { name: 'doge-tiny', config: () => DogeConfig.preset('doge-tiny'), promptLen: 12, newTokens: 16 },
  { name: 'doge-tiny-moe', config: () => DogeConfig.preset('doge-tiny-moe'), promptLen: 12, newTokens: 16 },
  // GQA 3:1, q/k/v/o and MLP biases, untied lm_head; keep_window_size 5 < S: the dynamic-mask top-k runs at every step
  { name: 'GQA 3:1 + biases, keep_window 5', config: () => small({ keep_window_size: 5 }), promptLen: 7, newTokens: 12, distinct: true },
  // sliding window 6 and keep_window 4 together, with MoE (2 heads on 1 kv head like doge-20m)
  { name: 'sliding window 6 + keep_window 4, MoE, 2:1 heads', config: () => small({ num_attention_heads: 2, num_key_value_heads: 1, sliding_window: 6, keep_window_size: 4, is_moe: true, num_experts: 49, num_experts_per_tok: 5, norm_topk_prob: true }), promptLen: 5, newTokens: 14, distinct: true },
];

for (const c of CASES) {
  test(`fast decoder == tfjs path, greedy: ${c.name} (step logits, tokens)`, () => {
    const m = model(c.config(), 3);
    const V = m.config.vocab_size;
    const prompt = [Array.from({ length: c.promptLen }, (_, i) => (i * 37 + 5) % V)];
    const r = both(m, prompt, { maxNewTokens: c.newTokens, eosTokenId: null, ...(c.distinct ? DISTINCT : {}) });
    if (c.distinct) assert.equal(new Set(r.fast[0]).size, r.fast[0].length, `tokens repeat: ${JSON.stringify(r.fast[0])}`);
    console.log(`${c.name}: tokens ${JSON.stringify(r.fast[0].slice(c.promptLen))}, worst step-logit error ${r.worst.toExponential(2)}`);
    assert.equal(r.used, 1, 'generate used the fast decoder');
    assert.deepEqual(r.fast, r.plain);
    assert.equal(r.fast[0].length, c.promptLen + c.newTokens);
    assert.ok(r.worst < TOL, `worst step-logit error ${r.worst} >= ${TOL}`);
    m.dispose();
  });
}

test("fast decoder == tfjs path with CDMoE routerLayout 'hf' (one token: the same router halves)", () => {
  const m = new DogeForCausalLM(new DogeConfig(small({ is_moe: true, num_experts: 36, num_experts_per_tok: 4 })), { seed: 9, routerLayout: 'hf' });
  randomizeDoge(m, 109);
  const r = both(m, [[4, 8, 15, 16, 23, 42]], { maxNewTokens: 10, eosTokenId: null });
  assert.equal(r.used, 1);
  assert.deepEqual(r.fast, r.plain);
  assert.ok(r.worst < TOL, `worst ${r.worst}`);
  m.dispose();
});

test('fast decoder == tfjs path with seeded sampling (temperature, top-k, top-p, repetition penalty)', () => {
  const m = model(DogeConfig.preset('doge-tiny'), 4);
  const prompt = [[3, 17, 17, 99, 250, 4000, 12]];
  const opts: GenerateOptions = { maxNewTokens: 20, doSample: true, temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.2, seed: 7, eosTokenId: null };
  const r = both(m, prompt, opts);
  assert.equal(r.used, 1);
  assert.deepEqual(r.fast, r.plain);
  assert.ok(r.worst < TOL, `worst step-logit error ${r.worst}`);
  // another seed draws another continuation (the comparison above is not vacuous)
  const other = m.generate(prompt, { ...opts, seed: 8 });
  assert.notDeepEqual(other, r.fast);
  m.dispose();
});

test('fast decoder steps == DecodingSession steps; full cache and bad token ids are errors', () => {
  const m = model(small({ keep_window_size: 4 }), 5);
  const prompt = [[1, 5, 9, 2, 12, 40]]; // distinct tokens, and distinct steps below (see DISTINCT)
  const session = new DecodingSession<DogeCache>(m);
  session.step(prompt);
  const pre = m.forward({ inputIds: prompt, useCache: true });
  pre.logits.dispose();
  const { stepper, reason } = createDogeHostDecoder(m, pre.cache!, prompt[0].length + 4);
  tf.dispose(pre.cache!.layers as unknown as tf.TensorContainer);
  assert.equal(reason, null);
  let worst = 0;
  for (const t of [7, 21, 30, 63]) {
    const want = session.step([[t]]);
    const got = stepper!.step(t);
    worst = Math.max(worst, maxErr(got, want) / maxAbs(want));
  }
  assert.equal(stepper!.length, prompt[0].length + 4);
  assert.ok(worst < TOL, `worst ${worst}`);
  assert.throws(() => stepper!.step(1), /cache is full \(10 positions\)/);
  session.dispose();
  const again = m.forward({ inputIds: prompt, useCache: true });
  again.logits.dispose();
  const s2 = createDogeHostDecoder(m, again.cache!, 20).stepper!;
  tf.dispose(again.cache!.layers as unknown as tf.TensorContainer);
  assert.throws(() => s2.step(64), /token id 64 is outside the vocabulary \[0, 64\)/);
  m.dispose();
});

test('fallbacks: no native BLAS, batch 2, dynamic RoPE past max_position_embeddings (generate still matches)', () => {
  const m = model(small({ rope_parameters: { rope_type: 'dynamic', rope_theta: 10000, factor: 4 }, max_position_embeddings: 12 }), 6);
  const pre = m.forward({ inputIds: [[1, 2, 3]], useCache: true });
  pre.logits.dispose();
  const cache = pre.cache!;
  assert.equal(dogeHostDecoderUnsupported(m, cache, 12), null);
  assert.equal(dogeHostDecoderUnsupported(m, cache, 13), 'dynamic RoPE beyond max_position_embeddings');
  const blas = wasmNativeBlas();
  setWasmNativeBlas(null);
  try {
    assert.equal(dogeHostDecoderUnsupported(m, cache, 12), 'no native BLAS on the wasm backend');
  } finally {
    setWasmNativeBlas(blas);
  }
  tf.dispose(cache.layers as unknown as tf.TensorContainer);
  const pair = m.forward({ inputIds: [[1, 2, 3], [4, 5, 6]], useCache: true });
  pair.logits.dispose();
  assert.equal(dogeHostDecoderUnsupported(m, pair.cache!, 12), 'batch is not 1');
  tf.dispose(pair.cache!.layers as unknown as tf.TensorContainer);
  // past the RoPE range generate keeps the tfjs path (which grows the dynamic-NTK frequencies), so nothing differs
  const r = both(m, [[1, 2, 3, 4, 5, 6, 7, 8]], { maxNewTokens: 8, eosTokenId: null });
  assert.equal(r.used, 0);
  assert.deepEqual(r.fast, r.plain);
  assert.equal(r.worst, 0);
  m.dispose();
});

test('a weight assigned during generation (onToken) is seen by the next fast step, as by the tfjs path', () => {
  const m = model(small({ keep_window_size: 4 }), 8);
  const w: tf.Variable | null = (m.layers[1].mlp as MLP).downW;
  const original = tf.keep(w!.clone());
  const run = (fastDecode: boolean) => {
    w!.assign(original);
    const logits: Float32Array[] = [];
    const out = m.generate([[1, 2, 3]], {
      maxNewTokens: 8, eosTokenId: null, fastDecode, onLogits: (l) => logits.push(Float32Array.from(l)),
      onToken: (_, step) => { if (step === 2) tf.tidy(() => w!.assign(tf.mul(original, -2))); },
    });
    return { out, logits };
  };
  const f = run(true), p = run(false);
  assert.deepEqual(f.out, p.out);
  const worst = Math.max(...f.logits.map((l, i) => maxErr(l, p.logits[i]) / maxAbs(p.logits[i])));
  assert.ok(worst < TOL, `worst ${worst}`);
  // the change mattered: without it the steps after 2 differ
  w!.assign(original);
  const unchanged: Float32Array[] = [];
  m.generate([[1, 2, 3]], { maxNewTokens: 8, eosTokenId: null, onLogits: (l) => unchanged.push(Float32Array.from(l)) });
  assert.ok(maxErr(unchanged[5], p.logits[5]) > 1e-3);
  original.dispose();
  m.dispose();
});

test('generate finds the host decoder through the runtime registry by model_type (registered by loadBackend with the native BLAS)', () => {
  assert.deepEqual(registeredHostDecoders(), ['doge']);
  const m = model(small({ keep_window_size: 4 }), 10);
  assert.equal(m.config.model_type, 'doge');
  const prompt = [[1, 5, 9, 2]];
  const registered = both(m, prompt, { maxNewTokens: 6, eosTokenId: null, ...DISTINCT });
  assert.equal(registered.used, 1);
  assert.equal(registered.reason, null);
  const factory = (mm: unknown, cache: Parameters<typeof createDogeHostDecoder>[1], n: number) => createDogeHostDecoder(mm as DogeForCausalLM, cache, n);
  unregisterHostDecoder('doge');
  try {
    // nothing registered: model.forward runs every step, and generate says why
    const none = both(m, prompt, { maxNewTokens: 6, eosTokenId: null, ...DISTINCT });
    assert.equal(none.used, 0);
    assert.equal(none.reason, "no host decoder registered for model_type 'doge' (none is: the wasm backend with the native BLAS registers them)");
    assert.deepEqual(none.fast, registered.fast);
    const pre = m.forward({ inputIds: prompt, useCache: true });
    pre.logits.dispose();
    assert.equal(hostDecoderFor({ config: {} }, pre.cache!, 9).reason, 'the model has no config.model_type (none is: the wasm backend with the native BLAS registers them)');
    registerHostDecoder('other', factory);
    assert.equal(hostDecoderFor({ config: { model_type: 'cheems' } }, pre.cache!, 9).reason, "no host decoder registered for model_type 'cheems'");
    tf.dispose(pre.cache!.layers as unknown as tf.TensorContainer);
  } finally {
    unregisterHostDecoder('other');
    registerHostDecoder('doge', factory);
  }
  m.dispose();
});

test('WM_FAST_DECODE / fastDecode option', () => {
  assert.equal(fastDecodeEnabled(undefined, undefined), true);
  assert.equal(fastDecodeEnabled(undefined, '0'), false);
  assert.equal(fastDecodeEnabled(undefined, 'off'), false);
  assert.equal(fastDecodeEnabled(undefined, '1'), true);
  assert.equal(fastDecodeEnabled(false, '1'), false);
  assert.equal(fastDecodeEnabled(true, '0'), true);
  assert.throws(() => fastDecodeEnabled(undefined, 'fast'), /WM_FAST_DECODE must be 0 or 1, got 'fast'/);
});

test('WM_DECODE_THREADS: lm_head threads while decoding (auto: 2 only when no other task runs on a multi-core machine)', () => {
  assert.equal(decodeHeadThreads('3', 2, 5), 3);
  assert.equal(decodeHeadThreads('auto', 2, 0), 2);
  // '' = unset (an explicit undefined would take the default parameter, i.e. this process's WM_DECODE_THREADS)
  assert.equal(decodeHeadThreads('', 2, 1), 1);
  assert.equal(decodeHeadThreads('', 4, 2), 2);
  assert.equal(decodeHeadThreads('', 1, 0), 1);
  assert.throws(() => decodeHeadThreads('two', 2, 0), /WM_DECODE_THREADS must be 'auto' or an integer from 1 to 8, got 'two'/);
  assert.equal(runningOtherTasks('2.58 2.96 3.37 3/109 2476\n'), 2);
  assert.equal(runningOtherTasks('0.10 0.20 0.30 1/95 100'), 0);
  assert.throws(() => runningOtherTasks('garbage'), /cannot read the running\/total field in 'garbage'/);
  assert.ok(runningOtherTasks() >= 0);
});

test('live tensor count does not grow over fast generation (and is unchanged after it)', () => {
  const m = model(DogeConfig.preset('doge-tiny-moe'), 7);
  const prompt = [[5, 6, 7, 8]];
  m.generate(prompt, { maxNewTokens: 3, eosTokenId: null }); // warm-up: cached RoPE tables, transposed weights
  const before = tf.memory().numTensors;
  const during: number[] = [];
  m.generate(prompt, { maxNewTokens: 12, eosTokenId: null, onToken: () => during.push(tf.memory().numTensors) });
  assert.equal(during.length, 12);
  // after the prompt the tfjs cache is freed and the decoder holds no tensors
  assert.ok(during.every((n) => n === before), `tensors during generation: ${during.join(',')} (before ${before})`);
  assert.equal(tf.memory().numTensors, before);
  m.dispose();
});
