/**
 * Model configs built from one field table (the way tfjs-layers documents every option of a layer): each field of a
 * config.json is one entry `name: field.kind({ default, range })` with a doc comment saying what it means, its HF
 * name (the entry's key) and its default. `readConfigInput` checks an input object against a table (JSON type, range,
 * defaults; every error names the field), `fieldsJSON` writes config.json in the table's key order.
 *
 * One policy for unknown fields in every model (cheems-spec section 2; HF's DogeConfig is a strict dataclass): a key
 * that is neither one of the model's fields nor one of HF's generic `PretrainedConfig` keys (GENERIC_KEYS) is refused,
 * naming it and the closest field name. The generic keys (`transformers_version`, `torch_dtype`, `auto_map`, ...) are
 * kept in the config's `extra` and written back to config.json unchanged.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { closestName } from '../names';

export type Fail = (field: string, msg: string) => never;

/** What a field's reader sees besides its own value. */
export interface ReadContext {
  /** The whole input object (a field that also reads legacy names looks them up here). */
  readonly input: Readonly<Record<string, unknown>>;
  /** The fields read so far (the entries before this one in the table, checked). */
  readonly values: Readonly<Record<string, unknown>>;
  readonly fail: Fail;
}

export interface FieldSpec<T> {
  /** The builder that made it, with what it checks (for the docs and the tests that try every field's errors). */
  readonly kind: 'int' | 'float' | 'bool' | 'oneOf' | 'intOrNull' | 'custom';
  readonly bounds?: { readonly min?: number; readonly max?: number; readonly minExclusive?: boolean; readonly maxExclusive?: boolean };
  readonly choices?: readonly string[];
  /** The value when the input lacks the field (a copy of it for objects). */
  readonly default?: T;
  /** Check a given value (`raw` is undefined only for `readAbsent` fields) and return the field's value. */
  readonly read: (raw: unknown, name: string, ctx: ReadContext) => T;
  /** Call `read` also when the field is absent (a value computed from other fields or legacy names). */
  readonly readAbsent?: boolean;
  /** Another input name of the field (giving both with different values is refused); never written. */
  readonly alias?: string;
  /** Other input names the reader looks at (legacy names): known keys, never kept in `extra`. */
  readonly reads?: readonly string[];
  /** Write the field to config.json only when it differs from its default (so files stay as HF writes them). */
  readonly omitDefault?: boolean;
  /** Write the field as other keys than its own (e.g. rope_parameters plus the legacy RoPE pair). */
  readonly write?: (value: T, out: Record<string, unknown>) => void;
}

/** A table of fields (`any`: a table mixes value types; FieldValues recovers each one). */
export type FieldTable = Record<string, FieldSpec<any>>;
/** The values a table reads: one property per field, typed by its spec (doc comments follow the table's). */
export type FieldValues<T extends FieldTable> = { -readonly [K in keyof T]: T[K] extends FieldSpec<infer V> ? V : never };

