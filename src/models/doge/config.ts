/**
 * DogeConfig: the Hugging Face `config.json` of `DogeForCausalLM` (model_type "doge"), doge-spec section 2.1, built
 * from the field table DOGE_FIELDS (src/models/config-fields.ts: one entry and doc comment per field).
 *
 * Fields carry HF's snake_case names; `new DogeConfig(partial)` fills HF defaults and validates (wrong JSON types,
 * impossible values and unknown fields throw an Error naming the field; HF's generic PretrainedConfig keys are kept in
 * `extra` and written back). RoPE: the v5 `rope_parameters` dict or the legacy `rope_theta` + `rope_scaling` pair are
 * accepted; `toJSON()` writes `rope_parameters` plus the legacy pair for older readers.
 */
import {
  COMMON_FIELDS, DMA_FIELDS, checkParameterCount, configFromFolder, failFor, field, fieldsJSON, modelInputNames, objectOrNull, pick, readConfigInput, ropeDict, withAlias,
  type ConfigSchema, type FieldValues,
} from '../config-fields';
import { checkLegacyLayout, legacyConfigInput, type LegacyLayout, type LegacyOptions } from './legacy';

export interface RopeParameters {
  rope_type: string;
  rope_theta: number;
  factor?: number;
  original_max_position_embeddings?: number;
  [k: string]: unknown;
}

/** The fields of HF's DogeConfig, in the order config.json writes them. */
export const DOGE_FIELDS = {
  ...pick(COMMON_FIELDS, 'vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers', 'hidden_dropout', 'hidden_act',
    'initializer_range', 'rms_norm_eps', 'use_cache', 'tie_word_embeddings', 'max_position_embeddings', 'num_attention_heads'),
  /** `attention_bias`: bias on q/k/v/o and dt_proj. Default false. */
  attention_bias: field.bool({ default: false }),
  ...pick(COMMON_FIELDS, 'attention_dropout'),
  /** `mlp_bias`: bias on the MLP's gate/up/down (dense MLP and the CDMoE shared expert). Default false. */
  mlp_bias: field.bool({ default: false }),
  /** `sliding_window`: keys older than this many positions are masked (null: none). Default null. */
  sliding_window: field.intOrNull({ default: null, min: 1 }),
  /** `keep_window_size` (also read as `window_size`, the authors' name): keys the dynamic mask keeps per query row. Default 2048. */
  keep_window_size: withAlias(field.int({ default: 2048, max: 2 ** 24 }), 'window_size'),
  ...pick(COMMON_FIELDS, 'is_moe'),
  /** `num_experts`: CDMoE experts E (product-key grid side floor(sqrt(E))). Default 16384. */
  num_experts: field.int({ default: 16384, max: 2 ** 24 }),
  /** `num_experts_per_tok`: experts each token uses (at most floor(sqrt(E))^2). Default 64. */
  num_experts_per_tok: field.int({ default: 64, max: 2 ** 16 }),
  /** `norm_topk_prob`: renormalise the top-k router probabilities. Default false. */
  norm_topk_prob: field.bool({ default: false }),
  /** `output_router_logits`: return router logits and add the auxiliary load-balancing loss (training). Default false. */
  output_router_logits: field.bool({ default: false }),
  /** `router_aux_loss_coef`: weight of that auxiliary loss. Default 0.001. */
  router_aux_loss_coef: field.float({ default: 0.001 }),
  ...pick(COMMON_FIELDS, 'pad_token_id', 'bos_token_id', 'eos_token_id'),
  ...DMA_FIELDS,
  ...pick(COMMON_FIELDS, 'num_key_value_heads'),
  /**
   * `rope_parameters`: the v5 RoPE dict {rope_type 'default' | 'dynamic', rope_theta, factor?, original_max_position_embeddings?},
   * or the legacy pair `rope_theta` + `rope_scaling` (a non-null rope_scaling wins; `type` is read as rope_type).
   * Default {rope_type: 'default', rope_theta: 10000}. Written as rope_parameters plus the legacy pair.
   */
  rope_parameters: field.custom<RopeParameters>({
    readAbsent: true,
    reads: ['rope_theta', 'rope_scaling'],
    read: (given, name, { input, fail }) => {
      const v5 = objectOrNull(given ?? null, name, fail);
      const legacy = objectOrNull(input.rope_scaling ?? null, 'rope_scaling', fail);
      const r = ropeDict(legacy ?? v5 ?? {}, name, fail);
      if (r.rope_theta === undefined) r.rope_theta = input.rope_theta ?? v5?.rope_theta ?? 10000.0;
      if (typeof r.rope_theta !== 'number' || !(r.rope_theta > 0)) fail(`${name}.rope_theta`, `must be a positive number, got ${JSON.stringify(r.rope_theta)}`);
      return r as RopeParameters;
    },
    write: (r, out) => {
      const { rope_theta, ...scaling } = r;
      Object.assign(out, { rope_parameters: r, rope_theta, rope_scaling: r.rope_type === 'default' ? null : scaling });
    },
  }),
  /**
   * `legacy_layout` (this package's key): the older SmallDoge checkpoint layout this model was loaded from and is saved
   * back to ('small-doge-2503' | 'small-doge-2506', ./legacy.ts), or null (HF's current layout). Set on load from the
   * tensor names and config keys; written only when not null.
   */
  legacy_layout: field.custom<LegacyLayout | null>({ default: null, omitDefault: true, read: (v, _name, { fail }) => checkLegacyLayout(v, fail) }),
};

