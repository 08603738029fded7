/**
 * DogeConfig: the Hugging Face `config.json` of `DogeForCausalLM` (model_type "doge"), spec section 2.1.
 *
 * Fields carry HF's snake_case names; `new DogeConfig(partial)` fills HF defaults and validates (wrong JSON types and
 * impossible values throw an Error naming the field). Unknown fields are kept and written back by `toJSON()`.
 * RoPE: the v5 `rope_parameters` dict or the legacy `rope_theta` + `rope_scaling` pair are accepted; `toJSON()`
 * writes `rope_parameters` plus the legacy pair for older readers.
 */
import * as path from 'node:path';
import { DMA_KEYS, checkFieldTypes, checkParameterCount, checkSizeLimits, dmaFieldsJSON, kvHeadsOf, readConfigJSON, readDmaFields, type DmaFields } from '../config-fields';
import { checkLegacyLayout, legacyConfigInput, type LegacyLayout, type LegacyOptions } from './legacy';

export interface RopeParameters {
  rope_type: string;
  rope_theta: number;
  factor?: number;
  original_max_position_embeddings?: number;
  [k: string]: unknown;
}

export interface DogeConfigFields extends DmaFields {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  hidden_dropout: number;
  hidden_act: string;
  initializer_range: number;
  rms_norm_eps: number;
  use_cache: boolean;
  tie_word_embeddings: boolean;
  max_position_embeddings: number;
  rope_parameters: RopeParameters;
  num_attention_heads: number;
  num_key_value_heads: number;
  attention_bias: boolean;
  attention_dropout: number;
  mlp_bias: boolean;
  sliding_window: number | null;
  keep_window_size: number;
  is_moe: boolean;
  num_experts: number;
  num_experts_per_tok: number;
  norm_topk_prob: boolean;
  output_router_logits: boolean;
  router_aux_loss_coef: number;
  pad_token_id: number | null;
  bos_token_id: number | null;
  eos_token_id: number | null;
  /** An older SmallDoge checkpoint layout (./legacy.ts) or null (HF's current); not written to config.json when null. */
  legacy_layout: LegacyLayout | null;
}

export type DogeConfigInput = Partial<Omit<DogeConfigFields, 'rope_parameters' | 'num_key_value_heads'>> & {
  rope_parameters?: Partial<RopeParameters> | null;
  num_key_value_heads?: number | null;
  rope_theta?: number;
  rope_scaling?: Record<string, unknown> | null;
  [k: string]: unknown;
};

const DEFAULTS: Omit<DogeConfigFields, 'rope_parameters' | 'num_key_value_heads' | 'legacy_layout' | keyof DmaFields> = {
  vocab_size: 32768,
  hidden_size: 1024,
  intermediate_size: 2048,
  num_hidden_layers: 32,
  hidden_dropout: 0.0,
  hidden_act: 'silu',
  initializer_range: 0.02,
  rms_norm_eps: 1e-6,
  use_cache: true,
  tie_word_embeddings: false,
  max_position_embeddings: 2048,
  num_attention_heads: 8,
  attention_bias: false,
  attention_dropout: 0.0,
  mlp_bias: false,
  sliding_window: null,
  keep_window_size: 2048,
  is_moe: false,
  num_experts: 16384,
  num_experts_per_tok: 64,
  norm_topk_prob: false,
  output_router_logits: false,
  router_aux_loss_coef: 0.001,
  pad_token_id: null,
  bos_token_id: null,
  eos_token_id: null,
};

const INT_FIELDS = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'max_position_embeddings',
  'num_attention_heads', 'keep_window_size', 'num_experts', 'num_experts_per_tok'] as const;
const FLOAT_FIELDS = ['hidden_dropout', 'initializer_range', 'rms_norm_eps', 'attention_dropout', 'router_aux_loss_coef'] as const;
const BOOL_FIELDS = ['use_cache', 'tie_word_embeddings', 'attention_bias', 'mlp_bias', 'is_moe', 'norm_topk_prob', 'output_router_logits'] as const;
const NULLABLE_INT_FIELDS = ['sliding_window', 'pad_token_id', 'bos_token_id', 'eos_token_id'] as const;
/** Fields the class interprets itself (everything else is kept verbatim in `extra`). */
const KNOWN = new Set<string>([...Object.keys(DEFAULTS), 'num_key_value_heads', 'rope_parameters', 'rope_theta', 'rope_scaling',
  'model_type', 'architectures', 'head_dim', 'legacy_layout', ...DMA_KEYS]);

