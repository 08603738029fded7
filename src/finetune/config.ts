/**
 * YAML recipes of `wm sft` / `wm dpo` (configs/doge-*-sft.yaml, -dpo.yaml), mirroring the seed's
 * Doge-*-Instruct-{SFT,DPO}.yaml. Sections:
 *
 *   model:    init_from (the base / SFT checkpoint folder, required), router_layout
 *   data:     train / eval inputs (file, glob, folder, `datasets` folder, `embedded:chats`, `embedded:prefs`), or
 *             dataset (hub `org/name`) with train_split / eval_split / subdir; tokenizer_dir (default: init_from);
 *             limits max_train_rows / max_eval_rows / eval_rows
 *   sft:      seq_len, packing (document | wrapped | padding), loss_on (assistant | all)
 *   dpo:      beta, label_smoothing, loss_type, rpo_alpha, reference (copy | precompute), reference_model, max_length,
 *             max_prompt_length, max_completion_length, long_prompts (error | truncate)
 *   training: the pre-training Trainer's section (AdamW, schedule incl. cosine_with_min_lr, clipping, eval/save steps)
 *
 * `lr_scheduler_kwargs.min_lr_rate` (HF's name for cosine_with_min_lr) is accepted and stored as min_lr_ratio.
 */
import YAML from 'yaml';
import { closestName } from '../names';
import { parsePretrainConfig, readYamlRecipe } from '../train/config';
import type { TrainingSection } from '../train/config';
import { PACKING_MODES, type PackingMode } from './packing';
import type { LossOn } from './chat-data';
import { DPO_LOSS_TYPES, type DpoLossType } from './dpo';
import { resolveModelDir } from '../io/model-dir';

export interface FinetuneData {
  train: string | null;
  eval: string | null;
  dataset: string | null;
  subdir: string | null;
  train_split: string;
  eval_split: string;
  tokenizer_dir: string | null;
  max_train_rows: number | null;
  max_eval_rows: number | null;
}

export interface SftSection {
  seq_len: number;
  packing: PackingMode;
  loss_on: LossOn;
}

export interface DpoSection {
  beta: number;
  label_smoothing: number;
  loss_type: DpoLossType;
  /** TRL's rpo_alpha: weight of the chosen completions' token-mean NLL added to the DPO loss (0 = off). */
  rpo_alpha: number;
  reference: 'copy' | 'precompute';
  /** Reference checkpoint folder (default: model.init_from, the policy's start). */
  reference_model: string | null;
  max_length: number | null;
  max_prompt_length: number | null;
  max_completion_length: number | null;
  /** Prompts longer than max_prompt_length: an error naming the row (default) or the seed's left truncation. */
  long_prompts: 'error' | 'truncate';
}

export interface FinetuneConfig {
  kind: 'sft' | 'dpo';
  model: { init_from: string; router_layout: 'token' | 'hf' };
  data: FinetuneData;
  sft: SftSection;
  dpo: DpoSection;
  training: TrainingSection;
  source: string;
}

export const FINETUNE_DATA_DEFAULTS: FinetuneData = {
  train: null, eval: null, dataset: null, subdir: null, train_split: 'train', eval_split: 'test', tokenizer_dir: null,
  max_train_rows: null, max_eval_rows: null,
};
export const SFT_DEFAULTS: SftSection = { seq_len: 2048, packing: 'document', loss_on: 'assistant' };
export const DPO_DEFAULTS: DpoSection = {
  beta: 0.5, label_smoothing: 0, loss_type: 'sigmoid', rpo_alpha: 0, reference: 'copy', reference_model: null,
  max_length: 1024, max_prompt_length: 512, max_completion_length: null, long_prompts: 'error',
};

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => !!v && typeof v === 'object' && !Array.isArray(v);

function section<T extends object>(source: string, name: string, defaults: T, raw: unknown): T {
  if (raw === undefined || raw === null) return { ...defaults };
  if (!isObj(raw)) throw new Error(`${source}: section '${name}' must be a mapping`);
  const out = { ...defaults } as Raw;
  for (const [k, v] of Object.entries(raw)) {
    if (!(k in defaults)) throw new Error(`${source}: unknown key '${name}.${k}' (known: ${Object.keys(defaults).join(', ')})`);
    out[k] = v;
  }
  return out as T;
}

function posInt(source: string, key: string, v: unknown, nullable = true): void {
  if (v === null && nullable) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`${source}: '${key}' must be a positive integer${nullable ? ' or null' : ''}, got ${JSON.stringify(v)}`);
}

