// No silent bypass: every DynamicMaskAttention / CDMoE / MLP option and every DogeConfig field, each set to a
// non-default value, either gives the host decoder (src/runtime/doge-host-decoder.ts) the tfjs path's logits and tokens,
// or makes it refuse (and generate then runs model.forward). The option lists are read from the modules' source, so a
// new option fails here until the decoder's tables (typed by the same interfaces) and the VARIANTS below list it.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { CDMOE_OPTIONS, DMATTN_OPTIONS, DOGE_CONFIG_FIELDS, MLP_OPTIONS, dogeModelRefusal, type Mirror } from '../src/runtime/doge-host-decoder';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { DOGE_FIELDS } from '../src/models/doge/config';
import { DynamicMaskAttention, type DynamicMaskAttentionOptions } from '../src/modules/dmattn';
import { CDMoE, type CDMoEOptions } from '../src/modules/cdmoe';
import type { RouterLayout } from '../src/modules/cdmoe';
import { maxAbs, maxErr, randomizeDoge } from './parity-helpers';

before(async () => { await loadBackend({ log: false, workload: 'inference' }); });

const TOL = 1e-5;
const ROOT = path.join(__dirname, '..');

/** Field names of `interface NAME` in a source file (plus those of the interfaces it extends, from `more`). */
function interfaceFields(file: string, name: string, more: Record<string, string[]> = {}): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const m = new RegExp(`export interface ${name}(?: extends ([\\w, ]+))? \\{([\\s\\S]*?)\\n\\}`).exec(text);
  assert.ok(m, `interface ${name} not found in ${file}`);
  const own = [...m[2].replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '').matchAll(/^\s+(\w+)\??:/gm)].map((x) => x[1]);
  const inherited = (m[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean).flatMap((p) => {
    assert.ok(more[p], `${name} extends ${p}: give its fields`);
    return more[p];
  });
  return [...own, ...inherited].sort();
}

const INIT_OPTIONS = interfaceFields('src/modules/module.ts', 'InitOptions');

test('the decoder lists every module option and config field there is (read from the source)', () => {
  assert.deepEqual(INIT_OPTIONS, ['initializerRange', 'seed']);
  assert.deepEqual(Object.keys(DMATTN_OPTIONS).sort(), interfaceFields('src/modules/dmattn.ts', 'DynamicMaskAttentionOptions', { InitOptions: INIT_OPTIONS }));
  assert.deepEqual(Object.keys(CDMOE_OPTIONS).sort(), interfaceFields('src/modules/cdmoe.ts', 'CDMoEOptions', { InitOptions: INIT_OPTIONS }));
  assert.deepEqual(Object.keys(MLP_OPTIONS).sort(), interfaceFields('src/modules/mlp.ts', 'MLPOptions'));
  // DogeConfigFields is the DOGE_FIELDS table's values (src/models/config-fields.ts): one entry per field
  assert.deepEqual(Object.keys(DOGE_CONFIG_FIELDS).sort(), Object.keys(DOGE_FIELDS).sort());
  // and every property a DogeConfig really has (extra: HF's generic keys, kept for writing back)
  assert.deepEqual(Object.keys(new DogeConfig()).filter((k) => k !== 'extra').sort(), Object.keys(DOGE_CONFIG_FIELDS).sort());
});

// ---- variants: one non-default value per option / field ----

const BASE: Record<string, unknown> = {
  vocab_size: 48, hidden_size: 24, intermediate_size: 20, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  tie_word_embeddings: false, max_position_embeddings: 64,
};
const MOE = { is_moe: true, num_experts: 36, num_experts_per_tok: 4 };

interface Variant {
  /** config overrides */
  config?: Record<string, unknown>;
  routerLayout?: RouterLayout;
  /** every layer's attention rebuilt with these options on top of the config's */
  attn?: Partial<DynamicMaskAttentionOptions>;
  /** every layer's CDMoE rebuilt with these options on top of the config's (an MoE config) */
  moe?: Partial<CDMoEOptions>;
  /** the decoder refuses it with this reason */
  refused?: RegExp;
  /** the tfjs path cannot run it either (an option a Doge model cannot hold): only the refusal is checked */
  noForward?: boolean;
}

