/**
 * The pre-training loop (what HF `Trainer.train()` does for SmallDoge's `pt.py`), for any causal LM with the
 * `DogeForCausalLM` interface:
 *
 *   for each optimizer step s:
 *     for each of A micro-batches:   loss_i = sum of token CE / N  (N = label tokens of all A micro-batches)
 *                                    grads += d loss_i / d params  (dropout seeded by (seed, s, i))
 *     norm = ||grads||_2;  grads *= min(1, max_grad_norm / (norm + 1e-6))
 *     AdamW step with lr = learning_rate * schedule(s)
 *
 * Every `eval_steps` the held-out split is scored (mean token loss, perplexity); every `save_steps` and at the
 * end a checkpoint is written (see checkpoint.ts). Everything needed to continue exactly (weights, moments,
 * step, data position, log window) is in the checkpoint, and dropout seeds are a function of the step, so a
 * resumed run reproduces the losses of an uninterrupted one.
 */
import * as path from 'node:path';
import { tf } from '../tf';
import { AdamW } from './adamw';
import { sumOfSquares } from '../ops/fused';
import { currentRunId, writeRunFile, loadTrainerState, saveCheckpoint, latestCheckpoint, newRunId, TRAINER_STATE_FORMAT, TrainerState, SavableModel, type LogWindow } from './checkpoint';
import { checkResumeConfig } from './run-folder';
import { loadStateFromFolder } from '../models/checkpoint';
import { variableGradsByName, type LoadStateOptions, type LoadStateResult } from '../modules/module';
import { MetricsLog, MetricsRow, TrainRow, EvalRow, writeLossHtml } from './metrics';
import { formatDuration, formatProgress } from './progress';
import { lrMultiplier, ScheduleSpec } from './schedule';
import { TrainingSection, scheduleSpec } from './config';

/** The model interface the trainer needs (DogeForCausalLM has it; tests use a small stand-in). */
export interface CausalLM extends SavableModel {
  forward(args: {
    inputIds: tf.Tensor;
    labels?: tf.Tensor;
    training?: boolean;
    numItemsInBatch?: number;
    dropoutSeed?: number;
    /** Only the loss is needed (training and eval): large vocabularies then run lm_head + loss in chunks. */
    lossOnly?: boolean;
  }): { logits: tf.Tensor; loss?: tf.Tensor };
  parameters(): Map<string, tf.Variable>;
  /** Module.loadState (both models have it); without it resume assigns the parameters by name the same way. */
  loadState?(tensors: Map<string, tf.Tensor>, opts?: LoadStateOptions): LoadStateResult;
}

/** Packed token rows (src/data `openPackedDataset`). */
export interface TokenDataset {
  numRows: number;
  seqLen: number;
  row(i: number): Int32Array;
}

/**
 * Fine-tuning (src/finetune): how a micro-batch `B` becomes a loss instead of the causal-LM loss on token rows (SFT
 * host batches with their labels, DPO pairs). The loader's batches are passed to the hook as they are.
 */
export interface LossHook<B> {
  /** Loss items of a micro-batch (SFT targets, DPO pairs); the step's total divides every micro-batch's summed loss. */
  items(batch: B): number;
  /** Tokens of a micro-batch (tokens/s and tokens seen). */
  tokens(batch: B): number;
  /** The micro-batch's summed loss / `numItemsInStep`, called inside the gradient tape. */
  loss(batch: B, numItemsInStep: number, dropoutSeed: number): tf.Scalar;
  /** Extra metrics of the step just finished (e.g. DPO's `rewards/*`), averaged over the logging window. */
  stepMetrics?(): Record<string, number>;
  /** Replaces the eval-split loss: an eval row (eval_loss plus extras such as `eval_rewards/accuracies`). */
  evaluate?(): { eval_loss: number } & Record<string, number>;
  /**
   * The step metrics a summary line shows beside the loss (`logLevel: 'summary'`), e.g. DPO's `rewards/margins` and
   * `rewards/accuracies`; their `eval_` versions are shown with the held-out loss. Default: none.
   */
  summaryKeys?: readonly string[];
}

