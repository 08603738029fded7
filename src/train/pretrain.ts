/**
 * `runPretrain(config)`: one pre-training run, the way SmallDoge's `pt.py` does it with HF Trainer (what
 * `wm pretrain` and notebook 5 call; `runSft` / `runDpo` in src/finetune are its fine-tuning siblings):
 *
 *   data      the packed train / eval splits (optionally the embedded Brown corpus first, `prepareDefault`)
 *   model     any registered causal LM from the config's preset / fields, or a dense checkpoint continued as MoE
 *             (`model.init_from`); special token ids from the tokenizer unless the config sets them
 *   folder    claimed through src/train/run-folder.ts (foreign folders refused, lock, fresh run or --resume)
 *   trainer   the Trainer over a BatchLoader, checkpoints carrying the tokenizer and generation_config.json
 *   final     `<output_dir>/final` written atomically, then seeded samples of the prompts in the config
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseSafetensorsHeader } from '../io/safetensors';
import { buildModelConfig, createCausalLM, describeModelConfig } from '../models/auto';
import type { CausalLMConfig, CausalLMModel } from '../models/registry';
import { BatchLoader, openPackedDataset, prepareDefaultCorpus, loadTokenizer, checkVocabulary, type PackedDataset, type WmTokenizer } from '../data';
import { generationOptionsFrom, PRETRAIN_SAMPLING_DEFAULTS, writeGenerationConfig } from '../generation/generation-config';
import { configToJSON, type PretrainConfig } from './config';
import { inheritParameters, writeFolderAtomically, writeRunFile } from './checkpoint';
import { claimRunFolder } from './run-folder';
import { Trainer, type LogLevel, type StepRow, type TrainerControl, type TrainResult } from './trainer';
import type { EvalRow } from './metrics';

/** The options every run of the pipeline takes (runPretrain here, runSft / runDpo in src/finetune/run.ts). */
export interface RunOptions {
  /** Continue from a checkpoint folder, or 'latest' (this folder's run). */
  resume?: string;
  /** Train in a non-empty output folder that no training run created (its files are left where they are). */
  overwriteOutputDir?: boolean;
  /** Progress and notes (default: stderr). */
  log?: (line: string) => void;
  /**
   * 'steps' (default, the CLI's): the run's description, a progress line every logging_steps, evaluations and
   * checkpoints; 'summary' (notebooks): a start line, a line every 25 % with the loss (and a fine-tuning method's
   * summary metrics, e.g. DPO's rewards/margins and rewards/accuracies), a final line (see the Trainer's LogLevel).
   * Notes and warnings are logged in both.
   */
  logLevel?: LogLevel;
  /** `logLevel: 'summary'`: a line every this many percent of the run (default 25; 100: only the start and final lines). */
  summaryPercent?: number;
  /** Called after every optimizer step with the step's loss and metrics (e.g. a notebook's live plot). */
  onStep?: (row: StepRow, trainer: TrainerControl) => void;
  /** Called after every held-out evaluation during training, with its metrics row. */
  onEval?: (row: EvalRow, trainer: TrainerControl) => void;
  /** Called with the trainer before training starts (the CLI installs its Ctrl-C handler there). */
  onTrainer?: (trainer: TrainerControl) => void;
  /** Also measure the held-out loss before training (and, fine-tuning, sample the final model): the closing summary. */
  summary?: boolean;
  /** Keep the trained model and return it (default: disposed). */
  keepModel?: boolean;
}

export interface PretrainRunOptions extends RunOptions {
  /** Prepare the embedded Brown corpus (tokenizer + packed dataset) first and train on it. */
  prepareDefault?: boolean;
}

export interface PretrainRunResult extends TrainResult {
  finalDir?: string;
  model?: CausalLMModel;
  seconds: number;
  /** Held-out evaluation before the first step (with `summary`, fresh runs). */
  evalBefore?: EvalRow;
  /** Seeded samples of `training.sample_prompts` from the final model (with their decoding settings). */
  samples: { prompt: string; text: string }[];
  samplingNote?: string;
}

