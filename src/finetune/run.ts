/**
 * SFT and DPO runs on top of the pre-training Trainer (what `wm sft` / `wm dpo` and notebook 7 call):
 *
 *   runSft(config)   rows -> chat examples (loss masks) -> packed rows -> Trainer with an SFT LossHook
 *                    (token mean over the step's targets), eval = assistant loss on the held-out split
 *   runDpo(config)   rows -> (prompt, chosen, rejected) ids -> truncation -> Trainer with a DPO LossHook
 *                    (pairs of the step), frozen reference (a copy of the start checkpoint, or log-probs
 *                    precomputed once), eval = DPO loss and rewards on held-out pairs (`eval_rewards/...`)
 *
 * Everything that can be wrong with the input (columns, roles, chat template, long prompts, empty data after
 * filtering, vocabulary of tokenizer / policy / reference) fails before the first step, and nothing is written
 * before that; then the output folder is locked (one run per folder) and an earlier run there is moved into
 * previous-runs/. Checkpoints (each a complete model folder with tokenizer and generation_config.json), exact resume,
 * Ctrl-C / SIGTERM (the caller calls trainer.requestStop()), progress lines and metrics.jsonl come from the Trainer;
 * the final model goes to `<output_dir>/final` atomically.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../tf';
import { DogeForCausalLM } from '../models/doge/model';
import { loadTokenizer, type ChatMessage, type WmTokenizer } from '../data/tokenizer';
import { downloadHubDataset } from '../data/hub';
import { permutation } from '../ops/random';
import { Trainer, type BatchSource, type CausalLM, type LossHook, type TrainResult } from '../train/trainer';
import { acquireOutputLock, cleanStaleTemporaries, startFreshRun, writeFolderAtomically, writeRunFile } from '../train/checkpoint';
import { writeGenerationConfig } from '../generation/generation-config';
import { checkMessages, encodePlain, sftExample, type ChatExample } from './chat-data';
import { countTargets, packDocuments, type PackedRow } from './packing';
import { rowsToSftBatch, sftLoss } from './sft';
import { dpoLoss, referenceLogps, truncatePair, type DpoLossType, type DpoMetrics, type DpoPair } from './dpo';
import { readFinetuneRows, type SourcedRow } from './rows';
import { endOfTurnId } from './chat';
import type { FinetuneConfig } from './config';

/** Endless shuffled batches of item indices; `position` = items consumed (resumable, JSON). */
export class IndexLoader implements BatchSource {
  position: number;
  private epoch = -1;
  private perm: Uint32Array = new Uint32Array(0);
  constructor(readonly n: number, readonly batchSize: number, readonly seed: number, position = 0) {
    if (n < 1) throw new Error('IndexLoader: no items');
    this.position = position;
  }
  next(): number[] {
    const out: number[] = [];
    for (let b = 0; b < this.batchSize; b++, this.position++) {
      const e = Math.floor(this.position / this.n);
      if (e !== this.epoch) { this.perm = permutation(this.n, this.seed, e); this.epoch = e; }
      out.push(this.perm[this.position % this.n]!);
    }
    return out;
  }
}

export interface FinetuneRunOptions {
  /** Continue from a checkpoint folder, or 'latest'. */
  resume?: string;
  log?: (line: string) => void;
  /** Called after every optimizer step (e.g. a notebook's live plot). */
  onStep?: (row: { step: number; loss: number; gradNorm: number; lr: number }, trainer: Trainer) => void;
  /** Called with the trainer before training starts (the CLI installs its Ctrl-C handler there). */
  onTrainer?: (trainer: Trainer) => void;
  /** Keep the trained model and return it (default: disposed). */
  keepModel?: boolean;
}

export interface FinetuneRunResult extends TrainResult {
  finalDir?: string;
  model?: DogeForCausalLM;
  trainItems: number;
  evalItems: number;
  seconds: number;
}