/** What `onStep` gets after every optimizer step. */
export interface StepRow {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  /** Tokens of the step. */
  tokens: number;
  /** LossHook.stepMetrics of this step (e.g. DPO's rewards/*), not averaged. */
  metrics?: Record<string, number>;
}

/**
 * How much the trainer logs: `'steps'` (default, the CLI's) a progress line every `logging_steps`, every evaluation
 * and every checkpoint; `'summary'` (notebooks) a start line, a line every `summaryPercent` % of the run (the mean loss
 * since the line before, with an evaluation of that step on the same line), an evaluation at another step on its own
 * line, and a final line.
 */
export type LogLevel = 'steps' | 'summary';

/** A resumable stream of training batches `B` (src/data `BatchLoader`, src/finetune `IndexLoader`). */
export interface BatchSource<B> {
  next(): B;
  /** JSON-serialisable position, saved in checkpoints and handed back to the loader factory on resume. */
  readonly position: unknown;
}

/** What the causal-LM loss takes from a loader (see batchToTensor): int32 rows, a [B, T] tensor, or `{ inputIds }`. */
export type TokenBatch = tf.Tensor | ArrayLike<number>[] | Int32Array | Uint32Array | Uint16Array | { inputIds: unknown } | { input_ids: unknown };

export interface TrainerOptions<B = TokenBatch> {
  model: CausalLM;
  args: TrainingSection;
  /** Build the training batch stream, starting at a saved position (undefined = the beginning). */
  trainLoader: (position: unknown) => BatchSource<B>;
  /** Packed sequence length of the training batches. */
  seqLen: number;
  evalDataset?: TokenDataset;
  /** Resolved config, saved as training_config.json in each checkpoint. */
  config?: unknown;
  /** Where progress lines go (default: stderr). */
  log?: (line: string) => void;
  /** Called after every optimizer step (tests use it to interrupt a run, notebooks collect curves). */
  onStep?(row: StepRow, trainer: Trainer<B>): void;
  /** Called after every evaluation during training (`eval_steps` and the final one), with the metrics row. */
  onEval?(row: EvalRow, trainer: Trainer<B>): void;
  /** See LogLevel (default 'steps'). */
  logLevel?: LogLevel;
  /** `logLevel: 'summary'`: a line every this many percent of max_steps (default 25). */
  summaryPercent?: number;
  /** `logLevel: 'summary'`: what the start line says is trained (e.g. "doge-tiny (3.41M parameters): 60 steps of ..."). */
  describe?: string;
  /** Write loss.html at evaluations and at the end (default true). */
  writePlot?: boolean;
  /**
   * For the first `steps` optimizer steps only these parameters are trained (the rest get no gradient, no
   * update and no weight decay): SmallDoge's MoE continuation trains only the new router and expert tables
   * while the learning rate warms up.
   */
  warmupOnly?: { names: string[]; steps: number };
  /**
   * The run this trainer belongs to (stored in every checkpoint; `resume('latest')` only considers this run's
   * checkpoints). Default: the run id in `<output_dir>/run.json` (see startFreshRun), else a new one.
   */
  runId?: string;
  /** More files for every checkpoint folder (e.g. the tokenizer and generation_config.json). */
  checkpointExtras?: (dir: string) => void | Promise<void>;
  /** Fine-tuning: replaces the causal-LM loss (see LossHook); without it the batches must be TokenBatches. */
  lossHook?: LossHook<B>;
}

export interface StepResult {
  step: number;
  loss: number;
  gradNorm: number;
  lr: number;
  tokens: number;
  /** LossHook.stepMetrics of this step. */
  extra?: Record<string, number>;
}

export interface TrainResult {
  steps: number;
  stopped: boolean;
  lastLoss: number;
  lastEval?: EvalRow;
  checkpoint?: string;
}

/** Raised when the loss or the gradient norm is NaN/Infinity; training stops before the update. */
export class NonFiniteLossError extends Error {
  constructor(message: string, readonly step: number) {
    super(message);
    this.name = 'NonFiniteLossError';
  }
}

/** A 31-bit dropout seed from (seed, step, micro-step): deterministic, so a resumed run draws the same masks. */
export function dropoutSeedFor(seed: number, step: number, micro: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const x of [step, micro]) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h & 0x7fffffff;
}

