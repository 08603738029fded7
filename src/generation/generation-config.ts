/**
 * `generation_config.json`, the Hugging Face file that stores a checkpoint's default decoding settings
 * (transformers' `GenerationConfig`: snake_case fields, read by `model.generate()` in Python). `wm pretrain`
 * writes the settings it samples with, so `wm generate --model DIR` (and Python) decode the same way by default.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic';
import type { GenerateOptions } from './generate';

export const GENERATION_CONFIG_FILE = 'generation_config.json';

/** The fields this library reads and writes (all optional, HF names). */
export interface HfGenerationConfig {
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  repetition_penalty?: number;
  max_new_tokens?: number;
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | null;
  [key: string]: unknown;
}

/**
 * The sampling defaults of `wm pretrain`'s samples: greedy decoding of a small, briefly trained model mostly repeats
 * one token, seeded top-k sampling with a repetition penalty reads like text.
 */
export const PRETRAIN_SAMPLING_DEFAULTS: Readonly<HfGenerationConfig> = Object.freeze({
  do_sample: true,
  top_k: 40,
  temperature: 0.8,
  top_p: 1.0,
  repetition_penalty: 1.2,
  max_new_tokens: 50,
});

/** Write `<dir>/generation_config.json` (transformers adds its version; we add ours). */
export function writeGenerationConfig(dir: string, config: HfGenerationConfig): void {
  const body = { ...config, _from_model_config: false, transformers_version: '4.47.0', wm_generated_by: 'wonderful-matrices' };
  writeFileAtomic(path.join(dir, GENERATION_CONFIG_FILE), JSON.stringify(body, null, 2) + '\n');
}

/** Read `<dir>/generation_config.json`, or undefined when there is none. Bad JSON or field types are errors. */
export function readGenerationConfig(dir: string): HfGenerationConfig | undefined {
  const file = path.join(dir, GENERATION_CONFIG_FILE);
  if (!fs.existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${file}: must be a JSON object`);
  const g = raw as HfGenerationConfig;
  const check = (key: string, ok: boolean) => { if (!ok) throw new Error(`${file}: '${key}' has an invalid value ${JSON.stringify(g[key])}`); };
  const isNum = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v));
  check('do_sample', g.do_sample === undefined || typeof g.do_sample === 'boolean');
  for (const k of ['temperature', 'top_k', 'top_p', 'repetition_penalty', 'max_new_tokens']) check(k, isNum(g[k]));
  return g;
}

/** HF generation config -> `generate()` options (only the fields that are set). */
export function generationOptionsFrom(g: HfGenerationConfig): GenerateOptions {
  const o: GenerateOptions = {};
  if (g.do_sample !== undefined) o.doSample = g.do_sample;
  if (g.temperature !== undefined) o.temperature = g.temperature;
  if (g.top_k !== undefined) o.topK = g.top_k;
  if (g.top_p !== undefined) o.topP = g.top_p;
  if (g.repetition_penalty !== undefined) o.repetitionPenalty = g.repetition_penalty;
  if (g.max_new_tokens !== undefined) o.maxNewTokens = g.max_new_tokens;
  if (g.eos_token_id !== undefined) o.eosTokenId = g.eos_token_id;
  if (g.pad_token_id !== undefined) o.padTokenId = g.pad_token_id;
  return o;
}
