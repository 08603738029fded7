/**
 * CheemsConfig: the seed's `config.json` of `CheemsForCausalLM` (model_type "cheems"), cheems-spec section 2.
 *
 * `new CheemsConfig(partial)` fills the defaults and validates; wrong types, impossible values and unknown fields
 * throw an Error naming the field. HF's generic PretrainedConfig keys (`transformers_version`, `torch_dtype`, ...)
 * are tolerated and written back. `layersType` (derived, never stored) says which layers are attention:
 * layer i is "attn" iff i mod attn_layer_period == attn_layer_offset.
 */
import * as path from 'node:path';
import { checkFieldTypes, checkParameterCount, checkSizeLimits, kvHeadsOf, readConfigJSON } from '../config-fields';

export interface CheemsRopeScaling {
  rope_type: string;
  factor?: number;
  original_max_position_embeddings?: number;
  [k: string]: unknown;
}

export interface CheemsConfigFields {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  hidden_bias: boolean;
  hidden_dropout: number;
  hidden_act: string;
  max_position_embeddings: number;
  rope_theta: number;
  rope_scaling: CheemsRopeScaling | null;
  initializer_range: number;
  rms_norm_eps: number;
  use_cache: boolean;
  bos_token_id: number | null;
  eos_token_id: number | null;
  pad_token_id: number | null;
  tie_word_embeddings: boolean;
  ssd_chunk_size: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  attention_dropout: number;
  dynamic_mask_ratio: number;
  attn_layer_period: number;
  attn_layer_offset: number;
  is_moe: boolean;
  num_cdmoe_experts: number;
  num_cdmoe_heads: number;
  num_cdmoe_experts_per_head: number;
  expert_retrieval_size: number;
}

export type CheemsConfigInput = Partial<Omit<CheemsConfigFields, 'num_key_value_heads' | 'rope_scaling'>> & {
  num_key_value_heads?: number | null;
  rope_scaling?: Record<string, unknown> | null;
  [k: string]: unknown;
};

const CHEEMS_DEFAULTS: CheemsConfigFields = {
  vocab_size: 32768,
  hidden_size: 1024,
  intermediate_size: 2048,
  num_hidden_layers: 32,
  hidden_bias: false,
  hidden_dropout: 0.0,
  hidden_act: 'silu',
  max_position_embeddings: 2048,
  rope_theta: 10000.0,
  rope_scaling: { rope_type: 'dynamic', factor: 4.0, original_max_position_embeddings: 2048 },
  initializer_range: 0.02,
  rms_norm_eps: 1e-6,
  use_cache: true,
  bos_token_id: 0,
  eos_token_id: 1,
  pad_token_id: 2,
  tie_word_embeddings: true,
  ssd_chunk_size: 256,
  num_attention_heads: 8,
  num_key_value_heads: 8,
  attention_dropout: 0.0,
  dynamic_mask_ratio: 0.0,
  attn_layer_period: 8,
  attn_layer_offset: 7,
  is_moe: false,
  num_cdmoe_experts: 16384,
  num_cdmoe_heads: 4,
  num_cdmoe_experts_per_head: 8,
  expert_retrieval_size: 64,
};

const INTS = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'max_position_embeddings', 'ssd_chunk_size',
  'num_attention_heads', 'attn_layer_period', 'attn_layer_offset', 'num_cdmoe_experts', 'num_cdmoe_heads',
  'num_cdmoe_experts_per_head', 'expert_retrieval_size'] as const;
const FLOATS = ['hidden_dropout', 'rope_theta', 'initializer_range', 'rms_norm_eps', 'attention_dropout', 'dynamic_mask_ratio'] as const;
const BOOLS = ['hidden_bias', 'use_cache', 'tie_word_embeddings', 'is_moe'] as const;
const NULLABLE_INTS = ['bos_token_id', 'eos_token_id', 'pad_token_id'] as const;
/** HF PretrainedConfig keys every config.json may carry; kept and written back, never interpreted. */
const GENERIC_KEYS = new Set(['transformers_version', 'torch_dtype', 'dtype', 'architectures', '_name_or_path', 'model_type',
  '_attn_implementation', 'auto_map', 'return_dict', 'output_hidden_states', 'output_attentions', 'torchscript',
  'pruned_heads', 'chunk_size_feed_forward', 'is_encoder_decoder', 'is_decoder', 'id2label', 'label2id', 'problem_type',
  'tokenizer_class', 'prefix', 'sep_token_id', 'decoder_start_token_id', 'task_specific_params', 'layers_type']);

