/**
 * CheemsConfig: the seed's `config.json` of `CheemsForCausalLM` (model_type "cheems"), cheems-spec section 2, built
 * from the field table CHEEMS_FIELDS (src/models/config-fields.ts: one entry and doc comment per field).
 *
 * `new CheemsConfig(partial)` fills the defaults and validates; wrong types, impossible values and unknown fields
 * throw an Error naming the field. HF's generic PretrainedConfig keys (`transformers_version`, `torch_dtype`, ...)
 * are kept in `extra` and written back. `layersType` (derived, never stored) says which layers are attention:
 * layer i is "attn" iff i mod attn_layer_period == attn_layer_offset.
 */
import {
  COMMON_FIELDS, DMA_FIELDS, checkParameterCount, configFromFolder, failFor, field, fieldsJSON, modelInputNames, objectOrNull, pick, readConfigInput,
  ropeDict, withAlias, withDefault, type ConfigSchema, type FieldValues,
} from '../config-fields';

export interface CheemsRopeScaling {
  rope_type: string;
  factor?: number;
  original_max_position_embeddings?: number;
  [k: string]: unknown;
}

/** The seed's CheemsConfig fields, in the order its config.json writes them. */
export const CHEEMS_FIELDS = {
  ...pick(COMMON_FIELDS, 'vocab_size', 'hidden_size', 'intermediate_size', 'num_hidden_layers'),
  /** `hidden_bias`: bias on every linear layer (SSD, attention, MLP). Default false. */
  hidden_bias: field.bool({ default: false }),
  ...pick(COMMON_FIELDS, 'hidden_dropout', 'hidden_act', 'max_position_embeddings'),
  /** `rope_theta`: RoPE base of the attention layers, > 0. Default 10000. */
  rope_theta: field.float({ default: 10000.0, min: 0, minExclusive: true }),
  /**
   * `rope_scaling`: null (plain RoPE) or {rope_type 'default' | 'dynamic', factor >= 1, original_max_position_embeddings}
   * (`type` is read as rope_type). Default {rope_type: 'dynamic', factor: 4, original_max_position_embeddings: 2048}.
   */
  rope_scaling: field.custom<CheemsRopeScaling | null>({
    default: { rope_type: 'dynamic', factor: 4.0, original_max_position_embeddings: 2048 },
    read: (v, name, { fail }) => {
      const r = objectOrNull(v, name, fail);
      return r === null ? null : ropeDict(r, name, fail);
    },
  }),
  ...pick(COMMON_FIELDS, 'initializer_range', 'rms_norm_eps', 'use_cache'),
  /** `bos_token_id`: beginning-of-sequence token, in [0, vocab_size) or null. Default 0 (the seed). */
  bos_token_id: withDefault(COMMON_FIELDS.bos_token_id, 0),
  /** `eos_token_id`: end-of-sequence token (generation stops at it), in [0, vocab_size) or null. Default 1 (the seed). */
  eos_token_id: withDefault(COMMON_FIELDS.eos_token_id, 1),
  /** `pad_token_id`: padding token (also the embedding's padding row), in [0, vocab_size) or null. Default 2 (the seed). */
  pad_token_id: withDefault(COMMON_FIELDS.pad_token_id, 2),
  /** `tie_word_embeddings`: lm_head shares the token embedding. Default true (the seed). */
  tie_word_embeddings: withDefault(COMMON_FIELDS.tie_word_embeddings, true),
  /** `ssd_chunk_size`: chunk length of the SSD scan (a speed knob: any value computes the same function). Default 256. */
  ssd_chunk_size: field.int({ default: 256, max: 2 ** 16 }),
  ...pick(COMMON_FIELDS, 'num_attention_heads', 'num_key_value_heads', 'attention_dropout'),
  /** `dynamic_mask_ratio`: the seed's threshold sparsification of the attention mask; only 0.0 (it is not causal, cheems-spec D6). Default 0. */
  dynamic_mask_ratio: field.custom<number>({
    default: 0.0,
    read: (v, name, ctx) => {
      const r = field.float({ default: 0 }).read(v, name, ctx);
      return r === 0 ? r : ctx.fail(name, `(${r}) is not supported: only 0.0 (the seed's threshold over all keys is not causal)`);
    },
  }),
  /** `attn_layer_period`: every this many layers one is DMAttn, the others SSD. Default 8. */
  attn_layer_period: field.int({ default: 8, max: 1024 }),
  /** `attn_layer_offset`: layer i is DMAttn iff i mod attn_layer_period == this. Default 7. */
  attn_layer_offset: field.int({ default: 7, min: 0, max: 1024 }),
  ...pick(COMMON_FIELDS, 'is_moe'),
  /** `num_cdmoe_experts`: CDMoE experts E (product-key halves of floor(sqrt(E)) keys). Default 16384. */
  num_cdmoe_experts: field.int({ default: 16384, max: 2 ** 24 }),
  /** `num_cdmoe_heads`: retrieval heads of the CDMoE router. Default 4. */
  num_cdmoe_heads: field.int({ default: 4, max: 1024 }),
  /** `num_cdmoe_experts_per_head`: experts each head retrieves (at most floor(sqrt(E))). Default 8. */
  num_cdmoe_experts_per_head: field.int({ default: 8, max: 2 ** 16 }),
  /** `expert_retrieval_size`: width of the router's queries (even: two product-key halves). Default 64. */
  expert_retrieval_size: field.int({ default: 64, max: 2 ** 16 }),
  /**
   * `keep_window_size` (also read as `window_size`): keys kept per query row by the attention layers' dynamic mask
   * (null, the seed: every key; with a number the decoder is constant-memory). Default null, written only when set.
   */
  keep_window_size: withAlias(field.intOrNull({ default: null, min: 1, omitDefault: true }), 'window_size'),
  ...DMA_FIELDS,
};

