/**
 * The output folder of a training run (pretrain, SFT, DPO: one implementation, see checkpoint.ts for the layout):
 *
 *   claimRunFolder   before anything is written: refuse a folder no training run created (unless asked; the user's
 *                    files then stay where they are), take the lock, clean temporaries of killed saves, then start a
 *                    fresh run (an earlier run moves into previous-runs/, of which the last `keepPreviousRuns` are
 *                    kept) or continue this folder's run (--resume)
 *   resumeChanges    the settings of a checkpoint's training_config.json that differ from the current config and
 *                    would break an exact continuation (checked by Trainer.resume)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { acquireOutputLock, cleanStaleTemporaries, RUN_FILE, startFreshRun } from './checkpoint';

/** Entries a training run writes at the top of its output folder (anything else belongs to someone else). */
const RUN_SHAPED = /^(checkpoint-\d+|final|metrics\.jsonl|loss\.html|run\.json|plotly[\w.-]*\.js|previous-runs|\.wm-lock|\..+\.(tmp|old)-[\w.-]+|loss\.html\.tmp-\d+\.html)$/;

/** Default number of earlier runs kept in previous-runs/. */
export const KEEP_PREVIOUS_RUNS = 3;

export interface ClaimRunOptions {
  /** For messages: `wm pretrain`. */
  command: string;
  /** Continue the folder's run instead of starting a fresh one. */
  resume?: boolean;
  /** Start a run in a non-empty folder that no training run created (the files there are left where they are). */
  overwrite?: boolean;
  /** Earlier runs kept in previous-runs/ (default KEEP_PREVIOUS_RUNS; 0 = keep all). */
  keepPreviousRuns?: number;
  log?: (line: string) => void;
}

/** Entries of `dir` that no training run writes (empty when the folder is absent, empty, or a run's own). */
export function foreignEntries(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  if (!fs.statSync(dir).isDirectory()) throw new Error(`${dir} exists and is not a folder`);
  if (fs.existsSync(path.join(dir, RUN_FILE))) return []; // a training run created it
  return fs.readdirSync(dir).filter((n) => !RUN_SHAPED.test(n));
}

/**
 * Take the output folder once every input check has passed (see the file header). Returns the lock's release and,
 * for a fresh run, its id.
 */
export function claimRunFolder(outputDir: string, o: ClaimRunOptions): { release: () => void; runId?: string } {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const foreign = foreignEntries(outputDir);
  if (foreign.length && !o.overwrite) {
    throw new Error(`${o.command}: the output folder ${outputDir} is not empty (${foreign.length} entries no training run wrote, e.g. '${foreign[0]}') ` +
      `and was not created by a training run (no ${RUN_FILE}); choose a new or empty --output-dir, or pass --overwrite-output-dir to train there anyway ` +
      `(your files stay where they are; the run writes only checkpoint-*, final/, metrics.jsonl, loss.html, ${RUN_FILE} and previous-runs/)`);
  }
  if (foreign.length) log(`note: ${outputDir} holds ${foreign.length} entries of its own (e.g. '${foreign[0]}'); --overwrite-output-dir: training there, they are left untouched`);
  const release = acquireOutputLock(outputDir, log);
  try {
    cleanStaleTemporaries(outputDir, log);
    if (o.resume) return { release };
    const fresh = startFreshRun(outputDir);
    if (fresh.movedTo) {
      const keep = o.keepPreviousRuns ?? KEEP_PREVIOUS_RUNS;
      const pruned = prunePreviousRuns(outputDir, keep);
      log(`note: ${outputDir} held an earlier run (${fresh.moved.length} entries: ${fresh.moved.slice(0, 4).join(', ')}${fresh.moved.length > 4 ? ', ...' : ''}); ` +
        `moved it to ${fresh.movedTo} and starting run ${fresh.runId} (to continue a run instead, pass --resume)`);
      if (keep > 0) {
        log(`note: previous-runs/ keeps the last ${keep} runs (--keep-previous-runs N, 0 = all)${pruned.length ? `; removed the oldest: ${pruned.join(', ')}` : ''}`);
      }
    }
    return { release, runId: fresh.runId };
  } catch (e) {
    release();
    throw e;
  }
}

/** Remove all but the newest `keep` runs of `<outputDir>/previous-runs/` (0 = keep all); returns the removed names. */
export function prunePreviousRuns(outputDir: string, keep: number): string[] {
  const dir = path.join(outputDir, 'previous-runs');
  if (keep <= 0 || !fs.existsSync(dir)) return [];
  const runs = fs.readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.isSymbolicLink())
    .map((e) => ({ name: e.name, t: fs.statSync(path.join(dir, e.name)).mtimeMs }))
    .sort((a, b) => a.t - b.t || a.name.localeCompare(b.name));
  const drop = runs.slice(0, Math.max(0, runs.length - keep));
  for (const r of drop) fs.rmSync(path.join(dir, r.name), { recursive: true, force: true });
  return drop.map((r) => r.name);
}

/**
 * Settings a run may change on --resume without changing what it computes: how long it runs, how often it logs,
 * evaluates and saves, where it writes, and what it prints at the end. Everything else (model, data, seq_len, batch
 * sizes, optimizer, schedule, seed, loss settings) must be equal.
 */
const RESUME_FREE = new Set([
  'training.max_steps', 'training.logging_steps', 'training.eval_steps', 'training.eval_batches', 'training.save_steps',
  'training.save_total_limit', 'training.output_dir', 'training.per_device_eval_batch_size', 'training.sample_prompts',
  'training.sample_new_tokens', 'training.keep_previous_runs', 'data.default_corpus_dir', 'data.tokenizer_dir',
]);

function flatten(x: unknown, prefix: string, out: Map<string, string>): void {
  if (x !== null && typeof x === 'object' && !Array.isArray(x)) {
    for (const [k, v] of Object.entries(x as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(x ?? null));
  }
}

/** `key saved -> now` for every setting that differs and is not free to change (see RESUME_FREE). */
export function resumeChanges(saved: unknown, now: unknown): string[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(saved, '', a);
  flatten(now, '', b);
  const keys = [...new Set([...a.keys(), ...b.keys()])].filter((k) => !RESUME_FREE.has(k) && !k.startsWith('source'));
  return keys.filter((k) => a.get(k) !== b.get(k)).sort().map((k) => `${k} ${a.get(k) ?? '(unset)'} -> ${b.get(k) ?? '(unset)'}`);
}

/**
 * Refuse to continue `ckpt` with settings that break exactness (item: the saved loader position would be applied to
 * other rows, another schedule, ...). Checkpoints without training_config.json (older versions) are not checked.
 */
export function checkResumeConfig(ckpt: string, now: unknown): void {
  const file = path.join(ckpt, 'training_config.json');
  if (now === undefined || !fs.existsSync(file)) return;
  const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  const changed = resumeChanges(saved, JSON.parse(JSON.stringify(now)));
  if (!changed.length) return;
  throw new Error(`--resume: ${ckpt} was trained with other settings, and continuing with these would not reproduce the run: ` +
    `${changed.slice(0, 6).join('; ')}${changed.length > 6 ? `; and ${changed.length - 6} more` : ''}. ` +
    `Resume with the saved settings (${file}), or start a fresh run without --resume (the earlier run is moved to previous-runs/)`);
}

