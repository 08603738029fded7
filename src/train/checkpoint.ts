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
 * A checkpoint is written into a hidden temporary folder, every file and the folder are fsync'ed, and it is renamed
 * into place only when complete, so a crash, a kill or a power loss mid-write never leaves a folder that looks like
 * a checkpoint but is not; the last K of the run are kept. Temporaries a killed process left behind are removed when
 * the next run takes the folder's lock.
 *
 * The output folder of a run (see `acquireOutputLock`, `startFreshRun`):
 *
 *   .wm-lock            pid + host of the process writing the folder (a second run is refused; stale ones detected)
 *   run.json            the run id of the run the folder belongs to; checkpoints carry it in trainer_state
 *   previous-runs/<id>/ an earlier run moved aside when a fresh run starts in the same folder
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { tf } from '../tf';
import { loadSafetensors, saveSafetensors } from '../io/safetensors';
import { loadStateFromFolder, type StateTarget } from '../models/checkpoint';

export const TRAINER_STATE_FORMAT = 'wonderful-matrices/trainer-state/1';

export interface TrainerState {
  format: string;
  /** The run this checkpoint belongs to (run.json of the output folder; absent in checkpoints of old versions). */
  run_id?: string;
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
  /** Running sums of the logging window at the checkpoint, so a resumed run logs the same window means. */
  log_window?: LogWindow;
}

/** The logging window of a run: sums over the steps since the last logged row (hook metrics under `extra`). */
export interface LogWindow {
  lossSum: number;
  steps: number;
  tokens: number;
  seconds: number;
  extra?: Record<string, number>;
}

/** Anything that can write itself as an HF model folder. */
export interface SavableModel {
  savePretrained(dir: string): void | Promise<void>;
}

const CKPT_RE = /^checkpoint-(\d+)$/;

/** The run id of a checkpoint (undefined for checkpoints of old versions, or unreadable state). */
export function checkpointRunId(dir: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state', 'state.json'), 'utf8')) as TrainerState).run_id;
  } catch {
    return undefined;
  }
}

/**
 * Complete checkpoints under `outputDir`, oldest first, as `{ step, dir }`; with `runId`, only that run's
 * (checkpoints without a run id, from old versions, count as the folder's run).
 */
export function listCheckpoints(outputDir: string, runId?: string): { step: number; dir: string }[] {
  if (!fs.existsSync(outputDir)) return [];
  return fs
    .readdirSync(outputDir)
    .map((name) => ({ m: CKPT_RE.exec(name), name }))
    .filter(({ m, name }) => m && fs.existsSync(path.join(outputDir, name, 'trainer_state', 'state.json')))
    .map(({ m, name }) => ({ step: Number(m![1]), dir: path.join(outputDir, name) }))
    .filter((c) => runId === undefined || (checkpointRunId(c.dir) ?? runId) === runId)
    .sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint folder (of `runId`, when given), or undefined. */
export function latestCheckpoint(outputDir: string, runId?: string): string | undefined {
  const all = listCheckpoints(outputDir, runId);
  return all.length ? all[all.length - 1].dir : undefined;
}

/** fsync a file or folder (folders: so the names of their entries survive a power loss too). */
function fsyncPath(p: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(p, 'r');
    fs.fsyncSync(fd);
  } catch (e) {
    // Some file systems refuse fsync on folders (EINVAL/EISDIR/EPERM); the data files were synced.
    const code = (e as { code?: string }).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** fsync every file and folder under `dir`, deepest first, then `dir` itself. */
export function fsyncTree(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) fsyncTree(p);
    else if (e.isFile()) fsyncPath(p);
  }
  fsyncPath(dir);
}

/**
 * Write a folder atomically: `fill(tmpDir)` writes into a temporary sibling, whose files are fsync'ed, which is then
 * renamed to `dir` (and the parent folder fsync'ed), so `dir` is either the old folder or the complete new one, even
 * after a power loss.
 */
