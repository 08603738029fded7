/**
 * The MQAR comparison grid (the paper's DMAttn figure): for every sequence length, data is generated once; for every
 * mixer and width, one model per learning rate is trained and the best test accuracy over the sweep is kept
 * (Zoology's protocol; the sweep stops early once a learning rate reaches the stop accuracy, since no other can beat
 * it by more than 1 - stop). Results stream to `results.jsonl`; the figure is written at the end.
 */
import { appendFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentBackend } from '../runtime/backend';
import { writeMqarFigure } from './figure';
import type { LengthExpr, MqarCellResult } from './results';
import { evalKeepWindow, evalLengthExpr } from './length-expr';
import { isMixerKind, MIXER_KINDS, type MixerKind } from './mixers';
import type { MqarModel } from './model';
import { generateMqarSplits, validateMqarOptions } from './mqar-data';
import { mqarRecipe, type MqarRecipeName } from './recipe';
import { trainMqar, type MqarCurriculum, type MqarCurvePoint, type MqarEpochInfo, type MqarInit, type MqarTrainHooks } from './train';

export type { LengthExpr } from './results';
export { evalLengthExpr, evalKeepWindow } from './length-expr';

export interface MqarGridOptions {
  /** Defaults for the training fields left unset: 'tuned' (default), 'full-window' or 'first' (see src/synthetic/recipe.ts). */
  recipe?: MqarRecipeName;
  mixers: MixerKind[];
  seqLens: number[];
  /** Key-value pairs per example (default `L/4`, the paper's setting). */
  kvPairs?: LengthExpr;
  dModels: number[];
  /** Learning rates swept per cell, best kept (default the recipe's). */
  lrs?: number[];
  /** Epochs of the schedule, early stop at stopAccuracy (default the recipe's). */
  epochs?: number;
  trainExamples: number;
  testExamples: number;
  /** Vocabulary size (default `L+1`, the paper's inferred setting; Zoology uses 8192). */
  vocabSize?: LengthExpr;
  /** Filler tokens drawn at random (default true, the paper's / Mamba-2's harder variant). */
  randomNonQueries?: boolean;
  powerA?: number;
  batchSize?: number;
  numLayers?: number;
  numHeads?: number;
  dState?: number;
  /** dmattn: keys kept per query: `K` (the number of kv pairs, as the authors' MQAR script), `L` (no top-k), a number or an expression in L (default the recipe's). */
  keepWindowSize?: LengthExpr;
  /** dmattn: shrink the top-k window from L to keepWindowSize over this many steps (default 0: no curriculum; see trainMqar). */
  keepWindowShrinkSteps?: number;
  /** dmattn: steps with the full window before the shrinking starts (default 0). */
  keepWindowShrinkStart?: number;
  /** dmattn: start the shrinking at the first evaluation that reaches this accuracy with the full window (see trainMqar). */
  keepWindowShrinkAtAccuracy?: number;
  /** Init of the residual-writing projections (default the recipe's, see trainMqar). */
  init?: MqarInit;
  /** attention / dmattn: q and k projection std (default 0.02). */
  qkStd?: number;
  /** dmattn: q/k RMSNorm (default the recipe's). */
  qkNorm?: boolean;
  /** dmattn: initial A (default the recipe's). */
  dmattnA?: number;
  /** dmattn: dynamic-mask bias 'exp' (HF, default) or 'linear' (arXiv 2508.02124). */
  dmattnBias?: 'exp' | 'linear';
  /** dmattn: dt_proj weight std (default the recipe's). */
  dtProjStd?: number;
  weightDecay?: number;
  /** Linear warmup as a fraction of all steps (default the recipe's). */
  warmupFraction?: number;
  /** Steps between two points of the accuracy curve (default a quarter epoch). */
  evalEvery?: number;
  stopAccuracy?: number;
  /** Per-run time budget in seconds (training stops at the first step past it, then evaluates; `stopped: 'time'`). */
  timeBudgetSeconds?: number;
  /** Per-run step budget (training stops there, then evaluates; `stopped: 'steps'`). */
  maxSteps?: number;
  /** Data and init seed (default 0); ignored when `seeds` is given. */
  seed?: number;
  /** Run every cell once per seed (data and init), one result row each; default `[seed]`. */
  seeds?: number[];
  /** Output directory for results.jsonl and mqar.html (nothing is written without it). */
  outDir?: string;
  /** Replace the results.jsonl / mqar.html of an earlier grid in `outDir` (default: refuse, so no results are lost). */
  overwrite?: boolean;
}