/** The rows of the train and eval inputs (a hub dataset is downloaded first; a missing eval split holds out 5 %). */
async function loadRows(config: FinetuneConfig, log: (l: string) => void): Promise<{ train: SourcedRow[]; eval: SourcedRow[] }> {
  const d = config.data;
  const seed = config.training.seed;
  const read = async (input: string | null, split: string): Promise<SourcedRow[] | null> => {
    if (d.dataset && (!input || input === d.dataset)) {
      const files = await downloadHubDataset({ dataset: d.dataset, split, subdir: d.subdir ?? undefined });
      if (!files.length) return null;
      return readFinetuneRows(d.dataset, { files });
    }
    if (!input) return null;
    return readFinetuneRows(input, { split, seed: input.startsWith('embedded:') ? 0 : seed });
  };
  let train = (await read(d.train, d.train_split))!;
  if (!train) throw new Error(`${config.source}: no training rows (data.train / data.dataset)`);
  let evalRows = d.eval ? await read(d.eval, d.eval_split) : d.dataset ? await read(null, d.eval_split).catch(() => null) : null;
  if (!d.eval && !d.dataset && d.train?.startsWith('embedded:')) evalRows = await read(d.train, 'test');
  if (!evalRows) {
    // hold out the last 5 % of a seeded shuffle
    const perm = permutation(train.length, seed, 7);
    const k = Math.max(1, Math.floor(train.length * 0.05));
    const held = new Set(Array.from(perm.slice(0, k)));
    evalRows = train.filter((_, i) => held.has(i));
    train = train.filter((_, i) => !held.has(i));
    log(`note: no eval split; holding out ${k} of the training rows`);
  }
  if (d.max_train_rows) train = train.slice(0, d.max_train_rows);
  if (d.max_eval_rows) evalRows = evalRows.slice(0, d.max_eval_rows);
  return { train, eval: evalRows };
}

function loadModelChecked(dir: string, what: string, routerLayout: 'token' | 'hf', tok: WmTokenizer): DogeForCausalLM {
  if (!fs.existsSync(path.join(dir, 'model.safetensors')) && !fs.existsSync(path.join(dir, 'model.safetensors.index.json'))) {
    throw new Error(`${what} ${dir} has no model.safetensors (give a checkpoint folder written by savePretrained / wm pretrain)`);
  }
  const m = DogeForCausalLM.fromPretrained(dir, { routerLayout });
  if (tok.vocabSize > m.config.vocab_size) {
    m.dispose();
    throw new Error(`${what} ${dir} has vocab_size ${m.config.vocab_size} but the tokenizer ${tok.dir} has ${tok.vocabSize} tokens`);
  }
  return m;
}

/**
 * Take the output folder once every input check has passed: its lock (one run per folder), then either a fresh run
 * (an earlier run there is moved into previous-runs/, nothing is deleted) or, with `resume`, this folder's run.
 */
function claimOutput(outputDir: string, resume: string | undefined, log: (l: string) => void): { release: () => void; runId?: string } {
  const release = acquireOutputLock(outputDir, log);
  try {
    cleanStaleTemporaries(outputDir, log);
    if (resume) return { release };
    const fresh = startFreshRun(outputDir);
    if (fresh.movedTo) log(`note: ${outputDir} held an earlier run; moved it to ${fresh.movedTo} and starting run ${fresh.runId} (resume to continue a run instead)`);
    return { release, runId: fresh.runId };
  } catch (e) {
    release();
    throw e;
  }
}

/** Every checkpoint and final/ is a complete chat-model folder: weights, tokenizer, decoding defaults (stop at end-of-turn). */
function modelFolderExtras(tok: WmTokenizer): (dir: string) => void {
  let eot: number | undefined;
  try {
    eot = tok.chatTemplate ? endOfTurnId(tok) : undefined;
  } catch {
    eot = undefined;
  }
  const eos = [...new Set([eot, tok.eosTokenId].filter((x): x is number => x !== undefined))];
  return (dir) => {
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      const src = path.join(tok.dir, f);
      if (fs.existsSync(src)) fs.copyFileSync(src, path.join(dir, f));
    }
    writeGenerationConfig(dir, { do_sample: false, max_new_tokens: 64, bos_token_id: tok.bosTokenId ?? null, eos_token_id: eos.length === 1 ? eos[0]! : eos, pad_token_id: tok.padTokenId ?? null });
  };
}

/**
 * Claim the output folder, build the trainer (with this run's id), train, and write `final/` atomically. The model
 * is disposed unless `opts.keepModel` (and always when something fails).
 */