/** Parse a raw (YAML) fine-tuning config; `kind` says which command reads it. */
export function parseFinetuneConfig(raw: unknown, kind: 'sft' | 'dpo', source = '<config>'): FinetuneConfig {
  if (!isObj(raw)) throw new Error(`${source}: the config must be a YAML mapping with sections model, data, ${kind}, training`);
  for (const k of Object.keys(raw)) if (!['model', 'data', 'sft', 'dpo', 'training'].includes(k)) throw new Error(`${source}: unknown section '${k}' (sections: model, data, ${kind}, training)`);
  const model = section(source, 'model', { init_from: '', router_layout: 'token' } as FinetuneConfig['model'], raw.model);
  if (typeof model.init_from !== 'string' || !model.init_from) throw new Error(`${source}: 'model.init_from' (the checkpoint to fine-tune) is required`);
  model.init_from = resolveModelDir(model.init_from, 'model.init_from'); // a run folder stands for its final/ model
  if (model.router_layout !== 'token' && model.router_layout !== 'hf') throw new Error(`${source}: 'model.router_layout' must be 'token' or 'hf'`);
  const data = section(source, 'data', FINETUNE_DATA_DEFAULTS, raw.data);
  if (!data.train && !data.dataset) throw new Error(`${source}: set 'data.train' (a file, folder, or embedded:${kind === 'sft' ? 'chats' : 'prefs'}) or 'data.dataset' (hub org/name)`);
  posInt(source, 'data.max_train_rows', data.max_train_rows);
  posInt(source, 'data.max_eval_rows', data.max_eval_rows);
  const sft = section(source, 'sft', SFT_DEFAULTS, raw.sft);
  posInt(source, 'sft.seq_len', sft.seq_len, false);
  if (!PACKING_MODES.includes(sft.packing)) throw new Error(`${source}: 'sft.packing' must be one of ${PACKING_MODES.join(', ')}, got ${JSON.stringify(sft.packing)}`);
  if (sft.loss_on !== 'assistant' && sft.loss_on !== 'all') throw new Error(`${source}: 'sft.loss_on' must be 'assistant' or 'all'`);
  const dpo = section(source, 'dpo', DPO_DEFAULTS, raw.dpo);
  if (!(typeof dpo.beta === 'number' && dpo.beta > 0)) throw new Error(`${source}: 'dpo.beta' must be > 0`);
  if (!(typeof dpo.label_smoothing === 'number' && dpo.label_smoothing >= 0 && dpo.label_smoothing < 0.5)) throw new Error(`${source}: 'dpo.label_smoothing' must be in [0, 0.5)`);
  if (!DPO_LOSS_TYPES.includes(dpo.loss_type)) throw new Error(`${source}: 'dpo.loss_type' '${dpo.loss_type}' is not supported (supported: ${DPO_LOSS_TYPES.join(', ')})`);
  if (dpo.label_smoothing > 0 && dpo.loss_type !== 'sigmoid') throw new Error(`${source}: 'dpo.label_smoothing' applies to loss_type sigmoid only, not '${dpo.loss_type}'`);
  if (!(typeof dpo.rpo_alpha === 'number' && dpo.rpo_alpha >= 0)) throw new Error(`${source}: 'dpo.rpo_alpha' must be a number >= 0, got ${JSON.stringify(dpo.rpo_alpha)}`);
  if (dpo.reference !== 'copy' && dpo.reference !== 'precompute') throw new Error(`${source}: 'dpo.reference' must be 'copy' or 'precompute'`);
  if (dpo.long_prompts !== 'error' && dpo.long_prompts !== 'truncate') throw new Error(`${source}: 'dpo.long_prompts' must be 'error' or 'truncate'`);
  for (const k of ['max_length', 'max_prompt_length', 'max_completion_length'] as const) posInt(source, `dpo.${k}`, dpo[k]);
  // the Trainer's section, validated by the pre-training parser (HF's min_lr_rate is our min_lr_ratio)
  const tr = isObj(raw.training) ? structuredClone(raw.training) : {};
  const kw = tr.lr_scheduler_kwargs;
  if (isObj(kw) && 'min_lr_rate' in kw) {
    kw.min_lr_ratio = kw.min_lr_rate;
    delete kw.min_lr_rate;
  }
  const training = parsePretrainConfig({ training: tr }, source).training;
  return { kind, model, data, sft, dpo, training, source };
}

function parseValue(text: string): unknown {
  try {
    return YAML.parse(text);
  } catch {
    return text;
  }
}

/** Apply `--key value` overrides: bare keys go to the one section that has them, `section.key` anywhere. */
export function applyFinetuneOverrides(raw: Raw, overrides: Record<string, string>, kind: 'sft' | 'dpo'): void {
  const known: Record<string, string[]> = {
    data: Object.keys(FINETUNE_DATA_DEFAULTS), [kind]: Object.keys(kind === 'sft' ? SFT_DEFAULTS : DPO_DEFAULTS), model: ['init_from', 'router_layout'],
  };
  const trainingKeys = Object.keys(parsePretrainConfig({}, '<defaults>').training);
  for (const [flag, text] of Object.entries(overrides)) {
    const key = flag.replace(/^--/, '').replace(/-/g, '_');
    let parts = key.split('.');
    if (parts.length === 1) {
      const hits = Object.entries(known).filter(([, ks]) => ks.includes(key)).map(([s]) => s);
      if (trainingKeys.includes(key)) hits.push('training');
      if (hits.length === 0) {
        const best = closestName(key, [...Object.values(known).flat(), ...trainingKeys]);
        throw new Error(`unknown option --${flag}${best ? ` (did you mean --${best.replace(/_/g, '-')}?)` : ''} (a key of sections data, ${kind}, model or training)`);
      }
      if (hits.length > 1) throw new Error(`option --${flag} is ambiguous (in ${hits.join(' and ')}); qualify it, e.g. --${hits[0]}.${key}`);
      parts = [hits[0]!, key];
    }
    let node = raw;
    for (const p of parts.slice(0, -1)) {
      if (!isObj(node[p])) node[p] = {};
      node = node[p] as Raw;
    }
    node[parts.at(-1)!] = parseValue(text);
  }
}

/** Read a recipe file with overrides. */
export function loadFinetuneConfig(file: string, kind: 'sft' | 'dpo', overrides: Record<string, string> = {}): FinetuneConfig {
  const raw = readYamlRecipe(file, `model, data, ${kind}, training`);
  applyFinetuneOverrides(raw as Raw, overrides, kind);
  return parseFinetuneConfig(raw, kind, file);
}
