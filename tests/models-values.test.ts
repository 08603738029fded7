/** forwardValues and DecodingSession: plain numbers out, the same numbers as the tensors, nothing left to dispose. */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { CheemsConfig, CheemsForCausalLM, type CheemsCache } from '../src/models/cheems';
import { forwardValues } from '../src/models/values';
import { DecodingSession } from '../src/generation';

before(async () => {
  await loadBackend({ log: false });
});

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

test('forwardValues returns the loss, logits and recorded outputs as plain values and leaves no tensor', () => {
  const model = new DogeForCausalLM(new DogeConfig({ vocab_size: 48, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 16, is_moe: true, num_experts: 16, num_experts_per_tok: 2 }), { seed: 4 });
  const ids = [[3, 1, 4, 1, 5, 9], [2, 6, 5, 3, 5, 8]];
  const ref = tf.tidy(() => {
    const o = model.forward({ inputIds: ids, labels: ids, outputAttentions: true });
    return { loss: o.loss!.dataSync()[0], logits: Float32Array.from(o.logits.dataSync()), mask1: Float32Array.from(o.dynamicMasks![1].dataSync()), experts0: Array.from(o.expertIds![0].dataSync()) };
  });
  const n = tf.memory().numTensors;
  const out = forwardValues(model, { inputIds: ids, labels: ids, outputAttentions: true });
  assert.equal(tf.memory().numTensors, n, 'no tensor left');
  assert.equal(typeof out.loss, 'number');
  assert.equal(out.loss, ref.loss);
  assert.deepEqual(out.shapes.logits, [2, 6, 48]);
  assert.equal(maxAbs((out.logits as number[][][]).flat(2), ref.logits), 0);
  assert.equal(out.dynamicMasks!.length, 2);
  assert.equal(maxAbs((out.dynamicMasks![1] as number[][][]).flat(2), ref.mask1), 0);
  assert.deepEqual((out.expertIds![0] as number[][]).flat(), ref.experts0);
  const only = forwardValues(model, { inputIds: ids, labels: ids }, { only: ['loss'] });
  assert.deepEqual(Object.keys(only).sort(), ['loss', 'shapes']);
  model.dispose();
});

test('DecodingSession: token-by-token logits equal one pass, the cache is read and freed', () => {
  const before = tf.memory().numTensors;
  const model = new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny', { vocab_size: 40, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, max_position_embeddings: 32 }), { seed: 2 });
  const prompt = [5, 7, 11, 13, 17, 19, 23];
  const full = (forwardValues(model, { inputIds: [prompt] }, { only: ['logits'] }).logits as number[][][])[0];
  const session = new DecodingSession<CheemsCache>(model);
  assert.throws(() => session.readCache(() => tf.scalar(0)), /no cache yet/);
  let worst = 0;
  for (let t = 0; t < prompt.length; t++) {
    const step = session.step([[prompt[t]]]);
    assert.equal(step.length, 40);
    worst = Math.max(worst, maxAbs(step, full[t]));
    const norm = session.readCache((c) => tf.norm((c.layers[0] as { state: tf.Tensor }).state));
    assert.ok(norm.values[0] > 0 && norm.shape.length === 0);
    assert.equal(session.length, t + 1);
  }
  assert.ok(worst < 1e-4, `cached vs full logits: ${worst}`);
  const live = tf.memory().numTensors;
  session.dispose();
  // the cache: per SSD layer a state, per attention layer keys and values
  assert.ok(tf.memory().numTensors < live, 'session.dispose() frees the cache');
  model.dispose();
  assert.equal(tf.memory().numTensors, before, 'nothing left after session.dispose() and model.dispose()');
});