/** Turn what a batch loader returns into an int32 [batch, seq] tensor. */
export function batchToTensor(batch: unknown, seqLen: number): tf.Tensor2D {
  if (batch instanceof tf.Tensor) {
    // The loader's tensor becomes ours (the caller disposes what this returns).
    if (batch.dtype === 'int32') return batch as tf.Tensor2D;
    const ids = tf.cast(batch, 'int32') as tf.Tensor2D;
    batch.dispose();
    return ids;
  }
  const b = batch as { inputIds?: unknown; input_ids?: unknown };
  if (b && typeof b === 'object' && !Array.isArray(b) && !ArrayBuffer.isView(b)) {
    const inner = b.inputIds ?? b.input_ids;
    if (inner !== undefined) return batchToTensor(inner, seqLen);
  }
  if (Array.isArray(batch)) {
    // A list of rows (Int32Array or number[]), all seqLen long.
    const rows = batch as ArrayLike<number>[];
    const flat = new Int32Array(rows.length * seqLen);
    rows.forEach((r, i) => {
      if (r.length !== seqLen) throw new Error(`batch row ${i} has ${r.length} tokens, expected seq_len ${seqLen}`);
      flat.set(r as ArrayLike<number>, i * seqLen);
    });
    return tf.tensor2d(flat, [rows.length, seqLen], 'int32');
  }
  if (batch instanceof Int32Array || batch instanceof Uint32Array || batch instanceof Uint16Array) {
    if (batch.length % seqLen !== 0) throw new Error(`flat batch of ${batch.length} tokens is not a multiple of seq_len ${seqLen}`);
    return tf.tensor2d(Int32Array.from(batch), [batch.length / seqLen, seqLen], 'int32');
  }
  throw new Error(`the batch loader returned an unsupported batch (${Object.prototype.toString.call(batch)})`);
}

/**
 * Copy every parameter from an HF-format folder (single file or sharded); all must be present with matching shapes
 * and nothing else may be there (resume). The models' one loading path, `loadStateFromFolder`, strict.
 */
export function loadParametersExact(params: Map<string, tf.Variable>, dir: string): void {
  loadStateFromFolder(dir, { parameters: () => params }, { strict: true });
}

/** What callbacks get to steer a run (whatever its batch type): stop it, read its step, metrics and run id. */
export type TrainerControl = Pick<Trainer<unknown>, 'requestStop' | 'globalStep' | 'metrics' | 'runId'>;

export class Trainer<B = TokenBatch> {
  readonly model: CausalLM;
  readonly args: TrainingSection;
  readonly optimizer: AdamW;
  readonly schedule: ScheduleSpec;
  readonly metrics: MetricsLog;
  globalStep = 0;
  tokensSeen = 0;
  /** See TrainerOptions.runId; a resumed checkpoint's run id replaces it. */
  runId: string;
  private loader: BatchSource<B>;
  private readonly opts: TrainerOptions<B>;
  private readonly params: Map<string, tf.Variable>;
  /** The parameters that get gradients (trainable ones), and during `warmupOnly` steps only those listed there. */
  private readonly trainable: Map<string, tf.Variable>;
  private readonly warmupTrainable: Map<string, tf.Variable>;
  private stopRequested = false;
  private readonly logLevel: LogLevel;
  private elapsedBefore = 0;
  private sessionStart = 0;
  /** Running sums of the current logging window (saved in checkpoints so windows survive a resume). */
  private window: LogWindow = emptyWindow();
  private lastEval?: EvalRow;
  private lastCheckpoint?: string;
  private readonly log: (line: string) => void;