const show = (v: unknown): string => JSON.stringify(v);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** An integer field (`min` defaults to 1, the size fields' lower bound; `max`: see COMMON_FIELDS on the bounds). */
function int(o: { default: number; min?: number; max?: number; omitDefault?: boolean }): FieldSpec<number> {
  const min = o.min ?? 1;
  return {
    kind: 'int', bounds: { min, max: o.max }, default: o.default, omitDefault: o.omitDefault,
    read: (v: unknown, name: string, ctx: ReadContext) => {
      const fail: Fail = ctx.fail;
      if (typeof v !== 'number' || !Number.isInteger(v)) fail(name, `must be an integer, got ${show(v)}`);
      if (v < min) fail(name, `must be >= ${min}, got ${v}`);
      if (o.max !== undefined && v > o.max) fail(name, `must be <= ${o.max}, got ${v} (a model this size cannot be built in memory)`);
      return v;
    },
  };
}

/** A finite number; `min`/`max` inclusive unless `minExclusive`/`maxExclusive` (the message says the interval). */
function float(o: { default: number; min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean; omitDefault?: boolean }): FieldSpec<number> {
  const lo = o.min === undefined ? '' : o.minExclusive ? `> ${o.min}` : `>= ${o.min}`;
  const range = o.min !== undefined && o.max !== undefined ? `in ${o.minExclusive ? '(' : '['}${o.min}, ${o.max}${o.maxExclusive ? ')' : ']'}` : lo;
  return {
    kind: 'float', bounds: { min: o.min, max: o.max, minExclusive: o.minExclusive, maxExclusive: o.maxExclusive }, default: o.default, omitDefault: o.omitDefault,
    read: (v: unknown, name: string, ctx: ReadContext) => {
      const fail: Fail = ctx.fail;
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(name, `must be a number, got ${show(v)}`);
      const below = o.min !== undefined && (o.minExclusive ? !(v > o.min) : v < o.min);
      const above = o.max !== undefined && (o.maxExclusive ? !(v < o.max) : v > o.max);
      if (below || above) fail(name, `must be ${range}, got ${v}`);
      return v;
    },
  };
}

function bool(o: { default: boolean; omitDefault?: boolean }): FieldSpec<boolean> {
  return {
    kind: 'bool', default: o.default, omitDefault: o.omitDefault,
    read: (v, name, { fail }) => (typeof v === 'boolean' ? v : fail(name, `must be true or false, got ${show(v)}`)),
  };
}

function oneOf<const C extends readonly string[]>(choices: C, o: { default: C[number]; omitDefault?: boolean }): FieldSpec<C[number]> {
  return {
    kind: 'oneOf', choices, default: o.default, omitDefault: o.omitDefault,
    read: (v, name, { fail }) => (choices.includes(v as string) ? (v as C[number]) : fail(name, `must be ${choices.map((c) => `'${c}'`).join(' or ')}, got ${show(v)}`)),
  };
}

/** An integer or null (`min`: the smallest integer; the message then says "an integer >= min or null"). */
function intOrNull(o: { default: number | null; min?: number; max?: number; omitDefault?: boolean }): FieldSpec<number | null> {
  const what = o.min === undefined ? 'an integer or null' : `an integer >= ${o.min} or null`;
  return {
    kind: 'intOrNull', bounds: { min: o.min, max: o.max }, default: o.default, omitDefault: o.omitDefault,
    read: (v: unknown, name: string, ctx: ReadContext) => {
      const fail: Fail = ctx.fail;
      if (v === null) return null;
      if (typeof v !== 'number' || !Number.isInteger(v) || (o.min !== undefined && v < o.min)) fail(name, `must be ${what}, got ${show(v)}`);
      if (o.max !== undefined && v > o.max) fail(name, `must be <= ${o.max}, got ${v} (a model this size cannot be built in memory)`);
      return v;
    },
  };
}

/**
 * A field with its own reader (objects, values computed from other fields or legacy names); `omitDefault` writes it
 * only when it differs from `default` (an option added after the format: files that do not use it stay unchanged).
 */
function custom<T>(spec: Omit<FieldSpec<T>, 'kind'>): FieldSpec<T> {
  return { kind: 'custom', ...spec };
}

/** Field builders: `field.int({ default: 32768, max: 2 ** 24 })`, `field.oneOf(['exp', 'linear'], { default: 'exp' })`. */
export const field = { int, float, bool, oneOf, intOrNull, custom };

/** Some entries of a table, in the order given (a model's table takes the shared fields it has, where it writes them). */
export function pick<T extends object, K extends keyof T>(table: T, ...keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, table[k]])) as Pick<T, K>;
}

/** The same field with another default (a model whose default differs from the shared entry's). */
export function withDefault<T>(spec: FieldSpec<T>, value: T): FieldSpec<T> {
  return { ...spec, default: value };
}

/** The same field also read under another input name (written back under its own name). */
export function withAlias<T>(spec: FieldSpec<T>, alias: string): FieldSpec<T> {
  return { ...spec, alias };
}

/** A RoPE scaling dict (v5 `rope_parameters` or legacy `rope_scaling`): `type` read as `rope_type`, 'default' / 'dynamic'. */
export function ropeDict(v: Record<string, unknown>, name: string, fail: Fail): Record<string, unknown> & { rope_type: string } {
  const r: Record<string, unknown> = { ...v };
  if (r.rope_type === undefined && r.type !== undefined) { r.rope_type = r.type; delete r.type; }
  if (r.rope_type === undefined) r.rope_type = 'default';
  if (typeof r.rope_type !== 'string') fail(`${name}.rope_type`, `must be a string, got ${show(r.rope_type)}`);
  if (r.rope_type !== 'default' && r.rope_type !== 'dynamic') fail(`${name}.rope_type`, `'${r.rope_type}' is not supported (only 'default' and 'dynamic')`);
  if (r.rope_type === 'dynamic' && (typeof r.factor !== 'number' || !(r.factor >= 1))) fail(`${name}.factor`, `must be a number >= 1 for dynamic RoPE, got ${show(r.factor)}`);
  return r as Record<string, unknown> & { rope_type: string };
}

