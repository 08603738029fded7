/**
 * A model frees everything it allocated: live tensors before constructing it equal those after a forward pass (and a
 * training forward + backward, and generation) and `dispose()`, for both models, dense and MoE, in a fresh process
 * (no process-wide tensor caches: the SSD's triangular constants and RoPE's swap matrix used to stay behind).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { CheemsConfig, CheemsForCausalLM } from '../src/models/cheems';

before(async () => {
  await loadBackend({ log: false });
});

const doge = (moe: boolean) => new DogeForCausalLM(new DogeConfig({
  vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1,
  max_position_embeddings: 32, keep_window_size: 4, ...(moe ? { is_moe: true, num_experts: 16, num_experts_per_tok: 2 } : {}),
}), { seed: 1 });
const cheems = (moe: boolean) => new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny', {
  vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, max_position_embeddings: 32, ...(moe ? { is_moe: true } : {}),
}), { seed: 1 });

const cases: Array<[string, () => DogeForCausalLM | CheemsForCausalLM]> = [
  ['Doge', () => doge(false)], ['Doge MoE', () => doge(true)], ['Cheems', () => cheems(false)], ['Cheems MoE', () => cheems(true)],
];

for (const [name, make] of cases) {
  test(`${name}: construct, forward, dispose leaves the live tensor count where it was`, () => {
    // a new sequence length every round: caches keyed by length must die with the model too
    for (let round = 0; round < 3; round++) {
      const ids = [Array.from({ length: 7 + round }, (_, t) => (t * 5 + 1) % 64)];
      const before = tf.memory().numTensors;
      const model = make();
      // inference (fills the transposed-weight and RoPE caches), with labels, and one training gradient
      tf.tidy(() => { model.forward({ inputIds: ids }).logits.dataSync(); });
      tf.tidy(() => { model.forward({ inputIds: ids, labels: ids }).loss!.dataSync(); });
      const { value, grads } = model.variableGrads(() => model.forward({ inputIds: ids, labels: ids, training: true }).loss as tf.Scalar);
      value.dispose();
      for (const g of grads.values()) g.dispose();
      model.generate([[1, 2, 3]], { maxNewTokens: 3 + round });
      assert.ok(tf.memory().numTensors > before, 'the model holds tensors while alive');
      model.dispose();
      assert.equal(tf.memory().numTensors, before, `round ${round}: ${tf.memory().numTensors - before} tensors left after dispose()`);
    }
  });
}
