/**
 * Training one MQAR cell (mixer x length x width x learning rate) the way Zoology does: AdamW, warmup + cosine
 * schedule, cross-entropy at the labelled query positions only, test accuracy after every epoch, early stop once it
 * reaches 0.99.
 */
import { tf } from '../tf';
import { AdamW } from '../train/adamw';
import { hasKeepWindow, type MixerKind } from './mixers';
import type { MqarCurvePoint, MqarInit } from './results';
import { MqarModel } from './model';
import { IGNORE_INDEX, type MqarData } from './mqar-data';
import { mqarRecipe, type MqarRecipeName } from './recipe';
import { evalKeepWindow } from './length-expr';
import { tokenLogprobs } from '../ops';
import { Xoshiro128 } from '../ops/random';

export type { MqarCurvePoint, MqarInit } from './results';

export interface MqarTrainOptions {
  /** Defaults for every recipe field left unset (default 'tuned', see src/synthetic/recipe.ts). */
  recipe?: MqarRecipeName;
  mixer: MixerKind;
  dModel: number;
  lr: number;
  epochs: number;
  train: MqarData;
  test: MqarData;
  batchSize?: number; // default 64
  evalBatchSize?: number; // default 256
  numLayers?: number; // default 2
  numHeads?: number; // attention / dmattn heads, default 1
  keepWindowSize?: number; // dmattn (recipe default: 2K in 'tuned', the sequence length in 'full-window', K in 'first')
  /**
   * dmattn curriculum: the top-k window starts at the sequence length (no top-k) and shrinks linearly to
   * keepWindowSize over this many steps, then stays there (default the recipe's: 300 in 'tuned', else 0 =
   * keepWindowSize from the first step). Only a DMAttn window below L has a curriculum.
   */
  keepWindowShrinkSteps?: number;
  /** dmattn curriculum: steps with the full window (no top-k) before the shrinking starts (default 0). */
  keepWindowShrinkStart?: number;
  /**
   * dmattn curriculum: keep the full window until a test evaluation reaches this accuracy, and start the shrinking
   * there (the lookup circuit has formed; its step varies by seed and width). With keepWindowShrinkStart as well, the
   * shrinking starts at whichever comes first. Default the recipe's (0.99 in 'tuned') unless keepWindowShrinkStart
   * is given.
   */
  keepWindowShrinkAtAccuracy?: number;
  dState?: number; // ssd, default 64
  /**
   * Init of the projections that write into the residual stream: 'scaled' = std 0.02 / sqrt(2 * layers) (GPT-2's and
   * Zoology's depth-scaled init), 'plain' = 0.02 like every other matrix (the 'first' recipe). Default from the recipe.
   */
  init?: MqarInit;
  qkStd?: number; // attention / dmattn q and k projection std, default 0.02
  qkNorm?: boolean; // dmattn q/k RMSNorm (recipe default: off in 'tuned' and 'full-window', on in 'first')
  dmattnA?: number; // dmattn initial A (recipe default)
  dmattnBias?: 'exp' | 'linear'; // dmattn dynamic-mask bias (default 'exp', HF)
  dtProjStd?: number; // dmattn dt_proj std (recipe default)
  weightDecay?: number; // recipe default 0.1
  warmupFraction?: number; // recipe default 0.05 of all steps
  /** Evaluate on the test set every this many steps (the accuracy curve; default a quarter epoch) and after every epoch. */
  evalEvery?: number;
  stopAccuracy?: number; // recipe default 0.99
  /** Stop training once this many seconds have passed (checked before every step), evaluate, and say so. */
  timeBudgetSeconds?: number;
  /** Stop after this many optimizer steps (the schedule still spans `epochs`), evaluate, and say so (`stopped: 'steps'`). */
  maxSteps?: number;
  seed?: number;
}

export interface MqarEpochInfo {
  mixer: MixerKind;
  d_model: number;
  lr: number;
  epoch: number;
  epochs: number;
  loss: number;
  accuracy: number;
  seconds: number;
}

/** DMAttn's shrinking-window curriculum as run: its settings and the step the shrinking started at. */
export interface MqarCurriculum {
  shrink_steps: number;
  /** The step start asked for (null: only the accuracy trigger). */
  start: number | null;
  /** The accuracy trigger (null: only the step start). */
  at_accuracy: number | null;
  /** The step at which the window started to shrink (null: the trigger never fired). */
  started_at: number | null;
}

