/**
 * The two older SmallDoge checkpoint layouts, as the published modeling code writes them (SmallDoges/small-doge; the
 * code is vendored in scripts/doge-legacy/, whose README.md lists what each layout is, and the reference fixtures are
 * built with it by scripts/doge-legacy-fixtures.py):
 *
 *   'small-doge-2503'  commit ae7abf7 (2025-03). Names: model.word_embed, layers.N.pre_layernorm, pre_residual.weight,
 *                      post_layernorm, post_residual.weight, feed_forward.*, model.final_layernorm. Config:
 *                      hidden_bias (every attention and MLP bias), dynamic_mask_ratio; the dynamic mask is added to
 *                      the scores with NO top-k (keep_window_size only acts through dynamic_mask_ratio > 0).
 *   'small-doge-2506'  commit 0e305a7 (modeling last changed 2025-08). Today's HF names and config keys.
 *   both:              no q/k RMSNorm; A [num_attention_heads] and dt_proj [num_attention_heads, kv_heads*head_dim]:
 *                      one dynamic mask per QUERY head (DynamicMaskAttention's dynamicMaskHeads 'query', the variant
 *                      Cheems uses), where today's HF has one per kv head.
 *
 * Loading is automatic: DogeConfig.fromPretrained reads the layout from the tensor names and the config keys (a
 * `legacy_layout` in config.json declares it) and converts the config; the model takes its attention options from
 * `legacyAttentionOptions`, renames the tensors in `loadState` and writes the same layout back in `savePretrained`
 * (config.json with the layout's keys plus `legacy_layout`). `{ legacy: false }` refuses an older layout.
 * Not supported (refused naming the field): dynamic_mask_ratio > 0 (2503's kthvalue cut), is_moe (2503's CDMoE uses
 * the rank position in the sorted score grid as the expert id; 2506's decoder layer cannot run its own CDMoE).
 */
import * as path from 'node:path';
import type { tf } from '../../tf';
import type { DynamicMaskAttentionOptions } from '../../modules/dmattn';
import { checkpointShapes } from '../checkpoint';
import { DMA_FIELDS } from '../config-fields';

/** The DMA option fields the older layouts do not have: only their defaults (HF's DMAttn) describe those layouts. */
const DMA_DEFAULTS = {
  dynamic_mask_bias: DMA_FIELDS.dynamic_mask_bias.default,
  dynamic_mask_select: DMA_FIELDS.dynamic_mask_select.default,
  dynamic_mask_type: DMA_FIELDS.dynamic_mask_type.default,
};

export const LEGACY_LAYOUTS = ['small-doge-2503', 'small-doge-2506'] as const;
export type LegacyLayout = (typeof LEGACY_LAYOUTS)[number];

/** What a layout is, in a few words, for messages. */
const DESCRIPTION: Record<LegacyLayout, string> = {
  'small-doge-2503': 'SmallDoge modeling code of 2025-03 (small-doge ae7abf7): word_embed / pre_layernorm / feed_forward names, hidden_bias, no q/k norm, A per query head',
  'small-doge-2506': 'SmallDoge modeling code of 2025-06..08 (small-doge 0e305a7): no q/k norm, A and dt_proj per query head',
};

/** 2503 name pieces <-> ours (the rest of the names are the same). Order matters: longer pieces first. */
const RENAMES_2503: [RegExp, string, RegExp, string][] = [
  [/^model\.word_embed\./, 'model.embed_tokens.', /^model\.embed_tokens\./, 'model.word_embed.'],
  [/^model\.final_layernorm\./, 'model.norm.', /^model\.norm\./, 'model.final_layernorm.'],
  [/\.pre_layernorm\./, '.input_layernorm.', /\.input_layernorm\./, '.pre_layernorm.'],
  [/\.post_layernorm\./, '.post_attention_layernorm.', /\.post_attention_layernorm\./, '.post_layernorm.'],
  [/\.pre_residual\.weight$/, '.input_residual', /\.input_residual$/, '.pre_residual.weight'],
  [/\.post_residual\.weight$/, '.post_attention_residual', /\.post_attention_residual$/, '.post_residual.weight'],
  [/\.feed_forward\./, '.mlp.', /\.mlp\./, '.feed_forward.'],
];

/** Our tensor name of a checkpoint tensor of `layout`. */
export function fromLegacyName(layout: LegacyLayout | null, name: string): string {
  if (layout !== 'small-doge-2503') return name;
  for (const [from, to] of RENAMES_2503) if (from.test(name)) return name.replace(from, to);
  return name;
}

