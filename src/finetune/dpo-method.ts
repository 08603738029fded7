/**
 * Direct Preference Optimization as a `FinetuneMethod`: rows -> (prompt, chosen, rejected) token ids -> the seed's
 * truncation; a micro-batch is a list of pairs; the loss is dpoLoss over the pairs of the step against a frozen
 * reference: a copy of the start checkpoint run beside the policy (`reference: copy`), or its log-probs computed once
 * (`reference: precompute`) for what this run will use only: the micro-batches the loader hands out between this
 * session's start and max_steps (each as the batch the policy sees, so the values equal `copy`'s bit for bit and a
 * resumed run computes the same ones), and the eval pairs; the reference is freed before the first step. Eval: the
 * DPO loss and TRL's rewards on held-out pairs (`eval_rewards/...`).
 */
import type { ChatMessage, WmTokenizer } from '../data/tokenizer';
import type { LossHook } from '../train/trainer';
import { checkMessages, encodePlain } from './chat-data';
import { dpoLoss, referenceLogps, truncatePair, type DpoLossType, type DpoMetrics, type DpoPair, type LogitModel } from './dpo';
import type { FinetuneConfig } from './config';
import type { SourcedRow } from './rows';
import { loadCheckedModel, type FinetuneMethod } from './method';

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
  /** Precomputed reference log-probs of the eval pairs (then `reference` may be null). */
  refEval?: { chosen: number[]; rejected: number[] };
}

/** Metrics of a model on pairs, in batches, without gradients (eval). */
export function dpoEvaluate(policy: LogitModel, reference: LogitModel | null, pairs: DpoPair[], o: DpoHookOptions, prefix = 'eval_'): Record<string, number> {
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

/** A DPO micro-batch: its pairs and, with a precomputed reference, their reference log-probs (built once on the host). */
export interface DpoBatch {
  pairs: DpoPair[];
  ref?: { chosen: number[]; rejected: number[] };
}

/** Where the reference comes from while a run trains: the model (copy) or log-probs computed before the first step. */
export interface DpoReference {
  model: (LogitModel & { dispose(): void }) | null;
  /** Precomputed: reference log-probs of each training micro-batch, by its loader position. */
  train?: Map<number, { chosen: number[]; rejected: number[] }>;
  eval?: { chosen: number[]; rejected: number[] };
}

/** The DPO loss hook of the Trainer (reference read at call time: it may be precomputed after the hook is made). */
export function dpoLossHook(policy: LogitModel, reference: DpoReference, evalPairs: DpoPair[], o: Omit<DpoHookOptions, 'refEval'>): LossHook<DpoBatch> {
  const stepMean = new MetricMean();
  return {
    items: (b) => b.pairs.length,
    tokens: (b) => b.pairs.reduce((n, p) => n + 2 * p.prompt.length + p.chosen.length + p.rejected.length, 0),
    loss: (b, numItems) => {
      const r = dpoLoss(policy, reference.model, b.pairs, { beta: o.beta, labelSmoothing: o.labelSmoothing, lossType: o.lossType, rpoAlpha: o.rpoAlpha, padId: o.padId, referenceLogps: b.ref, numPairsInStep: numItems });
      stepMean.add(r.metrics, b.pairs.length);
      return r.loss;
    },
    stepMetrics: () => stepMean.take(),
    summaryKeys: ['rewards/margins', 'rewards/accuracies'],
    evaluate: () => {
      const m = dpoEvaluate(policy, reference.model, evalPairs, { ...o, refEval: reference.eval });
      return { eval_loss: m.eval_loss!, ...m };
    },
  };
}

export const DPO: FinetuneMethod<DpoPair, DpoBatch> = {
  kind: 'dpo',
  buildItems: (tok, rows, config, what) => {
    const items = buildDpoPairs(tok, rows, config, what);
    return { items, examples: items.length };
  },
  // prompt + completion lengths are truncated to dpo.max_length; the model's own range check names the position
  maxLength: () => null,
  setup: ({ config, tok, policy, train, eval: evalPairs, log }) => {
    const d = config.dpo;
    const t = config.training;
    const refDir = d.reference_model ?? config.model.init_from;
    const model = loadReference(refDir, config, tok, policy);
    const reference: DpoReference = { model };
    const padId = tok.padTokenId ?? tok.eosTokenId ?? 0;
    const bs = t.per_device_eval_batch_size;
    const hook = dpoLossHook(policy, reference, evalPairs, { beta: d.beta, labelSmoothing: d.label_smoothing, lossType: d.loss_type, rpoAlpha: d.rpo_alpha, padId, evalBatchSize: bs });
    return {
      batch: (idx, position) => ({ pairs: idx.map((i) => train[i]!), ref: reference.train ? precomputedAt(reference.train, position) : undefined }),
      hook,
      describe: () => `dpo: ${train.length} training pairs, ${evalPairs.length} eval pairs; loss ${d.loss_type}, beta ${d.beta}, reference ${d.reference} (${refDir}); ` +
        `${t.max_steps} steps of ${t.per_device_train_batch_size} x ${t.gradient_accumulation_steps} pairs`,
      beforeTraining: async (loader, end, stopping) => {
        if (d.reference !== 'precompute' || !reference.model) return;
        const t1 = performance.now();
        const batches = loader.batchesUntil(end);
        const done = new Map<number, { chosen: number[]; rejected: number[] }>();
        for (const b of batches) {
          // between micro-batches: let a signal handler run (Ctrl-C asks the trainer to stop) and honour it
          await new Promise((resolve) => setImmediate(resolve));
          if (stopping()) {
            log(`dpo: stopped during the reference precompute (${done.size} of ${batches.length} micro-batches); nothing was trained`);
            return;
          }
          done.set(b.position, referenceLogps(reference.model, b.items.map((i) => train[i]!), { padId, batchSize: b.items.length }));
        }
        reference.train = done;
        reference.eval = referenceLogps(reference.model, evalPairs, { padId, batchSize: bs });
        reference.model.dispose();
        reference.model = null;
        const pairs = batches.reduce((n, b) => n + b.items.length, 0);
        log(`dpo: reference log-probs of the ${pairs} training pairs this run uses (${batches.length} micro-batches of ${train.length} pairs) and the ${evalPairs.length} eval pairs, ` +
          `in ${((performance.now() - t1) / 1000).toFixed(1)}s; reference model freed`);
      },
      samplePrompt: () => evalPairs[0]?.prompt,
      dispose: () => { reference.model?.dispose(); reference.model = null; },
    };
  },
};

function precomputedAt(train: Map<number, { chosen: number[]; rejected: number[] }>, position: number): { chosen: number[]; rejected: number[] } {
  const r = train.get(position);
  if (!r) throw new Error(`dpo: no precomputed reference log-probs for the micro-batch at loader position ${position} (past max_steps?)`);
  return r;
}

/** The frozen reference: any registered causal LM with the policy's vocabulary. */
function loadReference(dir: string, config: FinetuneConfig, tok: WmTokenizer, policy: LogitModel): LogitModel & { dispose(): void } {
  const reference = loadCheckedModel(dir, 'dpo.reference_model', config.model.router_layout, tok);
  if (reference.config.vocab_size !== policy.config.vocab_size) {
    reference.dispose();
    throw new Error(`${config.source}: the policy ${config.model.init_from} has vocab_size ${policy.config.vocab_size} but the reference ${dir} has ${reference.config.vocab_size}`);
  }
  return reference;
}