/** An object or null (the RoPE dicts). */
export function objectOrNull(v: unknown, name: string, fail: Fail): Record<string, unknown> | null {
  if (v !== null && !isObject(v)) fail(name, `must be an object or null, got ${show(v)}`);
  return v;
}

/**
 * The fields Doge and Cheems share (same HF name, meaning and check). The upper bounds of the size fields are far above
 * any model of the paper (or of the hub) and low enough that a typo or a hostile config.json (1e6 layers, vocab_size
 * 1e12) is refused before anything is allocated.
 */
export const COMMON_FIELDS = {
  /** `vocab_size`: rows of the token embedding (and of an untied lm_head). Default 32768. */
  vocab_size: field.int({ default: 32768, max: 2 ** 24 }),
  /** `hidden_size`: the model width H. Default 1024. */
  hidden_size: field.int({ default: 1024, max: 2 ** 16 }),
  /** `intermediate_size`: the SwiGLU MLP width I (the dense MLP and the CDMoE shared expert). Default 2048. */
  intermediate_size: field.int({ default: 2048, max: 2 ** 18 }),
  /** `num_hidden_layers`: decoder layers L. Default 32. */
  num_hidden_layers: field.int({ default: 32, max: 1024 }),
  /** `hidden_dropout`: dropout on each sublayer's output before the residual add (training only), in [0, 1). Default 0. */
  hidden_dropout: field.float({ default: 0.0, min: 0, max: 1, maxExclusive: true }),
  /** `hidden_act`: activation of the MLP gate and the expert scores; only 'silu' (alias 'swish'). Default 'silu'. */
  hidden_act: field.custom<string>({
    default: 'silu',
    read: (v: unknown, name: string, ctx: ReadContext) => {
      const fail: Fail = ctx.fail;
      if (typeof v !== 'string') fail(name, `must be a string, got ${show(v)}`);
      return v === 'silu' || v === 'swish' ? v : fail(name, `'${v}' is not supported (only 'silu')`);
    },
  }),
  /** `initializer_range`: std of the normal init of the weights. Default 0.02. */
  initializer_range: field.float({ default: 0.02 }),
  /** `rms_norm_eps`: epsilon of every RMSNorm, > 0. Default 1e-6. */
  rms_norm_eps: field.float({ default: 1e-6, min: 0, minExclusive: true }),
  /** `use_cache`: generation keeps a decoding cache. Default true. */
  use_cache: field.bool({ default: true }),
  /** `tie_word_embeddings`: lm_head shares the token embedding. Default false (HF); Cheems: true. */
  tie_word_embeddings: field.bool({ default: false }),
  /** `max_position_embeddings`: positions the model is built for (also M of dynamic-NTK RoPE). Default 2048. */
  max_position_embeddings: field.int({ default: 2048, max: 2 ** 24 }),
  /** `num_attention_heads`: query heads nh (hidden_size must be a multiple, head dim even). Default 8. */
  num_attention_heads: field.int({ default: 8, max: 1024 }),
  /** `num_key_value_heads`: key/value heads (GQA; nh a multiple of it); null or absent = num_attention_heads. */
  num_key_value_heads: field.custom<number>({
    readAbsent: true,
    read: (v: unknown, name: string, ctx: ReadContext) => {
      const fail: Fail = ctx.fail;
      if (v === undefined || v === null) return ctx.values.num_attention_heads as number;
      if (typeof v !== 'number' || !Number.isInteger(v)) fail(name, `must be an integer or null, got ${show(v)}`);
      return v >= 1 ? v : fail(name, `must be >= 1, got ${v}`);
    },
  }),
  /** `attention_dropout`: dropout on the attention probabilities (training only), in [0, 1). Default 0. */
  attention_dropout: field.float({ default: 0.0, min: 0, max: 1, maxExclusive: true }),
  /** `is_moe`: replace each layer's MLP with a Cross Domain MoE. Default false. */
  is_moe: field.bool({ default: false }),
  /** `pad_token_id`: padding token (also the embedding's padding row), in [0, vocab_size) or null. Default null (HF). */
  pad_token_id: field.intOrNull({ default: null }),
  /** `bos_token_id`: beginning-of-sequence token, in [0, vocab_size) or null. Default null (HF). */
  bos_token_id: field.intOrNull({ default: null }),
  /** `eos_token_id`: end-of-sequence token (generation stops at it), in [0, vocab_size) or null. Default null (HF). */
  eos_token_id: field.intOrNull({ default: null }),
};

/**
 * The Dynamic Mask Attention fields of Doge and Cheems (DMA as arXiv 2508.02124 / flash-dmattn write it; defaults = HF,
 * written to config.json only when set, so files stay as HF writes them). `keep_window_size` is each model's own
 * (Doge: an integer, default 2048; Cheems: null = every key), read also as `window_size` (the authors' name).
 */