/** The checkpoint name of `layout` for one of our tensor names. */
export function toLegacyName(layout: LegacyLayout | null, name: string): string {
  if (layout !== 'small-doge-2503') return name;
  for (const [, , from, to] of RENAMES_2503) if (from.test(name)) return name.replace(from, to);
  return name;
}

/** The same tensors under the names of the other side (no copies: the caller keeps owning them). */
export function renameTensors<T extends tf.Tensor>(tensors: Map<string, T>, rename: (name: string) => string): Map<string, T> {
  const out = new Map<string, T>();
  for (const [name, t] of tensors) out.set(rename(name), t);
  return out;
}

/** The checkpoint name of the input embedding (the tied lm_head) in `layout`. */
export function embeddingName(layout: LegacyLayout | null): string {
  return toLegacyName(layout, 'model.embed_tokens.weight');
}

/** Validate a config's `legacy_layout` value (null / absent: the current HF layout). */
export function checkLegacyLayout(value: unknown, fail: (field: string, msg: string) => never): LegacyLayout | null {
  if (value === undefined || value === null) return null;
  if (!LEGACY_LAYOUTS.includes(value as LegacyLayout)) fail('legacy_layout', `must be ${LEGACY_LAYOUTS.map((l) => `'${l}'`).join(' or ')} or null, got ${JSON.stringify(value)}`);
  return value as LegacyLayout;
}

/** DynamicMaskAttention options of a layout (the current layout: none). */
export function legacyAttentionOptions(layout: LegacyLayout | null): Partial<DynamicMaskAttentionOptions> {
  if (layout === null) return {};
  // 2503 adds d to every allowed score and never selects keys (its keep_window_size acts only with dynamic_mask_ratio)
  return { qkNorm: false, dynamicMaskHeads: 'query', ...(layout === 'small-doge-2503' ? { keepWindowSize: null } : {}) };
}

/** The layout the tensor names show (null: today's HF layout), with a name that shows it. */
export function layoutOfTensorNames(names: Iterable<string>): { layout: LegacyLayout | null; example: string } {
  const all = [...names];
  const old = all.find((n) => /^model\.(word_embed|final_layernorm)\.|\.(pre_layernorm|post_layernorm|feed_forward)\.|\.(pre|post)_residual\.weight$/.test(n));
  if (old) return { layout: 'small-doge-2503', example: old };
  const qNorm = all.find((n) => /\.self_attn\.q_norm\.weight$/.test(n));
  const A = all.find((n) => /^model\.layers\.\d+\.self_attn\.A$/.test(n));
  if (A && !qNorm) return { layout: 'small-doge-2506', example: `${A} without self_attn.q_norm.weight` };
  return { layout: null, example: qNorm ?? A ?? all[0] ?? '(no tensors)' };
}

function layoutName(layout: LegacyLayout | null): string {
  return layout === null ? 'null (the current HF layout)' : `'${layout}'`;
}

export interface LegacyOptions {
  /** Older SmallDoge layouts: undefined / true load them (converted), false refuses them. */
  legacy?: boolean;
}

/**
 * The config.json object of the Doge folder `dir`, converted to today's fields with `legacy_layout` set when the
 * folder holds an older layout (read from the tensor names, the config keys and a declared `legacy_layout`, which must
 * agree). Throws naming the file and the field on a contradiction, an unsupported legacy feature, or `legacy: false`.
 */
