// The field tables of DogeConfig / CheemsConfig (src/models/config-fields.ts): every field's type and range error,
// the defaults, the refusal of unknown fields (with the closest name), HF's generic keys kept and written back, the key
// order of config.json, config.json byte-identical to the hand-written configs' for every config of the repo, and the
// recipes' model sections checked against the fields of the model they pick.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DogeConfig, DOGE_FIELDS } from '../src/models/doge/config';
import { CheemsConfig, CHEEMS_FIELDS } from '../src/models/cheems/config';
import { GENERIC_KEYS, field, fieldsJSON, readConfigInput, type ConfigSchema, type FieldSpec, type FieldTable } from '../src/models/config-fields';
import { applyOverrides, parsePretrainConfig } from '../src/train/config';
import { modelConfigFrom } from '../src/train/pretrain';
import { EXPECTED_DIR, configCases, configJsonText } from './config-json-cases';

type AnyConfig = DogeConfig | CheemsConfig;
const MODELS: Array<[string, FieldTable, (input: Record<string, unknown>) => AnyConfig]> = [
  ['DogeConfig', DOGE_FIELDS, (i) => new DogeConfig(i)],
  ['CheemsConfig', CHEEMS_FIELDS, (i) => new CheemsConfig(i)],
];

/** Bad values of a builder-made field and the message each gets (custom fields: CUSTOM_ERRORS). */
function builderErrors(spec: FieldSpec<unknown>): Array<[unknown, string]> {
  const b = spec.bounds ?? {};
  switch (spec.kind) {
    case 'int': {
      const out: Array<[unknown, string]> = [['8', 'must be an integer, got "8"'], [2.5, 'must be an integer, got 2.5'], [null, 'must be an integer, got null']];
      out.push([b.min! - 1, `must be >= ${b.min}, got ${b.min! - 1}`]);
      if (b.max !== undefined) out.push([b.max + 1, `must be <= ${b.max}, got ${b.max + 1} (a model this size cannot be built in memory)`]);
      return out;
    }
    case 'float': {
      const out: Array<[unknown, string]> = [['x', 'must be a number, got "x"'], [Infinity, 'must be a number, got null']];
      if (b.min !== undefined && b.max !== undefined) out.push([b.min - 0.5, `must be in [${b.min}, ${b.max}), got ${b.min - 0.5}`], [b.max, `must be in [${b.min}, ${b.max}), got ${b.max}`]);
      else if (b.min !== undefined) out.push([b.min, `must be > ${b.min}, got ${b.min}`]);
      return out;
    }
    case 'bool':
      return [[1, 'must be true or false, got 1'], ['true', 'must be true or false, got "true"']];
    case 'oneOf':
      return [['nope', `must be ${spec.choices!.map((c) => `'${c}'`).join(' or ')}, got "nope"`]];
    case 'intOrNull':
      return b.min === undefined
        ? [[1.5, 'must be an integer or null, got 1.5'], ['0', 'must be an integer or null, got "0"']]
        : [[1.5, `must be an integer >= ${b.min} or null, got 1.5`], [b.min - 1, `must be an integer >= ${b.min} or null, got ${b.min - 1}`]];
    default:
      return [];
  }
}

