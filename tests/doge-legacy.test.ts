// The older SmallDoge checkpoint layouts (src/models/doge/legacy.ts) against checkpoints built by the ORIGINAL
// modeling code (scripts/doge-legacy-fixtures.py with the vendored small-doge ae7abf7 / 0e305a7 files): logits, loss
// and gradients, greedy tokens, automatic detection, writing the same layout back, and the refusals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackend, tf } from '../src/runtime/backend';
import { loadSafetensors, readSafetensorsHeader } from '../src/io/safetensors';
import { DogeConfig, DogeForCausalLM, LEGACY_LAYOUTS } from '../src/models/doge';
import { fromLegacyName, layoutOfTensorNames, legacyConfigJSON, toLegacyName } from '../src/models/doge/legacy';
import { loadCausalLM } from '../src/models/auto';
import { maxAbs, maxErr } from './parity-helpers';

const ROOT = path.join(__dirname, 'fixtures', 'doge-legacy');
const CURRENT = path.join(__dirname, 'fixtures', 'doge', 'dense'); // today's HF layout (q/k norm, A per kv head)
let tmp = '';

before(async () => {
  await loadBackend({ log: false });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-doge-legacy-'));
});
after(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

interface Expected { layout: string; loss: number; generate: { prompt: number[]; greedy: number[]; keep_window_size: number }; grads: string[] }
const expectedOf = (layout: string): Expected => JSON.parse(fs.readFileSync(path.join(ROOT, layout, 'expected.json'), 'utf8'));
const readJSON = (file: string): Record<string, unknown> => JSON.parse(fs.readFileSync(file, 'utf8'));

/** Max-abs error relative to the reference's max-abs (asserted <= 1e-4, the parity tests' tolerance). */
function relErr(name: string, got: tf.Tensor, ref: tf.Tensor): number {
  assert.deepEqual(got.shape, ref.shape, `${name}: shape`);
  const r = ref.dataSync();
  const rel = maxErr(got.dataSync(), r) / (maxAbs(r) || 1);
  assert.ok(rel <= 1e-4, `${name}: relative max-abs error ${rel}`);
  return rel;
}

/** A copy of a fixture folder whose config.json is changed by `edit`. */
function copyWithConfig(src: string, name: string, edit: (c: Record<string, unknown>) => void): string {
  const dir = path.join(tmp, name);
  fs.cpSync(src, dir, { recursive: true });
  const c = readJSON(path.join(dir, 'config.json'));
  edit(c);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c, null, 2));
  return dir;
}

