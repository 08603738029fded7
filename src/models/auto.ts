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
  if (!(config instanceof DogeConfig) && !(config instanceof CheemsConfig)) {
    const { preset, ...fields } = config as { preset?: string; [k: string]: unknown };
    config = buildModelConfig(preset, fields);
  }
  return config instanceof CheemsConfig ? new CheemsForCausalLM(config, { seed: options.seed }) : new DogeForCausalLM(config, options);
}

/** A config from a preset name (its prefix picks the model) or from fields with `model_type`. Errors name the field. */
export function buildModelConfig(preset: string | undefined, fields: Record<string, unknown>): DogeConfig | CheemsConfig {
  const isCheems = fields.model_type === 'cheems' || (preset !== undefined && preset.startsWith('cheems'));
  if (isCheems) return preset ? CheemsConfig.preset(preset, fields as CheemsConfigInput) : new CheemsConfig(fields as CheemsConfigInput);
  return preset ? DogeConfig.preset(preset, fields as DogeConfigInput) : new DogeConfig(fields as DogeConfigInput);
}

/** One line about a config, for progress output: layers, width, mixers, experts. */
export function describeModelConfig(c: DogeConfig | CheemsConfig): string {
  if (c instanceof CheemsConfig) {
    const kinds = c.layersType;
    const attn = kinds.filter((k) => k === 'attn').length;
    return `Cheems, ${c.num_hidden_layers} layers (${kinds.length - attn} SSD, ${attn} DMAttn), hidden ${c.hidden_size}` +
      (c.is_moe ? `, CDMoE ${c.num_cdmoe_experts} experts, ${c.num_cdmoe_heads} heads x ${c.num_cdmoe_experts_per_head}` : '');
  }
  return `Doge, ${c.num_hidden_layers} layers, hidden ${c.hidden_size}${c.is_moe ? `, MoE ${c.num_experts} experts top-${c.num_experts_per_tok}` : ''}`;
}
