/**
 * The pre-training config: a YAML file with three sections, mirroring SmallDoge's recipes
 * (recipes/doge/Doge-20M/config_full.yaml: `model_config` + HF TrainingArguments names):
 *
 *   model:     { preset?: doge-tiny | cheems-tiny | ..., model_type?, init_from?: DIR, <the model's config.json fields> }
 *   data:      { dataset_dir, train_split, eval_split, seq_len, prepare_default_vocab_size }
 *   training:  { output_dir, seed, max_steps, per_device_train_batch_size, gradient_accumulation_steps,
 *                learning_rate, lr_scheduler_type, lr_scheduler_kwargs, warmup_steps | warmup_ratio, ... }
 *
 * Unknown keys (typos) are errors that name the key and the closest known one; the model section takes the fields of the
 * model its preset (or model_type, else Doge) picks, so a Cheems field is refused in a Doge recipe. Command-line overrides
 * (`--max-steps 200`, `--output-dir DIR`, `--training.learning-rate 1e-3`) map onto the same keys.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { closestName } from '../names';
import { modelRegistrationFor } from '../models/auto';
import { registeredModels, type ModelRegistration } from '../models/registry';
import { SCHEDULE_TYPES, ScheduleSpec, ScheduleType } from './schedule';

/**
 * Every model field a recipe may give, over the registered models (a bare override such as `--hidden-size` lands in the
 * model section when one of them has it; the model the recipe picks then checks it).
 */
export function modelFieldNames(): string[] {
  return [...new Set(registeredModels().flatMap((r) => [...(r.configClass.FIELD_NAMES ?? [])]))];
}

export interface ModelSection {
  /** A preset name of a registered model (it picks the model); the other model fields override it. */
  preset?: string;
  /**
   * Continue from the parameters of this HF-format folder (e.g. a dense checkpoint while `is_moe: true`):
   * every tensor whose name and shape match is copied, the rest (the new experts) keep their fresh init.
   */
  init_from?: string | null;
  /** CDMoE routing layout (`token`, the default, or `hf`); passed to the model constructor. */
  router_layout?: string;
  /** The model's config.json fields (with `model_type` when the recipe gives one). */
  fields: Record<string, unknown>;
}

export interface DataSection {
  /** Folder with one sub-folder per split (packed datasets from `wm data prepare` / prepareDefaultCorpus). */
  dataset_dir: string;
  train_split: string;
  eval_split: string;
  /** Expected packed sequence length; checked against the dataset and `max_position_embeddings`. */
  seq_len: number | null;
  /** Tokenizer folder (for the samples at the end); default: `<dataset_dir>/../tokenizer` when it exists. */
  tokenizer_dir: string | null;
  /** Where `--prepare-default` writes the embedded corpus (tokenizer/ and dataset/ inside). */
  default_corpus_dir: string;
  /** Vocabulary size of the tokenizer `--prepare-default` trains (the model's vocab_size must be >= it). */
  prepare_default_vocab_size: number;
}

export interface LrSchedulerKwargs {
  warmup_type: 'linear';
  decay_type: 'linear';
  /** D; when null, `decay_ratio * max_steps` (rounded up). */
  num_decay_steps: number | null;
  decay_ratio: number;
  min_lr_ratio: number;
}

export interface TrainingSection {
  output_dir: string;
  seed: number;
  max_steps: number;
  per_device_train_batch_size: number;
  per_device_eval_batch_size: number;
  gradient_accumulation_steps: number;
  learning_rate: number;
  lr_scheduler_type: ScheduleType;
  lr_scheduler_kwargs: LrSchedulerKwargs;
  /** W; when null, `ceil(warmup_ratio * max_steps)` as HF does. */
  warmup_steps: number | null;
  warmup_ratio: number;
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  max_grad_norm: number;
  logging_steps: number;
  /** Evaluate every N steps (0 = only at the end). */
  eval_steps: number;
  /** How many eval batches (in order from the start of the eval split); 0 = the whole split. */
  eval_batches: number;
  /** Checkpoint every N steps (0 = only at the end). */
  save_steps: number;
  /** Keep the last K checkpoints (0 = keep all). */
  save_total_limit: number;
  /** Prompts to continue with greedy/sampled decoding at the end of the run. */
  sample_prompts: string[];
  sample_new_tokens: number;
  /**
   * With `model.init_from`: for this many first steps train only the tensors init_from did not provide (the new
   * router / expert tables of a dense->MoE continuation), as SmallDoge's pt.py does during warmup; 0 = off.
   */
  train_new_only_steps: number;
  /** Earlier runs kept in `<output_dir>/previous-runs/` when a fresh run starts there (0 = all). */
  keep_previous_runs: number;
}