for (const layout of LEGACY_LAYOUTS) {
  const dir = path.join(ROOT, layout);

  test(`${layout}: detected on load; logits, loss and gradients match the original modeling code`, () => {
    const exp = expectedOf(layout);
    const model = DogeForCausalLM.fromPretrained(dir);
    const ref = loadSafetensors(path.join(dir, 'reference.safetensors')).tensors;
    try {
      assert.equal(model.config.legacy_layout, layout);
      const attn = model.layers[0].attn;
      assert.equal(attn.qkNorm, false);
      assert.equal(attn.maskHeads, model.config.num_attention_heads); // one dynamic mask per query head
      assert.equal(attn.keepWindowSize, layout === 'small-doge-2503' ? Infinity : 5); // 2503 never selects keys
      const inputIds = ref.get('input_ids')!, labels = ref.get('labels')!;
      let worst = 0;
      const out = model.forward({ inputIds, labels });
      worst = Math.max(worst, relErr('logits', out.logits, ref.get('logits')!));
      const loss = out.loss!.dataSync()[0];
      assert.ok(Math.abs(loss - exp.loss) <= 1e-5, `loss ${loss} vs ${exp.loss}`);
      tf.dispose(out as unknown as tf.TensorContainer);
      const { value, grads } = model.variableGrads(() => model.forward({ inputIds, labels }).loss!);
      value.dispose();
      for (const name of exp.grads) {
        const g = grads.get(fromLegacyName(model.config.legacy_layout, name));
        assert.ok(g, `a gradient for ${name}`);
        worst = Math.max(worst, relErr(`grad.${name}`, g!, ref.get(`grad.${name}`)!));
      }
      for (const g of grads.values()) g.dispose();
      assert.ok(worst < 1e-4);
      console.log(`${layout}: loss ${loss.toFixed(6)} vs ${exp.loss.toFixed(6)}, worst relative error (logits, ${exp.grads.length} gradients) ${worst.toExponential(2)}`);
    } finally {
      for (const t of ref.values()) t.dispose();
      model.dispose();
    }
  });

  test(`${layout}: greedy tokens (cached decoding) equal the original code's full-forward greedy`, () => {
    const exp = expectedOf(layout);
    const model = loadCausalLM(dir); // through the registry, as the CLI opens folders
    try {
      assert.ok(model instanceof DogeForCausalLM);
      // the reference decodes without top-k (tied d of repeated tokens would make the kept keys a matter of rounding)
      for (const l of model.layers) if (Number.isFinite(l.attn.keepWindowSize)) l.attn.keepWindowSize = exp.generate.keep_window_size;
      const [row] = model.generate([exp.generate.prompt], { maxNewTokens: exp.generate.greedy.length - exp.generate.prompt.length, eosTokenId: null });
      assert.deepEqual(row, exp.generate.greedy);
    } finally {
      model.dispose();
    }
  });

  test(`${layout}: saved back in the same layout (tensor names, shapes, bytes, config keys)`, () => {
    const model = DogeForCausalLM.fromPretrained(dir);
    const out = path.join(tmp, `${layout}-saved`);
    try {
      model.savePretrained(out);
    } finally {
      model.dispose();
    }
    const a = readSafetensorsHeader(path.join(dir, 'model.safetensors')).tensors;
    const b = readSafetensorsHeader(path.join(out, 'model.safetensors')).tensors;
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [name, info] of a) assert.deepEqual(b.get(name)!.shape, info.shape, name);
    const ta = loadSafetensors(path.join(dir, 'model.safetensors')).tensors, tb = loadSafetensors(path.join(out, 'model.safetensors')).tensors;
    for (const [name, t] of ta) assert.deepEqual(Array.from(tb.get(name)!.dataSync()), Array.from(t.dataSync()), `${name}: values`);
    tf.dispose([...ta.values(), ...tb.values()]);
    const ca = readJSON(path.join(dir, 'config.json')), cb = readJSON(path.join(out, 'config.json'));
    assert.deepEqual(Object.keys(cb).sort(), [...Object.keys(ca), 'legacy_layout'].sort());
    for (const k of Object.keys(ca)) assert.deepEqual(cb[k], ca[k], `config.json ${k}`);
    assert.equal(cb.legacy_layout, layout);
    // and the saved folder opens again as the same layout, declared and shown by its tensors
    const again = DogeForCausalLM.fromPretrained(out);
    assert.equal(again.config.legacy_layout, layout);
    again.dispose();
  });

  test(`${layout}: { legacy: false } refuses it with a message naming the layout`, () => {
    assert.throws(() => DogeForCausalLM.fromPretrained(dir, { legacy: false }),
      (e: Error) => e.message.includes(`older layout '${layout}'`) && e.message.includes('legacy: false refuses it') && e.message.includes(dir));
    assert.throws(() => loadCausalLM(dir, { legacy: false }), /legacy: false refuses it/);
  });
}

test('a config declaring one layout with tensors of another is refused naming legacy_layout', () => {
  const d1 = copyWithConfig(path.join(ROOT, 'small-doge-2506'), 'declares-2503', (c) => { c.legacy_layout = 'small-doge-2503'; });
  assert.throws(() => DogeForCausalLM.fromPretrained(d1),
    /config\.json: legacy_layout declares 'small-doge-2503' but .*model\.safetensors holds tensors of 'small-doge-2506' \(e\.g\. 'model\.layers\.0\.self_attn\.A without self_attn\.q_norm\.weight'\)/);
  const d2 = copyWithConfig(path.join(ROOT, 'small-doge-2506'), 'keys-2503', (c) => { c.hidden_bias = false; });
  assert.throws(() => DogeForCausalLM.fromPretrained(d2), /legacy_layout is 'small-doge-2503' by the config keys hidden_bias, but .* holds tensors of 'small-doge-2506'/);
  const d3 = copyWithConfig(CURRENT, 'current-declares-2506', (c) => { c.legacy_layout = 'small-doge-2506'; });
  assert.throws(() => DogeForCausalLM.fromPretrained(d3), /legacy_layout declares 'small-doge-2506' but .* holds tensors of null \(the current HF layout\) \(e\.g\. 'model\.layers\.0\.self_attn\.q_norm\.weight'\)/);
  const d4 = copyWithConfig(path.join(ROOT, 'small-doge-2503'), 'declares-null', (c) => { c.legacy_layout = null; });
  assert.throws(() => DogeForCausalLM.fromPretrained(d4), /legacy_layout declares null \(the current HF layout\) but .* holds tensors of 'small-doge-2503' \(e\.g\. 'model\.final_layernorm\.weight'\)/);
  assert.throws(() => new DogeConfig({ legacy_layout: 'small-doge-2412' } as never), /DogeConfig: legacy_layout must be 'small-doge-2503' or 'small-doge-2506' or null, got "small-doge-2412"/);
});

