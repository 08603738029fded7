/**
 * Direct Preference Optimization (spec 2.2-2.5; TRL's DPOTrainer as the seed ran it), three of TRL's loss types.
 *
 *   log pi(y|x)  = sum over completion tokens of log-softmax(logits at the previous position)[token]   (summed)
 *   Delta        = (log pi(c|x) - log ref(c|x)) - (log pi(r|x) - log ref(r|x))
 *   loss         = mean over pairs of
 *     sigmoid    (1 - eps) * -log sigmoid(beta Delta)  +  eps * -log sigmoid(-beta Delta)   (DPO; cDPO with eps > 0)
 *     hinge      relu(1 - beta Delta)                                                         (RSO / SLiC)
 *     ipo        (Delta - 1 / (2 beta))^2, every log pi and log ref averaged over the completion's tokens
 *                instead of summed (TRL divides all_logps by the completion length for ipo only)   (IPO, eq. 17)
 *   rewards      = beta (log pi - log ref) for chosen and rejected (with ipo's averaged log-probs)
 *   + rpo_alpha * NLL   TRL's RPO term (rpo_alpha > 0): the chosen completions' token-mean negative log-likelihood,
 *                added to the pair mean; it keeps the chosen answers likely while the margin grows (DPO alone lets
 *                both log-probs fall, and the shared tokens after the answer word drift)
 *
 * Chosen and rejected sequences go through the model in one batch (all chosen rows, then all rejected rows, right-
 * padded). The reference model runs outside the gradient tape, or its log-probs are precomputed once
 * (`referenceLogps`) and passed as numbers: both give the same loss. Metrics carry TRL's names.
 */
import { tf } from '../tf';
import { gatherRows, tokenLogprobs } from '../ops';
import type { CausalLMInput } from '../models/causal-lm';

/** A preference pair as token ids: prompt, then each completion (prompt + completion is the sequence). */
export interface DpoPair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}

export interface TruncationOptions {
  /** Keep the first maxLength tokens of prompt + completion (null/undefined = no limit). */
  maxLength?: number | null;
  /** The seed's rule: keep the prompt's last maxPromptLength tokens. Unset = current TRL's rule (see truncatePair). */
  maxPromptLength?: number | null;
  /** Keep each completion's first maxCompletionLength tokens. */
  maxCompletionLength?: number | null;
}

/**
 * Truncate a pair (spec 2.2). The seed (TRL 0.13): prompt keeps its last maxPromptLength tokens, each completion its
 * first maxCompletionLength, then prompt + completion its first maxLength. With maxPromptLength unset (current TRL)
 * only maxLength applies and a pair whose prompt alone fills maxLength is dropped (returns null).
 */
export function truncatePair(prompt: number[], chosen: number[], rejected: number[], opts: TruncationOptions = {}): DpoPair | null {
  const { maxLength, maxPromptLength, maxCompletionLength } = opts;
  for (const [k, v] of Object.entries({ maxLength, maxPromptLength, maxCompletionLength })) {
    if (v !== undefined && v !== null && (!Number.isInteger(v) || v < 1)) throw new Error(`truncatePair: ${k} must be a positive integer or null, got ${v}`);
  }
  let p = prompt;
  if (maxPromptLength) p = p.slice(Math.max(0, p.length - maxPromptLength));
  else if (maxLength && p.length >= maxLength) return null;
  const comp = (c: number[]): number[] => {
    let x = maxCompletionLength ? c.slice(0, maxCompletionLength) : c;
    if (maxLength) x = x.slice(0, Math.max(0, maxLength - p.length));
    return x;
  };
  if (maxLength && p.length > maxLength) p = p.slice(0, maxLength);
  return { prompt: p, chosen: comp(chosen), rejected: comp(rejected) };
}

/** A sequence and which of its tokens are the completion. */
export interface ScoredSequence {
  inputIds: number[];
  /** 1 = completion token (scored), 0 = prompt. */
  completionMask: number[];
}