export const DMA_FIELDS = {
  /** `dynamic_mask_bias`: 'exp' (HF: exp(A softplus(dt))) or 'linear' (A softplus(dt), no exp). Default 'exp'. */
  dynamic_mask_bias: field.oneOf(['exp', 'linear'], { default: 'exp', omitDefault: true }),
  /** `dynamic_mask_select`: 'row' (HF: top-k per query row after the causal mask) or 'key' (once per key row, causality after). Default 'row'. */
  dynamic_mask_select: field.oneOf(['row', 'key'], { default: 'row', omitDefault: true }),
  /** `dynamic_mask_type`: 'topk' (keep keep_window_size keys) or 'relu' (keep a key iff its bias > 0). Default 'topk'. */
  dynamic_mask_type: field.oneOf(['topk', 'relu'], { default: 'topk', omitDefault: true }),
};
export type DmaFields = FieldValues<typeof DMA_FIELDS>;

/**
 * HF's generic `PretrainedConfig` keys (transformers v4 and v5): what `save_pretrained` and the hub write into any
 * model's config.json besides the model's own fields. Tolerated, kept in the config's `extra` and written back
 * unchanged; never interpreted. (`model_type` and `architectures` are checked and rewritten by the config itself; a
 * key that is also a model field, e.g. the token ids or tie_word_embeddings, is read as the field.)
 */
export const GENERIC_KEYS: ReadonlySet<string> = new Set([
  // saving and loading
  'model_type', 'architectures', 'transformers_version', '_name_or_path', 'name_or_path', '_commit_hash', 'auto_map',
  'dtype', 'torch_dtype', 'use_bfloat16', 'quantization_config', '_attn_implementation', '_attn_implementation_autoset',
  'attn_implementation', 'experts_implementation',
  // outputs and structure
  'return_dict', 'output_hidden_states', 'output_attentions', 'torchscript', 'pruned_heads', 'chunk_size_feed_forward',
  'is_encoder_decoder', 'is_decoder', 'cross_attention_hidden_size', 'add_cross_attention', 'tie_encoder_decoder',
  'tf_legacy_loss',
  // fine-tuning tasks and tokenizer
  'finetuning_task', 'id2label', 'label2id', 'num_labels', 'problem_type', 'tokenizer_class', 'prefix',
  'task_specific_params', 'bos_token_id', 'eos_token_id', 'pad_token_id', 'sep_token_id', 'decoder_start_token_id',
  // generation parameters older (v4) config.json files carry (v5 moves them to generation_config.json)
  'max_length', 'min_length', 'do_sample', 'early_stopping', 'num_beams', 'num_beam_groups', 'diversity_penalty',
  'temperature', 'top_k', 'top_p', 'typical_p', 'repetition_penalty', 'length_penalty', 'no_repeat_ngram_size',
  'encoder_no_repeat_ngram_size', 'bad_words_ids', 'num_return_sequences', 'output_scores', 'return_dict_in_generate',
  'forced_bos_token_id', 'forced_eos_token_id', 'remove_invalid_values', 'exponential_decay_length_penalty',
  'suppress_tokens', 'begin_suppress_tokens',
]);

/** Everything a model's config class tells the table reader and writer. */
export interface ConfigSchema<T extends FieldTable> {
  /** Class name, the prefix of every error ('DogeConfig'). */
  readonly owner: string;
  /** config.json `model_type` and the `architectures` entry toJSON writes. */
  readonly modelType: string;
  readonly architecture: string;
  /** The dtype key toJSON writes ('float32') unless the input had `dtype` or `torch_dtype`. */
  readonly dtypeKey: 'dtype' | 'torch_dtype';
  readonly fields: T;
  /** Input keys the config class checks itself and never writes (Doge's head_dim), beside the fields. */
  readonly checkedKeys?: readonly string[];
}

/** The Error of a config: `DogeConfig: hidden_size must be an integer, got 64.5`. */
export function failFor(owner: string): Fail {
  return (fieldName, msg) => {
    throw new Error(`${owner}: ${fieldName} ${msg}`);
  };
}

/** Every input name the model itself reads (fields, their aliases and legacy names, checked keys): no generic key. */
export function modelInputNames(schema: ConfigSchema<FieldTable>): string[] {
  const names = Object.entries(schema.fields).flatMap(([name, spec]) => [name, ...(spec.alias ? [spec.alias] : []), ...(spec.reads ?? [])]);
  return [...new Set([...names, ...(schema.checkedKeys ?? [])])];
}