/** Open a split folder with a clear message when it is missing. */
async function openSplit(datasetDir: string, split: string, required: boolean): Promise<PackedDataset | undefined> {
  const dir = path.join(datasetDir, split);
  if (!fs.existsSync(dir)) {
    if (!required) return undefined;
    throw new Error(`dataset split folder not found: ${dir} (prepare one with 'wm data prepare ... --out ${datasetDir}', or pass --prepare-default)`);
  }
  return openPackedDataset(dir);
}

/** The model config: a preset with overrides, or the HF fields alone (the registry picks the model). */
export function modelConfigFrom(config: PretrainConfig): CausalLMConfig {
  try {
    return buildModelConfig(config.model.preset, config.model.fields as Record<string, unknown>);
  } catch (e) {
    throw new Error(`${config.source}: model: ${(e as Error).message}`);
  }
}

/** Checks that need both the data and the model: sequence length and vocabulary. */
export function checkDataAgainstModel(config: PretrainConfig, model: CausalLMConfig, train: PackedDataset): void {
  const want = config.data.seq_len;
  if (want !== null && want !== train.seqLen) {
    throw new Error(`data.seq_len is ${want} but the rows of ${train.dir} have ${train.seqLen} tokens (re-pack the data or change data.seq_len)`);
  }
  if (train.seqLen > model.max_position_embeddings) {
    throw new Error(`the sequence length ${train.seqLen} of ${train.dir} exceeds the model's max_position_embeddings ${model.max_position_embeddings}`);
  }
  checkVocabulary(train, model.vocab_size);
}

/**
 * The tensors `train_new_only_steps` trains alone: those init_from did not provide. On --resume they are
 * recomputed by comparing with the init_from folder's tensor names (the restriction depends only on the step).
 */
function newTensorNames(config: PretrainConfig, model: CausalLMModel, initialised: string[]): string[] {
  if (!config.model.init_from) throw new Error(`${config.source}: training.train_new_only_steps needs model.init_from`);
  if (initialised.length) return initialised;
  const file = path.join(config.model.init_from, 'model.safetensors');
  const have = new Set(parseSafetensorsHeader(new Uint8Array(fs.readFileSync(file)), file).tensors.keys());
  return [...model.parameters().keys()].filter((n) => !have.has(n));
}

/** The identity of the training split (rows, length, first and last row), compared on --resume. */
function datasetFingerprint(ds: PackedDataset): string {
  let h = 0x811c9dc5;
  for (const i of [0, ds.numRows - 1]) for (const x of ds.row(i)) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return `${ds.numRows} rows of ${ds.seqLen}, fnv1a ${h.toString(16).padStart(8, '0')}`;
}

/** Seeded samples of the config's prompts (greedy decoding of a small, briefly trained model mostly repeats one token). */
function sampleFrom(model: CausalLMModel, tok: WmTokenizer | undefined, config: PretrainConfig): { samples: PretrainRunResult['samples']; note?: string } {
  const t = config.training;
  if (!tok || t.sample_prompts.length === 0 || t.sample_new_tokens === 0) return { samples: [] };
  // the defaults also written to generation_config.json, so `wm generate` decodes the same way
  const d = generationOptionsFrom(PRETRAIN_SAMPLING_DEFAULTS);
  const samples = t.sample_prompts.map((prompt) => {
    const ids = tok.encode(prompt);
    const [row] = model.generate([ids], { ...d, maxNewTokens: t.sample_new_tokens, seed: t.seed, eosTokenId: tok.eosTokenId ?? null });
    return { prompt, text: tok.decode(row!.slice(ids.length), { skipSpecialTokens: true }) };
  });
  return { samples, note: `top-k ${d.topK}, temperature ${d.temperature}, repetition penalty ${d.repetitionPenalty}, ${t.sample_new_tokens} new tokens` };
}

/**
 * The run sequence pretrain, SFT and DPO share, once the trainer exists: resume (or start the metrics afresh), the
 * caller's last step before training, train, dispose the trainer, then write `<output_dir>/final` atomically (the
 * model folder with the same extras as every checkpoint) unless the run was stopped.
 */