const CHEEMS: ConfigSchema<typeof CHEEMS_FIELDS> = {
  owner: 'CheemsConfig', modelType: 'cheems', architecture: 'CheemsForCausalLM', dtypeKey: 'torch_dtype', fields: CHEEMS_FIELDS,
  // derived from attn_layer_period / offset (layersType); tolerated in a file, never written
  checkedKeys: ['layers_type'],
};
const fail = failFor('CheemsConfig');

export interface CheemsConfigFields extends FieldValues<typeof CHEEMS_FIELDS> {}

export type CheemsConfigInput = Partial<Omit<CheemsConfigFields, 'num_key_value_heads' | 'rope_scaling'>> & {
  num_key_value_heads?: number | null;
  rope_scaling?: Record<string, unknown> | null;
  [k: string]: unknown;
};

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

/** The config of a CheemsForCausalLM: one property per CHEEMS_FIELDS entry (typed and documented there). */
export interface CheemsConfig extends CheemsConfigFields {}
export class CheemsConfig {
  /** Input names the model reads (its fields and aliases): the YAML recipes' model keys. */
  static readonly FIELD_NAMES = modelInputNames(CHEEMS);
  /** HF's generic PretrainedConfig keys of the input (transformers_version, torch_dtype, ...), written back unchanged. */
  readonly extra: Record<string, unknown>;
  /** HF model_type (a getter: not an own field, so it is neither compared nor copied with the fields). */
  get model_type(): 'cheems' {
    return 'cheems';
  }

  constructor(input: CheemsConfigInput = {}) {
    const { values, extra } = readConfigInput(CHEEMS, input);
    Object.assign(this, values);
    this.extra = extra;
    this.validate();
  }

  /** The rules between fields (each field's own type and range are checked by its table entry). */
  private validate(): void {
    if (this.hidden_size % this.num_attention_heads !== 0) {
      fail('hidden_size', `(${this.hidden_size}) must be divisible by num_attention_heads (${this.num_attention_heads})`);
    }
    if (this.num_attention_heads % this.num_key_value_heads !== 0) {
      fail('num_attention_heads', `(${this.num_attention_heads}) must be a multiple of num_key_value_heads (${this.num_key_value_heads})`);
    }
    if (this.headDim % 2 !== 0) fail('hidden_size', `/ num_attention_heads = ${this.headDim} must be even for RoPE`);
    if (this.is_moe) {
      const K = Math.floor(Math.sqrt(this.num_cdmoe_experts));
      if (this.num_cdmoe_experts_per_head > K) fail('num_cdmoe_experts_per_head', `(${this.num_cdmoe_experts_per_head}) exceeds floor(sqrt(num_cdmoe_experts)) = ${K}`);
      if (this.expert_retrieval_size % 2 !== 0) fail('expert_retrieval_size', `(${this.expert_retrieval_size}) must be even (two product-key halves)`);
    }
    for (const f of ['bos_token_id', 'eos_token_id', 'pad_token_id'] as const) {
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
    return configFromFolder(dir, (obj) => new CheemsConfig(obj));
  }

  static preset(name: CheemsPresetName | string, overrides: CheemsConfigInput = {}): CheemsConfig {
    const p = CHEEMS_PRESETS[name as CheemsPresetName];
    if (!p) throw new Error(`CheemsConfig.preset: unknown preset '${name}' (choose one of ${CHEEMS_PRESET_NAMES.join(', ')})`);
    return new CheemsConfig({ ...p, ...overrides });
  }

  /** The seed's config.json (plus architectures, model_type, torch_dtype; keep_window_size and the DMA fields when set). */
  toJSON(): Record<string, unknown> {
    return fieldsJSON(CHEEMS, this, this.extra);
  }

  clone(overrides: CheemsConfigInput = {}): CheemsConfig {
    return new CheemsConfig({ ...this.toJSON(), ...overrides });
  }
}