function fail(field: string, msg: string): never {
  throw new Error(`DogeConfig: ${field} ${msg}`);
}

export const PRESET_NAMES = ['doge-tiny', 'doge-tiny-moe', 'doge-20m', 'doge-60m', 'doge-160m', 'doge-320m'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

const SMALLDOGE_COMMON: DogeConfigInput = {
  vocab_size: 32768, max_position_embeddings: 2048, tie_word_embeddings: true, hidden_act: 'silu',
  rope_parameters: { rope_type: 'dynamic', rope_theta: 10000.0, factor: 4.0, original_max_position_embeddings: 2048 },
  bos_token_id: 0, eos_token_id: 1, pad_token_id: 2,
};

const PRESETS: Record<PresetName, DogeConfigInput> = {
  'doge-20m': { ...SMALLDOGE_COMMON, hidden_size: 256, intermediate_size: 512, num_hidden_layers: 8, num_attention_heads: 2, num_key_value_heads: 1 },
  'doge-60m': { ...SMALLDOGE_COMMON, hidden_size: 512, intermediate_size: 1024, num_hidden_layers: 16, num_attention_heads: 4, num_key_value_heads: 2 },
  'doge-160m': { ...SMALLDOGE_COMMON, hidden_size: 768, intermediate_size: 1536, num_hidden_layers: 24, num_attention_heads: 6, num_key_value_heads: 3 },
  'doge-320m': { ...SMALLDOGE_COMMON, hidden_size: 1024, intermediate_size: 2048, num_hidden_layers: 32, num_attention_heads: 8, num_key_value_heads: 4 },
  'doge-tiny': {
    vocab_size: 4096, hidden_size: 256, intermediate_size: 512, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
    tie_word_embeddings: true, max_position_embeddings: 2048,
  },
  'doge-tiny-moe': {
    vocab_size: 4096, hidden_size: 256, intermediate_size: 512, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2,
    tie_word_embeddings: true, max_position_embeddings: 2048, is_moe: true, num_experts: 1024, num_experts_per_tok: 8,
  },
};

export class DogeConfig implements DogeConfigFields {
  vocab_size!: number;
  hidden_size!: number;
  intermediate_size!: number;
  num_hidden_layers!: number;
  hidden_dropout!: number;
  hidden_act!: string;
  initializer_range!: number;
  rms_norm_eps!: number;
  use_cache!: boolean;
  tie_word_embeddings!: boolean;
  max_position_embeddings!: number;
  rope_parameters!: RopeParameters;
  num_attention_heads!: number;
  num_key_value_heads!: number;
  attention_bias!: boolean;
  attention_dropout!: number;
  mlp_bias!: boolean;
  sliding_window!: number | null;
  /** Keys kept per query row by the dynamic mask (also read from `window_size`, the authors' name). */
  keep_window_size!: number;
  /** See src/models/config-fields.ts (DMA as arXiv 2508.02124 writes it; defaults = HF). */
  dynamic_mask_bias!: DmaFields['dynamic_mask_bias'];
  dynamic_mask_select!: DmaFields['dynamic_mask_select'];
  dynamic_mask_type!: DmaFields['dynamic_mask_type'];
  is_moe!: boolean;
  num_experts!: number;
  num_experts_per_tok!: number;
  norm_topk_prob!: boolean;
  output_router_logits!: boolean;
  router_aux_loss_coef!: number;
  pad_token_id!: number | null;
  bos_token_id!: number | null;
  eos_token_id!: number | null;
  /** An older SmallDoge checkpoint layout this model loads from and saves to (./legacy.ts), or null (HF's current). */
  legacy_layout!: LegacyLayout | null;
  /** Unknown config.json fields, written back unchanged. */
  readonly extra: Record<string, unknown> = {};
  /** HF model_type (a getter: not an own field, so it is neither compared nor copied with the fields). */
  get model_type(): 'doge' {
    return 'doge';
  }

  constructor(input: DogeConfigInput = {}) {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new Error('DogeConfig: expected a JSON object');
    const src = { ...(input as Record<string, unknown>) };
    const self = this as unknown as Record<string, unknown>;
    const dma = readDmaFields(src, fail);
    if (dma.keepWindowSize !== undefined) src.keep_window_size = dma.keepWindowSize;
    this.dynamic_mask_bias = dma.dynamic_mask_bias;
    this.dynamic_mask_select = dma.dynamic_mask_select;
    this.dynamic_mask_type = dma.dynamic_mask_type;
    for (const [k, v] of Object.entries(DEFAULTS)) self[k] = src[k] === undefined ? v : src[k];
    checkFieldTypes(self, { ints: INT_FIELDS, floats: FLOAT_FIELDS, bools: BOOL_FIELDS, nullableInts: NULLABLE_INT_FIELDS }, fail);
    checkSizeLimits(self, INT_FIELDS, fail);
    this.num_key_value_heads = kvHeadsOf(src, this.num_attention_heads, fail);
    this.rope_parameters = DogeConfig.readRope(src);
    this.legacy_layout = checkLegacyLayout(src.legacy_layout, fail);
    for (const [k, v] of Object.entries(src)) if (!KNOWN.has(k)) this.extra[k] = v;
    if (src.model_type !== undefined && src.model_type !== 'doge') fail('model_type', `must be "doge", got ${JSON.stringify(src.model_type)}`);
    this.validate(src);
  }

  /** v5 rope_parameters, or legacy rope_theta + rope_scaling (legacy rope_scaling wins when non-null). */
  private static readRope(src: Record<string, unknown>): RopeParameters {
    const legacyScaling = src.rope_scaling as Record<string, unknown> | null | undefined;
    const given = src.rope_parameters as Record<string, unknown> | null | undefined;
    if (given !== undefined && given !== null && (typeof given !== 'object' || Array.isArray(given))) fail('rope_parameters', 'must be an object or null');
    if (legacyScaling !== undefined && legacyScaling !== null && (typeof legacyScaling !== 'object' || Array.isArray(legacyScaling))) fail('rope_scaling', 'must be an object or null');
    const base: Record<string, unknown> = { ...(legacyScaling ?? given ?? {}) };
    if (base.rope_type === undefined && base.type !== undefined) { base.rope_type = base.type; delete base.type; }
    if (base.rope_type === undefined) base.rope_type = 'default';
    if (base.rope_theta === undefined) base.rope_theta = src.rope_theta ?? (given as Record<string, unknown> | null | undefined)?.rope_theta ?? 10000.0;
    if (typeof base.rope_type !== 'string') fail('rope_parameters.rope_type', `must be a string, got ${JSON.stringify(base.rope_type)}`);
    if (typeof base.rope_theta !== 'number' || !(base.rope_theta > 0)) fail('rope_parameters.rope_theta', `must be a positive number, got ${JSON.stringify(base.rope_theta)}`);
    if (base.rope_type !== 'default' && base.rope_type !== 'dynamic') {
      fail('rope_parameters.rope_type', `'${base.rope_type}' is not supported (only 'default' and 'dynamic')`);
    }
    if (base.rope_type === 'dynamic' && (typeof base.factor !== 'number' || !(base.factor >= 1))) {
      fail('rope_parameters.factor', `must be a number >= 1 for dynamic RoPE, got ${JSON.stringify(base.factor)}`);
    }
    return base as RopeParameters;
  }

  private validate(src: Record<string, unknown>): void {
    const pos = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'max_position_embeddings', 'num_attention_heads', 'keep_window_size', 'num_experts', 'num_experts_per_tok'] as const;
    for (const f of pos) if ((this as unknown as Record<string, number>)[f] < 1) fail(f, `must be >= 1, got ${(this as unknown as Record<string, number>)[f]}`);
    if (this.num_key_value_heads < 1) fail('num_key_value_heads', `must be >= 1, got ${this.num_key_value_heads}`);
    if (this.hidden_size % this.num_attention_heads !== 0) {
      fail('hidden_size', `(${this.hidden_size}) must be divisible by num_attention_heads (${this.num_attention_heads})`);
    }
    if (this.num_attention_heads % this.num_key_value_heads !== 0) {
      fail('num_attention_heads', `(${this.num_attention_heads}) must be a multiple of num_key_value_heads (${this.num_key_value_heads})`);
    }
    if (src.head_dim !== undefined && src.head_dim !== null && src.head_dim !== this.hidden_size / this.num_attention_heads) {
      fail('head_dim', `(${JSON.stringify(src.head_dim)}) must equal hidden_size / num_attention_heads (${this.hidden_size / this.num_attention_heads})`);
    }
    if (this.headDim % 2 !== 0) fail('hidden_size', `/ num_attention_heads = ${this.headDim} must be even for RoPE`);
    if (this.hidden_act !== 'silu' && this.hidden_act !== 'swish') fail('hidden_act', `'${this.hidden_act}' is not supported (only 'silu')`);
    for (const f of ['hidden_dropout', 'attention_dropout'] as const) if (this[f] < 0 || this[f] >= 1) fail(f, `must be in [0, 1), got ${this[f]}`);
    if (!(this.rms_norm_eps > 0)) fail('rms_norm_eps', `must be > 0, got ${this.rms_norm_eps}`);
    if (this.sliding_window !== null && this.sliding_window < 1) fail('sliding_window', `must be >= 1 or null, got ${this.sliding_window}`);
    if (this.is_moe) {
      const K = Math.floor(Math.sqrt(this.num_experts));
      if (this.num_experts_per_tok > K * K) fail('num_experts_per_tok', `(${this.num_experts_per_tok}) exceeds floor(sqrt(num_experts))^2 = ${K * K}`);
    }
    for (const f of ['pad_token_id', 'bos_token_id', 'eos_token_id'] as const) {
      const v = this[f];
      if (v !== null && (v < 0 || v >= this.vocab_size)) fail(f, `(${v}) must be in [0, vocab_size=${this.vocab_size})`);
    }
  }

  /**
   * The largest parts of the parameter count (a lower bound: norms, biases and the router are left out), for the
   * size check and for comparing with a checkpoint before the model is built.
   */
  parameterParts(): [string, number][] {
    const H = this.hidden_size, L = this.num_hidden_layers, kvd = this.num_key_value_heads * this.headDim;
    return [
      ['vocab_size x hidden_size (embedding)', this.vocab_size * H * (this.tie_word_embeddings ? 1 : 2)],
      ['num_hidden_layers x attention', L * (2 * H * H + 2 * kvd * H)],
      ['num_hidden_layers x intermediate_size (MLP)', L * 3 * H * this.intermediate_size],
      ['num_experts x hidden_size x num_hidden_layers (experts)', this.is_moe ? L * 2 * this.num_experts * H : 0],
    ];
  }

  /** Throw, naming the field, when the model of this config cannot fit in memory (called before it is built). */
  checkBuildable(): void {
    checkParameterCount(this.parameterParts(), fail);
  }

  /** hidden_size / num_attention_heads */
  get headDim(): number {
    return this.hidden_size / this.num_attention_heads;
  }

  static fromJSON(obj: unknown): DogeConfig {
    return new DogeConfig(obj as DogeConfigInput);
  }

  /** An older SmallDoge layout is detected and converted (./legacy.ts); `{ legacy: false }` refuses it. */
  static fromPretrained(dir: string, options: LegacyOptions = {}): DogeConfig {
    const file = path.join(dir, 'config.json');
    const obj = legacyConfigInput(dir, readConfigJSON(dir), options);
    try {
      return new DogeConfig(obj as DogeConfigInput);
    } catch (e) {
      throw new Error(`${file}: ${(e as Error).message}`);
    }
  }

  static preset(name: PresetName | string, overrides: DogeConfigInput = {}): DogeConfig {
    const p = PRESETS[name as PresetName];
    if (!p) throw new Error(`DogeConfig.preset: unknown preset '${name}' (choose one of ${PRESET_NAMES.join(', ')})`);
    return new DogeConfig({ ...p, ...overrides });
  }

  /** HF config.json object (rope_parameters plus the legacy rope_theta / rope_scaling pair; no head_dim). */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { architectures: ['DogeForCausalLM'], model_type: 'doge' };
    for (const k of Object.keys(DEFAULTS)) out[k] = (this as unknown as Record<string, unknown>)[k];
    Object.assign(out, dmaFieldsJSON(this));
    out.num_key_value_heads = this.num_key_value_heads;
    out.rope_parameters = { ...this.rope_parameters };
    out.rope_theta = this.rope_parameters.rope_theta;
    const { rope_theta: _t, ...scaling } = this.rope_parameters;
    void _t;
    out.rope_scaling = this.rope_parameters.rope_type === 'default' ? null : scaling;
    if (!('dtype' in this.extra) && !('torch_dtype' in this.extra)) out.dtype = 'float32';
    if (this.legacy_layout !== null) out.legacy_layout = this.legacy_layout; // not written when null
    for (const [k, v] of Object.entries(this.extra)) out[k] = v;
    return out;
  }

  clone(overrides: DogeConfigInput = {}): DogeConfig {
    return new DogeConfig({ ...this.toJSON(), ...overrides });
  }
}