/** The custom fields' errors (message after "<Owner>: "). */
const CUSTOM_ERRORS: Record<string, Array<[Record<string, unknown>, string]>> = {
  hidden_act: [[{ hidden_act: 3 }, 'hidden_act must be a string, got 3'], [{ hidden_act: 'gelu' }, "hidden_act 'gelu' is not supported (only 'silu')"]],
  num_key_value_heads: [[{ num_key_value_heads: 1.5 }, 'num_key_value_heads must be an integer or null, got 1.5'], [{ num_key_value_heads: 0 }, 'num_key_value_heads must be >= 1, got 0']],
  rope_parameters: [
    [{ rope_parameters: 'dynamic' }, 'rope_parameters must be an object or null, got "dynamic"'],
    [{ rope_scaling: [1] }, 'rope_scaling must be an object or null, got [1]'],
    [{ rope_parameters: { rope_type: 'yarn', rope_theta: 10000 } }, "rope_parameters.rope_type 'yarn' is not supported (only 'default' and 'dynamic')"],
    [{ rope_parameters: { rope_type: 'dynamic', factor: 0.5 } }, 'rope_parameters.factor must be a number >= 1 for dynamic RoPE, got 0.5'],
    [{ rope_theta: -1 }, 'rope_parameters.rope_theta must be a positive number, got -1'],
  ],
  rope_scaling: [
    [{ rope_scaling: 4 }, 'rope_scaling must be an object or null, got 4'],
    [{ rope_scaling: { type: 'yarn' } }, "rope_scaling.rope_type 'yarn' is not supported (only 'default' and 'dynamic')"],
    [{ rope_scaling: { rope_type: 'dynamic' } }, 'rope_scaling.factor must be a number >= 1 for dynamic RoPE, got undefined'],
  ],
  legacy_layout: [[{ legacy_layout: 'small-doge-2401' }, "legacy_layout must be 'small-doge-2503' or 'small-doge-2506' or null, got \"small-doge-2401\""]],
  dynamic_mask_ratio: [[{ dynamic_mask_ratio: 'x' }, 'dynamic_mask_ratio must be a number, got "x"'], [{ dynamic_mask_ratio: 0.3 }, "dynamic_mask_ratio (0.3) is not supported: only 0.0 (the seed's threshold over all keys is not causal)"]],
};