export interface CompletionLogpsOptions {
  padId: number;
  /** Also return the pooled logit statistics of the metrics (sum, count, entropy, argmax accuracy). */
  stats?: boolean;
}

/** Per-sequence summed completion log-probs [N] (a tensor, differentiable) and pooled statistics per sequence. */
export interface CompletionLogps {
  logps: tf.Tensor1D;
  /** Per sequence: sum of raw logits over (completion position x vocab), count of entries, entropy sum, argmax hits, tokens. */
  stats?: { logitSum: number[]; logitCount: number[]; entropySum: number[]; correct: number[]; tokens: number[] };
}

/** What DPO needs of a policy or reference (every registered causal LM has it). */
export interface LogitModel {
  readonly config: { vocab_size: number };
  forward(input: CausalLMInput): { logits: tf.Tensor };
}

/** Right-padded [N, T] batch of sequences with the attention mask and the flat target indices. */
function batchSequences(seqs: ScoredSequence[], padId: number) {
  if (!seqs.length) throw new Error('completionLogps: no sequences');
  const T = Math.max(...seqs.map((s) => s.inputIds.length));
  const N = seqs.length;
  const ids = new Int32Array(N * T).fill(padId);
  const attn = new Int32Array(N * T);
  seqs.forEach((s, n) => {
    if (s.inputIds.length !== s.completionMask.length) throw new Error(`completionLogps: sequence ${n} has ${s.inputIds.length} ids and ${s.completionMask.length} mask entries`);
    if (s.completionMask[0]) throw new Error(`completionLogps: sequence ${n} starts with a completion token (it needs at least one prompt token to be predicted from)`);
    s.inputIds.forEach((id, t) => { ids[n * T + t] = id; attn[n * T + t] = 1; });
  });
  return { ids, attn, N, T };
}

/**
 * Summed log-probs of the completion tokens of each sequence under `model` (token t predicted by the logits at
 * t - 1). Call it inside tf.variableGrads to differentiate; with `stats` the pooled numbers TRL logs come too.
 */
export function completionLogps(model: LogitModel, seqs: ScoredSequence[], opts: CompletionLogpsOptions): CompletionLogps {
  const { ids, attn, N, T } = batchSequences(seqs, opts.padId);
  const V = model.config.vocab_size;
  // positions t - 1 that predict a completion token t (flat row index into [N*(T-1)]), its target and owner sequence
  const targets: number[] = [];
  const rowOf: number[] = [];
  const posOf: number[] = [];
  seqs.forEach((s, n) => {
    for (let t = 1; t < s.inputIds.length; t++) {
      if (!s.completionMask[t]) continue;
      targets.push(s.inputIds[t]!);
      rowOf.push(n);
      posOf.push(n * (T - 1) + (t - 1));
    }
  });
  const K = posOf.length;
  const out: CompletionLogps = { logps: null as unknown as tf.Tensor1D };
  out.logps = tf.tidy(() => {
    const inputIds = tf.tensor2d(ids, [N, T], 'int32');
    const attentionMask = tf.tensor2d(attn, [N, T], 'int32');
    const { logits } = model.forward({ inputIds, attentionMask });
    const pred = tf.reshape(tf.slice(logits, [0, 0, 0], [N, T - 1, V]), [N * (T - 1), V]); // predicting positions
    const rowLogits = gatherRows(pred, tf.tensor1d(Int32Array.from(posOf), 'int32')); // [K, V] the rows that predict completion tokens
    if (opts.stats) {
      const st = { logitSum: new Array(N).fill(0), logitCount: new Array(N).fill(0), entropySum: new Array(N).fill(0), correct: new Array(N).fill(0), tokens: new Array(N).fill(0) };
      const picked = tf.tidy(() => {
        const rowLogp = tf.logSoftmax(rowLogits);
        const ent = tf.neg(tf.sum(tf.mul(tf.exp(rowLogp), rowLogp), 1)); // [K]
        return tf.stack([tf.sum(rowLogits, 1), ent, tf.cast(tf.argMax(rowLogits, 1), 'float32')]); // [3, K]
      });
      const h = picked.dataSync();
      picked.dispose();
      for (let k = 0; k < K; k++) {
        const n = rowOf[k]!;
        st.logitSum[n] += h[k]!;
        st.logitCount[n] += V;
        st.entropySum[n] += h[K + k]!;
        st.correct[n] += h[2 * K + k] === targets[k]! ? 1 : 0;
        st.tokens[n] += 1;
      }
      out.stats = st;
    }
    const tokenLogp = tokenLogprobs(rowLogits, targets); // [K]
    // sum per sequence: [N, K] one-hot owner matrix (small) times the token log-probs
    const owner = new Float32Array(N * K);
    rowOf.forEach((n, k) => { owner[n * K + k] = 1; });
    return tf.reshape(tf.matMul(tf.tensor2d(owner, [N, K]), tf.reshape(tokenLogp, [-1, 1])), [N]) as tf.Tensor1D;
  });
  return out;
}