function fail(field: string, msg: string): never {
  throw new Error(`CheemsConfig: ${field} ${msg}`);
}

export const CHEEMS_PRESET_NAMES = ['cheems-tiny', 'cheems-tiny-moe', 'cheems-default'] as const;
export type CheemsPresetName = (typeof CHEEMS_PRESET_NAMES)[number];

const CHEEMS_PRESETS: Record<CheemsPresetName, CheemsConfigInput> = {
  // the CPU demo, beside doge-tiny: same width, vocabulary and depth; layers SSD, SSD, SSD, DMAttn
  'cheems-tiny': {
    vocab_size: 4096, hidden_size: 256, intermediate_size: 512, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
    attn_layer_period: 4, attn_layer_offset: 3, ssd_chunk_size: 64, rope_scaling: null, tie_word_embeddings: true,
    bos_token_id: null, eos_token_id: null, pad_token_id: null,
  },
  'cheems-tiny-moe': {
    vocab_size: 4096, hidden_size: 256, intermediate_size: 512, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
    attn_layer_period: 4, attn_layer_offset: 3, ssd_chunk_size: 64, rope_scaling: null, tie_word_embeddings: true,
    bos_token_id: null, eos_token_id: null, pad_token_id: null,
    is_moe: true, num_cdmoe_experts: 1024, num_cdmoe_heads: 2, num_cdmoe_experts_per_head: 4, expert_retrieval_size: 32,
  },
  // the seed's default: 32 layers (7 SSD : 1 DMAttn), hidden 1024, 369,493,248 parameters
  'cheems-default': {},
};

export class CheemsConfig implements CheemsConfigFields {
  vocab_size!: number;
  hidden_size!: number;
  intermediate_size!: number;
  num_hidden_layers!: number;
  hidden_bias!: boolean;
  hidden_dropout!: number;
  hidden_act!: string;
  max_position_embeddings!: number;
  rope_theta!: number;
  rope_scaling!: CheemsRopeScaling | null;
  initializer_range!: number;
  rms_norm_eps!: number;
  use_cache!: boolean;
  bos_token_id!: number | null;
  eos_token_id!: number | null;
  pad_token_id!: number | null;
  tie_word_embeddings!: boolean;
  ssd_chunk_size!: number;
  num_attention_heads!: number;
  num_key_value_heads!: number;
  attention_dropout!: number;
  dynamic_mask_ratio!: number;
  attn_layer_period!: number;
  attn_layer_offset!: number;
  is_moe!: boolean;
  num_cdmoe_experts!: number;
  num_cdmoe_heads!: number;
  num_cdmoe_experts_per_head!: number;
  expert_retrieval_size!: number;
  /** Generic HF keys of the file, written back unchanged. */
  readonly extra: Record<string, unknown> = {};
  /** HF model_type (a getter: not an own field, so it is neither compared nor copied with the fields). */
  get model_type(): 'cheems' {
    return 'cheems';
  }