export interface PretrainConfig {
  model: ModelSection;
  data: DataSection;
  training: TrainingSection;
  /** Where the config came from (for messages). */
  source: string;
}

export const DATA_DEFAULTS: DataSection = {
  dataset_dir: 'runs/data',
  train_split: 'train',
  eval_split: 'test',
  seq_len: null,
  tokenizer_dir: null,
  default_corpus_dir: 'runs/data',
  prepare_default_vocab_size: 4096,
};

export const TRAINING_DEFAULTS: TrainingSection = {
  output_dir: 'runs/pretrain',
  seed: 233,
  max_steps: 100,
  per_device_train_batch_size: 1,
  per_device_eval_batch_size: 1,
  gradient_accumulation_steps: 1,
  learning_rate: 1e-3,
  lr_scheduler_type: 'warmup_stable_decay',
  lr_scheduler_kwargs: { warmup_type: 'linear', decay_type: 'linear', num_decay_steps: null, decay_ratio: 0.1, min_lr_ratio: 0 },
  warmup_steps: null,
  warmup_ratio: 0.1,
  weight_decay: 0.01,
  adam_beta1: 0.9,
  adam_beta2: 0.95,
  adam_epsilon: 1e-8,
  max_grad_norm: 1.0,
  logging_steps: 10,
  eval_steps: 100,
  eval_batches: 8,
  save_steps: 100,
  save_total_limit: 2,
  sample_prompts: [],
  sample_new_tokens: 32,
  train_new_only_steps: 0,
  keep_previous_runs: 3,
};

const MODEL_META_KEYS = ['preset', 'init_from', 'router_layout'];

function suggestion(key: string, known: readonly string[]): string {
  const best = closestName(key, known);
  return best ? ` (did you mean '${best}'?)` : '';
}

function unknownKey(source: string, where: string, key: string, known: readonly string[]): Error {
  return new Error(`${source}: unknown config key '${where}${key}'${suggestion(key, known)}; known keys in ${where.replace(/\.$/, '') || 'the top level'}: ${known.join(', ')}`);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

function expectNumber(source: string, key: string, x: unknown, opts: { int?: boolean; min?: number; max?: number; minExclusive?: boolean } = {}): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`${source}: '${key}' must be a number, got ${JSON.stringify(x)}`);
  if (opts.int && !Number.isInteger(x)) throw new Error(`${source}: '${key}' must be an integer, got ${x}`);
  if (opts.min !== undefined && (opts.minExclusive ? x <= opts.min : x < opts.min)) {
    throw new Error(`${source}: '${key}' must be ${opts.minExclusive ? '>' : '>='} ${opts.min}, got ${x}`);
  }
  if (opts.max !== undefined && x > opts.max) throw new Error(`${source}: '${key}' must be <= ${opts.max}, got ${x}`);
  return x;
}