const DMATTN_VARIANTS: Record<keyof DynamicMaskAttentionOptions, Variant> = {
  hiddenSize: { config: { hidden_size: 48 } },
  numHeads: { config: { num_attention_heads: 3, num_key_value_heads: 1 } },
  numKvHeads: { config: { num_key_value_heads: 4 } },
  headDim: { attn: { headDim: 12 }, refused: /attention head_dim 12 differs from the model's RoPE head size/, noForward: true },
  keepWindowSize: { config: { keep_window_size: 5 } },
  attentionBias: { config: { attention_bias: true } },
  rmsNormEps: { config: { rms_norm_eps: 0.05 } },
  attentionDropout: { config: { attention_dropout: 0.3 } },
  qkNorm: { attn: { qkNorm: false }, refused: /^attention without q\/k norm$/ },
  useRope: { attn: { useRope: false } },
  ropeTheta: { attn: { ropeTheta: 500 } },
  maxPositionEmbeddings: { attn: { maxPositionEmbeddings: 8 } },
  dynamicMaskHeads: { attn: { dynamicMaskHeads: 'query' } },
  dynamicMaskBias: { attn: { dynamicMaskBias: 'linear' } },
  dynamicMaskSelect: { attn: { dynamicMaskSelect: 'key' } },
  dynamicMaskType: { attn: { dynamicMaskType: 'relu' }, refused: /^dynamic_mask_type 'relu'$/ },
  aInit: { attn: { aInit: 'ones' } },
  seed: { attn: { seed: 11 } },
  initializerRange: { attn: { initializerRange: 0.3 } },
};

const CDMOE_VARIANTS: Record<keyof CDMoEOptions, Variant> = {
  hiddenSize: { config: { ...MOE, hidden_size: 48 } },
  intermediateSize: { config: { ...MOE, intermediate_size: 12 } },
  numExperts: { config: { ...MOE, num_experts: 49 } },
  numExpertsPerTok: { config: { ...MOE, num_experts_per_tok: 6 } },
  normTopkProb: { config: { ...MOE, norm_topk_prob: true } },
  mlpBias: { config: { ...MOE, mlp_bias: true } },
  routerLayout: { config: MOE, routerLayout: 'hf' },
  router: { config: MOE, moe: { router: 'product-keys', numHeads: 2, retrievalSize: 8, numExpertsPerTok: 3 }, refused: /^CDMoE with product-key router$/ },
  // with the 'gate' router a CDMoE has one head and no retrieval size whatever these say
  numHeads: { config: MOE, moe: { numHeads: 3 } },
  retrievalSize: { config: MOE, moe: { retrievalSize: 16 } },
  seed: { config: MOE, moe: { seed: 12 } },
  initializerRange: { config: MOE, moe: { initializerRange: 0.3 } },
};

const MLP_VARIANTS: Record<keyof import('../src/modules/mlp').MLPOptions, Variant> = {
  hiddenSize: { config: { hidden_size: 48 } },
  intermediateSize: { config: { intermediate_size: 12 } },
  bias: { config: { mlp_bias: true } },
};

const CONFIG_VARIANTS: Record<keyof typeof DOGE_CONFIG_FIELDS, Variant> = {
  vocab_size: { config: { vocab_size: 80 } },
  hidden_size: { config: { hidden_size: 48 } },
  intermediate_size: { config: { intermediate_size: 12 } },
  num_hidden_layers: { config: { num_hidden_layers: 3 } },
  hidden_dropout: { config: { hidden_dropout: 0.3 } },
  hidden_act: { config: { hidden_act: 'swish' } },
  initializer_range: { config: { initializer_range: 0.3 } },
  rms_norm_eps: { config: { rms_norm_eps: 0.05 } },
  use_cache: { config: { use_cache: false } },
  tie_word_embeddings: { config: { tie_word_embeddings: true } },
  max_position_embeddings: { config: { max_position_embeddings: 16 } },
  rope_parameters: { config: { rope_parameters: { rope_type: 'dynamic', rope_theta: 500, factor: 2 } } },
  num_attention_heads: { config: { num_attention_heads: 2, num_key_value_heads: 1 } },
  num_key_value_heads: { config: { num_key_value_heads: 1 } },
  attention_bias: { config: { attention_bias: true } },
  attention_dropout: { config: { attention_dropout: 0.3 } },
  mlp_bias: { config: { mlp_bias: true } },
  sliding_window: { config: { sliding_window: 4 } },
  keep_window_size: { config: { keep_window_size: 4 } },
  dynamic_mask_bias: { config: { dynamic_mask_bias: 'linear' } },
  dynamic_mask_select: { config: { dynamic_mask_select: 'key', keep_window_size: 4 } },
  dynamic_mask_type: { config: { dynamic_mask_type: 'relu' }, refused: /^dynamic_mask_type 'relu'$/ },
  is_moe: { config: MOE },
  num_experts: { config: { ...MOE, num_experts: 64 } },
  num_experts_per_tok: { config: { ...MOE, num_experts_per_tok: 2 } },
  norm_topk_prob: { config: { ...MOE, norm_topk_prob: true } },
  output_router_logits: { config: { ...MOE, output_router_logits: true } },
  router_aux_loss_coef: { config: { ...MOE, router_aux_loss_coef: 0.5 } },
  pad_token_id: { config: { pad_token_id: 3 } },
  bos_token_id: { config: { bos_token_id: 5 } },
  eos_token_id: { config: { eos_token_id: 6 } },
  legacy_layout: { config: { legacy_layout: 'small-doge-2506' }, refused: /^legacy layout 'small-doge-2506'$/ },
};

function build(v: Variant, seed: number): DogeForCausalLM {
  const m = new DogeForCausalLM(new DogeConfig({ ...BASE, ...v.config }), { seed, routerLayout: v.routerLayout });
  const c = m.config;
  const extra: { parameters(): Map<string, tf.Variable> }[] = [];
  for (const layer of m.layers) {
    const l = layer as unknown as { attn: DynamicMaskAttention; mlp: unknown };
    if (v.attn) {
      // a module the config cannot express: built standalone with the config's values plus the variant's
      l.attn.dispose();
      l.attn = new DynamicMaskAttention({
        hiddenSize: c.hidden_size, numHeads: c.num_attention_heads, numKvHeads: c.num_key_value_heads, keepWindowSize: c.keep_window_size,
        attentionBias: c.attention_bias, rmsNormEps: c.rms_norm_eps, attentionDropout: c.attention_dropout, ...v.attn,
      });
      extra.push(l.attn);
    }
    if (v.moe) {
      (l.mlp as CDMoE).dispose();
      l.mlp = new CDMoE({
        hiddenSize: c.hidden_size, intermediateSize: c.intermediate_size, numExperts: c.num_experts, numExpertsPerTok: c.num_experts_per_tok,
        normTopkProb: c.norm_topk_prob, mlpBias: c.mlp_bias, ...v.moe,
      });
      extra.push(l.mlp as CDMoE);
    }
  }
  randomizeDoge(m, seed + 100);
  for (const [i, x] of extra.entries()) randomizeDoge(x, seed + 200 + i);
  return m;
}

/** Generate with and without the host decoder; what generate was told about it, and the worst step-logit error. */
function compare(m: DogeForCausalLM): { used: boolean; reason: string | null; same: boolean; worst: number } {
  const prompt = [[1, 5, 9, 2, 12]];
  // distinct tokens: equal tokens tie in the dynamic-mask top-k (see tests/doge-fast-decode.test.ts, DISTINCT)
  const opts = { maxNewTokens: 7, eosTokenId: null, repetitionPenalty: 1e6 };
  let info = { used: false, reason: null as string | null };
  const lf: Float32Array[] = [], lp: Float32Array[] = [];
  const fast = m.generate(prompt, { ...opts, onHostDecoder: (i) => { info = i; }, onLogits: (l) => lf.push(Float32Array.from(l)) });
  const plain = m.generate(prompt, { ...opts, fastDecode: false, onLogits: (l) => lp.push(Float32Array.from(l)) });
  const worst = Math.max(...lf.map((l, i) => maxErr(l, lp[i]) / maxAbs(lp[i])));
  return { ...info, same: JSON.stringify(fast) === JSON.stringify(plain), worst };
}

const TABLES: Array<[string, Record<string, Variant>, Record<string, Mirror<never>>]> = [
  ['DynamicMaskAttention', DMATTN_VARIANTS, DMATTN_OPTIONS as Record<string, Mirror<never>>],
  ['CDMoE', CDMOE_VARIANTS, CDMOE_OPTIONS as Record<string, Mirror<never>>],
  ['MLP', MLP_VARIANTS, MLP_OPTIONS as Record<string, Mirror<never>>],
  ['DogeConfig', CONFIG_VARIANTS, DOGE_CONFIG_FIELDS as Record<string, Mirror<never>>],
];

for (const [owner, variants, table] of TABLES) {
  test(`every ${owner} option: host decoder == tfjs path, or refused (then generate runs model.forward)`, () => {
    assert.deepEqual(Object.keys(variants).sort(), Object.keys(table).sort(), `a variant for every ${owner} option`);
    let seed = 1;
    const lines: string[] = [];
    for (const [name, v] of Object.entries(variants)) {
      const m = build(v, seed++);
      try {
        if (v.refused) assert.ok(table[name].refuse, `${owner}.${name}: refused, so its rule must say when`);
        if (v.noForward) {
          assert.match(dogeModelRefusal(m) ?? 'none', v.refused!, `${owner}.${name}`);
          lines.push(`${name}: refused (${dogeModelRefusal(m)})`);
          continue;
        }
        const r = compare(m);
        if (v.refused) {
          assert.equal(r.used, false, `${owner}.${name}: the decoder ran a variant it does not mirror`);
          assert.match(r.reason ?? 'none', v.refused, `${owner}.${name}`);
          assert.ok(r.same && r.worst === 0, `${owner}.${name}: refused, generate must equal the tfjs path exactly`);
          lines.push(`${name}: refused (${r.reason})`);
        } else {
          assert.equal(r.used, true, `${owner}.${name}: refused (${r.reason}) where the decoder claims to mirror it`);
          assert.ok(r.same, `${owner}.${name}: different tokens`);
          assert.ok(r.worst < TOL, `${owner}.${name}: worst step-logit error ${r.worst} >= ${TOL}`);
          lines.push(`${name}: ${table[name].use}, error ${r.worst.toExponential(1)}`);
        }
      } finally {
        m.dispose();
      }
    }
    console.log(`${owner}: ${lines.join('; ')}`);
  });
}

test('a config property the decoder does not know is refused, a generic config.json key (config.extra) is not', () => {
  const m = build({ config: { transformers_version: '4.48.0' } }, 40);
  assert.deepEqual(m.config.extra, { transformers_version: '4.48.0' });
  assert.equal(dogeModelRefusal(m), null);
  (m.config as unknown as Record<string, unknown>).new_math_switch = true;
  assert.equal(dogeModelRefusal(m), "config field 'new_math_switch' is not mirrored by the host decoder");
  const r = compare(m);
  assert.equal(r.used, false);
  assert.equal(r.reason, "config field 'new_math_switch' is not mirrored by the host decoder");
  m.dispose();
});

test('a live change the decoder mirrors: keepWindowSize set between generations (MQAR curriculum) still matches', () => {
  const m = build({}, 41);
  for (const l of m.layers) l.attn.keepWindowSize = 3;
  const r = compare(m);
  assert.equal(r.used, true);
  assert.ok(r.same && r.worst < TOL, `worst ${r.worst}`);
  m.dispose();
  assert.ok(tf.memory().numTensors >= 0);
});
