/**
 * Every config the repository has (the model sections of configs/*.yaml pretraining recipes, the config.json of
 * assets/ and tests/fixtures/, every preset) plus inputs that exercise each reading rule (aliases, legacy RoPE, DMA
 * fields, HF's generic keys), each rendered the way savePretrained writes config.json. The expected bytes in
 * tests/fixtures/config-json/ were written by the hand-written DogeConfig / CheemsConfig before the field tables
 * replaced them (tests/model-config-table.test.ts proves the tables write the same bytes). A config added to the repo
 * needs its reference file: `node --import tsx tests/config-json-cases.ts` rewrites them all (check the diff: only new files).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DogeConfig } from '../src/models/doge/config';
import { CheemsConfig } from '../src/models/cheems/config';
import { loadPretrainConfig } from '../src/train/config';
import { modelConfigFrom } from '../src/train/pretrain';

export const ROOT = path.resolve(__dirname, '..');
export const EXPECTED_DIR = path.join(ROOT, 'tests', 'fixtures', 'config-json');

/** config.json text exactly as writeCheckpointFolder writes it. */
export function configJsonText(config: { toJSON(): Record<string, unknown> }): string {
  return JSON.stringify(config.toJSON(), null, 2) + '\n';
}

function configFolders(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'config.json' && !p.startsWith(EXPECTED_DIR)) out.push(path.dirname(p));
    }
  };
  walk(path.join(ROOT, 'assets'));
  walk(path.join(ROOT, 'tests', 'fixtures'));
  return out.sort();
}

/** Pretraining recipes (the fine-tuning ones have no model fields: `model.init_from` only). */
function pretrainRecipes(): string[] {
  return fs.readdirSync(path.join(ROOT, 'configs')).filter((f) => f.endsWith('.yaml') && !/-(sft|dpo)\.yaml$/.test(f)).sort();
}

const VARIANTS: Record<string, ['doge' | 'cheems', Record<string, unknown>]> = {
  'input-doge-defaults': ['doge', {}],
  'input-doge-dma-window-alias': ['doge', { window_size: 16, dynamic_mask_bias: 'linear', dynamic_mask_select: 'key', dynamic_mask_type: 'relu' }],
  'input-doge-legacy-rope': ['doge', { rope_theta: 5000, rope_scaling: { type: 'dynamic', factor: 2.0 } }],
  'input-doge-legacy-rope-null': ['doge', { rope_theta: 500000, rope_scaling: null }],
  'input-doge-generic-keys': ['doge', { transformers_version: '4.48.0', torch_dtype: 'bfloat16', _name_or_path: 'SmallDoge/Doge-20M', architectures: ['DogeForCausalLM'], model_type: 'doge', auto_map: { AutoConfig: 'configuration_doge.DogeConfig' } }],
  'input-doge-kv-null-head-dim': ['doge', { num_key_value_heads: null, head_dim: 128, sliding_window: 64, bos_token_id: 0, eos_token_id: 1, pad_token_id: 2 }],
  'input-doge-dtype': ['doge', { dtype: 'float16', is_moe: true, num_experts: 64, num_experts_per_tok: 4, output_router_logits: true }],
  'input-cheems-defaults': ['cheems', {}],
  'input-cheems-window-dma': ['cheems', { keep_window_size: 32, dynamic_mask_type: 'relu' }],
  'input-cheems-window-alias': ['cheems', { window_size: 8 }],
  'input-cheems-rope-type-alias': ['cheems', { rope_scaling: { type: 'dynamic', factor: 2 }, rope_theta: 500000 }],
  'input-cheems-generic-keys': ['cheems', { transformers_version: '4.48', _name_or_path: 'x', dtype: 'bfloat16', layers_type: ['ssd'], architectures: ['CheemsForCausalLM'], model_type: 'cheems' }],
  'input-cheems-kv-null': ['cheems', { num_key_value_heads: null, hidden_bias: true, is_moe: true }],
};

/** [case name, a function building the config] for every case. */
export function configCases(): Array<[string, () => { toJSON(): Record<string, unknown> }]> {
  const cases: Array<[string, () => { toJSON(): Record<string, unknown> }]> = [];
  for (const f of pretrainRecipes()) cases.push([`yaml-${f.replace(/\.yaml$/, '')}`, () => modelConfigFrom(loadPretrainConfig(path.join(ROOT, 'configs', f)))]);
  for (const dir of configFolders()) {
    const name = `folder-${path.relative(ROOT, dir).replace(/[\\/]/g, '-')}`;
    const type = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).model_type;
    cases.push([name, () => (type === 'cheems' ? CheemsConfig.fromPretrained(dir) : DogeConfig.fromPretrained(dir))]);
  }
  for (const p of ['doge-tiny', 'doge-tiny-moe', 'doge-20m', 'doge-60m', 'doge-160m', 'doge-320m']) cases.push([`preset-${p}`, () => DogeConfig.preset(p)]);
  for (const p of ['cheems-tiny', 'cheems-tiny-moe', 'cheems-default']) cases.push([`preset-${p}`, () => CheemsConfig.preset(p)]);
  for (const [name, [model, input]] of Object.entries(VARIANTS)) {
    cases.push([name, () => (model === 'cheems' ? new CheemsConfig(input) : new DogeConfig(input))]);
  }
  return cases;
}

/** Write the expected files (run once with the code whose bytes are the reference). */
export function writeExpected(): void {
  fs.mkdirSync(EXPECTED_DIR, { recursive: true });
  for (const [name, build] of configCases()) fs.writeFileSync(path.join(EXPECTED_DIR, `${name}.json`), configJsonText(build()));
}

if (require.main === module) writeExpected();
