/**
 * Checkpoints of a training run, in the layout HF Trainer uses (`<output_dir>/checkpoint-<step>/`):
 *
 *   checkpoint-120/
 *     config.json, model.safetensors      the model, HF format (model.savePretrained)
 *     trainer_state/
 *       optimizer.safetensors             AdamW moments, `exp_avg.<param>` / `exp_avg_sq.<param>`, fp32
 *       state.json                        step, schedule, seed, data-loader position, tokens seen, ...
 *     training_config.json                the resolved YAML config of the run
 *
 * A checkpoint is written into a hidden temporary folder and renamed into place only when complete, so a
 * crash or Ctrl-C mid-write never leaves a folder that looks like a checkpoint but is not; the last K are kept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../backend';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';

export const TRAINER_STATE_FORMAT = 'wonderful-matrices/trainer-state/1';

export interface TrainerState {
  format: string;
  /** Optimizer steps completed. */
  global_step: number;
  max_steps: number;
  seed: number;
  /** The training data loader's position (whatever the loader reports; restored as is). */
  data_position: unknown;
  tokens_seen: number;
  /** Wall time spent training before this checkpoint (seconds), so ETA/elapsed continue after a resume. */
  elapsed_s: number;
  learning_rate: number;
  schedule: Record<string, unknown>;
  optimizer: { name: 'adamw'; step: number; beta1: number; beta2: number; eps: number; weight_decay: number };
  /** Last evaluation, if any. */
  last_eval?: { step: number; eval_loss: number; eval_perplexity: number };
}

/** Anything that can write itself as an HF model folder. */
export interface SavableModel {
  savePretrained(dir: string): void | Promise<void>;
}

const CKPT_RE = /^checkpoint-(\d+)$/;

/** Complete checkpoints under `outputDir`, oldest first, as `{ step, dir }`. */
export function listCheckpoints(outputDir: string): { step: number; dir: string }[] {
  if (!fs.existsSync(outputDir)) return [];
  return fs
    .readdirSync(outputDir)
    .map((name) => ({ m: CKPT_RE.exec(name), name }))
    .filter(({ m, name }) => m && fs.existsSync(path.join(outputDir, name, 'trainer_state', 'state.json')))
    .map(({ m, name }) => ({ step: Number(m![1]), dir: path.join(outputDir, name) }))
    .sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint folder, or undefined. */
export function latestCheckpoint(outputDir: string): string | undefined {
  const all = listCheckpoints(outputDir);
  return all.length ? all[all.length - 1].dir : undefined;
}

/** Write a folder atomically: `fill(tmpDir)` writes into a temporary sibling, which is then renamed to `dir`. */
export async function writeFolderAtomically(dir: string, fill: (tmpDir: string) => void | Promise<void>): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true });
  const tmp = path.join(parent, `.${path.basename(dir)}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    await fill(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  // Replacing an existing folder is two renames; the old one is removed only after the new one is in place.
  if (fs.existsSync(dir)) {
    const old = path.join(parent, `.${path.basename(dir)}.old-${process.pid}`);
    fs.rmSync(old, { recursive: true, force: true });
    fs.renameSync(dir, old);
    fs.renameSync(tmp, dir);
    fs.rmSync(old, { recursive: true, force: true });
  } else {
    fs.renameSync(tmp, dir);
  }
}

export interface SaveCheckpointArgs {
  outputDir: string;
  model: SavableModel;
  optimizerState: Map<string, tf.Tensor>;
  state: TrainerState;
  config?: unknown;
  /** Keep at most this many checkpoints (0 = all). */
  keep?: number;
}

/** Save `checkpoint-<step>` atomically and prune old ones; returns the folder. */
export async function saveCheckpoint(args: SaveCheckpointArgs): Promise<string> {
  const dir = path.join(args.outputDir, `checkpoint-${args.state.global_step}`);
  await writeFolderAtomically(dir, async (tmp) => {
    await args.model.savePretrained(tmp);
    const ts = path.join(tmp, 'trainer_state');
    fs.mkdirSync(ts, { recursive: true });
    saveSafetensors(path.join(ts, 'optimizer.safetensors'), args.optimizerState, { format: 'pt', step: String(args.state.optimizer.step) });
    fs.writeFileSync(path.join(ts, 'state.json'), JSON.stringify(args.state, null, 2) + '\n');
    if (args.config !== undefined) fs.writeFileSync(path.join(tmp, 'training_config.json'), JSON.stringify(args.config, null, 2) + '\n');
  });
  if (args.keep && args.keep > 0) {
    const all = listCheckpoints(args.outputDir);
    for (const old of all.slice(0, Math.max(0, all.length - args.keep))) fs.rmSync(old.dir, { recursive: true, force: true });
  }
  return dir;
}

/** Read `trainer_state/` of a checkpoint: the JSON state and the optimizer moments (caller disposes them). */
export function loadTrainerState(dir: string): { state: TrainerState; optimizer: Map<string, tf.Tensor> } {
  const stateFile = path.join(dir, 'trainer_state', 'state.json');
  if (!fs.existsSync(stateFile)) throw new Error(`${dir} is not a training checkpoint: ${stateFile} is missing`);
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as TrainerState;
  if (state.format !== TRAINER_STATE_FORMAT) {
    throw new Error(`${stateFile}: format '${state.format}' is not '${TRAINER_STATE_FORMAT}'`);
  }
  const { tensors } = loadSafetensors(path.join(dir, 'trainer_state', 'optimizer.safetensors'));
  return { state, optimizer: tensors };
}

/**
 * Copy parameters from an HF-format folder into `params` wherever the name and shape match (e.g. a dense
 * Doge into a CDMoE Doge: attention, norms and embeddings carry over, the MoE experts and router stay as
 * freshly initialised). Returns which names were copied and which kept their init; a source tensor whose
 * shape differs is an error naming it.
 */
export function inheritParameters(params: Map<string, tf.Variable>, dir: string): { copied: string[]; initialised: string[]; ignored: string[] } {
  const file = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(file)) throw new Error(`model.init_from: ${file} does not exist`);
  const { tensors } = loadSafetensors(file);
  const copied: string[] = [];
  const initialised: string[] = [];
  try {
    for (const [name, p] of params) {
      const src = tensors.get(name);
      if (!src) { initialised.push(name); continue; }
      if (src.shape.join(',') !== p.shape.join(',')) {
        throw new Error(`model.init_from: tensor '${name}' in ${file} has shape [${src.shape}] but the model has [${p.shape}]`);
      }
      p.assign(src);
      copied.push(name);
    }
    const ignored = [...tensors.keys()].filter((n) => !params.has(n));
    return { copied, initialised, ignored };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
