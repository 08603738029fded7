/**
 * Open any model of the library from a folder by its config.json `model_type` ("doge" or "cheems"), or build one
 * from a config object. Both models satisfy the Trainer's `CausalLM` and generation's `GenerativeModel`.
 */
import type { RouterLayout } from '../modules/cdmoe';
import { readConfigJSON } from './config-fields';
import { DogeConfig, type DogeConfigInput } from './doge/config';
import { DogeForCausalLM } from './doge/model';
import { CheemsConfig, type CheemsConfigInput } from './cheems/config';
import { CheemsForCausalLM } from './cheems/model';

export type CausalLMModel = DogeForCausalLM | CheemsForCausalLM;

/** The model_type of a folder's config.json. */
export function modelTypeOf(dir: string): 'doge' | 'cheems' {
  const t = readConfigJSON(dir).model_type;
  if (t === 'doge' || t === 'cheems') return t;
  throw new Error(`${dir}/config.json: model_type ${JSON.stringify(t)} is not supported (expected "doge" or "cheems")`);
}

/** DogeForCausalLM or CheemsForCausalLM from a checkpoint folder. routerLayout applies to Doge MoE only. */
export function loadCausalLM(dir: string, options: { routerLayout?: RouterLayout } = {}): CausalLMModel {
  return modelTypeOf(dir) === 'cheems' ? CheemsForCausalLM.fromPretrained(dir) : DogeForCausalLM.fromPretrained(dir, options);
}

/** A fresh model from a config object or preset name: `model_type` / the preset's prefix picks the class. */
export function createCausalLM(
  config: DogeConfig | CheemsConfig | { model_type?: string; preset?: string; [k: string]: unknown },
  options: { seed?: number; routerLayout?: RouterLayout } = {},
): CausalLMModel {
  if (config instanceof DogeConfig) return new DogeForCausalLM(config, options);
  if (config instanceof CheemsConfig) return new CheemsForCausalLM(config, { seed: options.seed });
  const { preset, ...fields } = config as { preset?: string; [k: string]: unknown };
  const isCheems = fields.model_type === 'cheems' || (typeof preset === 'string' && preset.startsWith('cheems'));
  if (isCheems) {
    const c = preset ? CheemsConfig.preset(preset, fields as CheemsConfigInput) : new CheemsConfig(fields as CheemsConfigInput);
    return new CheemsForCausalLM(c, { seed: options.seed });
  }
  const d = preset ? DogeConfig.preset(preset, fields as DogeConfigInput) : new DogeConfig(fields as DogeConfigInput);
  return new DogeForCausalLM(d, options);
}