export async function writeFolderAtomically(dir: string, fill: (tmpDir: string) => void | Promise<void>): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true });
  const tmp = path.join(parent, `.${path.basename(dir)}.tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    await fill(tmp);
    fsyncTree(tmp);
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
    fsyncPath(parent);
    fs.rmSync(old, { recursive: true, force: true });
  } else {
    fs.renameSync(tmp, dir);
    fsyncPath(parent);
  }
}

// ------------------------------------------------------------------------------------ the output folder of a run

export const LOCK_FILE = '.wm-lock';
export const RUN_FILE = 'run.json';
/** What a run writes at the top of its output folder (moved aside together when a fresh run starts). */
const RUN_ENTRIES = /^(checkpoint-\d+|final|metrics\.jsonl|loss\.html|run\.json|plotly[\w.-]*\.js)$/;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM'; // exists, owned by someone else
  }
}

interface LockInfo { pid: number; host: string; started: string; command?: string }

/**
 * Take the lock of an output folder: `.wm-lock` (created exclusively) holds this process's pid and host. A lock whose
 * process is gone (killed, crashed) on this host is stale and taken over with a note; a live one is an error naming
 * its pid. Returns a function that releases the lock (also released when the process exits).
 */
export function acquireOutputLock(outputDir: string, log: (line: string) => void = (l) => process.stderr.write(l + '\n')): () => void {
  fs.mkdirSync(outputDir, { recursive: true });
  const file = path.join(outputDir, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command: process.argv.slice(1).join(' ').slice(0, 300) };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, JSON.stringify(mine) + '\n');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        process.off('exit', release);
        try {
          const now = JSON.parse(fs.readFileSync(file, 'utf8')) as LockInfo;
          if (now.pid === mine.pid && now.started === mine.started) fs.unlinkSync(file);
        } catch {
          // already gone
        }
      };
      process.on('exit', release);
      return release;
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
    }
    let text = '';
    let held: LockInfo | undefined;
    try {
      text = fs.readFileSync(file, 'utf8');
      held = JSON.parse(text) as LockInfo;
    } catch {
      held = undefined; // torn or empty lock file: its writer died while creating it
    }
    if (held && held.host !== mine.host) {
      throw new Error(`${outputDir} is locked by process ${held.pid} on host ${held.host} (since ${held.started}); if no run is writing there any more, delete ${file}`);
    }
    if (held && pidAlive(held.pid)) {
      throw new Error(`${outputDir} is in use by another run: process ${held.pid} (since ${held.started}${held.command ? `: ${held.command}` : ''}) holds ${file}; ` +
        'wait for it to finish, stop it, or choose another --output-dir');
    }
    // Stale: remove it only if it is still the file we judged (another process may have taken it over meanwhile).
    try {
      if (fs.readFileSync(file, 'utf8') === text) fs.unlinkSync(file);
    } catch {
      // gone already
    }
    log(`note: removed a stale lock of ${outputDir} (process ${held?.pid ?? '?'} is no longer running)`);
  }
  throw new Error(`${outputDir}: could not take the lock ${file}`);
}

/**
 * Remove what killed processes left in an output folder: hidden `.<name>.tmp-*` / `.<name>.old-*` folders of
 * interrupted saves. Only call while holding the folder's lock (then no other process is writing them).
 */
export function cleanStaleTemporaries(outputDir: string, log: (line: string) => void = (l) => process.stderr.write(l + '\n')): string[] {
  if (!fs.existsSync(outputDir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(outputDir)) {
    if (!/^\..+\.(tmp|old)-[\w.-]+$/.test(name) && !/^\.wm-replaced-/.test(name) && !/^loss\.html\.tmp-\d+\.html$/.test(name)) continue;
    fs.rmSync(path.join(outputDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  if (removed.length) log(`note: removed ${removed.length} incomplete temporary folder(s) of an interrupted save in ${outputDir} (${removed.slice(0, 3).join(', ')}${removed.length > 3 ? ', ...' : ''})`);
  return removed;
}

/** A new run id: time + random, sortable. */
export function newRunId(): string {
  return `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${randomBytes(3).toString('hex')}`;
}

/** The run id recorded in `<outputDir>/run.json`, if any. */
export function currentRunId(outputDir: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(outputDir, RUN_FILE), 'utf8')) as { run_id?: string }).run_id;
  } catch {
    return undefined;
  }
}

/**
 * Start a fresh run in `outputDir`: when the folder holds an earlier run (checkpoints, final model, metrics), that
 * run is moved aside into `previous-runs/<its id>/` (nothing is deleted), then run.json records the new run id.
 * Returns the new id and where the old run went.
 */
export function startFreshRun(outputDir: string): { runId: string; movedTo?: string; moved: string[] } {
  fs.mkdirSync(outputDir, { recursive: true });
  const entries = fs.readdirSync(outputDir).filter((n) => RUN_ENTRIES.test(n));
  let movedTo: string | undefined;
  if (entries.length) {
    const oldId = currentRunId(outputDir) ?? `before-${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}`;
    movedTo = path.join(outputDir, 'previous-runs', oldId);
    if (fs.existsSync(movedTo)) movedTo = `${movedTo}-${randomBytes(2).toString('hex')}`;
    fs.mkdirSync(movedTo, { recursive: true });
    for (const e of entries) fs.renameSync(path.join(outputDir, e), path.join(movedTo, e));
  }
  const runId = newRunId();
  writeRunFile(outputDir, runId);
  return { runId, movedTo, moved: entries };
}

export function writeRunFile(outputDir: string, runId: string): void {
  const tmp = path.join(outputDir, `.${RUN_FILE}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, JSON.stringify({ run_id: runId, started: new Date().toISOString() }, null, 2) + '\n');
  fs.renameSync(tmp, path.join(outputDir, RUN_FILE));
}