  constructor(options: TrainerOptions<B>) {
    this.opts = options;
    this.model = options.model;
    this.args = options.args;
    this.params = this.model.parameters();
    this.trainable = new Map([...this.params].filter(([, v]) => v.trainable));
    const only = new Set(options.warmupOnly?.names ?? []);
    for (const n of only) if (!this.params.has(n)) throw new Error(`warmupOnly: '${n}' is not a parameter of the model`);
    this.warmupTrainable = new Map([...this.trainable].filter(([n]) => only.has(n)));
    this.optimizer = new AdamW(this.params, {
      beta1: this.args.adam_beta1,
      beta2: this.args.adam_beta2,
      eps: this.args.adam_epsilon,
      weightDecay: this.args.weight_decay,
    });
    this.schedule = scheduleSpec(this.args);
    this.metrics = new MetricsLog(path.join(this.args.output_dir, 'metrics.jsonl'));
    this.loader = options.trainLoader(undefined);
    this.log = options.log ?? ((line) => process.stderr.write(line + '\n'));
    this.logLevel = options.logLevel ?? 'steps';
    const pct = options.summaryPercent ?? 25;
    if (!(pct > 0 && pct <= 100)) throw new Error(`summaryPercent must be in (0, 100], got ${pct}`);
    this.runId = options.runId ?? currentRunId(this.args.output_dir) ?? newRunId();
  }

  /** Ask the loop to save a checkpoint and return after the current step (Ctrl-C). */
  requestStop(): void {
    this.stopRequested = true;
  }

  /** True once a stop was requested (long preparations before `train()`, e.g. DPO's reference log-probs, poll it). */
  get stopping(): boolean {
    return this.stopRequested;
  }

  learningRate(step = this.globalStep): number {
    return this.args.learning_rate * lrMultiplier(this.schedule, step);
  }

  /**
   * Continue from a checkpoint folder, or with 'latest' from the newest checkpoint of this run (`runId`) in
   * output_dir: checkpoints another run left in the same folder are never picked.
   */
  resume(dir: string): string {
    const ckpt = dir === 'latest' ? latestCheckpoint(this.args.output_dir, this.runId) : dir;
    if (!ckpt) {
      const others = latestCheckpoint(this.args.output_dir);
      throw new Error(`--resume: no checkpoint of run ${this.runId} in ${this.args.output_dir}` +
        (others ? ` (${others} belongs to another run; pass it explicitly, --resume ${others}, to continue that one)` : ''));
    }
    // a change of data, sequence length, learning rate, ... would not continue the same run: refuse, naming the keys
    checkResumeConfig(ckpt, this.opts.config);
    const { state, optimizer } = loadTrainerState(ckpt);
    try {
      if (state.max_steps !== this.args.max_steps) {
        this.log(`note: the checkpoint was made with max_steps ${state.max_steps}, now ${this.args.max_steps}; the schedule follows the new value`);
      }
      loadStateFromFolder(ckpt, this.model, { strict: true });
      this.optimizer.loadState(optimizer, state.optimizer.step, path.join(ckpt, 'trainer_state', 'optimizer.safetensors'));
    } finally {
      for (const t of optimizer.values()) t.dispose();
    }
    this.globalStep = state.global_step;
    if (state.run_id) this.runId = state.run_id;
    this.tokensSeen = state.tokens_seen;
    this.elapsedBefore = state.elapsed_s;
    this.lastEval = state.last_eval;
    this.window = state.log_window ? { ...state.log_window } : emptyWindow();
    this.loader = this.opts.trainLoader(state.data_position);
    // Rows after the checkpoint belong to the interrupted run; the resumed run writes them again.
    this.metrics.truncateAfter(state.global_step);
    this.lastCheckpoint = ckpt;
    this.log(`resumed from ${ckpt} at step ${state.global_step}`);
    return ckpt;
  }

