// The SSD written as attention (the state space duality): y = (L ∘ C Bᵀ)(dt ∘ x) per head equals the chunked scan,
// and a Cheems forward with outputAttentions returns that matrix for SSD layers next to the attention probabilities.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/runtime/backend';
import { ssdChunkScan, ssdMatrixForm } from '../src/modules/ssd-mixer';
import { CheemsConfig, CheemsForCausalLM } from '../src/models/cheems';

test('ssdMatrixForm: M x equals the chunked scan; L is 1 on the diagonal, 0 above it, and decays below', async () => {
  await loadBackend();
  const [b, T, h, p, n] = [1, 7, 2, 3, 4];
  tf.tidy(() => {
    const x = tf.randomNormal([b, T, h, p], 0, 1, 'float32', 1);
    const dt = tf.softplus(tf.randomNormal([b, T, h], 0, 1, 'float32', 2));
    const A = tf.tensor1d([-0.5, -2]);
    const B = tf.randomNormal([b, T, h, n], 0, 1, 'float32', 3);
    const C = tf.randomNormal([b, T, h, n], 0, 1, 'float32', 4);
    const { y } = ssdChunkScan(x, dt, A, B, C, 3);
    const { L, M } = ssdMatrixForm(dt, A, B, C);
    const yMat = tf.transpose(tf.matMul(M, tf.transpose(x, [0, 2, 1, 3])), [0, 2, 1, 3]); // [b, T, h, p]
    const diff = tf.max(tf.abs(tf.sub(y, yMat))).dataSync()[0];
    assert.ok(diff < 1e-4, `M x vs chunked scan: ${diff}`);
    const l = (L.arraySync() as number[][][][])[0];
    for (const head of l) head.forEach((row, t) => row.forEach((v, s) => {
      if (s > t) assert.equal(v, 0);
      else if (s === t) assert.ok(Math.abs(v - 1) < 1e-6);
      else assert.ok(v < row[s + 1] + 1e-7, 'older tokens decayed at least as much');
    }));
  });
});

test('Cheems outputAttentions: per layer the mixing matrix (SSD: L ∘ CBᵀ ∘ dt; attention: probabilities), SSD decays', async () => {
  await loadBackend();
  const model = new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny', { num_hidden_layers: 2, attn_layer_period: 2, attn_layer_offset: 1 }), { seed: 0 });
  const check = () => tf.tidy(() => {
    const out = model.forward({ inputIds: [[5, 9, 2, 7, 7, 1]], outputAttentions: true });
    assert.equal(out.attentions!.length, 2);
    assert.equal(out.ssdDecays!.length, 1);
    const [ssd, attn] = out.attentions!.map((t) => (t.arraySync() as number[][][][])[0]);
    assert.equal(ssd.length, model.config.num_attention_heads);
    attn.forEach((head) => head.forEach((row, t) => {
      assert.ok(Math.abs(row.reduce((a, v) => a + v, 0) - 1) < 1e-5);
      assert.ok(row.slice(t + 1).every((v) => v === 0));
    }));
    ssd.forEach((head) => head.forEach((row, t) => assert.ok(row.slice(t + 1).every((v) => v === 0))));
    // continuing from a cache (decoding) there is no full matrix over the sequence to return
    const first = model.forward({ inputIds: [[5, 9]], outputAttentions: true, useCache: true });
    assert.equal(first.attentions!.length, 2);
    const next = model.forward({ inputIds: [[2]], outputAttentions: true, cache: first.cache });
    assert.equal(next.attentions, undefined);
  });
  check(); // the first call fills the model's caches (RoPE tables, masks)
  const before = tf.memory().numTensors;
  check();
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});