/** Prompt + completion sequences of pairs: all chosen, then all rejected (one batch, as TRL). */
export function pairSequences(pairs: DpoPair[]): ScoredSequence[] {
  const seq = (p: number[], c: number[]): ScoredSequence => ({ inputIds: [...p, ...c], completionMask: [...p.map(() => 0), ...c.map(() => 1)] });
  pairs.forEach((p, i) => {
    if (!p.prompt.length) throw new Error(`dpo: pair ${i} has an empty prompt`);
    if (!p.chosen.length || !p.rejected.length) throw new Error(`dpo: pair ${i} has an empty ${p.chosen.length ? 'rejected' : 'chosen'} completion`);
  });
  return [...pairs.map((p) => seq(p.prompt, p.chosen)), ...pairs.map((p) => seq(p.prompt, p.rejected))];
}

/** Reference log-probs of pairs, computed once (no gradient): `reference: 'precompute'`. */
export function referenceLogps(reference: LogitModel, pairs: DpoPair[], opts: { padId: number; batchSize?: number }): { chosen: number[]; rejected: number[] } {
  checkSameVocab(reference, null);
  const bs = opts.batchSize ?? 8;
  const chosen: number[] = [];
  const rejected: number[] = [];
  for (let i = 0; i < pairs.length; i += bs) {
    const part = pairs.slice(i, i + bs);
    const { logps } = completionLogps(reference, pairSequences(part), { padId: opts.padId });
    const v = Array.from(logps.dataSync());
    logps.dispose();
    chosen.push(...v.slice(0, part.length));
    rejected.push(...v.slice(part.length));
  }
  return { chosen, rejected };
}

export const DPO_LOSS_TYPES = ['sigmoid', 'hinge', 'ipo'] as const;
export type DpoLossType = (typeof DPO_LOSS_TYPES)[number];

export interface DpoLossOptions {
  beta: number;
  labelSmoothing?: number;
  padId: number;
  /** 'sigmoid' (default), 'hinge' or 'ipo' (see the file header). */
  lossType?: DpoLossType;
  /** Precomputed reference log-probs of these pairs, summed over tokens for every loss type (then `reference` may be null). */
  referenceLogps?: { chosen: number[]; rejected: number[] };
  /** Divide the summed pair losses by this (pairs of the whole optimizer step); default the number of pairs. */
  numPairsInStep?: number;
  /** TRL's rpo_alpha: add rpoAlpha times the chosen completions' token-mean NLL (default 0 = plain DPO). */
  rpoAlpha?: number;
}