  constructor(input: CheemsConfigInput = {}) {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new Error('CheemsConfig: expected a JSON object');
    const src = input as Record<string, unknown>;
    if (src.model_type !== undefined && src.model_type !== 'cheems') fail('model_type', `must be "cheems", got ${JSON.stringify(src.model_type)}`);
    for (const k of Object.keys(src)) {
      if (k in CHEEMS_DEFAULTS) continue;
      if (GENERIC_KEYS.has(k)) { if (k !== 'model_type' && k !== 'architectures' && k !== 'layers_type') this.extra[k] = src[k]; continue; }
      fail(k, 'is not a Cheems config field');
    }
    const self = this as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(CHEEMS_DEFAULTS)) self[k] = src[k] === undefined ? v : src[k];
    checkFieldTypes(self, { ints: INTS, floats: FLOATS, bools: BOOLS, nullableInts: NULLABLE_INTS }, fail);
    checkSizeLimits(self, INTS, fail);
    this.num_key_value_heads = kvHeadsOf(src, this.num_attention_heads, fail);
    this.rope_scaling = CheemsConfig.readRopeScaling(src.rope_scaling === undefined ? CHEEMS_DEFAULTS.rope_scaling : src.rope_scaling);
    this.validate();
  }

  private static readRopeScaling(v: unknown): CheemsRopeScaling | null {
    if (v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) fail('rope_scaling', `must be an object or null, got ${JSON.stringify(v)}`);
    const r: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    if (r.rope_type === undefined && r.type !== undefined) { r.rope_type = r.type; delete r.type; }
    if (r.rope_type === undefined) r.rope_type = 'default';
    if (r.rope_type !== 'default' && r.rope_type !== 'dynamic') fail('rope_scaling.rope_type', `'${String(r.rope_type)}' is not supported (only 'default' and 'dynamic')`);
    if (r.rope_type === 'dynamic' && (typeof r.factor !== 'number' || !(r.factor >= 1))) {
      fail('rope_scaling.factor', `must be a number >= 1 for dynamic RoPE, got ${JSON.stringify(r.factor)}`);
    }
    return r as CheemsRopeScaling;
  }

  private validate(): void {
    const self = this as unknown as Record<string, number>;
    for (const f of INTS) if (f !== 'attn_layer_offset' && self[f] < 1) fail(f, `must be >= 1, got ${self[f]}`);
    if (this.attn_layer_offset < 0) fail('attn_layer_offset', `must be >= 0, got ${this.attn_layer_offset}`);
    if (this.num_key_value_heads < 1) fail('num_key_value_heads', `must be >= 1, got ${this.num_key_value_heads}`);
    if (this.hidden_size % this.num_attention_heads !== 0) {
      fail('hidden_size', `(${this.hidden_size}) must be divisible by num_attention_heads (${this.num_attention_heads})`);
    }
    if (this.num_attention_heads % this.num_key_value_heads !== 0) {
      fail('num_attention_heads', `(${this.num_attention_heads}) must be a multiple of num_key_value_heads (${this.num_key_value_heads})`);
    }
    if (this.headDim % 2 !== 0) fail('hidden_size', `/ num_attention_heads = ${this.headDim} must be even for RoPE`);
    if (this.hidden_act !== 'silu' && this.hidden_act !== 'swish') fail('hidden_act', `'${this.hidden_act}' is not supported (only 'silu')`);
    for (const f of ['hidden_dropout', 'attention_dropout'] as const) if (this[f] < 0 || this[f] >= 1) fail(f, `must be in [0, 1), got ${this[f]}`);
    if (!(this.rms_norm_eps > 0)) fail('rms_norm_eps', `must be > 0, got ${this.rms_norm_eps}`);
    if (!(this.rope_theta > 0)) fail('rope_theta', `must be > 0, got ${this.rope_theta}`);
    if (this.dynamic_mask_ratio !== 0) {
      // the seed's sparsification is not causal (cheems-spec D6): refused instead of silently differing when decoding
      fail('dynamic_mask_ratio', `(${this.dynamic_mask_ratio}) is not supported: only 0.0 (the seed's threshold over all keys is not causal)`);
    }
    if (this.is_moe) {
      const K = Math.floor(Math.sqrt(this.num_cdmoe_experts));
      if (this.num_cdmoe_experts_per_head > K) fail('num_cdmoe_experts_per_head', `(${this.num_cdmoe_experts_per_head}) exceeds floor(sqrt(num_cdmoe_experts)) = ${K}`);
      if (this.expert_retrieval_size % 2 !== 0) fail('expert_retrieval_size', `(${this.expert_retrieval_size}) must be even (two product-key halves)`);
    }
    for (const f of NULLABLE_INTS) {
      const v = this[f];
      if (v !== null && (v < 0 || v >= this.vocab_size)) fail(f, `(${v}) must be in [0, vocab_size=${this.vocab_size})`);
    }
  }

  /** hidden_size / num_attention_heads (also the SSD head dim and state size). */
  get headDim(): number {
    return this.hidden_size / this.num_attention_heads;
  }

  /** "attn" or "ssd" per layer. */
  get layersType(): Array<'attn' | 'ssd'> {
    return Array.from({ length: this.num_hidden_layers }, (_, i) => (i % this.attn_layer_period === this.attn_layer_offset ? 'attn' : 'ssd'));
  }

  /** Throw, naming the field, when the model of this config cannot fit in memory (called before it is built). */
  checkBuildable(): void {
    checkParameterCount(this.parameterParts(), fail);
  }

  /** The parts of numParameters(), for the size check (fields first in each description). */
  parameterParts(): [string, number][] {
    const embed = this.vocab_size * this.hidden_size * (this.tie_word_embeddings ? 1 : 2);
    return [['vocab_size x hidden_size (embedding)', embed], ['num_hidden_layers x layer', this.numParameters() - embed]];
  }

  /** Parameter count of the model this config builds (spec 2's formula; tied embeddings counted once). */
  numParameters(): number {
    const H = this.hidden_size, I = this.intermediate_size, nh = this.num_attention_heads, kvd = this.num_key_value_heads * this.headDim;
    const bias = this.hidden_bias;
    const ssd = 4 * H * H + nh * H + nh + (bias ? 4 * H + nh : 0);
    const attn = 2 * H * H + 2 * kvd * H + nh * kvd + nh + (bias ? 2 * H + 2 * kvd + nh : 0);
    let ff = 3 * H * I + (bias ? 2 * I + H : 0);
    if (this.is_moe) {
      const K = Math.floor(Math.sqrt(this.num_cdmoe_experts)), he = this.num_cdmoe_heads, Dr = this.expert_retrieval_size;
      ff += he * Dr * H + he * K * Dr + 2 * this.num_cdmoe_experts * H;
    }
    const layers = this.layersType.reduce((n, t) => n + (t === 'ssd' ? ssd : attn) + ff + 4 * H, 0);
    return layers + this.vocab_size * H * (this.tie_word_embeddings ? 1 : 2) + H;
  }

  static fromJSON(obj: unknown): CheemsConfig {
    return new CheemsConfig(obj as CheemsConfigInput);
  }

  static fromPretrained(dir: string): CheemsConfig {
    const obj = readConfigJSON(dir);
    try {
      return new CheemsConfig(obj as CheemsConfigInput);
    } catch (e) {
      throw new Error(`${path.join(dir, 'config.json')}: ${(e as Error).message}`);
    }
  }

  static preset(name: CheemsPresetName | string, overrides: CheemsConfigInput = {}): CheemsConfig {
    const p = CHEEMS_PRESETS[name as CheemsPresetName];
    if (!p) throw new Error(`CheemsConfig.preset: unknown preset '${name}' (choose one of ${CHEEMS_PRESET_NAMES.join(', ')})`);
    return new CheemsConfig({ ...p, ...overrides });
  }

  /** The seed's config.json (plus architectures, model_type, torch_dtype). */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { architectures: ['CheemsForCausalLM'], model_type: 'cheems' };
    for (const k of Object.keys(CHEEMS_DEFAULTS)) out[k] = (this as unknown as Record<string, unknown>)[k];
    out.rope_scaling = this.rope_scaling ? { ...this.rope_scaling } : null;
    if (!('dtype' in this.extra) && !('torch_dtype' in this.extra)) out.torch_dtype = 'float32';
    for (const [k, v] of Object.entries(this.extra)) out[k] = v;
    return out;
  }

  clone(overrides: CheemsConfigInput = {}): CheemsConfig {
    return new CheemsConfig({ ...this.toJSON(), ...overrides });
  }
}