/** Check types and ranges of the training section (after defaults and overrides). */
function validateTraining(source: string, t: TrainingSection): void {
  const k = (n: string) => `training.${n}`;
  expectNumber(source, k('max_steps'), t.max_steps, { int: true, min: 1 });
  expectNumber(source, k('seed'), t.seed, { int: true, min: 0 });
  expectNumber(source, k('per_device_train_batch_size'), t.per_device_train_batch_size, { int: true, min: 1 });
  expectNumber(source, k('per_device_eval_batch_size'), t.per_device_eval_batch_size, { int: true, min: 1 });
  expectNumber(source, k('gradient_accumulation_steps'), t.gradient_accumulation_steps, { int: true, min: 1 });
  expectNumber(source, k('learning_rate'), t.learning_rate, { min: 0 });
  if (!SCHEDULE_TYPES.includes(t.lr_scheduler_type)) {
    throw new Error(`${source}: 'training.lr_scheduler_type' is '${t.lr_scheduler_type}'; choose one of ${SCHEDULE_TYPES.join(', ')}`);
  }
  if (t.warmup_steps !== null) expectNumber(source, k('warmup_steps'), t.warmup_steps, { int: true, min: 0 });
  expectNumber(source, k('warmup_ratio'), t.warmup_ratio, { min: 0, max: 1 });
  const kw = t.lr_scheduler_kwargs;
  if (kw.warmup_type !== 'linear') throw new Error(`${source}: 'training.lr_scheduler_kwargs.warmup_type' must be 'linear', got '${kw.warmup_type}'`);
  if (kw.decay_type !== 'linear') throw new Error(`${source}: 'training.lr_scheduler_kwargs.decay_type' must be 'linear', got '${kw.decay_type}'`);
  if (kw.num_decay_steps !== null) expectNumber(source, k('lr_scheduler_kwargs.num_decay_steps'), kw.num_decay_steps, { int: true, min: 0 });
  expectNumber(source, k('lr_scheduler_kwargs.decay_ratio'), kw.decay_ratio, { min: 0, max: 1 });
  expectNumber(source, k('lr_scheduler_kwargs.min_lr_ratio'), kw.min_lr_ratio, { min: 0, max: 1 });
  expectNumber(source, k('weight_decay'), t.weight_decay, { min: 0 });
  expectNumber(source, k('adam_beta1'), t.adam_beta1, { min: 0, max: 0.999999999 });
  expectNumber(source, k('adam_beta2'), t.adam_beta2, { min: 0, max: 0.999999999 });
  expectNumber(source, k('adam_epsilon'), t.adam_epsilon, { min: 0, minExclusive: true });
  expectNumber(source, k('max_grad_norm'), t.max_grad_norm, { min: 0 });
  expectNumber(source, k('logging_steps'), t.logging_steps, { int: true, min: 1 });
  expectNumber(source, k('eval_steps'), t.eval_steps, { int: true, min: 0 });
  expectNumber(source, k('eval_batches'), t.eval_batches, { int: true, min: 0 });
  expectNumber(source, k('save_steps'), t.save_steps, { int: true, min: 0 });
  expectNumber(source, k('save_total_limit'), t.save_total_limit, { int: true, min: 0 });
  expectNumber(source, k('sample_new_tokens'), t.sample_new_tokens, { int: true, min: 0 });
  expectNumber(source, k('train_new_only_steps'), t.train_new_only_steps, { int: true, min: 0 });
  expectNumber(source, k('keep_previous_runs'), t.keep_previous_runs, { int: true, min: 0 });
  if (typeof t.output_dir !== 'string' || t.output_dir === '') throw new Error(`${source}: 'training.output_dir' must be a non-empty string`);
  if (!Array.isArray(t.sample_prompts) || !t.sample_prompts.every((p) => typeof p === 'string')) {
    throw new Error(`${source}: 'training.sample_prompts' must be a list of strings`);
  }
  const W = warmupSteps(t);
  const D = decaySteps(t);
  if (W >= t.max_steps) {
    throw new Error(`${source}: training.warmup_steps (${W}) leaves no step at the full learning rate in training.max_steps (${t.max_steps}); ` +
      `use --max-steps ${W + 1} or more, or a smaller --warmup-steps (or --warmup-ratio instead, which always leaves one)`);
  }
  if (t.lr_scheduler_type === 'warmup_stable_decay' && W + D > t.max_steps) {
    throw new Error(`${source}: warmup (${W}) + decay (${D}) steps exceed training.max_steps (${t.max_steps}); ` +
      `use --max-steps ${W + D} or more, or give the decay as a ratio (lr_scheduler_kwargs.decay_ratio) instead of num_decay_steps`);
  }
}

function validateData(source: string, d: DataSection): void {
  if (typeof d.dataset_dir !== 'string' || d.dataset_dir === '') throw new Error(`${source}: 'data.dataset_dir' must be a non-empty string`);
  if (d.seq_len !== null) expectNumber(source, 'data.seq_len', d.seq_len, { int: true, min: 2 });
  if (d.tokenizer_dir !== null && typeof d.tokenizer_dir !== 'string') throw new Error(`${source}: 'data.tokenizer_dir' must be a folder path or null`);
  if (typeof d.default_corpus_dir !== 'string' || d.default_corpus_dir === '') throw new Error(`${source}: 'data.default_corpus_dir' must be a non-empty string`);
  expectNumber(source, 'data.prepare_default_vocab_size', d.prepare_default_vocab_size, { int: true, min: 258 });
}

/** W of the schedule: warmup_steps if set, else ceil(warmup_ratio * max_steps) (HF `get_warmup_steps`). */
/**
 * The one rule of short runs (pretrain, SFT and DPO alike): any max_steps >= 1 trains. Warmup and decay given as ratios
 * are rounded up but always leave the first step after the warmup at a non-zero learning rate (ratio warmup <=
 * max_steps - 1, ratio decay <= what is left); counts given as `warmup_steps` / `num_decay_steps` must fit in
 * max_steps or the config is refused, naming the keys and the smallest max_steps.
 */