async function trainAndSave(config: FinetuneConfig, model: DogeForCausalLM, tok: WmTokenizer, opts: FinetuneRunOptions, t0: number, items: { train: number; eval: number }, makeTrainer: (runId: string | undefined, extras: (dir: string) => void) => Trainer): Promise<FinetuneRunResult> {
  const t = config.training;
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  let keep = false;
  let claim: ReturnType<typeof claimOutput> | undefined;
  try {
    claim = claimOutput(t.output_dir, opts.resume, log);
    const extras = modelFolderExtras(tok);
    const trainer = makeTrainer(claim.runId, extras);
    let result: TrainResult;
    try {
      if (opts.resume) {
        trainer.resume(opts.resume);
        writeRunFile(t.output_dir, trainer.runId);
      } else {
        trainer.metrics.truncateAfter(0);
      }
      opts.onTrainer?.(trainer);
      result = await trainer.train();
    } finally {
      trainer.dispose();
    }
    const finalDir = path.join(t.output_dir, 'final');
    if (!result.stopped) {
      await writeFolderAtomically(finalDir, async (tmp) => {
        model.savePretrained(tmp);
        extras(tmp);
      });
    }
    const out: FinetuneRunResult = { ...result, finalDir: result.stopped ? undefined : finalDir, trainItems: items.train, evalItems: items.eval, seconds: (performance.now() - t0) / 1000 };
    if (opts.keepModel) { out.model = model; keep = true; }
    return out;
  } finally {
    claim?.release();
    if (!keep) model.dispose();
  }
}

// ------------------------------------------------------------------------------------------------------ SFT

/** Tokenize and pack SFT rows; errors name the row. */
export function buildSftRows(tok: WmTokenizer, rows: SourcedRow[], config: Pick<FinetuneConfig, 'sft' | 'source'>, what: string): { rows: PackedRow[]; examples: number } {
  const examples: ChatExample[] = rows.map((r) => sftExample(tok, r.row, { lossOn: config.sft.loss_on, where: r.where }));
  const kept = examples.filter((e) => e.inputIds.length >= 2);
  const pad = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const packed = packDocuments(kept, config.sft.seq_len, config.sft.packing, { padId: pad }).filter((r) => countTargets([r]) > 0);
  if (!packed.length) throw new Error(`${config.source}: the ${what} data is empty after tokenizing and packing (${rows.length} rows, ${kept.length} usable examples, seq_len ${config.sft.seq_len}, packing ${config.sft.packing})`);
  return { rows: packed, examples: kept.length };
}

/** The SFT loss hook of the Trainer: batches are row indices into `train`. */
export function sftLossHook(model: DogeForCausalLM, train: PackedRow[], evalRows: PackedRow[], o: { documentAware: boolean; evalBatchSize: number; evalBatches: number }): LossHook {
  const rowsOf = (b: unknown): PackedRow[] => (b as number[]).map((i) => train[i]!);
  return {
    items: (b) => countTargets(rowsOf(b)),
    tokens: (b) => rowsOf(b).reduce((n, r) => n + r.attentionMask.reduce((a, x) => a + x, 0), 0),
    // summed NLL of the micro-batch / targets of the whole step (a micro-batch without targets adds 0)
    loss: (b, numItems, seed) => tf.tidy(() => sftLoss(model, rowsToSftBatch(rowsOf(b), { documentAware: o.documentAware }), numItems, { training: true, dropoutSeed: seed })),
    evaluate: () => {
      const { loss } = sftEvalLoss(model, evalRows, o);
      return { eval_loss: loss, eval_perplexity: Math.exp(loss) };
    },
  };
}

/** Mean assistant (target) loss over held-out rows, pooled over tokens. */
export function sftEvalLoss(model: DogeForCausalLM, rows: PackedRow[], o: { documentAware: boolean; evalBatchSize: number; evalBatches?: number }): { loss: number; targets: number } {
  let nll = 0;
  let n = 0;
  const maxB = o.evalBatches && o.evalBatches > 0 ? o.evalBatches : Infinity;
  for (let b = 0; b < maxB && b * o.evalBatchSize < rows.length; b++) {
    const part = rows.slice(b * o.evalBatchSize, (b + 1) * o.evalBatchSize);
    const k = countTargets(part);
    if (!k) continue;
    const v = tf.tidy(() => sftLoss(model, rowsToSftBatch(part, { documentAware: o.documentAware }), 1));
    nll += v.dataSync()[0]!;
    v.dispose();
    n += k;
  }
  return { loss: n ? nll / n : NaN, targets: n };
}

