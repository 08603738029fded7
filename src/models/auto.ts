/**
 * Open any registered model of the library (src/models/registry.ts: Doge, Cheems, and whatever else was registered)
 * from a folder by its config.json `model_type`, or build one from a config object or a preset name. Every model
 * satisfies the Trainer's `CausalLM` and generation's `GenerativeModel`.
 */
import { readConfigJSON } from './config-fields';
import {
  modelRegistration, registeredModels, registrationOfConfig, registrationOfPreset,
  type CausalLMConfig, type CausalLMModel, type CausalLMOptions, type ModelRegistration,
} from './registry';

/** The model_type of a folder's config.json (a registered one). */
export function modelTypeOf(dir: string): string {
  const t = readConfigJSON(dir).model_type;
  const types = registeredModels().map((r) => r.modelType);
  if (typeof t === 'string' && types.includes(t)) return t;
  throw new Error(`${dir}/config.json: model_type ${JSON.stringify(t)} is not supported (expected ${types.map((x) => JSON.stringify(x)).join(' or ')})`);
}

/** The registered model of a checkpoint folder (by config.json's model_type). routerLayout applies to Doge MoE only. */
export function loadCausalLM(dir: string, options: CausalLMOptions = {}): CausalLMModel {
  return modelRegistration(modelTypeOf(dir)).modelClass.fromPretrained(dir, options);
}

/** A fresh model from a config object (of a registered config class) or from `{ model_type | preset, ...fields }`. */
export function createCausalLM(
  config: CausalLMConfig | { model_type?: string; preset?: string; [k: string]: unknown },
  options: CausalLMOptions = {},
): CausalLMModel {
  let reg = registrationOfConfig(config);
  if (!reg) {
    const { preset, ...fields } = config as { preset?: string; [k: string]: unknown };
    config = buildModelConfig(preset, fields);
    reg = registrationOfConfig(config)!;
  }
  return new reg.modelClass(config as CausalLMConfig, options);
}

/**
 * The registration a preset name or `model_type` field picks: model_type first, then the model that owns the preset,
 * then the model whose type prefixes the preset (its config class names the unknown preset), else the first (Doge).
 */
export function modelRegistrationFor(preset: string | undefined, fields: Record<string, unknown>): ModelRegistration {
  if (fields.model_type !== undefined) return modelRegistration(String(fields.model_type));
  const all = registeredModels();
  if (preset === undefined) return all[0]!;
  return registrationOfPreset(preset) ?? all.find((r) => preset.startsWith(r.modelType)) ?? all[0]!;
}

/** A config from a preset name (it picks the model) or from fields with `model_type`. Errors name the field. */
export function buildModelConfig(preset: string | undefined, fields: Record<string, unknown>): CausalLMConfig {
  const reg = modelRegistrationFor(preset, fields);
  return preset ? reg.configClass.preset(preset, fields) : new reg.configClass(fields);
}

/** One line about a config, for progress output: layers, width, mixers, experts. */
export function describeModelConfig(c: CausalLMConfig): string {
  const reg = registrationOfConfig(c);
  if (reg?.describe) return reg.describe(c);
  return `${reg?.modelType ?? 'model'}, ${c.num_hidden_layers} layers, hidden ${c.hidden_size}`;
}