test('every field of both tables: wrong JSON type and out-of-range values are refused naming the field', () => {
  let checked = 0;
  for (const [owner, table, build] of MODELS) {
    for (const [name, spec] of Object.entries(table)) {
      const cases: Array<[Record<string, unknown>, string]> = spec.kind === 'custom'
        ? CUSTOM_ERRORS[name] ?? []
        : builderErrors(spec).map(([v, msg]) => [{ [name]: v }, `${name} ${msg}`]);
      assert.ok(cases.length > 0, `${owner}.${name} (${spec.kind}) has no error case in this test`);
      for (const [input, msg] of cases) {
        assert.throws(() => build(input), { message: `${owner}: ${msg}` }, `${owner} ${JSON.stringify(input)}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 100, `${checked} cases`);
});

test('defaults: every absent field takes its table default (HF DogeConfig / the seed), own properties = the table', () => {
  for (const [owner, table, build] of MODELS) {
    const c = build({}) as unknown as Record<string, unknown>;
    assert.deepEqual(Object.keys(c).filter((k) => k !== 'extra').sort(), Object.keys(table).sort(), owner);
    for (const [name, spec] of Object.entries(table)) if (!spec.readAbsent) assert.deepEqual(c[name], spec.default, `${owner}.${name}`);
  }
  const d = new DogeConfig();
  assert.deepEqual([d.vocab_size, d.hidden_size, d.num_hidden_layers, d.tie_word_embeddings, d.keep_window_size, d.num_key_value_heads, d.bos_token_id],
    [32768, 1024, 32, false, 2048, 8, null]);
  assert.deepEqual(d.rope_parameters, { rope_type: 'default', rope_theta: 10000 });
  assert.deepEqual([d.dynamic_mask_bias, d.dynamic_mask_select, d.dynamic_mask_type], ['exp', 'row', 'topk']);
  const c = new CheemsConfig();
  assert.deepEqual([c.tie_word_embeddings, c.bos_token_id, c.eos_token_id, c.pad_token_id, c.ssd_chunk_size, c.keep_window_size, c.num_key_value_heads],
    [true, 0, 1, 2, 256, null, 8]);
  assert.deepEqual(c.rope_scaling, { rope_type: 'dynamic', factor: 4, original_max_position_embeddings: 2048 });
  // a default object is a copy: changing one config's does not change the next one's
  c.rope_scaling!.factor = 9;
  assert.equal(new CheemsConfig().rope_scaling!.factor, 4);
});

test('unknown fields are refused in both models, naming the field and the closest known name', () => {
  const tail = (owner: string) => `; besides its own fields a ${owner} keeps only HF's generic PretrainedConfig keys (transformers_version, dtype, auto_map, ...)`;
  assert.throws(() => new DogeConfig({ hiden_size: 64 }), { message: `DogeConfig: hiden_size is not a Doge config field (did you mean 'hidden_size'?)${tail('DogeConfig')}` });
  assert.throws(() => new CheemsConfig({ ssd_chunk_sise: 64 }), { message: `CheemsConfig: ssd_chunk_sise is not a Cheems config field (did you mean 'ssd_chunk_size'?)${tail('CheemsConfig')}` });
  // one model's field is another's unknown field
  assert.throws(() => new DogeConfig({ ssd_chunk_size: 64 }), { message: `DogeConfig: ssd_chunk_size is not a Doge config field${tail('DogeConfig')}` });
  assert.throws(() => new CheemsConfig({ sliding_window: 5 }), { message: `CheemsConfig: sliding_window is not a Cheems config field${tail('CheemsConfig')}` });
  assert.throws(() => DogeConfig.preset('doge-tiny', { num_expert: 4 }), /num_expert is not a Doge config field \(did you mean 'num_experts'\?\)/);
  // from a folder the error also names the file
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-cfgtable-'));
  try {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...new CheemsConfig().toJSON(), attn_layer_perid: 4 }));
    assert.throws(() => CheemsConfig.fromPretrained(dir), { message: `${path.join(dir, 'config.json')}: CheemsConfig: attn_layer_perid is not a Cheems config field (did you mean 'attn_layer_period'?)${tail('CheemsConfig')}` });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // the keys a model reads itself besides its fields: aliases, legacy RoPE names, Doge's head_dim, Cheems' layers_type
  assert.equal(new DogeConfig({ window_size: 16, rope_theta: 5000, rope_scaling: null, head_dim: 128 }).keep_window_size, 16);
  assert.equal(new CheemsConfig({ window_size: 16, layers_type: ['ssd'] }).keep_window_size, 16);
  assert.throws(() => new CheemsConfig({ window_size: 8, keep_window_size: 16 }), { message: 'CheemsConfig: window_size (8) is another name of keep_window_size (16): give one of them' });
});

test("HF's generic keys are kept in extra and written back unchanged, after the fields, in their order", () => {
  const generic = { transformers_version: '4.48.0', torch_dtype: 'bfloat16', _name_or_path: 'SmallDoge/Doge-20M', auto_map: { AutoConfig: 'configuration_doge.DogeConfig' }, id2label: { 0: 'a' } };
  for (const [owner, table, build] of MODELS) {
    const c = build({ architectures: ['X'], model_type: owner === 'DogeConfig' ? 'doge' : 'cheems', ...generic });
    assert.deepEqual(c.extra, generic, owner);
    const j = c.toJSON();
    assert.deepEqual(Object.keys(j).slice(-5), Object.keys(generic), owner);
    for (const [k, v] of Object.entries(generic)) assert.deepEqual(j[k], v);
    assert.deepEqual(j.architectures, [owner === 'DogeConfig' ? 'DogeForCausalLM' : 'CheemsForCausalLM']);
    assert.equal('dtype' in j, false); // the input's torch_dtype stands
    assert.equal(configJsonText(build(JSON.parse(JSON.stringify(j)))), configJsonText(c));
    // every generic key is accepted (a model field of the same name is read as the field)
    for (const k of GENERIC_KEYS) {
      if (k === 'model_type') continue;
      const cfg = build({ [k]: k in table ? null : 'x' });
      if (!(k in table) && k !== 'architectures') assert.equal(cfg.extra[k], 'x', `${owner} ${k}`);
    }
  }
  assert.deepEqual(new DogeConfig({ dtype: 'float16' }).toJSON().dtype, 'float16');
  assert.equal(new CheemsConfig().toJSON().torch_dtype, 'float32');
});

test('config.json key order: identity, the fields in table order (omitted when at an omit-default), dtype, extra', () => {
  const doge = Object.keys(new DogeConfig().toJSON());
  assert.deepEqual(doge, ['architectures', 'model_type', 'vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'hidden_dropout',
    'hidden_act', 'initializer_range', 'rms_norm_eps', 'use_cache', 'tie_word_embeddings', 'max_position_embeddings', 'num_attention_heads',
    'attention_bias', 'attention_dropout', 'mlp_bias', 'sliding_window', 'keep_window_size', 'is_moe', 'num_experts', 'num_experts_per_tok',
    'norm_topk_prob', 'output_router_logits', 'router_aux_loss_coef', 'pad_token_id', 'bos_token_id', 'eos_token_id', 'num_key_value_heads',
    'rope_parameters', 'rope_theta', 'rope_scaling', 'dtype']);
  const cheems = Object.keys(new CheemsConfig().toJSON());
  assert.deepEqual(cheems, ['architectures', 'model_type', 'vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'hidden_bias',
    'hidden_dropout', 'hidden_act', 'max_position_embeddings', 'rope_theta', 'rope_scaling', 'initializer_range', 'rms_norm_eps', 'use_cache',
    'bos_token_id', 'eos_token_id', 'pad_token_id', 'tie_word_embeddings', 'ssd_chunk_size', 'num_attention_heads', 'num_key_value_heads',
    'attention_dropout', 'dynamic_mask_ratio', 'attn_layer_period', 'attn_layer_offset', 'is_moe', 'num_cdmoe_experts', 'num_cdmoe_heads',
    'num_cdmoe_experts_per_head', 'expert_retrieval_size', 'torch_dtype']);
  // the omit-default fields appear, in their table place, once set
  const set = Object.keys(new CheemsConfig({ dynamic_mask_type: 'relu', keep_window_size: 8 }).toJSON());
  assert.deepEqual(set.slice(-3), ['keep_window_size', 'dynamic_mask_type', 'torch_dtype']);
  const d = Object.keys(new DogeConfig({ dynamic_mask_bias: 'linear' }).toJSON());
  assert.equal(d.indexOf('dynamic_mask_bias'), d.indexOf('eos_token_id') + 1);
});

test('field.custom with omitDefault (the shape of a later option): written only when not at its default', () => {
  const table = {
    size: field.int({ default: 4, max: 64 }),
    layout: field.custom<'new' | 'legacy'>({
      default: 'new',
      omitDefault: true,
      read: (v, name, { fail }) => (v === 'new' || v === 'legacy' ? v : fail(name, `must be 'new' or 'legacy', got ${JSON.stringify(v)}`)),
    }),
  };
  const schema: ConfigSchema<typeof table> = { owner: 'ToyConfig', modelType: 'toy', architecture: 'ToyForCausalLM', dtypeKey: 'dtype', fields: table };
  const plain = readConfigInput(schema, {});
  assert.deepEqual(plain.values, { size: 4, layout: 'new' });
  assert.deepEqual(fieldsJSON(schema, plain.values, plain.extra), { architectures: ['ToyForCausalLM'], model_type: 'toy', size: 4, dtype: 'float32' });
  const legacy = readConfigInput(schema, { layout: 'legacy', transformers_version: '5.0' });
  assert.deepEqual(fieldsJSON(schema, legacy.values, legacy.extra), { architectures: ['ToyForCausalLM'], model_type: 'toy', size: 4, layout: 'legacy', dtype: 'float32', transformers_version: '5.0' });
  assert.throws(() => readConfigInput(schema, { layout: 'old' }), { message: "ToyConfig: layout must be 'new' or 'legacy', got \"old\"" });
  assert.throws(() => readConfigInput(schema, { model_type: 'doge' }), { message: 'ToyConfig: model_type must be "toy", got "doge"' });
  assert.throws(() => readConfigInput(schema, []), { message: 'ToyConfig: expected a JSON object' });
});

test('config.json is byte-identical to what the hand-written configs wrote, for every config of the repo', () => {
  const cases = configCases();
  const names = cases.map(([n]) => `${n}.json`).sort();
  assert.deepEqual(fs.readdirSync(EXPECTED_DIR).sort(), names, 'tests/fixtures/config-json holds one file per case (a new config needs its reference bytes)');
  assert.ok(cases.filter(([n]) => n.startsWith('folder-')).length >= 9 && cases.filter(([n]) => n.startsWith('yaml-')).length >= 8);
  for (const [name, build] of cases) {
    const want = fs.readFileSync(path.join(EXPECTED_DIR, `${name}.json`), 'utf8');
    assert.equal(configJsonText(build()), want, name);
  }
});

test("recipes: a model section takes the fields of the model its preset picks (a Cheems field is refused in a Doge recipe)", () => {
  const cheems = parsePretrainConfig({ model: { preset: 'cheems-tiny', ssd_chunk_size: 32, keep_window_size: 16 } }, 'c.yaml');
  const built = modelConfigFrom(cheems) as CheemsConfig;
  assert.deepEqual([built.model_type, built.ssd_chunk_size, built.keep_window_size], ['cheems', 32, 16]);
  assert.throws(() => parsePretrainConfig({ model: { preset: 'doge-tiny', ssd_chunk_size: 32 } }, 'd.yaml'),
    /^Error: d\.yaml: unknown config key 'model\.ssd_chunk_size': not a field of the doge model preset doge-tiny picks \('ssd_chunk_size' is a field of cheems\); known keys in model: preset, init_from, router_layout, model_type, vocab_size, /);
  assert.throws(() => parsePretrainConfig({ model: { preset: 'cheems-tiny', sliding_window: 8 } }, 'c.yaml'),
    /unknown config key 'model\.sliding_window': not a field of the cheems model preset cheems-tiny picks \('sliding_window' is a field of doge\)/);
  assert.throws(() => parsePretrainConfig({ model: { preset: 'cheems-tiny', attn_layer_perod: 2 } }, 'c.yaml'), /unknown config key 'model\.attn_layer_perod' \(did you mean 'attn_layer_period'\?\)/);
  // Doge recipes take the DMA fields and the window_size alias too (the old key list lacked them)
  const doge = modelConfigFrom(parsePretrainConfig({ model: { preset: 'doge-tiny', dynamic_mask_type: 'relu', window_size: 64 } }, 'd.yaml')) as DogeConfig;
  assert.deepEqual([doge.dynamic_mask_type, doge.keep_window_size], ['relu', 64]);
  // model_type picks the model without a preset
  assert.equal((modelConfigFrom(parsePretrainConfig({ model: { model_type: 'cheems', ssd_chunk_size: 64, num_hidden_layers: 8 } }, 'c.yaml')) as CheemsConfig).ssd_chunk_size, 64);
  assert.throws(() => parsePretrainConfig({ model: { model_type: 'llama' } }, 'x.yaml'), /x\.yaml: model\.model_type "llama" is not supported \(registered: doge, cheems/);
  // a bare override lands in the model section when some model has the field; the recipe's model then checks it
  const raw: Record<string, unknown> = { model: { preset: 'cheems-tiny' } };
  applyOverrides(raw, { 'ssd-chunk-size': '16' });
  assert.equal((modelConfigFrom(parsePretrainConfig(raw, 'c.yaml')) as CheemsConfig).ssd_chunk_size, 16);
  const rawDoge: Record<string, unknown> = { model: { preset: 'doge-tiny' } };
  applyOverrides(rawDoge, { 'ssd-chunk-size': '16' });
  assert.throws(() => parsePretrainConfig(rawDoge, 'd.yaml'), /unknown config key 'model\.ssd_chunk_size'/);
});