export async function runSft(config: FinetuneConfig, opts: FinetuneRunOptions = {}): Promise<FinetuneRunResult> {
  const t0 = performance.now();
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const tok = await loadTokenizer(config.data.tokenizer_dir ?? config.model.init_from);
  const rows = await loadRows(config, log);
  const train = buildSftRows(tok, rows.train, config, 'training');
  const evalSet = buildSftRows(tok, rows.eval, config, 'eval');
  const model = loadModelChecked(config.model.init_from, 'model.init_from', config.model.router_layout, tok);
  if (config.sft.seq_len > model.config.max_position_embeddings) {
    model.dispose();
    throw new Error(`${config.source}: sft.seq_len ${config.sft.seq_len} exceeds the model's max_position_embeddings ${model.config.max_position_embeddings}`);
  }
  const t = config.training;
  const targets = countTargets(train.rows);
  log(`sft: ${train.examples} training examples -> ${train.rows.length} rows of ${config.sft.seq_len} tokens (${config.sft.packing} packing, loss on ${config.sft.loss_on}: ${targets} targets), ${evalSet.examples} eval examples; ${t.max_steps} steps of ${t.per_device_train_batch_size} x ${t.gradient_accumulation_steps} rows`);
  const documentAware = config.sft.packing === 'document';
  return trainAndSave(config, model, tok, opts, t0, { train: train.examples, eval: evalSet.examples }, (runId, extras) => new Trainer({
    model: model as unknown as CausalLM,
    args: t,
    seqLen: config.sft.seq_len,
    config: { kind: 'sft', model: config.model, data: config.data, sft: config.sft, training: t },
    log,
    onStep: opts.onStep,
    trainLoader: (position) => new IndexLoader(train.rows.length, t.per_device_train_batch_size, t.seed, (position as number | undefined) ?? 0),
    lossHook: sftLossHook(model, train.rows, evalSet.rows, { documentAware, evalBatchSize: t.per_device_eval_batch_size, evalBatches: t.eval_batches }),
    runId,
    checkpointExtras: extras,
  }));
}

// ------------------------------------------------------------------------------------------------------ DPO

const isMessages = (v: unknown): v is ChatMessage[] => Array.isArray(v);

/**
 * One preference row -> prompt / chosen / rejected ids (spec 2.1). Conversational rows (message lists; chosen and
 * rejected may be whole conversations whose last turn differs, as in ultrafeedback_binarized) use the render
 * difference; string rows are encoded as they are, with EOS appended to completions that lack it.
 */
export function preferenceIds(tok: WmTokenizer, row: Record<string, unknown>, where: string): DpoPair {
  for (const c of ['chosen', 'rejected']) if (row[c] === undefined) throw new Error(`${where}: no '${c}' column (columns: ${Object.keys(row).join(', ')})`);
  let { prompt, chosen, rejected } = row as { prompt?: unknown; chosen: unknown; rejected: unknown };
  if (isMessages(chosen) || isMessages(rejected)) {
    if (!isMessages(chosen) || !isMessages(rejected)) throw new Error(`${where}: 'chosen' and 'rejected' must both be message lists or both strings`);
    let c = checkMessages(chosen, `${where} (chosen)`, false);
    let r = checkMessages(rejected, `${where} (rejected)`, false);
    let p: ChatMessage[];
    if (isMessages(prompt)) p = checkMessages(prompt, `${where} (prompt)`, false);
    else {
      // whole conversations: the prompt is everything before the last turn, which must be the same in both
      if (c.length < 2) throw new Error(`${where}: 'chosen' has no prompt turns and there is no message-list 'prompt' column`);
      p = c.slice(0, -1);
      if (JSON.stringify(r.slice(0, -1)) !== JSON.stringify(p)) throw new Error(`${where}: 'chosen' and 'rejected' differ before their last turn`);
      c = c.slice(-1);
      r = r.slice(-1);
    }
    if (c.at(-1)?.role !== 'assistant' || r.at(-1)?.role !== 'assistant') throw new Error(`${where}: the last turn of 'chosen' and 'rejected' must be the assistant's`);
    if (!tok.chatTemplate) throw new Error(`${where}: message-list preferences need a chat template, and ${tok.dir}/tokenizer_config.json has none`);
    const pText = tok.applyChatTemplate(p, { addGenerationPrompt: true });
    const completion = (m: ChatMessage[]): number[] => {
      const full = tok.applyChatTemplate([...p, ...m]);
      if (!full.startsWith(pText)) throw new Error(`${where}: render(prompt, generation prompt) is not a prefix of render(prompt + completion)`);
      return tok.encode(full.slice(pText.length));
    };
    return { prompt: tok.encode(pText), chosen: completion(c), rejected: completion(r) };
  }
  if (typeof prompt !== 'string') throw new Error(`${where}: no 'prompt' column (string preferences need one)`);
  if (typeof chosen !== 'string' || typeof rejected !== 'string') throw new Error(`${where}: 'chosen' and 'rejected' must be strings or message lists`);
  const eos = tok.eosTokenId;
  const comp = (s: string): number[] => {
    const ids = tok.encode(s); // completions continue the prompt: no special tokens of their own
    if (eos !== undefined && ids.at(-1) !== eos) ids.push(eos);
    return ids;
  };
  return { prompt: encodePlain(tok, prompt), chosen: comp(chosen), rejected: comp(rejected) };
}

