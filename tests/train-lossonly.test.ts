/**
 * The Trainer asks the model for the loss only (`lossOnly: true`) in training and evaluation, so a large vocabulary
 * runs lm_head + loss in row chunks (src/models/causal-lm.ts); the numbers equal the full-logits path.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { Trainer, TRAINING_DEFAULTS } from '../src/train';

before(async () => {
  await loadBackend({ log: false });
});

test('Trainer passes lossOnly: a vocabulary above the fused threshold gives the full-logits loss and gradient norm', async () => {
  // batch * seq * vocab = 36 * 64 * 8192 = 18.9M > 16M: the chunked lm_head + loss path
  const V = 8192, T = 64, B = 36;
  const config = new DogeConfig({ vocab_size: V, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: T });
  let s = 5;
  const rows = Array.from({ length: B * 2 }, () => Int32Array.from({ length: T }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % V));
  const model = new DogeForCausalLM(config, { seed: 2 });
  const seen: Array<boolean | undefined> = [];
  const forward = model.forward.bind(model);
  model.forward = ((input: Parameters<DogeForCausalLM['forward']>[0]) => {
    seen.push(input.lossOnly);
    const out = forward(input);
    if (input.lossOnly) assert.equal(out.logits.size, 0, 'lossOnly: no full logits');
    return out;
  }) as DogeForCausalLM['forward'];

  // The reference: the same model and batch through the full-logits path, before the trainer updates it.
  const ids = tf.tensor2d(Int32Array.from(rows.slice(0, B).flatMap((r) => [...r])), [B, T], 'int32');
  const n = B * (T - 1);
  const ref = model.variableGrads(() => forward({ inputIds: ids, labels: ids, training: true, numItemsInBatch: n }).loss!);
  const refLoss = ref.value.dataSync()[0];
  const refNorm = Math.sqrt([...ref.grads.values()].reduce((a, g) => a + tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]), 0));
  ref.value.dispose();
  for (const g of ref.grads.values()) g.dispose();
  const refEval = tf.tidy(() => forward({ inputIds: ids, labels: ids, numItemsInBatch: n }).loss!.dataSync()[0]);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-lossonly-'));
  const trainer = new Trainer({
    model, seqLen: T, writePlot: false, log: () => {},
    args: { ...structuredClone(TRAINING_DEFAULTS), output_dir: dir, max_steps: 1, per_device_train_batch_size: B, per_device_eval_batch_size: B, eval_batches: 1, save_steps: 0, eval_steps: 0 },
    evalDataset: { numRows: B, seqLen: T, row: (i) => rows[i] },
    trainLoader: () => ({ position: 0, next: () => rows.slice(0, B) }),
  });
  const evalBefore = trainer.evaluate()!;
  const r = trainer.trainStep();
  console.log(`fused vs full: loss ${r.loss} vs ${refLoss}, grad norm ${r.gradNorm} vs ${refNorm}, eval ${evalBefore.eval_loss} vs ${refEval}`);
  assert.ok(seen.length === 2 && seen.every((x) => x === true), `lossOnly flags: ${seen}`);
  assert.ok(Math.abs(r.loss - refLoss) <= 1e-5 * refLoss, `loss ${r.loss} vs ${refLoss}`);
  assert.ok(Math.abs(r.gradNorm - refNorm) <= 1e-4 * refNorm, `grad norm ${r.gradNorm} vs ${refNorm}`);
  assert.ok(Math.abs(evalBefore.eval_loss - refEval) <= 1e-5 * refEval, `eval ${evalBefore.eval_loss} vs ${refEval}`);
  ids.dispose();
  trainer.dispose();
  model.dispose();
});
