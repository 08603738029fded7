/**
 * Hugging Face checkpoint folders, for every model: `config.json` + `model.safetensors` (or sharded
 * `model.safetensors.index.json` + shards). Reads F32/F16/BF16 (as float32), writes F32 with {"format": "pt"}
 * metadata, atomically. The models load the tensors with `Module.loadState`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../tf';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '../io/safetensors';
import { assignState, type LoadStateOptions, type LoadStateResult, type Module } from '../modules/module';

/** Non-persistent buffers HF may still have written; ignored on load. */
export const IGNORED_BUFFERS = /(^|\.)rotary_emb\.(inv_freq|original_inv_freq)$/;

/** The tensor -> shard file map of a sharded checkpoint's model.safetensors.index.json. */
function readWeightMap(index: string): Record<string, string> {
  let weightMap: Record<string, string>;
  try {
    weightMap = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map;
  } catch (e) {
    throw new Error(`${index}: not valid JSON: ${(e as Error).message}`);
  }
  if (!weightMap || typeof weightMap !== 'object') throw new Error(`${index}: missing "weight_map"`);
  return weightMap;
}

/** Every tensor of a checkpoint folder (single file or sharded). The caller disposes them. */
export function loadCheckpointTensors(dir: string): Map<string, tf.Tensor> {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(single)) return loadSafetensors(single).tensors;
  if (!fs.existsSync(index)) throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  const weightMap = readWeightMap(index);
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

/** Tensor shapes of a checkpoint folder from the safetensors headers alone (nothing is allocated). */
export function checkpointShapes(dir: string): { shapes: Map<string, number[]>; file: string } {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  const shapes = new Map<string, number[]>();
  if (fs.existsSync(single)) {
    for (const [name, info] of readSafetensorsHeader(single).tensors) shapes.set(name, info.shape);
    return { shapes, file: single };
  }
  if (!fs.existsSync(index)) throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  const weightMap = readWeightMap(index);
  for (const shard of [...new Set(Object.values(weightMap))].sort()) {
    for (const [name, info] of readSafetensorsHeader(path.join(dir, shard)).tensors) if (weightMap[name] === shard) shapes.set(name, info.shape);
  }
  return { shapes, file: index };
}

/** What checkConfigAgainstCheckpoint reads of a model config. */
export interface CheckpointSizes {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  /** Lower bounds of the parameter count by part (see DogeConfig.parameterParts). */
  parameterParts(): [string, number][];
}

/**
 * Compare config.json with the checkpoint's safetensors headers BEFORE the model is built: the embedding is
 * [vocab_size, hidden_size], the layers are 0..num_hidden_layers-1, and the tensors hold at least the parameters
 * the config describes. A config that lies (1e6 layers, vocab_size 1e12) is refused naming the field, without
 * allocating for it.
 */
export function checkConfigAgainstCheckpoint(dir: string, c: CheckpointSizes, embedName: string): void {
  const { shapes, file } = checkpointShapes(dir);
  const where = `${path.join(dir, 'config.json')}`;
  const embed = shapes.get(embedName) ?? shapes.get('lm_head.weight');
  if (embed) {
    const [V, H] = embed;
    if (embed.length !== 2 || V !== c.vocab_size) throw new Error(`${where}: vocab_size is ${c.vocab_size} but ${file} has '${embedName}' of shape [${embed}]`);
    if (H !== c.hidden_size) throw new Error(`${where}: hidden_size is ${c.hidden_size} but ${file} has '${embedName}' of shape [${embed}]`);
  }
  const layers = new Set<number>();
  for (const name of shapes.keys()) { const m = /^model\.layers\.(\d+)\./.exec(name); if (m) layers.add(Number(m[1])); }
  if (layers.size && (Math.max(...layers) + 1 !== c.num_hidden_layers || layers.size !== c.num_hidden_layers)) {
    throw new Error(`${where}: num_hidden_layers is ${c.num_hidden_layers} but ${file} has ${layers.size} layers (indices ${Math.min(...layers)}..${Math.max(...layers)})`);
  }
  let held = 0;
  for (const [name, s] of shapes) if (!IGNORED_BUFFERS.test(name)) held += s.reduce((a, b) => a * b, 1);
  const parts = c.parameterParts();
  const need = parts.reduce((a, [, n]) => a + n, 0);
  if (need > held) {
    const [what] = parts.reduce((a, b) => (b[1] > a[1] ? b : a));
    throw new Error(`${where}: describes a model of at least ${need} parameters but ${file} holds ${held}; the largest part is ${what}: check ${what.split(' ')[0]} and the other sizes`);
  }
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