// One result row of the grid (defined in results.ts, which figure.ts reads too).
export type { MqarCellResult };

export interface MqarGridHooks {
  onEpoch?: (e: MqarEpochInfo & { seq_len: number; cell: number; cells: number }) => void;
  onEval?: (p: Parameters<NonNullable<MqarTrainHooks['onEval']>>[0] & { seq_len: number; seed: number; cell: number; cells: number }) => void;
  onCell?: (r: MqarCellResult, cell: number, cells: number) => void;
  /** After each training run (every learning rate of a cell), before its model is disposed. */
  onTrained?: (model: MqarModel, run: { mixer: MixerKind; seq_len: number; d_model: number; seed: number; lr: number }) => void;
  log?: (line: string) => void;
}

/** Checks every setting up front, so a bad grid fails before hours of training. */
export function validateGrid(o: MqarGridOptions): void {
  const R = mqarRecipe(o.recipe ?? 'tuned');
  const lrs = o.lrs ?? R.lrs;
  const epochs = o.epochs ?? R.epochs;
  const lists: Array<[string, number[]]> = [['seqLens', o.seqLens], ['dModels', o.dModels], ['lrs', lrs]];
  for (const [name, list] of lists) if (!Array.isArray(list) || list.length === 0) throw new Error(`MQAR grid: ${name} must be a non-empty list`);
  if (!o.mixers.length) throw new Error('MQAR grid: mixers must be a non-empty list');
  for (const m of o.mixers) if (!isMixerKind(m)) throw new Error(`MQAR grid: unknown mixer '${m}'; choose from ${MIXER_KINDS.join(', ')}`);
  if (o.seeds !== undefined && (!Array.isArray(o.seeds) || o.seeds.length === 0 || o.seeds.some((x) => !Number.isInteger(x) || x < 0))) {
    throw new Error(`MQAR grid: seeds must be a non-empty list of non-negative integers, got ${JSON.stringify(o.seeds)}`);
  }
  if (o.init !== undefined && o.init !== 'scaled' && o.init !== 'plain') throw new Error(`MQAR grid: init must be 'scaled' or 'plain', got '${o.init}'`);
  if (o.warmupFraction !== undefined && !(o.warmupFraction >= 0 && o.warmupFraction < 1)) throw new Error(`MQAR grid: warmupFraction must be in [0, 1), got ${o.warmupFraction}`);
  if (o.maxSteps !== undefined && !(Number.isInteger(o.maxSteps) && o.maxSteps >= 1)) throw new Error(`MQAR grid: maxSteps must be a positive integer, got ${o.maxSteps}`);
  if (o.keepWindowShrinkSteps !== undefined && !(Number.isInteger(o.keepWindowShrinkSteps) && o.keepWindowShrinkSteps >= 0)) {
    throw new Error(`MQAR grid: keepWindowShrinkSteps must be a non-negative integer, got ${o.keepWindowShrinkSteps}`);
  }
  if (o.keepWindowShrinkStart !== undefined && !(Number.isInteger(o.keepWindowShrinkStart) && o.keepWindowShrinkStart >= 0)) {
    throw new Error(`MQAR grid: keepWindowShrinkStart must be a non-negative integer, got ${o.keepWindowShrinkStart}`);
  }
  if (o.keepWindowShrinkAtAccuracy !== undefined && !(o.keepWindowShrinkAtAccuracy > 0 && o.keepWindowShrinkAtAccuracy <= 1)) {
    throw new Error(`MQAR grid: keepWindowShrinkAtAccuracy must be in (0, 1], got ${o.keepWindowShrinkAtAccuracy}`);
  }
  if (o.evalEvery !== undefined && !(Number.isInteger(o.evalEvery) && o.evalEvery >= 1)) throw new Error(`MQAR grid: evalEvery must be a positive integer, got ${o.evalEvery}`);
  for (const lr of lrs) if (!(lr > 0)) throw new Error(`MQAR grid: learning rates must be > 0, got ${lr}`);
  for (const d of o.dModels) if (!Number.isInteger(d) || d < 2 || d % 2 !== 0) throw new Error(`MQAR grid: d_model must be an even integer >= 2, got ${d}`);
  for (const [name, v] of [['epochs', epochs], ['trainExamples', o.trainExamples], ['testExamples', o.testExamples]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`MQAR grid: ${name} must be a positive integer, got ${v}`);
  }
  for (const L of o.seqLens) {
    if (!Number.isInteger(L) || L < 2 || L % 2 !== 0) throw new Error(`MQAR: seqLen must be even (keys and values come in pairs), got seqLen=${L}`);
    validateMqarOptions({
      seqLen: L,
      numKvPairs: evalLengthExpr(o.kvPairs ?? 'L/4', L, 'kvPairs'),
      vocabSize: evalLengthExpr(o.vocabSize ?? 'L+1', L, 'vocabSize'),
      powerA: o.powerA,
    });
    if (o.keepWindowSize !== undefined && evalKeepWindow(o.keepWindowSize, L, 1) < 1) {
      throw new Error(`MQAR grid: keepWindowSize must be >= 1, got '${o.keepWindowSize}' for L=${L}`);
    }
  }
}

