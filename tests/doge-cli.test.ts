// `wm generate` (ids mode) on a freshly saved checkpoint, and the visualisation extras of forward().
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { run } from '../src/cli/generate';

before(async () => { await loadBackend({ log: false }); });

test('wm generate --ids prints the same greedy continuation as model.generate', async () => {
  const c = new DogeConfig({ vocab_size: 50, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });
  const model = new DogeForCausalLM(c, { seed: 3 });
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wm-cli-')), 'model');
  model.savePretrained(dir);
  const want = model.generate([[1, 2, 3]], { maxNewTokens: 4, eosTokenId: null })[0].slice(3);
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
  try {
    await run(['--model', dir, '--ids', '1,2,3', '--max-new-tokens', '4', '--no-stream']);
  } finally {
    console.log = orig;
  }
  assert.deepEqual(lines, [want.join(',')]);
  await assert.rejects(run(['--ids', '1']), { message: /--model is required/ });
  await assert.rejects(run(['--model', dir, '--ids', '1,x']), { message: "--ids: item 2 'x' is not an integer (give comma-separated integers, e.g. 1,2,3)" });
  await assert.rejects(run(['--model', dir, '--ids', '1,,2']), { message: /--ids: item 2 is empty/ });
  await assert.rejects(run(['--model', dir, '--ids', '1,50']), { message: /--ids item 2 \(50\) is not a token id of this model \(vocab_size 50\)/ });
  model.dispose();
});

test('forward({ outputAttentions }) returns per-layer dynamic masks, attention probabilities and experts', () => {
  const c = new DogeConfig({ vocab_size: 50, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, is_moe: true, num_experts: 16, num_experts_per_tok: 3 });
  const model = new DogeForCausalLM(c, { seed: 3 });
  const o = model.forward({ inputIds: [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]], outputAttentions: true });
  assert.equal(o.dynamicMasks!.length, 2);
  assert.deepEqual(o.dynamicMasks![0].shape, [2, 2, 5]);
  assert.deepEqual(o.attentions![1].shape, [2, 4, 5, 5]);
  const p = o.attentions![0].arraySync() as number[][][][];
  // causal: row t puts no mass after t, and every row sums to 1
  assert.ok(p[1][3][1][4] === 0 && Math.abs(p[1][3][1].reduce((a, b) => a + b, 0) - 1) < 1e-5);
  assert.deepEqual(o.expertIds![0].shape, [10, 3]);
  assert.deepEqual(o.expertWeights![0].shape, [10, 3]);
  assert.deepEqual(o.routerLogits![0].shape, [2, 10, 4]);
  tf.dispose(o as unknown as tf.TensorContainer);
  model.dispose();
});