/** Tokenize and truncate preference rows; long prompts are errors unless dpo.long_prompts is 'truncate'. */
export function buildDpoPairs(tok: WmTokenizer, rows: SourcedRow[], config: Pick<FinetuneConfig, 'dpo' | 'source'>, what: string): DpoPair[] {
  const d = config.dpo;
  const out: DpoPair[] = [];
  for (const r of rows) {
    const p = preferenceIds(tok, r.row, r.where);
    if (d.max_prompt_length && p.prompt.length > d.max_prompt_length && d.long_prompts === 'error') {
      throw new Error(`${r.where}: the prompt has ${p.prompt.length} tokens, more than dpo.max_prompt_length ${d.max_prompt_length} (raise it, or set dpo.long_prompts: truncate for the seed's left truncation)`);
    }
    const t = truncatePair(p.prompt, p.chosen, p.rejected, { maxLength: d.max_length, maxPromptLength: d.max_prompt_length, maxCompletionLength: d.max_completion_length });
    if (t && t.chosen.length && t.rejected.length) out.push(t);
  }
  if (!out.length) throw new Error(`${config.source}: the ${what} preference data is empty after truncation (${rows.length} rows; max_length ${d.max_length}, max_prompt_length ${d.max_prompt_length})`);
  return out;
}

/** Weighted means of DPO metrics over batches. */
class MetricMean {
  private sums: Record<string, number> = {};
  private n = 0;
  add(m: DpoMetrics, w: number): void {
    for (const [k, v] of Object.entries(m)) this.sums[k] = (this.sums[k] ?? 0) + v * w;
    this.n += w;
  }
  take(prefix = ''): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.sums)) if (k !== 'loss') out[prefix + k] = v / this.n;
    if (prefix && 'loss' in this.sums) out[`${prefix}loss`] = this.sums.loss! / this.n;
    this.sums = {};
    this.n = 0;
    return out;
  }
}

export interface DpoHookOptions {
  beta: number;
  labelSmoothing: number;
  /** 'sigmoid' (default), 'hinge' or 'ipo'. */
  lossType?: DpoLossType;
  /** TRL's rpo_alpha (0 or unset = off). */
  rpoAlpha?: number;
  padId: number;
  evalBatchSize: number;
  /** Precomputed reference log-probs of the train / eval pairs (then `reference` may be null). */
  refTrain?: { chosen: number[]; rejected: number[] };
  refEval?: { chosen: number[]; rejected: number[] };
}

/** Metrics of a model on pairs, in batches, without gradients (eval). */
export function dpoEvaluate(policy: DogeForCausalLM, reference: DogeForCausalLM | null, pairs: DpoPair[], o: Omit<DpoHookOptions, 'refTrain'>, prefix = 'eval_'): Record<string, number> {
  const mean = new MetricMean();
  for (let i = 0; i < pairs.length; i += o.evalBatchSize) {
    const part = pairs.slice(i, i + o.evalBatchSize);
    const ref = o.refEval ? { chosen: o.refEval.chosen.slice(i, i + o.evalBatchSize), rejected: o.refEval.rejected.slice(i, i + o.evalBatchSize) } : undefined;
    const r = dpoLoss(policy, reference, part, { beta: o.beta, labelSmoothing: o.labelSmoothing, lossType: o.lossType, rpoAlpha: o.rpoAlpha, padId: o.padId, referenceLogps: ref });
    r.loss.dispose();
    mean.add(r.metrics, part.length);
  }
  return mean.take(prefix);
}