/** TRL's logged metric names (spec 2.5). */
export type DpoMetrics = Record<
  'loss' | 'rewards/chosen' | 'rewards/rejected' | 'rewards/accuracies' | 'rewards/margins' | 'logps/chosen' | 'logps/rejected' | 'logits/chosen' | 'logits/rejected' | 'mean_token_accuracy' | 'entropy',
  number
>;

function checkSameVocab(a: LogitModel, b: LogitModel | null): void {
  if (b && a.config.vocab_size !== b.config.vocab_size) {
    throw new Error(`dpo: the policy has vocab_size ${a.config.vocab_size} but the reference has ${b.config.vocab_size}; they must share a tokenizer`);
  }
}

/** Per-pair loss of Delta ([P] tensor) for each loss type (see the file header). */
function dpoPairLoss(delta: tf.Tensor, lossType: DpoLossType, beta: number, eps: number): tf.Tensor {
  switch (lossType) {
    case 'sigmoid': {
      const z = tf.mul(beta, delta);
      // -log sigmoid(x) = softplus(-x) (tf.logSigmoid's gradient reads its input after tidy has freed it)
      return tf.add(tf.mul(1 - eps, tf.softplus(tf.neg(z))), tf.mul(eps, tf.softplus(z)));
    }
    case 'hinge':
      return tf.relu(tf.sub(1, tf.mul(beta, delta)));
    case 'ipo':
      return tf.square(tf.sub(delta, 1 / (2 * beta)));
  }
}

/** The same on one number (the logged loss). */
export function dpoPairLossValue(delta: number, lossType: DpoLossType, beta: number, eps = 0): number {
  switch (lossType) {
    case 'sigmoid': return -(1 - eps) * logSigmoid(beta * delta) - eps * logSigmoid(-beta * delta);
    case 'hinge': return Math.max(0, 1 - beta * delta);
    case 'ipo': return (delta - 1 / (2 * beta)) ** 2;
  }
}

const logSigmoid = (x: number): number => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));

/**
 * The DPO loss of a batch of pairs and TRL's metrics (see the file header). `loss` is a scalar tensor,
 * differentiable w.r.t. the policy when called inside tf.variableGrads; the reference never records a gradient.
 */