/**
 * Check an input object against a schema: the model_type, unknown keys (refused unless generic), then every field in
 * table order (absent -> default). Returns the field values and the generic keys (`extra`, in input order).
 */
export function readConfigInput<T extends FieldTable>(schema: ConfigSchema<T>, input: unknown): { values: FieldValues<T>; extra: Record<string, unknown> } {
  if (!isObject(input)) throw new Error(`${schema.owner}: expected a JSON object`);
  const fail = failFor(schema.owner);
  if (input.model_type !== undefined && input.model_type !== schema.modelType) fail('model_type', `must be "${schema.modelType}", got ${show(input.model_type)}`);
  const own = modelInputNames(schema);
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    if (own.includes(k)) continue;
    if (!GENERIC_KEYS.has(k)) {
      const best = closestName(k, own);
      fail(k, `is not a ${schema.owner.replace(/Config$/, '')} config field${best ? ` (did you mean '${best}'?)` : ''}; besides its own fields a ${schema.owner} ` +
        `keeps only HF's generic PretrainedConfig keys (transformers_version, dtype, auto_map, ...)`);
    }
    if (k !== 'model_type' && k !== 'architectures') extra[k] = v;
  }
  const values: Record<string, unknown> = {};
  const ctx: ReadContext = { input, values, fail };
  for (const [name, spec] of Object.entries(schema.fields)) {
    let raw = input[name];
    if (spec.alias !== undefined && input[spec.alias] !== undefined) {
      if (raw !== undefined && raw !== input[spec.alias]) fail(spec.alias, `(${show(input[spec.alias])}) is another name of ${name} (${show(raw)}): give one of them`);
      raw = input[spec.alias];
    }
    values[name] = raw !== undefined || spec.readAbsent ? spec.read(raw, name, ctx) : structuredClone(spec.default);
  }
  return { values: values as FieldValues<T>, extra };
}

/**
 * config.json of a config: `architectures`, `model_type`, the fields in table order (a field with `omitDefault` only
 * when set, one with `write` as the keys it writes), the dtype key unless the input gave one, then `extra` unchanged.
 */
export function fieldsJSON<T extends FieldTable>(schema: ConfigSchema<T>, values: FieldValues<T>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { architectures: [schema.architecture], model_type: schema.modelType };
  for (const [name, spec] of Object.entries(schema.fields)) {
    const v = structuredClone(values[name]);
    if (spec.write) spec.write(v, out);
    else if (!(spec.omitDefault && show(v) === show(spec.default))) out[name] = v;
  }
  if (!('dtype' in extra) && !('torch_dtype' in extra)) out[schema.dtypeKey] = 'float32';
  return Object.assign(out, structuredClone(extra));
}

/** The parsed config.json of a model folder (errors name the file). */
export function readConfigJSON(dir: string): Record<string, unknown> {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new Error(`${file}: no config.json in the model folder`);
  let obj: unknown;
  try {
    obj = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(obj)) throw new Error(`${file}: expected a JSON object`);
  return obj;
}

/** A config read from a model folder's config.json; errors name the file. */
export function configFromFolder<C>(
  dir: string, build: (obj: Record<string, unknown>) => C,
  /** Converts the object first (its errors name the file themselves), e.g. an older layout's keys. */
  prepare: (obj: Record<string, unknown>) => Record<string, unknown> = (obj) => obj,
): C {
  const obj = prepare(readConfigJSON(dir));
  try {
    return build(obj);
  } catch (e) {
    throw new Error(`${path.join(dir, 'config.json')}: ${(e as Error).message}`);
  }
}

/** Parameters a model may have: 4 GB of float32, what the wasm backend's memory holds at most. */
export const MAX_PARAMETERS = 1e9;

/**
 * Refuse a parameter count that cannot fit, naming the fields of its largest part (`parts`: a description such as
 * 'vocab_size x hidden_size' and its count, e.g. the embedding, the layers).
 */
export function checkParameterCount(parts: [string, number][], fail: Fail): void {
  const total = parts.reduce((a, [, n]) => a + n, 0);
  if (total <= MAX_PARAMETERS) return;
  const [what, n] = parts.reduce((a, b) => (b[1] > a[1] ? b : a));
  fail(what.split(' ')[0], `gives a model of ${total.toExponential(2)} parameters (${what} = ${n.toExponential(2)}), more than the ${MAX_PARAMETERS.toExponential(0)} ` +
    `(${(MAX_PARAMETERS * 4 / 2 ** 30).toFixed(1)} GiB of float32) this library can hold`);
}