export interface SaveCheckpointArgs {
  outputDir: string;
  model: SavableModel;
  optimizerState: Map<string, tf.Tensor>;
  state: TrainerState;
  config?: unknown;
  /** Keep at most this many checkpoints of this run (0 = all). */
  keep?: number;
  /** More files for the checkpoint folder (tokenizer, generation_config.json), written before the rename. */
  extraFiles?: (dir: string) => void | Promise<void>;
}

/** Save `checkpoint-<step>` atomically and prune old ones; returns the folder. */
export async function saveCheckpoint(args: SaveCheckpointArgs): Promise<string> {
  const dir = path.join(args.outputDir, `checkpoint-${args.state.global_step}`);
  try {
    await writeCheckpointFolder(dir, args);
  } catch (e) {
    // a bare "ENOSPC: no space left on device, write" says neither what failed nor what is left
    const err = e as NodeJS.ErrnoException;
    const last = latestCheckpoint(args.outputDir, args.state.run_id);
    const cause = err.code === 'ENOSPC' || err.code === 'EDQUOT' ? `the disk is full (${err.code})` : err.message;
    throw Object.assign(new Error(`saving checkpoint ${dir} (step ${args.state.global_step}) failed: ${cause}. Nothing of it was kept; ` +
      (last ? `the last complete checkpoint, ${last}, is intact: free space and run the same command with --resume to continue from it` : 'no complete checkpoint of this run exists yet: free space and start again') +
      (cause === err.message ? '' : ` (${err.message})`)), { code: err.code, cause: e });
  }
  if (args.keep && args.keep > 0) {
    const all = listCheckpoints(args.outputDir, args.state.run_id);
    for (const old of all.slice(0, Math.max(0, all.length - args.keep))) fs.rmSync(old.dir, { recursive: true, force: true });
  }
  return dir;
}

function writeCheckpointFolder(dir: string, args: SaveCheckpointArgs): Promise<void> {
  return writeFolderAtomically(dir, async (tmp) => {
    await args.model.savePretrained(tmp);
    const ts = path.join(tmp, 'trainer_state');
    fs.mkdirSync(ts, { recursive: true });
    saveSafetensors(path.join(ts, 'optimizer.safetensors'), args.optimizerState, { format: 'pt', step: String(args.state.optimizer.step) });
    fs.writeFileSync(path.join(ts, 'state.json'), JSON.stringify(args.state, null, 2) + '\n');
    if (args.config !== undefined) fs.writeFileSync(path.join(tmp, 'training_config.json'), JSON.stringify(args.config, null, 2) + '\n');
    await args.extraFiles?.(tmp);
  });
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
 * Copy parameters from an HF-format folder (single file or sharded) into a model wherever the name matches (e.g. a
 * dense Doge into a CDMoE Doge: attention, norms and embeddings carry over, the MoE experts and router stay as
 * freshly initialised), through the models' one loading path (`loadStateFromFolder`, non-strict). Returns which
 * names were copied, which kept their init and which checkpoint tensors the model has no parameter for; a tensor
 * whose shape differs is an error naming it. `model` may also be a bare map of HF name -> Variable.
 */
export function inheritParameters(model: StateTarget | Map<string, tf.Variable>, dir: string): { copied: string[]; initialised: string[]; ignored: string[] } {
  const target: StateTarget = model instanceof Map ? { parameters: () => model } : model;
  const r = loadStateFromFolder(dir, target, { strict: false, source: `model.init_from: ${dir}` });
  return { copied: r.loaded, initialised: r.missing, ignored: r.unexpected };
}