export function dpoLoss(policy: LogitModel, reference: LogitModel | null, pairs: DpoPair[], opts: DpoLossOptions): { loss: tf.Scalar; metrics: DpoMetrics } {
  const lossType = opts.lossType ?? 'sigmoid';
  if (!DPO_LOSS_TYPES.includes(lossType)) throw new Error(`dpo: loss_type '${lossType}' is not supported (supported: ${DPO_LOSS_TYPES.join(', ')})`);
  if (!(opts.beta > 0)) throw new Error(`dpo: beta must be > 0, got ${opts.beta}`);
  const eps = opts.labelSmoothing ?? 0;
  if (!(eps >= 0 && eps < 0.5)) throw new Error(`dpo: label_smoothing must be in [0, 0.5), got ${eps}`);
  if (eps > 0 && lossType !== 'sigmoid') throw new Error(`dpo: label_smoothing (${eps}) applies to loss_type sigmoid only, not '${lossType}'`);
  const rpoAlpha = opts.rpoAlpha ?? 0;
  if (!(rpoAlpha >= 0)) throw new Error(`dpo: rpo_alpha must be >= 0, got ${opts.rpoAlpha}`);
  if (!pairs.length) throw new Error('dpo: no pairs');
  const P = pairs.length;
  const seqs = pairSequences(pairs);
  let refC: number[];
  let refR: number[];
  if (opts.referenceLogps) {
    refC = opts.referenceLogps.chosen;
    refR = opts.referenceLogps.rejected;
    if (refC.length !== P || refR.length !== P) throw new Error(`dpo: referenceLogps has ${refC.length}/${refR.length} values for ${P} pairs`);
  } else {
    if (!reference) throw new Error('dpo: give a reference model or precomputed referenceLogps');
    checkSameVocab(policy, reference);
    // the reference is frozen: its forward runs outside any gradient recording scope
    const r = tf.tidy(() => completionLogps(reference, seqs, { padId: opts.padId }).logps);
    const v = Array.from(r.dataSync());
    r.dispose();
    refC = v.slice(0, P);
    refR = v.slice(P);
  }
  const beta = opts.beta;
  const divisor = opts.numPairsInStep ?? P;
  // ipo compares mean token log-probs: divide every sequence's sum by its completion length (policy and reference)
  const lengths = [...pairs.map((p) => p.chosen.length), ...pairs.map((p) => p.rejected.length)]; // [2P]
  const scale = lossType === 'ipo' ? lengths.map((n) => 1 / n) : lengths.map(() => 1);
  refC = refC.map((x, i) => x * scale[i]!);
  refR = refR.map((x, i) => x * scale[P + i]!);
  const chosenTokens = pairs.reduce((n, p) => n + p.chosen.length, 0);
  let chosenLogpSum = 0; // summed (unscaled) chosen log-probs, for the logged RPO term
  let pol: number[] = [];
  let stats: CompletionLogps['stats'];
  const loss = tf.tidy(() => {
    const lp = completionLogps(policy, seqs, { padId: opts.padId, stats: true });
    stats = lp.stats;
    const logps = tf.mul(lp.logps, tf.tensor1d(scale)); // [2P] summed, or averaged for ipo
    pol = Array.from(logps.dataSync());
    chosenLogpSum = pol.slice(0, P).reduce((a, x, i) => a + x / scale[i]!, 0);
    const c = tf.slice(logps, [0], [P]);
    const r = tf.slice(logps, [P], [P]);
    const refDiff = tf.tensor1d(refC.map((x, i) => x - refR[i]!));
    const delta = tf.sub(tf.sub(c, r), refDiff); // Delta, [P]
    const perPair = dpoPairLoss(delta, lossType, beta, eps);
    if (rpoAlpha === 0) return tf.div(tf.sum(perPair), divisor) as tf.Scalar;
    // RPO: the chosen sequences' summed log-probs (unscaled) over their tokens = token-mean NLL; weighted like P pairs
    const nll = tf.div(tf.neg(tf.sum(tf.slice(lp.logps, [0], [P]))), chosenTokens);
    return tf.div(tf.add(tf.sum(perPair), tf.mul(rpoAlpha * P, nll)), divisor) as tf.Scalar;
  });
  const polC = pol.slice(0, P);
  const polR = pol.slice(P);
  const rc = polC.map((x, i) => beta * (x - refC[i]!));
  const rr = polR.map((x, i) => beta * (x - refR[i]!));
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const s = stats!;
  const sum = (xs: number[], from: number, to: number): number => xs.slice(from, to).reduce((a, b) => a + b, 0);
  // rc - rr = beta * Delta
  const lossHost = mean(rc.map((c, i) => dpoPairLossValue((c - rr[i]!) / beta, lossType, beta, eps))) + rpoAlpha * (-chosenLogpSum / chosenTokens);
  const metrics: DpoMetrics = {
    loss: lossHost,
    'rewards/chosen': mean(rc),
    'rewards/rejected': mean(rr),
    'rewards/accuracies': mean(rc.map((c, i) => (c > rr[i]! ? 1 : 0))),
    'rewards/margins': mean(rc.map((c, i) => c - rr[i]!)),
    'logps/chosen': mean(polC),
    'logps/rejected': mean(polR),
    'logits/chosen': sum(s.logitSum, 0, P) / sum(s.logitCount, 0, P),
    'logits/rejected': sum(s.logitSum, P, 2 * P) / sum(s.logitCount, P, 2 * P),
    'mean_token_accuracy': sum(s.correct, 0, P) / sum(s.tokens, 0, P),
    entropy: sum(s.entropySum, 0, 2 * P) / sum(s.tokens, 0, 2 * P),
  };
  return { loss, metrics };
}
