// DogeConfig: HF config.json fields and defaults, round trip, generic keys, legacy RoPE, validation messages, presets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DogeConfig } from '../src/models/doge';

test('defaults follow HF DogeConfig; headDim derived; num_key_value_heads null -> num_attention_heads', () => {
  const c = new DogeConfig();
  assert.equal(c.vocab_size, 32768);
  assert.equal(c.hidden_size, 1024);
  assert.equal(c.num_key_value_heads, 8);
  assert.equal(c.keep_window_size, 2048);
  assert.equal(c.tie_word_embeddings, false);
  assert.equal(c.num_experts, 16384);
  assert.equal(c.headDim, 128);
  assert.deepEqual(c.rope_parameters, { rope_type: 'default', rope_theta: 10000 });
});

test('toJSON/fromJSON round trip keeps HF generic keys and writes rope_parameters plus the legacy pair', () => {
  const c = DogeConfig.preset('doge-20m', { auto_map: { a: 1 }, transformers_version: '5.0.0' });
  const j = c.toJSON();
  assert.equal(j.model_type, 'doge');
  assert.deepEqual(j.architectures, ['DogeForCausalLM']);
  assert.equal('head_dim' in j, false);
  assert.deepEqual(j.rope_parameters, { rope_type: 'dynamic', rope_theta: 10000, factor: 4, original_max_position_embeddings: 2048 });
  assert.equal(j.rope_theta, 10000);
  assert.deepEqual(j.rope_scaling, { rope_type: 'dynamic', factor: 4, original_max_position_embeddings: 2048 });
  assert.deepEqual(j.auto_map, { a: 1 });
  assert.equal(j.transformers_version, '5.0.0');
  const back = DogeConfig.fromJSON(JSON.parse(JSON.stringify(j)));
  assert.deepEqual(back.toJSON(), j);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-cfg-'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(j));
  assert.deepEqual(DogeConfig.fromPretrained(dir).toJSON(), j);
  fs.rmSync(dir, { recursive: true });
});

test('legacy rope_theta + rope_scaling (with "type") are accepted', () => {
  const c = new DogeConfig({ rope_theta: 5000, rope_scaling: { type: 'dynamic', factor: 2.0 } });
  assert.deepEqual(c.rope_parameters, { rope_type: 'dynamic', factor: 2, rope_theta: 5000 });
  const d = new DogeConfig({ rope_theta: 500000, rope_scaling: null });
  assert.deepEqual(d.rope_parameters, { rope_type: 'default', rope_theta: 500000 });
});

test('validation errors name the field', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ hidden_size: 100, num_attention_heads: 8 }, 'DogeConfig: hidden_size (100) must be divisible by num_attention_heads (8)'],
    [{ num_attention_heads: 6, num_key_value_heads: 4, hidden_size: 96 }, 'DogeConfig: num_attention_heads (6) must be a multiple of num_key_value_heads (4)'],
    [{ vocab_size: '32768' }, 'DogeConfig: vocab_size must be an integer, got "32768"'],
    [{ hidden_size: 64.5 }, 'DogeConfig: hidden_size must be an integer, got 64.5'],
    [{ tie_word_embeddings: 1 }, 'DogeConfig: tie_word_embeddings must be true or false, got 1'],
    [{ rms_norm_eps: 'x' }, 'DogeConfig: rms_norm_eps must be a number, got "x"'],
    [{ num_hidden_layers: 0 }, 'DogeConfig: num_hidden_layers must be >= 1, got 0'],
    [{ hidden_dropout: 1.5 }, 'DogeConfig: hidden_dropout must be in [0, 1), got 1.5'],
    [{ rope_parameters: { rope_type: 'yarn', rope_theta: 10000, factor: 4 } }, "DogeConfig: rope_parameters.rope_type 'yarn' is not supported (only 'default' and 'dynamic')"],
    [{ rope_parameters: { rope_type: 'dynamic', rope_theta: 10000 } }, 'DogeConfig: rope_parameters.factor must be a number >= 1 for dynamic RoPE, got undefined'],
    [{ is_moe: true, num_experts: 10, num_experts_per_tok: 16 }, 'DogeConfig: num_experts_per_tok (16) exceeds floor(sqrt(num_experts))^2 = 9'],
    [{ pad_token_id: 40000 }, 'DogeConfig: pad_token_id (40000) must be in [0, vocab_size=32768)'],
    [{ model_type: 'llama' }, 'DogeConfig: model_type must be "doge", got "llama"'],
    [{ head_dim: 64 }, 'DogeConfig: head_dim (64) must equal hidden_size / num_attention_heads (128)'],
    [{ my_field: 1 }, "DogeConfig: my_field is not a Doge config field; besides its own fields a DogeConfig keeps only HF's generic PretrainedConfig keys (transformers_version, dtype, auto_map, ...)"],
  ];
  for (const [input, msg] of cases) assert.throws(() => new DogeConfig(input), { message: msg });
  assert.throws(() => DogeConfig.preset('doge-1b'), { message: "DogeConfig.preset: unknown preset 'doge-1b' (choose one of doge-tiny, doge-tiny-moe, doge-20m, doge-60m, doge-160m, doge-320m)" });
});

test('presets', () => {
  const t = DogeConfig.preset('doge-tiny');
  assert.deepEqual([t.vocab_size, t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads, t.intermediate_size, t.tie_word_embeddings, t.max_position_embeddings], [4096, 256, 4, 4, 2, 512, true, 2048]);
  const m = DogeConfig.preset('doge-tiny-moe');
  assert.deepEqual([m.is_moe, m.num_experts, m.num_experts_per_tok], [true, 1024, 8]);
  for (const [name, H, L, nh, nkv, I] of [['doge-20m', 256, 8, 2, 1, 512], ['doge-60m', 512, 16, 4, 2, 1024], ['doge-160m', 768, 24, 6, 3, 1536], ['doge-320m', 1024, 32, 8, 4, 2048]] as const) {
    const c = DogeConfig.preset(name);
    assert.deepEqual([c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size, c.headDim], [H, L, nh, nkv, I, 128]);
    assert.equal(c.tie_word_embeddings, true);
    assert.equal(c.rope_parameters.rope_type, 'dynamic');
    assert.equal(c.rope_parameters.factor, 4);
  }
  assert.equal(DogeConfig.preset('doge-tiny', { num_hidden_layers: 2 }).num_hidden_layers, 2);
});