/** The DPO loss hook of the Trainer: batches are pair indices into `train`. */
export function dpoLossHook(policy: DogeForCausalLM, reference: DogeForCausalLM | null, train: DpoPair[], evalPairs: DpoPair[], o: DpoHookOptions): LossHook {
  const stepMean = new MetricMean();
  return {
    items: (b) => (b as number[]).length,
    tokens: (b) => (b as number[]).reduce((n, i) => n + 2 * train[i]!.prompt.length + train[i]!.chosen.length + train[i]!.rejected.length, 0),
    loss: (b, numItems) => {
      const idx = b as number[];
      const pairs = idx.map((i) => train[i]!);
      const ref = o.refTrain ? { chosen: idx.map((i) => o.refTrain!.chosen[i]!), rejected: idx.map((i) => o.refTrain!.rejected[i]!) } : undefined;
      const r = dpoLoss(policy, reference, pairs, { beta: o.beta, labelSmoothing: o.labelSmoothing, lossType: o.lossType, rpoAlpha: o.rpoAlpha, padId: o.padId, referenceLogps: ref, numPairsInStep: numItems });
      stepMean.add(r.metrics, pairs.length);
      return r.loss;
    },
    stepMetrics: () => stepMean.take(),
    evaluate: () => {
      const m = dpoEvaluate(policy, reference, evalPairs, o);
      return { eval_loss: m.eval_loss!, ...m };
    },
  };
}

export async function runDpo(config: FinetuneConfig, opts: FinetuneRunOptions = {}): Promise<FinetuneRunResult> {
  const t0 = performance.now();
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const d = config.dpo;
  const tok = await loadTokenizer(config.data.tokenizer_dir ?? config.model.init_from);
  const rows = await loadRows(config, log);
  const train = buildDpoPairs(tok, rows.train, config, 'training');
  const evalPairs = buildDpoPairs(tok, rows.eval, config, 'eval');
  const policy = loadModelChecked(config.model.init_from, 'model.init_from', config.model.router_layout, tok);
  const refDir = d.reference_model ?? config.model.init_from;
  let reference: DogeForCausalLM | null;
  try {
    reference = loadModelChecked(refDir, 'dpo.reference_model', config.model.router_layout, tok);
  } catch (e) {
    policy.dispose();
    throw e;
  }
  if (reference.config.vocab_size !== policy.config.vocab_size) {
    const msg = `${config.source}: the policy ${config.model.init_from} has vocab_size ${policy.config.vocab_size} but the reference ${refDir} has ${reference.config.vocab_size}`;
    policy.dispose();
    reference.dispose();
    throw new Error(msg);
  }
  const padId = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const t = config.training;
  let refTrain: DpoHookOptions['refTrain'];
  let refEval: DpoHookOptions['refEval'];
  if (d.reference === 'precompute') {
    const t1 = performance.now();
    refTrain = referenceLogps(reference, train, { padId, batchSize: t.per_device_eval_batch_size });
    refEval = referenceLogps(reference, evalPairs, { padId, batchSize: t.per_device_eval_batch_size });
    reference.dispose();
    reference = null;
    log(`dpo: reference log-probs of ${train.length + evalPairs.length} pairs precomputed in ${((performance.now() - t1) / 1000).toFixed(1)}s`);
  }
  log(`dpo: ${train.length} training pairs, ${evalPairs.length} eval pairs; loss ${d.loss_type}, beta ${d.beta}, reference ${d.reference} (${refDir}); ${t.max_steps} steps of ${t.per_device_train_batch_size} x ${t.gradient_accumulation_steps} pairs`);
  try {
    return await trainAndSave(config, policy, tok, opts, t0, { train: train.length, eval: evalPairs.length }, (runId, extras) => new Trainer({
      model: policy as unknown as CausalLM,
      args: t,
      seqLen: d.max_length ?? 0,
      config: { kind: 'dpo', model: config.model, data: config.data, dpo: config.dpo, training: t },
      log,
      onStep: opts.onStep,
      trainLoader: (position) => new IndexLoader(train.length, t.per_device_train_batch_size, t.seed, (position as number | undefined) ?? 0),
      lossHook: dpoLossHook(policy, reference, train, evalPairs, { beta: d.beta, labelSmoothing: d.label_smoothing, lossType: d.loss_type, rpoAlpha: d.rpo_alpha, padId, evalBatchSize: t.per_device_eval_batch_size, refTrain, refEval }),
      runId,
      checkpointExtras: extras,
    }));
  } finally {
    reference?.dispose();
  }
}