export function warmupSteps(t: TrainingSection): number {
  return t.warmup_steps ?? Math.min(Math.ceil(t.warmup_ratio * t.max_steps), t.max_steps - 1);
}

/** D of the WSD schedule: num_decay_steps if set, else ceil(decay_ratio * max_steps). */
export function decaySteps(t: TrainingSection): number {
  return t.lr_scheduler_kwargs.num_decay_steps ?? Math.min(Math.ceil(t.lr_scheduler_kwargs.decay_ratio * t.max_steps), Math.max(0, t.max_steps - warmupSteps(t)));
}

export function scheduleSpec(t: TrainingSection): ScheduleSpec {
  return {
    type: t.lr_scheduler_type,
    totalSteps: t.max_steps,
    warmupSteps: warmupSteps(t),
    decaySteps: decaySteps(t),
    minLrRatio: t.lr_scheduler_kwargs.min_lr_ratio,
  };
}

function mergeSection<T extends object>(source: string, name: string, defaults: T, raw: unknown): T {
  if (raw === undefined || raw === null) return structuredClone(defaults);
  if (!isPlainObject(raw)) throw new Error(`${source}: section '${name}' must be a mapping`);
  const out = structuredClone(defaults) as Record<string, unknown>;
  const known = Object.keys(defaults);
  for (const [key, value] of Object.entries(raw)) {
    if (!known.includes(key)) throw unknownKey(source, `${name}.`, key, known);
    const def = out[key];
    if (isPlainObject(def)) {
      out[key] = mergeSection(source, `${name}.${key}`, def, value);
    } else {
      out[key] = value;
    }
  }
  return out as T;
}

/** A model key the picked model does not have: the closest of its keys, and the models that do have it. */
function unknownModelKey(source: string, key: string, reg: ModelRegistration, preset: string | undefined, known: readonly string[]): Error {
  const owners = registeredModels().filter((r) => r !== reg && r.configClass.FIELD_NAMES?.includes(key)).map((r) => r.modelType);
  const picked = preset ? `the ${reg.modelType} model preset ${preset} picks` : `the ${reg.modelType} model (no preset)`;
  return new Error(`${source}: unknown config key 'model.${key}'${suggestion(key, known)}: not a field of ${picked}` +
    `${owners.length ? ` ('${key}' is a field of ${owners.join(', ')})` : ''}; known keys in model: ${known.join(', ')}`);
}

function parseModel(source: string, raw: unknown): ModelSection {
  if (raw === undefined || raw === null) return { fields: {} };
  if (!isPlainObject(raw)) throw new Error(`${source}: section 'model' must be a mapping`);
  if (raw.preset !== undefined && typeof raw.preset !== 'string') throw new Error(`${source}: 'model.preset' must be a string`);
  // the model whose fields the section may give: the preset's, model_type's, else the default (what modelConfigFrom builds)
  let reg: ModelRegistration;
  try {
    reg = modelRegistrationFor(raw.preset, raw.model_type === undefined ? {} : { model_type: raw.model_type });
  } catch (e) {
    throw new Error(`${source}: model.${(e as Error).message}`);
  }
  const own = reg.configClass.FIELD_NAMES;
  const known = [...MODEL_META_KEYS, 'model_type', ...(own ?? [])];
  const out: ModelSection = { fields: {} };
  for (const [key, value] of Object.entries(raw)) {
    // a model class without FIELD_NAMES checks its fields itself when the config is built
    if (own && !known.includes(key)) throw unknownModelKey(source, key, reg, raw.preset, known);
    if (key === 'preset') {
      out.preset = value as string;
    } else if (key === 'init_from') {
      if (value !== null && typeof value !== 'string') throw new Error(`${source}: 'model.init_from' must be a folder path or null`);
      out.init_from = value as string | null;
    } else if (key === 'router_layout') {
      if (value !== 'token' && value !== 'hf') throw new Error(`${source}: 'model.router_layout' must be 'token' or 'hf', got ${JSON.stringify(value)}`);
      out.router_layout = value;
    } else {
      out.fields[key] = value;
    }
  }
  return out;
}

