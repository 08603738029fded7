/**
 * Log-likelihood of continuations, as lighteval v0.7 scores multiple-choice questions (spec 3.2, step 3).
 *
 *   const [r] = scoreContinuations(model, [{ context: [0, 17, 42], continuation: [9, 10] }], { maxLength: 2048 });
 *   r.sum          // log p(9 | 0 17 42) + log p(10 | 0 17 42 9)
 *
 * For each request the model reads (context + continuation)[:-1], cut from the left to `maxLength` tokens; the
 * last len(continuation) positions give the log-probability of each continuation token. Requests are sorted by
 * length (longest first, as lighteval does: similar lengths share a batch, so little padding) and run in
 * batches, right-padded with an attention mask (real tokens keep positions 0..n-1, so a padded row scores
 * exactly as it would alone). Results come back in the order of the requests.
 *
 * Requests that share their context (the choices of one question) read it once when the model has a KV cache
 * (Doge): one pass over the contexts, then one short pass per choice slot that continues from the cached keys with
 * explicit positions. The numbers are those of the one-request-per-row path (tested); `shareContext: false` forces
 * that path.
 */
import { tf } from '../tf';
import { tokenLogprobs } from '../ops';

/** What evaluation needs of a causal LM: Doge's (and Cheems') forward with an attention mask. */
export interface EvalModel {
  config: { vocab_size: number; max_position_embeddings?: number; pad_token_id?: number | null; eos_token_id?: number | null };
  forward(input: {
    inputIds: tf.Tensor | number[][];
    attentionMask?: tf.Tensor | number[][];
    positionIds?: tf.Tensor | number[][];
    cache?: unknown;
    useCache?: boolean;
    logitsToKeep?: number;
  }): { logits: tf.Tensor; cache?: unknown };
}

export interface ContinuationRequest {
  /** Token ids the continuation is conditioned on (at least one; lighteval uses [EOS] for an empty context). */
  context: number[];
  /** Token ids to score (at least one). */
  continuation: number[];
}

export interface ContinuationScore {
  /** log p of each continuation token. */
  tokenLogprobs: number[];
  /** Their sum: the request's score. */
  sum: number;
  /** Whether greedy argmax at every continuation position reproduces the continuation. */
  greedy: boolean;
  /** Tokens cut from the left of the model input to fit `maxLength` (0 when nothing was cut). */
  truncated: number;
}

export interface ScoreOptions {
  /** Longest model input (the seed uses 2048); default the model's max_position_embeddings. */
  maxLength?: number;
  /** Requests per forward pass (default 32). */
  batchSize?: number;
  /** Also cap a batch at this many tokens (rows x padded length; default 8192). */
  maxBatchTokens?: number;
  /**
   * And at this many logits (rows x padded length x vocab; default 2^25, 128 MB of float32): the model's output
   * dominates the memory of a long window (4 rows of 2048 tokens x 32768 ids are 1 GB, and the log-softmax made
   * three more copies: 4.3 GB, past wasm's 4 GB). A single row always runs.
   */
  maxBatchLogits?: number;
  /**
   * And at this many attention scores (rows x heads x layers x length^2; default 2^26): the forward keeps each
   * layer's [B, heads, T, T] scores and their intermediates, about 1.5 GB per 2048-token row of doge-tiny (4 layers
   * x 4 heads) on wasm, whose memory ends at 4 GB ("memory access out of bounds" at 4 rows).
   */
  maxBatchAttention?: number;
  /** Called after every batch with (requests done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Read a context shared by several requests once, with the KV cache (default true; see the header). */
  shareContext?: boolean;
}

/** Defaults of ScoreOptions.maxBatchLogits and maxBatchAttention. */
export const DEFAULT_MAX_BATCH_LOGITS = 2 ** 25;
export const DEFAULT_MAX_BATCH_ATTENTION = 2 ** 26;

/** What the batch budgets read of a model config (heads and layers are optional: no attention budget without). */
export interface BatchModelSizes {
  vocab_size: number;
  num_attention_heads?: number;
  num_hidden_layers?: number;
}

