// Hostile config.json files (issue #20 item 9): sizes have upper bounds, parameter counts that cannot fit are refused
// naming the field, and a checkpoint folder's config is checked against its safetensors headers before the model
// is built (nothing allocated for a config that lies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackend } from '../src/runtime/backend';
import { tf } from '../src/tf';
import { createCausalLM, loadCausalLM } from '../src/models/auto';
import { DogeConfig } from '../src/models/doge/config';
import { CheemsConfig } from '../src/models/cheems/config';

test('config sizes have upper bounds and a parameter count that cannot fit is refused, naming the field', async () => {
  await loadBackend({ log: false });
  const t0 = Date.now();
  assert.throws(() => new DogeConfig({ num_hidden_layers: 1e6 }), /DogeConfig: num_hidden_layers must be <= 1024, got 1000000 \(a model this size cannot be built in memory\)/);
  assert.throws(() => new DogeConfig({ vocab_size: 1e12 }), /DogeConfig: vocab_size must be <= 16777216, got 1000000000000/);
  assert.throws(() => new DogeConfig({ hidden_size: 2 ** 20, num_attention_heads: 8 }), /DogeConfig: hidden_size must be <= 65536/);
  assert.throws(() => createCausalLM(new DogeConfig({ vocab_size: 2 ** 24, hidden_size: 4096, num_attention_heads: 32 })),
    /DogeConfig: vocab_size gives a model of 1\.40e\+11 parameters \(vocab_size x hidden_size \(embedding\) = 1\.37e\+11\), more than the 1e\+9 \(3\.7 GiB of float32\) this library can hold/);
  assert.throws(() => createCausalLM({ model_type: 'doge', num_hidden_layers: 1000, hidden_size: 4096, intermediate_size: 16384, num_attention_heads: 32 }), /DogeConfig: num_hidden_layers gives a model of .* parameters \(num_hidden_layers x intermediate_size \(MLP\)/);
  assert.throws(() => new CheemsConfig({ num_hidden_layers: 1e6 }), /CheemsConfig: num_hidden_layers must be <= 1024, got 1000000/);
  assert.throws(() => new CheemsConfig({ vocab_size: 1e12 }), /CheemsConfig: vocab_size must be <= 16777216/);
  // a config may describe a model larger than this library builds (the paper's Cheems MoE, 1.45e9): building it is refused
  assert.throws(() => createCausalLM(new CheemsConfig({ is_moe: true })), /CheemsConfig: num_hidden_layers gives a model of 1\.45e\+9 parameters \(num_hidden_layers x layer = 1\.42e\+9\)/);
  assert.ok(Date.now() - t0 < 10_000, `refused at once (${Date.now() - t0} ms)`);
  // the presets still build
  for (const p of ['doge-tiny', 'doge-tiny-moe', 'doge-20m', 'doge-320m']) assert.ok(DogeConfig.preset(p));
});

test('a checkpoint folder whose config.json does not match its safetensors header is refused before the model is built', async () => {
  await loadBackend({ log: false });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-hostile-config-'));
  try {
    const src = 'tests/fixtures/doge/dense';
    const config = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
    const variant = (name: string, change: Record<string, unknown>): string => {
      const d = path.join(root, name);
      fs.mkdirSync(d);
      fs.copyFileSync(path.join(src, 'model.safetensors'), path.join(d, 'model.safetensors'));
      fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...config, ...change }));
      return d;
    };
    const before = tf.memory().numBytes;
    const cases: [Record<string, unknown>, RegExp][] = [
      // within the field bounds, but 1000 layers of intermediate 4096 would allocate ~0.8e9 parameters (3 GB) if built
      [{ num_hidden_layers: 1000, intermediate_size: 4096 }, /config\.json: num_hidden_layers is 1000 but .*model\.safetensors has 2 layers \(indices 0\.\.1\)/],
      [{ vocab_size: 129 }, /config\.json: vocab_size is 129 but .*model\.safetensors has 'model\.embed_tokens\.weight' of shape \[128,64\]/],
      [{ intermediate_size: 100000 }, /config\.json: describes a model of at least \d+ parameters but .*model\.safetensors holds \d+; the largest part is num_hidden_layers x intermediate_size \(MLP\)/],
      [{ num_hidden_layers: 1e6 }, /config\.json: DogeConfig: num_hidden_layers must be <= 1024/],
      [{ vocab_size: 1e12 }, /config\.json: DogeConfig: vocab_size must be <= 16777216/],
    ];
    for (const [change, re] of cases) {
      const t0 = Date.now();
      assert.throws(() => loadCausalLM(variant(`v${Object.values(change).join('-')}`, change)), re, JSON.stringify(change));
      assert.ok(Date.now() - t0 < 10_000, `${JSON.stringify(change)} refused at once (${Date.now() - t0} ms)`);
    }
    assert.equal(tf.memory().numBytes, before, 'nothing was allocated');
    const ok = loadCausalLM(variant('same', {}));
    ok.dispose();
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