export async function runMqarGrid(o: MqarGridOptions, hooks: MqarGridHooks = {}): Promise<MqarCellResult[]> {
  validateGrid(o);
  // every training field the caller left unset comes from the recipe, and is written into each row
  const R = mqarRecipe(o.recipe ?? 'tuned');
  const lrs = o.lrs ?? R.lrs;
  const epochs = o.epochs ?? R.epochs;
  const init = o.init ?? R.init;
  const qkNorm = o.qkNorm ?? R.qkNorm;
  const dmattnA = o.dmattnA ?? R.dmattnA;
  const dtProjStd = o.dtProjStd ?? R.dtProjStd;
  const warmupFraction = o.warmupFraction ?? R.warmupFraction;
  const weightDecay = o.weightDecay ?? R.weightDecay;
  const stopAccuracy = o.stopAccuracy ?? R.stopAccuracy;
  const log = hooks.log ?? (() => {});
  const results: MqarCellResult[] = [];
  const jsonl = o.outDir ? join(o.outDir, 'results.jsonl') : null;
  if (o.outDir) {
    if (!o.overwrite && existsSync(jsonl!) && statSync(jsonl!).size > 0) {
      throw new Error(`${jsonl} already holds the results of an earlier MQAR grid; choose another folder or pass --overwrite (overwrite: true) to replace them`);
    }
    mkdirSync(o.outDir, { recursive: true });
    writeFileSync(jsonl!, '');
  }
  const seeds = o.seeds ?? [o.seed ?? 0];
  const cells = o.seqLens.length * o.mixers.length * o.dModels.length * seeds.length;
  let cell = 0;
  const randomNonQueries = o.randomNonQueries ?? true;
  for (const seed of seeds) {
    for (const L of o.seqLens) {
      const K = evalLengthExpr(o.kvPairs ?? 'L/4', L, 'kvPairs');
      const V = evalLengthExpr(o.vocabSize ?? 'L+1', L, 'vocabSize');
      const kw = o.keepWindowSize ?? R.keepWindowSize;
      const keepWindow = evalKeepWindow(kw, L, K);
      const t0 = Date.now();
      const { train, test } = generateMqarSplits({
        vocabSize: V, seqLen: L, numKvPairs: K, trainExamples: o.trainExamples, testExamples: o.testExamples,
        seed, powerA: o.powerA, randomNonQueries,
      });
      log(`data L=${L} K=${K} V=${V} seed ${seed}: ${o.trainExamples} train / ${o.testExamples} test examples in ${Date.now() - t0} ms`);
      for (const mixer of o.mixers) {
        for (const d of o.dModels) {
          cell++;
          const sweep: MqarCellResult['sweep'] = [];
          let best: { lr: number; accuracy: number; epochs: number; steps: number; num_parameters: number; curve: MqarCurvePoint[]; curriculum: MqarCurriculum | null } | null = null;
          for (const lr of lrs) {
            const r = await trainMqar(
              {
                recipe: o.recipe, mixer, dModel: d, lr, epochs, train, test, batchSize: o.batchSize, numLayers: o.numLayers,
                numHeads: o.numHeads, dState: o.dState, keepWindowSize: keepWindow, keepWindowShrinkSteps: o.keepWindowShrinkSteps, keepWindowShrinkStart: o.keepWindowShrinkStart,
                keepWindowShrinkAtAccuracy: o.keepWindowShrinkAtAccuracy, init, qkStd: o.qkStd, qkNorm,
                dmattnA, dmattnBias: o.dmattnBias, dtProjStd, weightDecay, warmupFraction,
                evalEvery: o.evalEvery, stopAccuracy, timeBudgetSeconds: o.timeBudgetSeconds, maxSteps: o.maxSteps, seed: seed + 1,
              },
              { onEpoch: (e) => hooks.onEpoch?.({ ...e, seq_len: L, cell, cells }), onEval: (p) => hooks.onEval?.({ ...p, seq_len: L, seed, cell, cells }),
                onTrained: hooks.onTrained && ((model) => hooks.onTrained!(model, { mixer, seq_len: L, d_model: d, seed, lr })) },
            );
            sweep.push({
              lr, accuracy: r.accuracy, epochs: r.epochs, steps: r.steps, seconds: r.seconds, loss: r.loss, stopped: r.stopped, curve: r.curve,
              ...(r.curriculum ? { shrink_start_step: r.curriculum.started_at } : {}),
            });
            if (!best || r.accuracy > best.accuracy) best = { lr, accuracy: r.accuracy, epochs: r.epochs, steps: r.steps, num_parameters: r.num_parameters, curve: r.curve, curriculum: r.curriculum };
            if (r.accuracy >= stopAccuracy) break;
          }
          const recipe: MqarCellResult['recipe'] = {
            recipe: o.recipe ?? 'tuned', init, epochs, warmup_fraction: warmupFraction, weight_decay: weightDecay,
            batch_size: o.batchSize ?? 64, num_layers: o.numLayers ?? 2, num_heads: o.numHeads ?? 1,
          };
          if (o.qkStd !== undefined && (mixer === 'attention' || mixer === 'dmattn')) recipe.qk_std = o.qkStd;
          if (mixer === 'dmattn') Object.assign(recipe, { keep_window_size: keepWindow, qk_norm: qkNorm, A: dmattnA, dt_proj_std: dtProjStd });
          if (mixer === 'dmattn' && o.dmattnBias === 'linear') recipe.dynamic_mask_bias = 'linear';
          const cur = best!.curriculum; // the curriculum as run (recipe defaults and options resolved by trainMqar)
          if (cur) recipe.keep_window_shrink_steps = cur.shrink_steps;
          if (cur?.start) recipe.keep_window_shrink_start = cur.start;
          if (cur?.at_accuracy != null) recipe.keep_window_shrink_at_accuracy = cur.at_accuracy;
          const row: MqarCellResult = {
            mixer, seq_len: L, kv_pairs: K, vocab_size: V, d_model: d, lr: best!.lr, accuracy: best!.accuracy,
            epochs: best!.epochs, steps: best!.steps, seconds: sweep.reduce((s, x) => s + x.seconds, 0), num_parameters: best!.num_parameters,
            random_non_queries: randomNonQueries, train_examples: o.trainExamples, test_examples: o.testExamples,
            backend: currentBackend()?.name ?? 'unknown', seed, recipe, curve: best!.curve, sweep,
          };
          if (mixer === 'dmattn') row.keep_window_size = keepWindow;
          results.push(row);
          if (jsonl) appendFileSync(jsonl, JSON.stringify(row) + '\n');
          hooks.onCell?.(row, cell, cells);
        }
      }
    }
  }
  if (o.outDir) writeMqarFigure(results, join(o.outDir, 'mqar.html'));
  return results;
}

/** A plain-text table: one row per (L, d), one column per mixer. */
export function formatMqarTable(rows: MqarCellResult[]): string {
  const mixers = [...new Set(rows.map((r) => r.mixer))];
  const keys = [...new Set(rows.map((r) => `${r.seq_len}|${r.d_model}`))];
  const lines = [`| L | K | d | ${mixers.join(' | ')} |`, `|---|---|---|${mixers.map(() => '---').join('|')}|`];
  for (const k of keys) {
    const [L, d] = k.split('|').map(Number);
    const cellsOf = rows.filter((r) => r.seq_len === L && r.d_model === d);
    const acc = mixers.map((m) => {
      const r = cellsOf.find((x) => x.mixer === m);
      return r ? `${r.accuracy.toFixed(3)} (lr ${r.lr}, ${r.epochs} ep)` : '-';
    });
    lines.push(`| ${L} | ${cellsOf[0].kv_pairs} | ${d} | ${acc.join(' | ')} |`);
  }
  return lines.join('\n');
}
