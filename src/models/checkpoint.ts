/**
 * Hugging Face checkpoint folders, for every model: `config.json` + `model.safetensors` (or sharded
 * `model.safetensors.index.json` + shards). Reads F32/F16/BF16 (as float32), writes F32 with {"format": "pt"}
 * metadata, atomically. The models load the tensors with `Module.loadState`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../tf';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import { assignState, type LoadStateOptions, type LoadStateResult, type Module } from '../modules/module';

/** Non-persistent buffers HF may still have written; ignored on load. */
export const IGNORED_BUFFERS = /(^|\.)rotary_emb\.(inv_freq|original_inv_freq)$/;

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

/**
 * Tied embeddings: the model has only `embedName`. A checkpoint with only `lm_head.weight` provides it; one with both
 * keeps the embedding (with a warning, HF would keep two matrices).
 */
export function resolveTiedHead(tensors: Map<string, tf.Tensor>, embedName: string, dir: string): void {
  if (!tensors.has(embedName) && tensors.has('lm_head.weight')) {
    tensors.set(embedName, tensors.get('lm_head.weight')!);
    tensors.delete('lm_head.weight');
  }
  if (tensors.has('lm_head.weight')) {
    console.warn(`${dir}: tie_word_embeddings is true but the checkpoint also has lm_head.weight; using ${embedName} for both`);
    tensors.get('lm_head.weight')!.dispose();
    tensors.delete('lm_head.weight');
  }
}

/** Write config.json + model.safetensors into a temporary folder, then move them into `dir`. */
export function writeCheckpointFolder(dir: string, config: Record<string, unknown>, params: Map<string, tf.Tensor>): void {
  const abs = path.resolve(dir);
  const parent = path.dirname(abs);
  fs.mkdirSync(parent, { recursive: true });
  // mkdir, not mkdtemp (0700): the folder is renamed into place and keeps its mode, which should follow the umask
  const tmp = path.join(parent, `.${path.basename(abs)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  fs.mkdirSync(tmp);
  try {
    fs.writeFileSync(path.join(tmp, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    saveSafetensors(path.join(tmp, 'model.safetensors'), params, { format: 'pt' });
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

/** What checkpoint tensors can be loaded into: a Module (its `loadState`), or any model with HF-named parameters. */
export interface StateTarget {
  parameters(): Map<string, tf.Variable>;
  loadState?(tensors: Map<string, tf.Tensor>, opts?: LoadStateOptions): LoadStateResult;
}

export interface FolderLoadOptions {
  /** true (default): every parameter present, nothing unknown (see LoadStateOptions.strict). */
  strict?: boolean;
  /** The embedding that also serves as lm_head (a checkpoint's `lm_head.weight` may provide it), or null. */
  tiedEmbedding?: string | null;
  /** Prefix of error messages (default: the folder). */
  source?: string;
}

/**
 * The one way a checkpoint folder (single file or sharded) gets into a model: `fromPretrained`, the trainer's resume
 * and `init_from` all call it. The model's own `loadState` is used when it has one (a Module: it also drops derived
 * caches), else the same `assignState` on its parameters. The checkpoint tensors are always disposed.
 */
export function loadStateFromFolder(dir: string, model: StateTarget, opts: FolderLoadOptions = {}): LoadStateResult {
  let tensors: Map<string, tf.Tensor> | null = null;
  try {
    tensors = loadCheckpointTensors(dir);
    if (opts.tiedEmbedding) resolveTiedHead(tensors, opts.tiedEmbedding, dir);
    const o: LoadStateOptions = { strict: opts.strict ?? true, ignore: IGNORED_BUFFERS, source: opts.source ?? dir };
    return model.loadState ? model.loadState(tensors, o) : assignState(model.parameters(), tensors, o);
  } finally {
    if (tensors) for (const t of tensors.values()) t.dispose();
  }
}

/**
 * Fill a freshly built model from a checkpoint folder through `loadState` (strict); `tiedEmbedding` names the embedding
 * that also serves as lm_head. On error the model is disposed; the checkpoint tensors always are.
 */
export function loadPretrainedInto<M extends Module>(dir: string, model: M, tiedEmbedding: string | null): M {
  try {
    loadStateFromFolder(dir, model, { strict: true, tiedEmbedding });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model;
}