  /** One optimizer step over `gradient_accumulation_steps` micro-batches. */
  trainStep(): StepResult {
    const A = this.args.gradient_accumulation_steps;
    const step = this.globalStep;
    const hook = this.opts.lossHook;
    const batches: tf.Tensor2D[] = [];
    const raw: B[] = [];
    for (let i = 0; i < A; i++) {
      if (hook) raw.push(this.loader.next());
      else batches.push(batchToTensor(this.loader.next(), this.opts.seqLen));
    }
    // Labels are the inputs (the model shifts them); every position but the first of a row is a target.
    const numItems = hook ? raw.reduce<number>((n, b) => n + hook.items(b), 0) : batches.reduce((n, b) => n + b.shape[0] * (b.shape[1] - 1), 0);
    const tokens = hook ? raw.reduce<number>((n, b) => n + hook.tokens(b), 0) : batches.reduce((n, b) => n + b.shape[0] * b.shape[1], 0);

    let acc = new Map<string, tf.Tensor>();
    let lossSum: tf.Tensor | undefined;
    try {
      for (let i = 0; i < A; i++) {
        const ids = batches[i]!;
        // gradients keyed by HF name (the optimizer's keys), in parameter order
        const { value, grads } = variableGradsByName(step < (this.opts.warmupOnly?.steps ?? 0) ? this.warmupTrainable : this.trainable, () => {
          if (hook) return hook.loss(raw[i], numItems, dropoutSeedFor(this.args.seed, step, i));
          const out = this.model.forward({
            inputIds: ids,
            labels: ids,
            training: true,
            numItemsInBatch: numItems,
            dropoutSeed: dropoutSeedFor(this.args.seed, step, i),
            lossOnly: true,
          });
          if (!out.loss) throw new Error('model.forward returned no loss although labels were given');
          return out.loss as tf.Scalar;
        });
        lossSum = accumulate(lossSum, value);
        for (const [name, g] of grads) acc.set(name, accumulate(acc.get(name), g));
      }
      // One read-back per step: the summed loss and the squared global gradient norm.
      const packed = tf.tidy(() => {
        return tf.stack([lossSum!, sumOfSquares([...acc.values()])]); // fused on webgpu (src/ops/fused.ts)
      });
      const [loss, normSq] = packed.dataSync() as Float32Array & [number, number];
      packed.dispose();
      const gradNorm = Math.sqrt(normSq);
      const lr = this.learningRate(step);
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        const what = !Number.isFinite(loss) ? `loss ${loss}` : `gradient norm ${gradNorm}`;
        const last = this.lastCheckpoint ? `the last good checkpoint is ${this.lastCheckpoint}` : 'no checkpoint had been saved yet';
        throw new NonFiniteLossError(`non-finite ${what} at step ${step + 1}; training stopped before the update, ${last}`, step + 1);
      }
      const clip = this.args.max_grad_norm > 0 ? Math.min(1, this.args.max_grad_norm / (gradNorm + 1e-6)) : 1;
      this.optimizer.applyGradients(acc, lr, clip);
      this.globalStep = step + 1;
      this.tokensSeen += tokens;
      return { step: this.globalStep, loss, gradNorm, lr, tokens, extra: hook?.stepMetrics?.() };
    } finally {
      for (const b of batches) b.dispose();
      for (const g of acc.values()) g.dispose();
      acc = new Map();
      lossSum?.dispose();
    }
  }

  /** Mean token loss and perplexity over the first `eval_batches` batches of the eval split (in order). */
  evaluate(): EvalRow | undefined {
    if (this.opts.lossHook?.evaluate) return { step: this.globalStep, ...this.opts.lossHook.evaluate() } as EvalRow;
    const ds = this.opts.evalDataset;
    if (!ds || ds.numRows === 0) return undefined;
    const B = this.args.per_device_eval_batch_size;
    const maxBatches = this.args.eval_batches > 0 ? this.args.eval_batches : Infinity;
    let lossTokens = 0;
    let items = 0;
    for (let b = 0; b < maxBatches && b * B < ds.numRows; b++) {
      const rows: Int32Array[] = [];
      for (let r = b * B; r < Math.min(ds.numRows, (b + 1) * B); r++) rows.push(ds.row(r));
      const n = rows.length * (ds.seqLen - 1);
      const value = tf.tidy(() => {
        const ids = batchToTensor(rows, ds.seqLen);
        const out = this.model.forward({ inputIds: ids, labels: ids, training: false, numItemsInBatch: n, lossOnly: true });
        if (!out.loss) throw new Error('model.forward returned no loss although labels were given');
        return out.loss;
      });
      lossTokens += (value.dataSync()[0] as number) * n;
      value.dispose();
      items += n;
    }
    const evalLoss = lossTokens / items;
    return { step: this.globalStep, eval_loss: evalLoss, eval_perplexity: Math.exp(evalLoss) };
  }

  private trainerState(): TrainerState {
    return {
      format: TRAINER_STATE_FORMAT,
      run_id: this.runId,
      global_step: this.globalStep,
      max_steps: this.args.max_steps,
      seed: this.args.seed,
      data_position: this.loader.position,
      tokens_seen: this.tokensSeen,
      elapsed_s: this.elapsed(),
      learning_rate: this.args.learning_rate,
      schedule: { ...this.schedule },
      optimizer: {
        name: 'adamw',
        step: this.optimizer.step,
        beta1: this.optimizer.beta1,
        beta2: this.optimizer.beta2,
        eps: this.optimizer.eps,
        weight_decay: this.optimizer.weightDecay,
      },
      last_eval: this.lastEval,
      log_window: { ...this.window },
    };
  }

  /** Write `checkpoint-<step>` (atomically) and prune old ones. */
  async saveCheckpoint(): Promise<string> {
    // The folder records whose checkpoints these are (what resume('latest') of a later Trainer continues).
    if (currentRunId(this.args.output_dir) !== this.runId) writeRunFile(this.args.output_dir, this.runId);
    const dir = await saveCheckpoint({
      outputDir: this.args.output_dir,
      model: this.model,
      optimizerState: this.optimizer.stateTensors(),
      state: this.trainerState(),
      config: this.opts.config,
      keep: this.args.save_total_limit,
      extraFiles: this.opts.checkpointExtras,
    });
    this.lastCheckpoint = dir;
    return dir;
  }

  private elapsed(): number {
    return this.elapsedBefore + (this.sessionStart ? (performance.now() - this.sessionStart) / 1000 : 0);
  }

  private async writePlot(): Promise<void> {
    if (this.opts.writePlot === false) return;
    try {
      writeLossHtml(this.metrics.rows(), path.join(this.args.output_dir, 'loss.html'));
    } catch (e) {
      this.log(`warning: could not write loss.html: ${(e as Error).message}`);
    }
  }

  /** Evaluate, record the row, tell onEval; in 'steps' mode log it (in 'summary' mode train() puts it on a summary line). */
  private runEval(): EvalRow | undefined {
    const row = this.evaluate();
    if (!row) return undefined;
    this.lastEval = row;
    this.metrics.append(row);
    this.opts.onEval?.(row, this);
    if (this.logLevel === 'summary') return row;
    const extra = Object.entries(row).filter(([k]) => !['step', 'eval_loss', 'eval_perplexity'].includes(k)).map(([k, v]) => ` | ${k} ${(v as number).toFixed(4)}`).join('');
    const ppl = typeof row.eval_perplexity === 'number' ? ` | perplexity ${row.eval_perplexity.toFixed(2)}` : '';
    this.log(`eval at step ${row.step}: loss ${row.eval_loss.toFixed(4)}${ppl}${extra}`);
    return row;
  }

  /** The summary keys of the loss hook that a row has, as ` | key value` (train rows: `key`, eval rows: `eval_key`). */
  private summaryMetrics(values: Record<string, number>, prefix: string): string {
    return (this.opts.lossHook?.summaryKeys ?? []).filter((k) => typeof values[prefix + k] === 'number').map((k) => ` | ${k} ${values[prefix + k]!.toFixed(3)}`).join('');
  }

  /** `held-out loss 6.594 | perplexity 730.8 | rewards/accuracies 0.531` (summary lines). */
  private evalSummary(row: EvalRow): string {
    const r = row as unknown as Record<string, number>;
    const ppl = typeof r.eval_perplexity === 'number' ? ` | perplexity ${r.eval_perplexity.toFixed(1)}` : '';
    return `held-out loss ${row.eval_loss.toFixed(3)}${ppl}${this.summaryMetrics(r, 'eval_')}`;
  }

  /** The summary start line. */
  private summaryStart(): string {
    const a = this.args;
    const canEval = !!(this.opts.lossHook?.evaluate || (this.opts.evalDataset && this.opts.evalDataset.numRows > 0));
    const evals = !canEval ? 'no held-out evaluation' : a.eval_steps > 0 && a.eval_steps < a.max_steps ? `held-out evaluation every ${a.eval_steps} steps and at the end` : 'held-out evaluation at the end';
    const from = this.globalStep > 0 ? `, continuing at step ${this.globalStep}` : '';
    return joinWrapped([...`${this.opts.describe ?? `training: ${a.max_steps} steps`}${from}`.split('; '), `peak lr ${a.learning_rate}`, evals]);
  }

  /** Run until max_steps (or a stop request); evaluates, logs and checkpoints along the way. */
  async train(): Promise<TrainResult> {
    const a = this.args;
    this.sessionStart = performance.now();
    let lastLoss = NaN;
    let savedAt = -1;
    let evaluatedAt = -1;
    let secondsPerStep = NaN;
    const summary = this.logLevel === 'summary';
    const pct = this.opts.summaryPercent ?? 25;
    // the steps since the last summary line (its mean loss and summary metrics)
    let span = { lossSum: 0, steps: 0, extra: {} as Record<string, number> };
    const spanText = (): string => {
      const mean: Record<string, number> = {};
      for (const [k, v] of Object.entries(span.extra)) mean[k] = v / span.steps;
      return `loss ${(span.lossSum / span.steps).toFixed(3)}${this.summaryMetrics(mean, '')}`;
    };
    if (this.stopRequested) {
      // stopped before the first step of this session (e.g. Ctrl-C during DPO's reference precompute): nothing to save
      this.log(`stopped before step ${this.globalStep + 1}: nothing was trained in this session${this.lastCheckpoint ? ` (the last checkpoint is ${this.lastCheckpoint})` : ''}`);
      return { steps: this.globalStep, stopped: true, lastLoss, lastEval: this.lastEval, checkpoint: this.lastCheckpoint };
    }
    if (summary) this.log(this.summaryStart());
    try {
      while (this.globalStep < a.max_steps) {
        const t0 = performance.now();
        const r = this.trainStep();
        const dt = (performance.now() - t0) / 1000;
        secondsPerStep = Number.isNaN(secondsPerStep) ? dt : 0.9 * secondsPerStep + 0.1 * dt;
        lastLoss = r.loss;
        this.window.lossSum += r.loss;
        this.window.steps += 1;
        this.window.tokens += r.tokens;
        this.window.seconds += dt;
        if (r.extra) {
          const w = (this.window.extra ??= {});
          for (const [k, v] of Object.entries(r.extra)) w[k] = (w[k] ?? 0) + v;
        }
        span.lossSum += r.loss;
        span.steps += 1;
        for (const [k, v] of Object.entries(r.extra ?? {})) span.extra[k] = (span.extra[k] ?? 0) + v;
        if (r.step % a.logging_steps === 0 || r.step === a.max_steps) {
          const row: TrainRow = {
            step: r.step,
            loss: this.window.lossSum / this.window.steps,
            lr: r.lr,
            grad_norm: r.gradNorm,
            tokens: this.tokensSeen,
            tokens_per_s: this.window.tokens / Math.max(1e-9, this.window.seconds),
            elapsed_s: this.elapsed(),
          };
          // hook metrics (DPO rewards/*, logps/*, ...): means over the window, in the row and the progress line
          const extra = Object.entries(this.window.extra ?? {}).map(([k, v]) => [k, v / this.window.steps] as const);
          for (const [k, v] of extra) (row as unknown as Record<string, number>)[k] = v;
          this.metrics.append(row);
          if (!summary) this.log(formatProgress({
            step: r.step, maxSteps: a.max_steps, loss: row.loss, lr: r.lr, gradNorm: r.gradNorm,
            tokensPerS: row.tokens_per_s, elapsedS: row.elapsed_s, secondsPerStep,
          }) + extra.filter(([k]) => k.startsWith('rewards/')).map(([k, v]) => ` | ${k} ${v.toFixed(3)}`).join(''));
          this.window = emptyWindow();
        }
        let evalRow: EvalRow | undefined;
        if (a.eval_steps > 0 && r.step % a.eval_steps === 0) {
          evalRow = this.runEval();
          evaluatedAt = r.step;
          await this.writePlot();
        }
        // summary lines: at each pct % of the run (the last step has the final line), evaluations of other steps alone
        if (summary && r.step < a.max_steps) {
          if (Math.floor((r.step * 100) / (pct * a.max_steps)) > Math.floor(((r.step - 1) * 100) / (pct * a.max_steps))) {
            this.log(`step ${r.step}/${a.max_steps} (${Math.round((100 * r.step) / a.max_steps)}%): ${spanText()}${evalRow ? ` | ${this.evalSummary(evalRow)}` : ''} | ${formatDuration(this.elapsed())}`);
            span = { lossSum: 0, steps: 0, extra: {} };
          } else if (evalRow) {
            this.log(`eval at step ${r.step}: ${this.evalSummary(evalRow)}`);
          }
        }
        if (a.save_steps > 0 && r.step % a.save_steps === 0) {
          const dir = await this.saveCheckpoint();
          savedAt = r.step;
          if (!summary) this.log(`saved ${dir}`);
        }
        this.opts.onStep?.({ step: r.step, loss: r.loss, gradNorm: r.gradNorm, lr: r.lr, tokens: r.tokens, metrics: r.extra }, this);
        // Let signal handlers (Ctrl-C) run between steps.
        await new Promise((resolve) => setImmediate(resolve));
        if (this.stopRequested) break;
      }
    } catch (e) {
      await this.writePlot();
      // A lost GPU (src/runtime/webgpu.ts) takes the weights with it: what survives is on disk already (metrics, the
      // plot, the last checkpoint); say where, so the run can resume from it.
      if (e instanceof Error && e.name === 'WebGpuDeviceError') {
        const last = this.lastCheckpoint ? `the last checkpoint is ${this.lastCheckpoint} (continue with --resume)` : 'no checkpoint had been saved yet';
        e.message += `; training stopped at step ${this.globalStep + 1} of ${a.max_steps}, metrics and plot are saved, ${last}`;
      }
      throw e;
    }
    const stopped = this.globalStep < a.max_steps;
    if (!stopped && evaluatedAt !== this.globalStep) this.runEval();
    let saved: string | undefined;
    if (savedAt !== this.globalStep) {
      saved = await this.saveCheckpoint();
      if (!summary) this.log(`saved ${saved}${stopped ? ' (stopped early; continue with --resume)' : ''}`);
    }
    await this.writePlot();
    if (summary) {
      const ev = !stopped && this.lastEval?.step === this.globalStep ? ` | ${this.evalSummary(this.lastEval)}` : '';
      // with a final evaluation (which shows the summary metrics) the last span shows only its loss: one short line
      const spanPart = ev ? `loss ${(span.lossSum / span.steps).toFixed(3)}` : spanText();
      const last = span.steps ? ` | last ${span.steps} step${span.steps === 1 ? '' : 's'}: ${spanPart}` : '';
      this.log(stopped
        ? `stopped at step ${this.globalStep}/${a.max_steps} after ${formatDuration(this.elapsed())}${last}; checkpoint ${saved ?? this.lastCheckpoint} (continue with resume)`
        : `done: ${this.globalStep} steps in ${formatDuration(this.elapsed())}${last}${ev}`);
    }
    return { steps: this.globalStep, stopped, lastLoss, lastEval: this.lastEval, checkpoint: this.lastCheckpoint };
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

const emptyWindow = (): LogWindow => ({ lossSum: 0, steps: 0, tokens: 0, seconds: 0 });

function accumulate(acc: tf.Tensor | undefined, x: tf.Tensor): tf.Tensor {
  if (!acc) return x;
  const sum = tf.add(acc, x);
  acc.dispose();
  x.dispose();
  return sum;
}

/**
 * Parts joined with '; ' into lines of at most `width` characters (a part longer than that gets a line of its own),
 * later lines indented by two spaces: a notebook page or a terminal shows about 100-125 characters and breaks a
 * longer line mid-word.
 */
export function joinWrapped(parts: string[], width = 100): string {
  const lines: string[] = [];
  let line = '';
  for (const part of parts) {
    const next = line ? `${line}; ${part}` : part;
    if (line && next.length + 1 > width) {
      lines.push(`${line};`);
      line = `  ${part}`;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines.join('\n');
}
