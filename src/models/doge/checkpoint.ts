/**
 * Hugging Face checkpoints for DogeForCausalLM: `config.json` + `model.safetensors` (or sharded
 * `model.safetensors.index.json` + shards). Reads F32/F16/BF16, writes F32 with {"format": "pt"} metadata.
 * Tied embeddings are written once (`model.embed_tokens.weight`); a tied checkpoint that only has `lm_head.weight`
 * is accepted too. Missing, unexpected or mis-shaped tensors are errors that name the tensor.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../../backend';
import { loadSafetensors, saveSafetensors } from '../../io/safetensors';
import type { RouterLayout } from '../../modules/cdmoe';
import { DogeConfig } from './config';
import { DogeForCausalLM } from './model';

/** Non-persistent buffers HF may still have written; ignored on load. */
const IGNORED = /(^|\.)rotary_emb\.(inv_freq|original_inv_freq)$/;

/** Every tensor of a checkpoint folder (single file or sharded). The caller disposes them. */
export function loadCheckpointTensors(dir: string): Map<string, tf.Tensor> {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(single)) return loadSafetensors(single).tensors;
  if (!fs.existsSync(index)) throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  let weightMap: Record<string, string>;
  try {
    weightMap = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
  } catch (e) {
    throw new Error(`${index}: not valid JSON: ${(e as Error).message}`);
  }
  if (!weightMap || typeof weightMap !== 'object') throw new Error(`${index}: missing "weight_map"`);
  const out = new Map<string, tf.Tensor>();
  for (const shard of [...new Set(Object.values(weightMap))].sort()) {
    const file = path.join(dir, shard);
    const { tensors } = loadSafetensors(file);
    for (const [name, t] of tensors) {
      if (weightMap[name] !== shard) { t.dispose(); continue; }
      out.set(name, t);
    }
  }
  for (const name of Object.keys(weightMap)) {
    if (!out.has(name)) throw new Error(`${index}: tensor '${name}' is listed in weight_map but missing from ${weightMap[name]}`);
  }
  return out;
}

export function loadDogeCheckpoint(dir: string, options: { routerLayout?: RouterLayout } = {}): DogeForCausalLM {
  const config = DogeConfig.fromPretrained(dir);
  const tensors = loadCheckpointTensors(dir);
  const model = new DogeForCausalLM(config, { routerLayout: options.routerLayout, initWeights: false });
  try {
    const params = model.parameters();
    if (config.tie_word_embeddings && !tensors.has('model.embed_tokens.weight') && tensors.has('lm_head.weight')) {
      tensors.set('model.embed_tokens.weight', tensors.get('lm_head.weight')!);
      tensors.delete('lm_head.weight');
    }
    if (config.tie_word_embeddings && tensors.has('lm_head.weight')) {
      // HF would keep both when they differ; this model has one shared matrix, so the embedding wins
      console.warn(`${dir}: tie_word_embeddings is true but the checkpoint also has lm_head.weight; using model.embed_tokens.weight for both`);
      tensors.get('lm_head.weight')!.dispose();
      tensors.delete('lm_head.weight');
    }
    const missing = [...params.keys()].filter((n) => !tensors.has(n));
    if (missing.length) throw new Error(`${dir}: checkpoint is missing tensor '${missing[0]}'${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`);
    for (const name of tensors.keys()) {
      if (!params.has(name) && !IGNORED.test(name)) throw new Error(`${dir}: unexpected tensor '${name}' in the checkpoint (not a parameter of this config)`);
    }
    for (const [name, v] of params) {
      const t = tensors.get(name)!;
      if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
        throw new Error(`${dir}: tensor '${name}' has shape [${t.shape}] but the config needs [${v.shape}]`);
      }
      if (t.dtype !== 'float32') throw new Error(`${dir}: tensor '${name}' has dtype ${t.dtype}, expected a floating type`);
      v.assign(t);
    }
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return model;
}

/** Write config.json + model.safetensors into a temporary folder, then move them into `dir`. */
export function saveDogeCheckpoint(model: DogeForCausalLM, dir: string): void {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  fs.mkdirSync(parent, { recursive: true });
  // mkdir, not mkdtemp (0700): the folder is renamed into place and keeps its mode, which should follow the umask
  const tmp = path.join(parent, `.${path.basename(abs)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  fs.mkdirSync(tmp);
  try {
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(model.config.toJSON(), null, 2) + '\n');
    saveSafetensors(path.join(tmp, 'model.safetensors'), model.parameters() as Map<string, tf.Tensor>, { format: 'pt' });
    if (!fs.existsSync(abs)) {
      fs.renameSync(tmp, abs); // the whole folder appears at once
      return;
    }
    // existing folder (may hold a tokenizer etc.): replace our files one atomic rename at a time
    for (const stale of ['model.safetensors.index.json']) if (fs.existsSync(path.join(abs, stale))) fs.rmSync(path.join(abs, stale));
    fs.renameSync(path.join(tmp, 'model.safetensors'), path.join(abs, 'model.safetensors'));
    fs.renameSync(path.join(tmp, 'config.json'), path.join(abs, 'config.json'));
  } finally {
    if (fs.existsSync(tmp)) fs.rmSync(tmp, { recursive: true, force: true });
  }
}