const DOGE: ConfigSchema<typeof DOGE_FIELDS> = {
  owner: 'DogeConfig', modelType: 'doge', architecture: 'DogeForCausalLM', dtypeKey: 'dtype', fields: DOGE_FIELDS,
  // HF reads an optional head_dim; it must equal hidden_size / num_attention_heads and is never written
  checkedKeys: ['head_dim'],
};
const fail = failFor('DogeConfig');

export interface DogeConfigFields extends FieldValues<typeof DOGE_FIELDS> {}

export type DogeConfigInput = Partial<Omit<DogeConfigFields, 'rope_parameters' | 'num_key_value_heads'>> & {
  rope_parameters?: Partial<RopeParameters> | null;
  num_key_value_heads?: number | null;
  rope_theta?: number;
  rope_scaling?: Record<string, unknown> | null;
  [k: string]: unknown;
};

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

/** The config of a DogeForCausalLM: one property per DOGE_FIELDS entry (typed and documented there). */
export interface DogeConfig extends DogeConfigFields {}
export class DogeConfig {
  /** Input names the model reads (its fields, aliases and legacy names): the YAML recipes' model keys. */
  static readonly FIELD_NAMES = modelInputNames(DOGE);
  /** HF's generic PretrainedConfig keys of the input (transformers_version, dtype, ...), written back unchanged. */
  readonly extra: Record<string, unknown>;
  /** HF model_type (a getter: not an own field, so it is neither compared nor copied with the fields). */
  get model_type(): 'doge' {
    return 'doge';
  }

  constructor(input: DogeConfigInput = {}) {
    const { values, extra } = readConfigInput(DOGE, input);
    Object.assign(this, values);
    this.extra = extra;
    this.validate(input);
  }

  /** The rules between fields (each field's own type and range are checked by its table entry). */
  private validate(src: Record<string, unknown>): void {
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
    return configFromFolder(dir, (obj) => new DogeConfig(obj), (obj) => legacyConfigInput(dir, obj, options));
  }

  static preset(name: PresetName | string, overrides: DogeConfigInput = {}): DogeConfig {
    const p = PRESETS[name as PresetName];
    if (!p) throw new Error(`DogeConfig.preset: unknown preset '${name}' (choose one of ${PRESET_NAMES.join(', ')})`);
    return new DogeConfig({ ...p, ...overrides });
  }

  /** HF config.json object (rope_parameters plus the legacy rope_theta / rope_scaling pair; no head_dim). */
  toJSON(): Record<string, unknown> {
    return fieldsJSON(DOGE, this, this.extra);
  }

  clone(overrides: DogeConfigInput = {}): DogeConfig {
    return new DogeConfig({ ...this.toJSON(), ...overrides });
  }
}