/** Build a config from a parsed YAML object (sections model / data / training). */
export function parsePretrainConfig(raw: unknown, source = '<config>'): PretrainConfig {
  if (raw === null || raw === undefined) raw = {};
  if (!isPlainObject(raw)) throw new Error(`${source}: the config must be a YAML mapping with sections model, data, training`);
  const sections = ['model', 'data', 'training'];
  for (const key of Object.keys(raw)) if (!sections.includes(key)) throw unknownKey(source, '', key, sections);
  const config: PretrainConfig = {
    model: parseModel(source, raw.model),
    data: mergeSection(source, 'data', DATA_DEFAULTS, raw.data),
    training: mergeSection(source, 'training', TRAINING_DEFAULTS, raw.training),
    source,
  };
  validateData(source, config.data);
  validateTraining(source, config.training);
  return config;
}

/**
 * Read a YAML recipe file as a mapping. An empty file parses to null (YAML) and means "all defaults"; anything
 * else must be a mapping (`sections` names what it should hold, for the message).
 */
export function readYamlRecipe(file: string, sections: string): Record<string, unknown> {
  if (!fs.existsSync(file)) throw new Error(`config file not found: ${file}`);
  let raw: unknown;
  try {
    raw = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  if (raw === null || raw === undefined) return {};
  if (!isPlainObject(raw)) throw new Error(`${file}: the config must be a YAML mapping with sections ${sections} (got ${Array.isArray(raw) ? 'a list' : typeof raw})`);
  return raw;
}

/** Read and validate a YAML config file. */
export function loadPretrainConfig(file: string, overrides: Record<string, string> = {}): PretrainConfig {
  const raw = readYamlRecipe(file, 'model, data, training');
  applyOverrides(raw, overrides, file);
  return parsePretrainConfig(raw, file);
}

/** Where a bare override key (`max_steps`) lives: the unique section that knows it. */
function sectionOf(key: string): string[] {
  const hits: string[] = [];
  if (key in TRAINING_DEFAULTS) hits.push('training');
  if (key in DATA_DEFAULTS) hits.push('data');
  if (modelFieldNames().includes(key) || MODEL_META_KEYS.includes(key)) hits.push('model');
  for (const [k, v] of Object.entries(TRAINING_DEFAULTS)) if (isPlainObject(v) && key in v) hits.push(`training.${k}`);
  return hits;
}

/** Parse an override value the way YAML would read it (`200` -> number, `true` -> boolean, `null`, lists). */
function parseValue(text: string): unknown {
  try {
    return YAML.parse(text);
  } catch {
    return text;
  }
}

/**
 * Apply command-line overrides onto a raw (parsed YAML) config, in place. Keys are YAML keys with dashes
 * or underscores (`max-steps`, `max_steps`), optionally qualified (`training.max_steps`, `model.hidden_size`).
 */
export function applyOverrides(raw: Record<string, unknown>, overrides: Record<string, string>, source = '<config>'): void {
  for (const [flag, text] of Object.entries(overrides)) {
    const key = flag.replace(/^--/, '').replace(/-/g, '_');
    const parts = key.split('.');
    let pathParts: string[];
    if (parts.length > 1) {
      pathParts = parts;
    } else {
      const where = sectionOf(key);
      if (where.length === 0) {
        const all = [...Object.keys(TRAINING_DEFAULTS), ...Object.keys(DATA_DEFAULTS), ...modelFieldNames(), ...MODEL_META_KEYS];
        const best = closestName(key, all);
        throw new Error(`unknown option --${flag.replace(/^--/, '')}${best ? ` (did you mean --${best.replace(/_/g, '-')}?)` : ''}`);
      }
      if (where.length > 1) throw new Error(`option --${flag} is ambiguous (in ${where.join(' and ')}); qualify it, e.g. --${where[0]}.${key}`);
      pathParts = [...where[0].split('.'), key];
    }
    let node: Record<string, unknown> = raw;
    for (const p of pathParts.slice(0, -1)) {
      if (!isPlainObject(node[p])) node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    node[pathParts[pathParts.length - 1]] = parseValue(text);
  }
  void source; // unknown qualified keys are reported by parsePretrainConfig with the file name
}

/** The config as plain JSON (written next to checkpoints so a run documents itself). */
export function configToJSON(config: PretrainConfig): Record<string, unknown> {
  const model: Record<string, unknown> = { ...config.model.fields };
  if (config.model.preset) model.preset = config.model.preset;
  if (config.model.init_from) model.init_from = config.model.init_from;
  if (config.model.router_layout) model.router_layout = config.model.router_layout;
  return { model, data: config.data, training: config.training };
}

/** Resolve a path in the config relative to the current directory (kept explicit for messages). */
export function resolvePath(p: string): string {
  return path.resolve(p);
}