export interface MqarRunResult {
  /** Best test accuracy over the epochs. */
  accuracy: number;
  /** Test accuracy after the last epoch run. */
  final_accuracy: number;
  /** Epochs actually run (the last one possibly cut short by the time budget). */
  epochs: number;
  /** Optimizer steps actually run. */
  steps: number;
  /** Mean training loss of the last epoch. */
  loss: number;
  seconds: number;
  stopped: 'accuracy' | 'epochs' | 'time' | 'steps';
  num_parameters: number;
  /** Test accuracy vs steps (every `evalEvery` steps and at every epoch end), starting at step 0. */
  curve: MqarCurvePoint[];
  /** dmattn: the top-k curriculum this run used (null: none, the window was fixed from step 0). */
  curriculum: MqarCurriculum | null;
}

/** Std of the residual-writing projections for an init scheme. */
export function outProjStdFor(init: MqarInit, numLayers: number): number {
  return init === 'scaled' ? 0.02 / Math.sqrt(2 * numLayers) : 0.02;
}

/** A batch as tensors: ids [B, L] and, for the labelled positions, flat indices b*L + t and their targets. */
export function makeBatch(data: MqarData, examples: ArrayLike<number>): { ids: tf.Tensor2D; positions: tf.Tensor1D; targets: Int32Array } {
  const L = data.seqLen;
  const B = examples.length;
  const ids = new Int32Array(B * L);
  const pos: number[] = [];
  const tgt: number[] = [];
  for (let b = 0; b < B; b++) {
    const off = examples[b] * L;
    ids.set(data.inputs.subarray(off, off + L), b * L);
    for (let t = 0; t < L; t++) {
      const y = data.labels[off + t];
      if (y !== IGNORE_INDEX) {
        pos.push(b * L + t);
        tgt.push(y);
      }
    }
  }
  return { ids: tf.tensor2d(ids, [B, L], 'int32'), positions: tf.tensor1d(pos, 'int32'), targets: Int32Array.from(tgt) };
}

/** Mean cross-entropy of logits [M, V] against targets [M]. */
function crossEntropy(logits: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  return tf.neg(tf.mean(tokenLogprobs(logits, targets))) as tf.Scalar;
}

/** Fraction of labelled positions where argmax over the full vocabulary equals the target. */
export function evaluateMqar(model: MqarModel, data: MqarData, batchSize = 256): number {
  let correct = 0;
  let total = 0;
  for (let start = 0; start < data.numExamples; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, data.numExamples - start) }, (_, i) => start + i);
    const { ids, positions, targets } = makeBatch(data, idx);
    const pred = tf.tidy(() => tf.argMax(model.logitsAt(ids, positions), -1));
    const p = pred.dataSync();
    for (let i = 0; i < targets.length; i++) if (p[i] === targets[i]) correct++;
    total += targets.length;
    tf.dispose([ids, positions, pred]);
  }
  return total === 0 ? 0 : correct / total;
}

/** Trains one model from scratch and returns its best test accuracy. `onEpoch` is called after every epoch. */
export interface MqarTrainHooks {
  onEpoch?: (e: MqarEpochInfo) => void;
  /** Called after every point of the accuracy curve (progress between epochs). */
  onEval?: (p: MqarCurvePoint & { mixer: MixerKind; d_model: number; lr: number }) => void;
  /** Called once training ends, before the model is disposed (inspect it here, e.g. its attention maps). */
  onTrained?: (model: MqarModel) => void;
}