export async function trainAndSave<B>(trainer: Trainer<B>, o: {
  resume?: string; model: CausalLMModel; extras: (dir: string) => void; onTrainer?: (trainer: TrainerControl) => void;
  /** Work before the first step; a long one polls `stopping()` and yields to the event loop, so Ctrl-C reaches it. */
  beforeTraining?: (stopping: () => boolean) => void | Promise<void>;
}): Promise<{ result: TrainResult; finalDir?: string }> {
  const outputDir = trainer.args.output_dir;
  let result: TrainResult;
  try {
    if (o.resume) {
      trainer.resume(o.resume);
      writeRunFile(outputDir, trainer.runId);
    } else {
      trainer.metrics.truncateAfter(0);
    }
    // the stop handle first: a Ctrl-C during the preparation (DPO's reference precompute) stops the run cleanly
    // (train() then returns `stopped` without a step, the folder's lock is released, nothing half-written)
    o.onTrainer?.(trainer);
    await o.beforeTraining?.(() => trainer.stopping);
    result = await trainer.train();
  } finally {
    trainer.dispose();
  }
  if (result.stopped) return { result };
  const finalDir = path.join(outputDir, 'final');
  await writeFolderAtomically(finalDir, async (tmp) => {
    o.model.savePretrained(tmp);
    o.extras(tmp);
  });
  return { result, finalDir };
}