/** Rows of at most T tokens that fit the batch budgets (at least one). */
export function batchRows(options: ScoreOptions, T: number, c: BatchModelSizes, left: number): number {
  const batchSize = options.batchSize ?? 32;
  const maxTokens = options.maxBatchTokens ?? 8192;
  const maxLogits = options.maxBatchLogits ?? DEFAULT_MAX_BATCH_LOGITS;
  const maxScores = options.maxBatchAttention ?? DEFAULT_MAX_BATCH_ATTENTION;
  const scoresPerRow = (c.num_attention_heads ?? 0) * (c.num_hidden_layers ?? 0) * T * T;
  const byScores = scoresPerRow > 0 ? Math.floor(maxScores / scoresPerRow) : Infinity;
  return Math.max(1, Math.min(batchSize, Math.floor(maxTokens / T), Math.floor(maxLogits / (T * c.vocab_size)), byScores, left));
}

/** Positions of log-softmax computed at once: keeps the [N, V] intermediates near 2^23 floats (32 MB). */
function positionChunk(V: number): number {
  return Math.max(1, Math.floor(2 ** 23 / V));
}

function checkIds(ids: unknown, what: string, vocab: number): number[] {
  if (!Array.isArray(ids)) throw new Error(`${what} must be an array of token ids`);
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i];
    if (!Number.isInteger(v) || v < 0 || v >= vocab) throw new Error(`${what}[${i}] = ${v} is not a token id in [0, ${vocab})`);
  }
  return ids as number[];
}

/** The model input of one request, (context + continuation)[:-1] cut from the left to maxLength, and how much was cut. */
function modelInput(r: ContinuationRequest, maxLength: number): { ids: number[]; truncated: number } {
  const whole = [...r.context, ...r.continuation].slice(0, -1); // the last token is only a target
  const truncated = Math.max(0, whole.length - maxLength);
  return { ids: truncated ? whole.slice(truncated) : whole, truncated };
}

/**
 * Score every request; see the file header. Token ids as plain `number[]`; one result per request, in order.
 */
export function scoreContinuations(model: EvalModel, requests: ContinuationRequest[], options: ScoreOptions = {}): ContinuationScore[] {
  const V = model.config.vocab_size;
  const maxLength = options.maxLength ?? model.config.max_position_embeddings ?? 2048;
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new Error(`scoreContinuations: maxLength must be a positive integer, got ${maxLength}`);
  const batchSize = options.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`scoreContinuations: batchSize must be a positive integer, got ${batchSize}`);
  const pad = model.config.pad_token_id ?? 0;

  const inputs = requests.map((r, i) => {
    checkIds(r?.context, `request ${i}: context`, V);
    checkIds(r.continuation, `request ${i}: continuation`, V);
    if (r.context.length === 0) throw new Error(`request ${i}: context is empty (give at least one token, e.g. [EOS] as lighteval does)`);
    if (r.continuation.length === 0) throw new Error(`request ${i}: continuation is empty`);
    if (r.continuation.length > maxLength) {
      throw new Error(`request ${i}: continuation has ${r.continuation.length} tokens, more than maxLength ${maxLength}: its first tokens would have no context`);
    }
    return modelInput(r, maxLength);
  });

  const out: ContinuationScore[] = new Array(requests.length);
  let done = 0;
  let rest = requests.map((_, i) => i);
  if (options.shareContext ?? true) {
    // requests with the same context and nothing cut off: one group per context. With DMAttn's top-k key
    // selection active (keep_window_size below the row length) a tie between equal dynamic-mask values can be
    // broken differently when the keys sit at other offsets, so such rows take the one-row-per-request path.
    const keep = (model.config as { keep_window_size?: number }).keep_window_size ?? Infinity;
    const groups = new Map<string, number[]>();
    for (const i of rest) {
      if (inputs[i].truncated > 0 || inputs[i].ids.length + requests[i].continuation.length > keep) continue;
      const key = requests[i].context.join(',');
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push(i);
    }
    const shared = [...groups.values()].filter((g) => g.length > 1);
    // CDMoE's 'hf' router layout mixes tokens of the whole batch into each token's routing: no sharing there
    const batchMixing = (model as { routerLayout?: string }).routerLayout === 'hf';
    if (shared.length > 0 && !batchMixing && supportsCache(model)) {
      shared.sort((a, b) => requests[b[0]].context.length - requests[a[0]].context.length || a[0] - b[0]);
      for (let start = 0; start < shared.length;) {
        const Tc = requests[shared[start][0]].context.length;
        const rows = batchRows(options, Tc, model.config, shared.length - start);
        const batch = shared.slice(start, start + rows);
        scoreSharedBatch(model, requests, batch, pad).forEach((s, i) => { out[i] = s; });
        start += rows;
        done += batch.reduce((a, g) => a + g.length, 0);
        options.onProgress?.(done, requests.length);
      }
      const inShared = new Set(shared.flat());
      rest = rest.filter((i) => !inShared.has(i));
    }
  }

  // longest first; ties keep request order so results do not depend on the sort's stability
  const order = rest.sort((a, b) => inputs[b].ids.length - inputs[a].ids.length || a - b);
  for (let start = 0; start < order.length;) {
    const T = inputs[order[start]].ids.length; // the longest row of this batch
    const rows = batchRows(options, T, model.config, order.length - start);
    const batch = order.slice(start, start + rows);
    scoreBatch(model, batch.map((i) => ({ input: inputs[i], continuation: requests[i].continuation })), T, pad)
      .forEach((s, k) => { out[batch[k]] = s; });
    start += rows;
    done += rows;
    options.onProgress?.(done, requests.length);
  }
  return out;
}