test('legacy features without an implementation are refused naming the field', () => {
  const r = copyWithConfig(path.join(ROOT, 'small-doge-2503'), 'ratio', (c) => { c.dynamic_mask_ratio = 0.5; });
  assert.throws(() => DogeForCausalLM.fromPretrained(r), /config\.json: dynamic_mask_ratio 0\.5 is not supported \(only 0\.0/);
  const m3 = copyWithConfig(path.join(ROOT, 'small-doge-2503'), 'moe-2503', (c) => { c.is_moe = true; });
  assert.throws(() => DogeForCausalLM.fromPretrained(m3), /is_moe true is not supported in the 'small-doge-2503' layout \(its CDMoE takes the rank position/);
  const m6 = copyWithConfig(path.join(ROOT, 'small-doge-2506'), 'moe-2506', (c) => { c.is_moe = true; });
  assert.throws(() => DogeForCausalLM.fromPretrained(m6), /is_moe true is not supported in the 'small-doge-2506' layout/);
  const dma = copyWithConfig(path.join(ROOT, 'small-doge-2506'), 'dma', (c) => { c.dynamic_mask_type = 'relu'; });
  assert.throws(() => DogeForCausalLM.fromPretrained(dma), /dynamic_mask_type must be 'topk' \(or absent\) in the 'small-doge-2506' layout, got "relu"/);
});

test('the current HF layout is unchanged: no legacy_layout, legacy: false loads it, config.json has no legacy_layout key', () => {
  const model = DogeForCausalLM.fromPretrained(CURRENT, { legacy: false });
  try {
    assert.equal(model.config.legacy_layout, null);
    assert.equal(model.layers[0].attn.qkNorm, true);
    assert.ok(!('legacy_layout' in model.config.toJSON()));
  } finally {
    model.dispose();
  }
  // a config-only folder with the 2503 keys is read as that layout (nothing else to go by)
  const d = path.join(tmp, 'config-only');
  fs.mkdirSync(d);
  fs.copyFileSync(path.join(ROOT, 'small-doge-2503', 'config.json'), path.join(d, 'config.json'));
  const c = DogeConfig.fromPretrained(d);
  assert.equal(c.legacy_layout, 'small-doge-2503');
  assert.equal(c.attention_bias, true);
  assert.equal(c.mlp_bias, true);
  // dynamic_mask_ratio 0.0 (the only value loaded) is not a DogeConfig field: dropped on load, written back in the layout
  assert.ok(!('dynamic_mask_ratio' in c.extra));
  assert.equal(legacyConfigJSON(c.toJSON(), 'small-doge-2503').dynamic_mask_ratio, 0);
  assert.ok(!('hidden_bias' in c.extra));
  assert.equal(c.clone().legacy_layout, 'small-doge-2503');
});

test('tensor names: the 2503 renames both ways, layout detection by names', () => {
  const ours = ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight', 'model.layers.3.input_layernorm.weight',
    'model.layers.3.input_residual', 'model.layers.3.post_attention_layernorm.weight', 'model.layers.3.post_attention_residual',
    'model.layers.3.mlp.down_proj.bias', 'model.layers.3.self_attn.dt_proj.weight'];
  const old = ['model.word_embed.weight', 'model.final_layernorm.weight', 'lm_head.weight', 'model.layers.3.pre_layernorm.weight',
    'model.layers.3.pre_residual.weight', 'model.layers.3.post_layernorm.weight', 'model.layers.3.post_residual.weight',
    'model.layers.3.feed_forward.down_proj.bias', 'model.layers.3.self_attn.dt_proj.weight'];
  assert.deepEqual(ours.map((n) => toLegacyName('small-doge-2503', n)), old);
  assert.deepEqual(old.map((n) => fromLegacyName('small-doge-2503', n)), ours);
  assert.deepEqual(ours.map((n) => toLegacyName('small-doge-2506', n)), ours);
  assert.equal(layoutOfTensorNames(old).layout, 'small-doge-2503');
  assert.equal(layoutOfTensorNames(['model.layers.0.self_attn.A', 'model.embed_tokens.weight']).layout, 'small-doge-2506');
  assert.equal(layoutOfTensorNames(['model.layers.0.self_attn.A', 'model.layers.0.self_attn.q_norm.weight']).layout, null);
});