export async function trainMqar(o: MqarTrainOptions, hooks: MqarTrainHooks = {}): Promise<MqarRunResult> {
  const { train, test } = o;
  const batchSize = o.batchSize ?? 64;
  const seed = o.seed ?? 0;
  const R = mqarRecipe(o.recipe ?? 'tuned');
  const numLayers = o.numLayers ?? 2;
  const keepWindow = o.keepWindowSize ?? evalKeepWindow(R.keepWindowSize, train.seqLen, train.numKvPairs);
  // DMAttn's top-k curriculum (recipe defaults; a step start given here replaces the recipe's accuracy trigger)
  let shrinkSteps = o.keepWindowShrinkSteps ?? R.keepWindowShrinkSteps ?? 0;
  const shrinkAt = o.keepWindowShrinkAtAccuracy ?? (o.keepWindowShrinkStart === undefined ? R.keepWindowShrinkAtAccuracy : undefined);
  // with an accuracy trigger the start is open (Infinity: full window) until an evaluation reaches it
  let shrinkStart = o.keepWindowShrinkStart ?? (shrinkAt !== undefined ? Infinity : 0);
  if (!(shrinkStart === Infinity || (Number.isInteger(shrinkStart) && shrinkStart >= 0))) throw new Error(`MQAR: keepWindowShrinkStart must be a non-negative integer, got ${shrinkStart}`);
  if (shrinkAt !== undefined && !(shrinkAt > 0 && shrinkAt <= 1)) throw new Error(`MQAR: keepWindowShrinkAtAccuracy must be in (0, 1], got ${shrinkAt}`);
  if (!(Number.isInteger(shrinkSteps) && shrinkSteps >= 0)) throw new Error(`MQAR: keepWindowShrinkSteps must be a non-negative integer, got ${shrinkSteps}`);
  // only a DMAttn window below L has something to narrow; every other run counts every evaluation from step 0
  const curriculum = o.mixer === 'dmattn' && keepWindow < train.seqLen && (shrinkSteps > 0 || shrinkStart > 0);
  const askedStart = o.keepWindowShrinkStart ?? null;
  if (!curriculum) {
    shrinkStart = 0;
    shrinkSteps = 0;
  }
  const model = new MqarModel({
    mixer: o.mixer, vocabSize: train.vocabSize, dModel: o.dModel, numLayers, numHeads: o.numHeads,
    keepWindowSize: keepWindow, dState: o.dState, seed,
    outProjStd: outProjStdFor(o.init ?? R.init, numLayers), qkStd: o.qkStd, qkNorm: o.qkNorm ?? R.qkNorm,
    dmattnA: o.dmattnA ?? R.dmattnA, dtProjStd: o.dtProjStd ?? R.dtProjStd, dmattnBias: o.dmattnBias,
  });
  const params = model.parameters();
  const vars = [...params.values()];
  // Zoology's grouping: weight decay on matrices only (not norms, biases, A_log, D, dt_bias).
  const opt = new AdamW(params, { weightDecay: o.weightDecay ?? R.weightDecay, decay: (name) => params.get(name)!.rank >= 2 });
  const stepsPerEpoch = Math.ceil(train.numExamples / batchSize);
  const totalSteps = stepsPerEpoch * o.epochs;
  const warmup = Math.max(1, Math.round((o.warmupFraction ?? R.warmupFraction) * totalSteps));
  const stopAt = o.stopAccuracy ?? R.stopAccuracy;
  const evalEvery = Math.max(1, Math.round(o.evalEvery ?? stepsPerEpoch / 4));
  const rng = new Xoshiro128(seed, 7);
  const order = Int32Array.from({ length: train.numExamples }, (_, i) => i);
  const windowFinal = () => step >= shrinkStart + shrinkSteps;
  const t0 = Date.now();
  const elapsed = () => (Date.now() - t0) / 1000;
  let step = 0;
  let best = 0;
  let last = 0;
  // whether the last evaluation was at the final window (only those count for the best accuracy and the early stop)
  let lastCounted = false;
  let anyCounted = false;
  let loss = NaN;
  let epochsRun = 0;
  let stopped: MqarRunResult['stopped'] = 'epochs';
  // The curve: test accuracy at step 0 (the untrained model), every evalEvery steps and at every epoch end. The
  // plateau-then-jump of MQAR shows here: accuracy sits near the fraction a model gets without looking anything up,
  // then climbs within a few dozen steps once the lookup circuit forms.
  const curve: MqarCurvePoint[] = [];
  let curveLossSum = 0;
  let curveSteps = 0;
  const evaluate = (): number => {
    last = evaluateMqar(model, test, o.evalBatchSize);
    // with a shrinking window only the model at its final window counts (best accuracy, early stop): an accuracy
    // reached while the window is still wide is not the top-k model's
    lastCounted = windowFinal();
    if (lastCounted) {
      best = Math.max(best, last);
      anyCounted = true;
    }
    // the accuracy trigger: the full-window model has learned the lookup, narrow the window from the next step on
    if (curriculum && shrinkAt !== undefined && step < shrinkStart && last >= shrinkAt) shrinkStart = step;
    const point = { step, accuracy: last, loss: curveSteps > 0 ? curveLossSum / curveSteps : NaN, seconds: elapsed() };
    curve.push(point);
    hooks.onEval?.({ ...point, mixer: o.mixer, d_model: o.dModel, lr: o.lr });
    curveLossSum = 0;
    curveSteps = 0;
    return last;
  };
  try {
    // the untrained model is evaluated at the window of step 0 too (L until a curriculum starts), not the constructed one
    if (curriculum) setKeepWindow(model, keepWindowAt(0, shrinkSteps, train.seqLen, keepWindow, shrinkStart));
    evaluate();
    for (let epoch = 1; epoch <= o.epochs && stopped === 'epochs'; epoch++) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(0, i + 1);
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      let lossSum = 0;
      let stepsDone = 0;
      let outOfTime = false;
      for (let s = 0; s < stepsPerEpoch; s++) {
        if (o.timeBudgetSeconds !== undefined && elapsed() >= o.timeBudgetSeconds) {
          outOfTime = true; // evaluate what was learned so far, then stop
          break;
        }
        if (o.maxSteps !== undefined && step >= o.maxSteps) {
          stopped = 'steps';
          break;
        }
        if (curriculum) setKeepWindow(model, keepWindowAt(step, shrinkSteps, train.seqLen, keepWindow, shrinkStart));
        const { ids, positions, targets } = makeBatch(train, order.subarray(s * batchSize, (s + 1) * batchSize));
        const { value, grads } = tf.variableGrads(() => crossEntropy(model.logitsAt(ids, positions), targets), vars);
        opt.applyGradients(new Map([...params].map(([name, p]) => [name, grads[p.name]])), cosineLr(step++, totalSteps, o.lr, warmup));
        const l = value.dataSync()[0];
        lossSum += l;
        curveLossSum += l;
        curveSteps++;
        stepsDone++;
        tf.dispose([ids, positions, value, ...Object.values(grads)]);
        if (!Number.isFinite(l)) break; // diverged: further steps cannot recover
        if (step % evalEvery === 0 && s < stepsPerEpoch - 1 && evaluate() >= stopAt && lastCounted) {
          stopped = 'accuracy';
          break;
        }
      }
      if (stepsDone === 0) {
        // a budget ran out exactly at an epoch boundary: the previous epoch's evaluation stands
        if (stopped === 'epochs') stopped = outOfTime ? 'time' : stopped;
        break;
      }
      loss = lossSum / stepsDone;
      if (stopped === 'epochs' || (stopped === 'steps' && curve[curve.length - 1].step !== step)) evaluate();
      if (stopped === 'steps' && last >= stopAt && lastCounted) stopped = 'accuracy';
      epochsRun = epoch;
      hooks.onEpoch?.({ mixer: o.mixer, d_model: o.dModel, lr: o.lr, epoch, epochs: o.epochs, loss, accuracy: last, seconds: elapsed() });
      await new Promise((r) => setImmediate(r)); // let a notebook / event loop breathe between epochs
      if (!Number.isFinite(loss)) break;
      if (stopped === 'epochs' && last >= stopAt && lastCounted) stopped = 'accuracy';
      if (stopped === 'epochs' && (outOfTime || (o.timeBudgetSeconds !== undefined && elapsed() >= o.timeBudgetSeconds && epoch < o.epochs))) {
        stopped = 'time';
      }
    }
    hooks.onTrained?.(model);
    // cut before the window reached its target: the last (wide-window) accuracy is all there is
    return {
      accuracy: anyCounted ? best : last, final_accuracy: last, epochs: epochsRun, steps: step, loss, seconds: elapsed(), stopped,
      num_parameters: model.numParameters(), curve,
      curriculum: curriculum
        ? { shrink_steps: shrinkSteps, start: askedStart, at_accuracy: shrinkAt ?? null, started_at: shrinkStart === Infinity ? null : shrinkStart }
        : null,
    };
  } finally {
    opt.dispose();
    model.dispose();
  }
}

/**
 * The shrinking top-k window of DMAttn: L keys (no top-k) at step 0, linearly down to `target` at step `shrinkSteps`,
 * then `target`; with `start`, the window stays at L for the first `start` steps and shrinks after them. While the window is wide the dynamic mask values d can learn which keys matter (with A = 0 they all
 * tie, and an early narrow top-k keeps keys chosen by tie-breaking); the narrowing then makes the model rely on them.
 */
export function keepWindowAt(step: number, shrinkSteps: number, seqLen: number, target: number, start = 0): number {
  if (target >= seqLen) return target;
  if (step < start) return seqLen;
  if (step >= start + shrinkSteps) return target;
  return Math.round(seqLen + ((target - seqLen) * (step - start)) / shrinkSteps);
}

function setKeepWindow(model: MqarModel, n: number): void {
  for (const m of model.mixers) if (hasKeepWindow(m)) m.setKeepWindowSize(n);
}

/** Linear warmup over `warmup` steps, then cosine decay from `lr` to `minLr` at step `total`. */
export function cosineLr(step: number, total: number, lr: number, warmup: number, minLr = 0): number {
  if (step < warmup) return (lr * (step + 1)) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * progress));
}