const cacheSupport = new WeakMap<object, boolean>();
/** Whether forward returns a KV cache that a later forward with explicit positions continues (probed once). */
function supportsCache(model: EvalModel): boolean {
  if (!cacheSupport.has(model)) {
    const res = model.forward({ inputIds: [[0]], useCache: true, logitsToKeep: 1 });
    cacheSupport.set(model, res.cache !== undefined && res.cache !== null);
    tf.dispose([res.logits, res.cache as tf.TensorContainer]);
  }
  return cacheSupport.get(model)!;
}

/** Log-probs, argmax flags of rows of logits [N, V] at the given targets. */
function pickTargets(logits2d: tf.Tensor, rowIdx: number[], targets: number[]): { logp: Float32Array; argmax: Int32Array } {
  const V = logits2d.shape[1]!;
  const out = { logp: new Float32Array(rowIdx.length), argmax: new Int32Array(rowIdx.length) };
  // in chunks of positions: the [N, V] intermediates of a 2048-token window would be 256 MB each
  const step = positionChunk(V);
  for (let s = 0; s < rowIdx.length; s += step) {
    const [lp, am] = tf.tidy(() => {
      const rows = tf.gather(logits2d, tf.tensor1d(rowIdx.slice(s, s + step), 'int32')); // [N, V]
      return [tokenLogprobs(rows, targets.slice(s, s + step)), tf.argMax(rows, 1)];
    });
    out.logp.set(lp.dataSync() as Float32Array, s);
    out.argmax.set(am.dataSync() as Int32Array, s);
    tf.dispose([lp, am]);
  }
  return out;
}

/**
 * Groups of requests with one context each: the contexts in one pass (right-padded, cache kept), then per choice
 * slot j the j-th continuation of every group (minus its last token) in one pass on top of the cache, at positions
 * n..n+m-1 of each row, with the context pads masked.
 */