/** One pre-training run (see the file header). */
export async function runPretrain(config: PretrainConfig, opts: PretrainRunOptions = {}): Promise<PretrainRunResult> {
  const t0 = performance.now();
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  // what the summary start line says instead ('summary' mode); notes and warnings always go to log
  const summary = opts.logLevel === 'summary';
  const info = summary ? () => {} : log;
  const t = config.training;

  // --- data ---
  let tokenizerDir = config.data.tokenizer_dir ?? undefined;
  if (opts.prepareDefault) {
    const prepared = await prepareDefaultCorpus({
      outDir: config.data.default_corpus_dir,
      vocabSize: config.data.prepare_default_vocab_size,
      seqLen: config.data.seq_len ?? 256,
      seed: t.seed,
    });
    config.data.dataset_dir = prepared.datasetDir;
    tokenizerDir = prepared.tokenizerDir;
  }
  if (!fs.existsSync(config.data.dataset_dir)) {
    throw new Error(`dataset folder not found: ${config.data.dataset_dir} (set data.dataset_dir, run 'wm data prepare', or pass --prepare-default)`);
  }
  if (!tokenizerDir) {
    const guess = path.join(path.dirname(path.resolve(config.data.dataset_dir)), 'tokenizer');
    if (fs.existsSync(path.join(guess, 'tokenizer.json'))) tokenizerDir = guess;
  }
  const train = (await openSplit(config.data.dataset_dir, config.data.train_split, true))!;
  const evalSet = await openSplit(config.data.dataset_dir, config.data.eval_split, false);
  if (!evalSet) log(`note: no '${config.data.eval_split}' split in ${config.data.dataset_dir}; training without evaluation`);

  // --- model: the special token ids come from the tokenizer unless the config sets them ---
  const tok = tokenizerDir ? await loadTokenizer(tokenizerDir) : undefined;
  if (tok) {
    const fields = config.model.fields as Record<string, unknown>;
    const ids = { bos_token_id: tok.bosTokenId, eos_token_id: tok.eosTokenId, pad_token_id: tok.padTokenId };
    for (const [k, v] of Object.entries(ids)) if (!(k in fields) && v !== undefined) fields[k] = v;
  }
  const modelConfig = modelConfigFrom(config);
  checkDataAgainstModel(config, modelConfig, train);
  if (evalSet) checkDataAgainstModel(config, modelConfig, evalSet);
  const model = createCausalLM(modelConfig, { seed: t.seed, routerLayout: config.model.router_layout as 'token' | 'hf' | undefined });
  let keep = false;
  let claim: ReturnType<typeof claimRunFolder> | undefined;
  try {
    let newTensors: string[] = [];
    if (config.model.init_from && !opts.resume) {
      const r = inheritParameters(model, config.model.init_from);
      newTensors = r.initialised;
      info(`init_from ${config.model.init_from}: copied ${r.copied.length} tensors, initialised ${r.initialised.length} new ones` +
        (r.initialised.length ? ` (${r.initialised.slice(0, 4).join(', ')}${r.initialised.length > 4 ? ', ...' : ''})` : '') +
        (r.ignored.length ? `, ignored ${r.ignored.length} not in this model` : ''));
    }
    const params = `${(model.numParameters() / 1e6).toFixed(2)}M parameters`;
    const tokensPerStep = t.per_device_train_batch_size * t.gradient_accumulation_steps * train.seqLen;
    info(`model: ${config.model.preset ?? 'custom'} (${params}, ${describeModelConfig(modelConfig)})`);
    info(`data: ${train.numRows} training rows of ${train.seqLen} tokens${evalSet ? `, ${evalSet.numRows} eval rows` : ''}; ` +
      `${tokensPerStep} tokens per step, ${t.max_steps} steps`);
    const warmupOnly = t.train_new_only_steps > 0 ? { names: newTensorNames(config, model, newTensors), steps: t.train_new_only_steps } : undefined;

    // --- the run: a fresh one moves an earlier run in the folder aside; --resume continues this folder's run ---
    claim = claimRunFolder(t.output_dir, { command: 'wm pretrain', resume: !!opts.resume, overwrite: opts.overwriteOutputDir, keepPreviousRuns: t.keep_previous_runs, log });
    // every checkpoint (and final/) is a complete model folder: weights, tokenizer, and the decoding defaults
    const generationConfig = { ...PRETRAIN_SAMPLING_DEFAULTS, bos_token_id: modelConfig.bos_token_id, eos_token_id: modelConfig.eos_token_id, pad_token_id: modelConfig.pad_token_id };
    const modelFolderExtras = (dir: string): void => {
      if (tokenizerDir) for (const f of fs.readdirSync(tokenizerDir)) if (fs.statSync(path.join(tokenizerDir, f)).isFile()) fs.copyFileSync(path.join(tokenizerDir, f), path.join(dir, f));
      writeGenerationConfig(dir, generationConfig);
    };
    const trainer = new Trainer({
      model,
      args: t,
      seqLen: train.seqLen,
      evalDataset: evalSet,
      config: { ...configToJSON(config), data_fingerprint: datasetFingerprint(train) },
      log,
      onStep: opts.onStep,
      onEval: opts.onEval,
      logLevel: opts.logLevel,
      summaryPercent: opts.summaryPercent,
      describe: `${config.model.preset ?? String(modelConfig.toJSON().model_type)} (${params}${config.model.init_from && !opts.resume ? `, from ${config.model.init_from}` : ''}): ` +
        `${t.max_steps} steps of ${t.per_device_train_batch_size * t.gradient_accumulation_steps} x ${train.seqLen} tokens from ${train.numRows} training rows`,
      runId: claim.runId,
      checkpointExtras: modelFolderExtras,
      warmupOnly,
      trainLoader: (position) => new BatchLoader(train, { batchSize: t.per_device_train_batch_size, seed: t.seed, position: (position as number | undefined) ?? 0 }),
    });
    let evalBefore: EvalRow | undefined;
    const { result, finalDir } = await trainAndSave(trainer, {
      resume: opts.resume, model, extras: modelFolderExtras, onTrainer: opts.onTrainer,
      beforeTraining: () => { if (opts.summary && !opts.resume) evalBefore = trainer.evaluate(); },
    });
    // --- samples of the final model ---
    const { samples, note } = result.stopped ? { samples: [], note: undefined } : sampleFrom(model, tok, config);
    const out: PretrainRunResult = { ...result, finalDir, seconds: (performance.now() - t0) / 1000, evalBefore, samples, samplingNote: note };
    if (opts.keepModel) { out.model = model; keep = true; }
    return out;
  } finally {
    claim?.release();
    if (!keep) model.dispose();
  }
}