export function legacyConfigInput(dir: string, obj: Record<string, unknown>, options: LegacyOptions = {}): Record<string, unknown> {
  const file = path.join(dir, 'config.json');
  const fail = (field: string, msg: string): never => { throw new Error(`${file}: ${field} ${msg}`); };
  const declared = 'legacy_layout' in obj ? checkLegacyLayout(obj.legacy_layout, fail) : undefined;
  const oldKeys = ['hidden_bias', 'dynamic_mask_ratio'].filter((k) => k in obj);
  let shown: { layout: LegacyLayout | null; example: string; file: string } | null = null;
  try {
    const { shapes, file: weights } = checkpointShapes(dir);
    shown = { ...layoutOfTensorNames(shapes.keys()), file: weights };
  } catch {
    shown = null; // a config-only folder (the weights' own errors come from the loader, which reads them next)
  }
  if (shown && declared !== undefined && declared !== shown.layout) {
    fail('legacy_layout', `declares ${layoutName(declared)} but ${shown.file} holds tensors of ${layoutName(shown.layout)} (e.g. '${shown.example}')`);
  }
  if (oldKeys.length && ((declared !== undefined && declared !== 'small-doge-2503') || (shown && shown.layout !== 'small-doge-2503'))) {
    const other = declared !== undefined ? `declares legacy_layout ${layoutName(declared)}` : `${shown!.file} holds tensors of ${layoutName(shown!.layout)} (e.g. '${shown!.example}')`;
    fail('legacy_layout', `is 'small-doge-2503' by the config keys ${oldKeys.join(', ')}, but ${other}`);
  }
  const layout = declared !== undefined ? declared : shown ? shown.layout : oldKeys.length ? 'small-doge-2503' : null;
  if (layout === null) return obj;
  if (options.legacy === false) {
    throw new Error(`${dir}: is a SmallDoge checkpoint in the older layout '${layout}' (${DESCRIPTION[layout]}); it loads only as a legacy checkpoint ({ legacy: true } or no legacy option), and legacy: false refuses it`);
  }
  const out: Record<string, unknown> = { ...obj, legacy_layout: layout };
  if (out.is_moe === true) {
    fail('is_moe', layout === 'small-doge-2503'
      ? "true is not supported in the 'small-doge-2503' layout (its CDMoE takes the rank position in the sorted score grid as the expert id, which this package does not implement)"
      : "true is not supported in the 'small-doge-2506' layout (that code's decoder layer cannot run its own CDMoE: it passes the (states, router_logits) tuple to dropout)");
  }
  for (const k of Object.keys(DMA_DEFAULTS) as Array<keyof typeof DMA_DEFAULTS>) {
    if (out[k] !== undefined && out[k] !== DMA_DEFAULTS[k]) fail(k, `must be '${DMA_DEFAULTS[k]}' (or absent) in the '${layout}' layout, got ${JSON.stringify(out[k])}`);
  }
  if (layout === 'small-doge-2503') {
    const ratio = out.dynamic_mask_ratio;
    // only 0 (no cut) has its math here, so the key carries no information: dropped on load, written back as 0.0 by
    // legacyConfigJSON (DogeConfig refuses keys that are not its fields)
    if (ratio !== undefined && ratio !== 0) fail('dynamic_mask_ratio', `${JSON.stringify(ratio)} is not supported (only 0.0: the 'small-doge-2503' kthvalue cut over the keys is not implemented)`);
    delete out.dynamic_mask_ratio;
    if (out.hidden_bias !== undefined && typeof out.hidden_bias !== 'boolean') fail('hidden_bias', `must be true or false, got ${JSON.stringify(out.hidden_bias)}`);
    const bias = out.hidden_bias ?? false; // 2503's default
    delete out.hidden_bias;
    out.attention_bias = bias;
    out.mlp_bias = bias;
  }
  return out;
}

/** Today's config keys that a layout's config.json does not have (written back without them). */
const NOT_IN_LAYOUT: Record<LegacyLayout, string[]> = {
  'small-doge-2503': ['rope_parameters', ...Object.keys(DMA_DEFAULTS), 'attention_bias', 'mlp_bias', 'sliding_window',
    'norm_topk_prob', 'output_router_logits', 'router_aux_loss_coef'],
  'small-doge-2506': ['rope_parameters', ...Object.keys(DMA_DEFAULTS)],
};

/**
 * config.json of `layout` from a DogeConfig's `toJSON()` (which has `legacy_layout`): the layout's own keys, so that
 * the original modeling code reads it, plus `legacy_layout` (which that code keeps as an unused attribute).
 */
export function legacyConfigJSON(json: Record<string, unknown>, layout: LegacyLayout): Record<string, unknown> {
  const out: Record<string, unknown> = { ...json };
  if (layout === 'small-doge-2503') {
    if (out.attention_bias !== out.mlp_bias) {
      throw new Error(`legacy_layout 'small-doge-2503' has one hidden_bias for attention and MLP: attention_bias (${out.attention_bias}) and mlp_bias (${out.mlp_bias}) must be equal`);
    }
    if (out.sliding_window !== null && out.sliding_window !== undefined) throw new Error(`legacy_layout 'small-doge-2503' has no sliding_window (got ${out.sliding_window})`);
    out.hidden_bias = out.attention_bias;
    out.dynamic_mask_ratio = 0.0; // the only value this package loads (legacyConfigInput)
  }
  for (const k of NOT_IN_LAYOUT[layout]) delete out[k];
  out.legacy_layout = layout;
  return out;
}