function scoreSharedBatch(model: EvalModel, requests: ContinuationRequest[], groups: number[][], pad: number): Map<number, ContinuationScore> {
  const B = groups.length;
  const V = model.config.vocab_size;
  const ctx = groups.map((g) => requests[g[0]].context);
  const Tc = Math.max(...ctx.map((c) => c.length));
  const ctxMask = ctx.map((c) => c.map(() => 1).concat(new Array(Tc - c.length).fill(0)));
  const padded = ctx.some((c) => c.length < Tc);
  const first = model.forward({ inputIds: ctx.map((c) => [...c, ...new Array(Tc - c.length).fill(pad)]), attentionMask: padded ? ctxMask : undefined, useCache: true });
  const scores = new Map<number, { tokenLogprobs: number[]; greedy: boolean }>();
  try {
    // the last context position predicts every choice's first token
    const rowIdx: number[] = [];
    const targets: number[] = [];
    const who: number[] = [];
    groups.forEach((g, b) => g.forEach((i) => { rowIdx.push(b * Tc + ctx[b].length - 1); targets.push(requests[i].continuation[0]); who.push(i); }));
    const flat = tf.reshape(first.logits, [B * Tc, V]);
    const p0 = pickTargets(flat, rowIdx, targets);
    flat.dispose();
    who.forEach((i, n) => scores.set(i, { tokenLogprobs: [p0.logp[n]], greedy: p0.argmax[n] === targets[n] }));

    const slots = Math.max(...groups.map((g) => g.length));
    for (let j = 0; j < slots; j++) {
      const cont = groups.map((g) => (j < g.length ? requests[g[j]].continuation.slice(0, -1) : []));
      const Tm = Math.max(...cont.map((c) => c.length));
      if (Tm === 0) continue;
      const ids = cont.map((c) => [...c, ...new Array(Tm - c.length).fill(pad)]);
      const mask = cont.map((c, b) => [...ctxMask[b], ...c.map(() => 1), ...new Array(Tm - c.length).fill(0)]);
      const pos = cont.map((_, b) => Array.from({ length: Tm }, (__, t) => ctx[b].length + t));
      const rIdx: number[] = [];
      const tg: number[] = [];
      const owner: number[] = [];
      cont.forEach((c, b) => c.forEach((_, t) => { rIdx.push(b * Tm + t); tg.push(requests[groups[b][j]].continuation[t + 1]); owner.push(groups[b][j]); }));
      const res = tf.tidy(() => {
        const o = model.forward({ inputIds: ids, attentionMask: mask, positionIds: pos, cache: first.cache as never, useCache: true });
        return tf.reshape(o.logits, [B * Tm, V]); // the new cache is disposed with the scope
      });
      const p = pickTargets(res, rIdx, tg);
      res.dispose();
      owner.forEach((i, n) => { const s = scores.get(i)!; s.tokenLogprobs.push(p.logp[n]); if (p.argmax[n] !== tg[n]) s.greedy = false; });
    }
  } finally {
    tf.dispose([first.logits, first.cache as tf.TensorContainer]);
  }
  const out = new Map<number, ContinuationScore>();
  for (const [i, s] of scores) out.set(i, { tokenLogprobs: s.tokenLogprobs, sum: s.tokenLogprobs.reduce((a, b) => a + b, 0), greedy: s.greedy, truncated: 0 });
  return out;
}

/** One forward pass over right-padded rows of at most T tokens. */
function scoreBatch(
  model: EvalModel,
  rows: { input: { ids: number[]; truncated: number }; continuation: number[] }[],
  T: number,
  pad: number,
): ContinuationScore[] {
  const B = rows.length;
  const V = model.config.vocab_size;
  const ids = rows.map((r) => [...r.input.ids, ...new Array(T - r.input.ids.length).fill(pad)]);
  const padded = rows.some((r) => r.input.ids.length < T);
  const mask = padded ? rows.map((r) => r.input.ids.map(() => 1).concat(new Array(T - r.input.ids.length).fill(0))) : undefined;
  // flat row index (b * T + t) of every scored position and its target token
  const positions: number[] = [];
  const targets: number[] = [];
  for (let b = 0; b < B; b++) {
    const n = rows[b].input.ids.length;
    const cont = rows[b].continuation;
    for (let j = 0; j < cont.length; j++) {
      positions.push(b * T + n - cont.length + j); // the position that predicts cont[j]
      targets.push(cont[j]);
    }
  }
  const logits2d = tf.tidy(() => tf.reshape(model.forward({ inputIds: ids, attentionMask: mask }).logits, [B * T, V])); // [B*T, V]
  let picked: { logp: Float32Array; argmax: Int32Array };
  try {
    picked = pickTargets(logits2d, positions, targets);
  } finally {
    logits2d.dispose();
  }
  const am = picked.argmax;
  const out: ContinuationScore[] = [];
  let n = 0;
  for (const r of rows) {
    const tokenLogprobs: number[] = [];
    let sum = 0;
    let greedy = true;
    for (let j = 0; j < r.continuation.length; j++, n++) {
      const lp = picked.logp[n];
      tokenLogprobs.push(lp);
      sum += lp;
      if (am[n] !== r.continuation[j]) greedy = false;
    }
    out.push({ tokenLogprobs, sum, greedy, truncated: r.input.truncated });
  }
  return out;
}

export interface SingleTokenRequest {
  context: number[];
  /** One token id per choice. */
  choiceIds: number[];
}

/**
 * Single-token multiple choice (lighteval's `loglikelihood_acc_single_token`, MMLU "original"): the log-softmax at
 * the last context position for each choice's token. Contexts longer than `maxLength` keep their last tokens.
 */
export function singleTokenScores(model: EvalModel, requests: SingleTokenRequest[], options?: ScoreOptions): number[][];
export function singleTokenScores(model: EvalModel, context: number[], choiceIds: number[], options?: ScoreOptions): number[];
export function singleTokenScores(
  model: EvalModel,
  a: SingleTokenRequest[] | number[],
  b?: number[] | ScoreOptions,
  c?: ScoreOptions,
): number[][] | number[] {
  if (Array.isArray(b)) return singleTokenScores(model, [{ context: a as number[], choiceIds: b }], c ?? {})[0];
  const requests = a as SingleTokenRequest[];
  const options = (b ?? {}) as ScoreOptions;
  const V = model.config.vocab_size;
  const maxLength = options.maxLength ?? model.config.max_position_embeddings ?? 2048;
  requests.forEach((r, i) => {
    checkIds(r?.context, `request ${i}: context`, V);
    checkIds(r.choiceIds, `request ${i}: choiceIds`, V);
    if (r.context.length === 0) throw new Error(`request ${i}: context is empty`);
    if (r.choiceIds.length === 0) throw new Error(`request ${i}: choiceIds is empty`);
  });
  // one forward per question: the distribution at its last context position scores every choice
  const out: number[][] = [];
  const batchSize = options.batchSize ?? 32;
  const pad = model.config.pad_token_id ?? 0;
  const order = requests.map((_, i) => i).sort((x, y) => Math.min(requests[y].context.length, maxLength) - Math.min(requests[x].context.length, maxLength) || x - y);
  for (let s = 0; s < order.length;) {
    const T0 = Math.min(requests[order[s]].context.length, maxLength);
    const batch = order.slice(s, s + batchRows({ ...options, batchSize }, T0, model.config, order.length - s));
    const ctx = batch.map((i) => requests[i].context.slice(-maxLength));
    const T = ctx[0].length;
    const ids = ctx.map((r) => [...r, ...new Array(T - r.length).fill(pad)]);
    const padded = ctx.some((r) => r.length < T);
    const mask = padded ? ctx.map((r) => r.map(() => 1).concat(new Array(T - r.length).fill(0))) : undefined;
    // one (row, target) pair per choice: the row is its question's last context position
    const rowIdx = batch.flatMap((i, k) => requests[i].choiceIds.map(() => k * T + ctx[k].length - 1));
    const logp = tf.tidy(() => {
      const { logits } = model.forward({ inputIds: ids, attentionMask: mask }); // [B, T, V]
      const rows = tf.gather(tf.reshape(logits, [batch.length * T, V]), tf.tensor1d(rowIdx, 'int32')); // [choices, V]
      return tokenLogprobs(rows, batch.flatMap((i) => requests[i].choiceIds));
    });
    const lp = logp.dataSync();
    logp.dispose();
    let j = 0;
    batch.forEach((i) => { out[i] = requests[i].choiceIds.map(() => lp[j++]); });
    s += batch.length;
    options.onProgress?.(s, order.length);
  }
  return out;
}
