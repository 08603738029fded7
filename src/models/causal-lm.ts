/**
 * What every causal LM of the library shares around its layers: input checking, the key mask (attention mask plus
 * the cached part), document ids of packed rows, HF's shifted labels and the loss head. Host-side where the data is
 * small (masks, labels), so error messages can name the row.
 */
import { tf } from '../tf';
import { IGNORE_INDEX, chunkedLmHeadLoss, crossEntropyLoss, linearT, weightT } from '../ops';
import type { RotaryEmbedding, RopeTables } from '../modules/rope';

/** Inputs both models take (int32 [batch, seq] tensors or number[][]). */
export interface CausalLMInput {
  inputIds: tf.Tensor | number[][];
  /** [B, T] (or [B, P + T] with a cache): 1 = real token, 0 = padding. */
  attentionMask?: tf.Tensor | number[][];
  labels?: tf.Tensor | number[][]; // int32 [B, T], IGNORE_INDEX (-100) = ignored
  /** [B, T] position ids (default P + t); used for RoPE (packed rows restart them per document). */
  positionIds?: tf.Tensor | number[][];
  /**
   * [B, T] (or [B, P + T] with a cache) document id of every token of a packed row: a query attends only to keys at or
   * before it with the same document id (block-diagonal causal mask; keep_window_size's top-k then picks among those
   * keys; an SSD starts each document from a zero state), and a position whose next token starts another document is
   * not a loss target. With `positionIds` restarting per document this equals running the documents one by one.
   */
  documentIds?: tf.Tensor | number[][];
  training?: boolean;
  numItemsInBatch?: number;
  dropoutSeed?: number;
  /** Only compute logits for the last N positions. */
  logitsToKeep?: number;
  /**
   * Training: compute only the loss (requires labels). `logits` is then an empty [0] tensor. For large vocabularies
   * (batch * seq * vocab > 16M) the lm_head and the loss run in row chunks, so the full logits never exist.
   */
  lossOnly?: boolean;
}

export function toIntTensor(x: tf.Tensor | number[][], what: string): tf.Tensor {
  if (x instanceof tf.Tensor) {
    if (x.rank !== 2) throw new Error(`${what} must be a [batch, seq] tensor, got shape [${x.shape}]`);
    return x.dtype === 'int32' ? x : tf.cast(x, 'int32');
  }
  toIntTensorShapeCheck(x, what);
  return tf.tensor2d(x, [x.length, x[0].length], 'int32');
}

/**
 * A [batch, seq] integer input on the host, row-major: a tensor is read once; a number[][] (what host-built batches
 * such as SFT's pass) is flattened without a round trip through a tensor.
 */
export function hostInts(x: tf.Tensor | number[][], what: string): { data: Int32Array; shape: [number, number] } {
  if (x instanceof tf.Tensor) {
    const t = toIntTensor(x, what);
    const data = Int32Array.from(t.dataSync());
    if (t !== x) t.dispose();
    return { data, shape: t.shape as [number, number] };
  }
  toIntTensorShapeCheck(x, what);
  const T = x[0].length;
  const data = new Int32Array(x.length * T);
  x.forEach((r, b) => data.set(r, b * T));
  return { data, shape: [x.length, T] };
}

function toIntTensorShapeCheck(x: number[][], what: string): void {
  if (!Array.isArray(x) || x.length === 0 || !x.every((r) => Array.isArray(r) && r.length === x[0].length)) {
    throw new Error(`${what} must be a non-empty rectangular number[][] (or an int32 tensor)`);
  }
}

/** Token ids as an int32 tensor, every id checked against the vocabulary (host arrays are checked before upload). */
export function tokenIds(x: tf.Tensor | number[][], vocabSize: number): tf.Tensor {
  if (!(x instanceof tf.Tensor)) {
    const h = hostInts(x, 'inputIds');
    checkVocab(h.data, vocabSize);
    return tf.tensor2d(h.data, h.shape, 'int32');
  }
  const ids = toIntTensor(x, 'inputIds');
  checkVocab(ids.dataSync(), vocabSize);
  return ids;
}

function checkVocab(idHost: ArrayLike<number>, vocabSize: number): void {
  for (let i = 0; i < idHost.length; i++) {
    if (idHost[i] < 0 || idHost[i] >= vocabSize || !Number.isInteger(idHost[i])) {
      throw new Error(`inputIds: token id ${idHost[i]} is outside the vocabulary [0, ${vocabSize})`);
    }
  }
}

/**
 * Key mask [B, S = P + T] on the host (1 = real), from an attention mask over S or over the T new tokens (then the
 * cached part comes from `cachedMask`); null when nothing is padded anywhere.
 */
export function keyMask(attentionMask: tf.Tensor | number[][] | undefined, cachedMask: Int32Array | null, B: number, T: number, P: number): Int32Array | null {
  const S = P + T;
  if (attentionMask !== undefined) {
    const m = hostInts(attentionMask, 'attentionMask');
    const mh = m.data;
    if (m.shape[0] !== B || (m.shape[1] !== S && m.shape[1] !== T)) {
      throw new Error(`attentionMask has shape [${m.shape}], expected [${B}, ${S}]${P ? ` or [${B}, ${T}]` : ''}`);
    }
    if (m.shape[1] === S) return mh;
    // mask of the new tokens only: prepend the cached part
    const mask = new Int32Array(B * S);
    for (let b = 0; b < B; b++) for (let j = 0; j < S; j++) {
      mask[b * S + j] = j < P ? (cachedMask ? cachedMask[b * P + j] : 1) : mh[b * T + j - P];
    }
    return mask;
  }
  if (!cachedMask) return null;
  const mask = new Int32Array(B * S);
  for (let b = 0; b < B; b++) for (let j = 0; j < S; j++) mask[b * S + j] = j < P ? cachedMask[b * P + j] : 1;
  return mask;
}

/** documentIds as a row-major [B, P + T] host array ([B, T] is accepted without a cache). */
export function documentIdsHost(x: tf.Tensor | number[][], B: number, T: number, P: number): Int32Array {
  const t = hostInts(x, 'documentIds');
  const S = P + T;
  if (t.shape[0] !== B || t.shape[1] !== S) {
    throw new Error(`documentIds has shape [${t.shape}], expected [${B}, ${S}]`);
  }
  return t.data;
}

/**
 * HF causal-LM targets: target[t] = labels[t + 1], the last position and IGNORE_INDEX ignored; with document ids, a position
 * whose next token starts another document is ignored too. Returns row-major [B * T] targets and their count.
 */
export function shiftedTargets(labels: tf.Tensor | number[][], B: number, T: number, docs: Int32Array | null, P = 0): { targets: Int32Array; count: number } {
  const lab = hostInts(labels, 'labels');
  if (lab.shape[0] !== B || lab.shape[1] !== T) throw new Error(`labels has shape [${lab.shape}], expected [${B}, ${T}]`);
  const lh = lab.data;
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  let count = 0;
  const S = P + T;
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) {
    // packed rows: the first token of a document is not predicted from the previous document
    if (docs && docs[b * S + P + t + 1] !== docs[b * S + P + t]) continue;
    const v = lh[b * T + t + 1];
    targets[b * T + t] = v;
    if (v !== IGNORE_INDEX) count++;
  }
  return { targets, count };
}

/**
 * Final hidden states h [B, T, H] -> logits (and the loss when targets are given). With `lossOnly` on a large
 * vocabulary the lm_head runs in row chunks inside the loss (no full logits tensor).
 */
export function lmHeadAndLoss(
  h: tf.Tensor, lmHead: tf.Tensor, input: Pick<CausalLMInput, 'lossOnly' | 'numItemsInBatch'>,
  targets: { targets: Int32Array; count: number } | null,
): { logits: tf.Tensor; loss?: tf.Scalar } {
  const [B, T, H] = h.shape as [number, number, number];
  const V = lmHead.shape[0] as number;
  if (input.lossOnly && !targets) throw new Error('lossOnly needs labels');
  const fused = !!input.lossOnly && B * T * V > 16 * 1024 * 1024;
  let logits = fused ? tf.zeros([0]) : linearT(h, weightT([lmHead as tf.Variable])); // [B, T, V]
  if (!targets) return { logits };
  const divisor = input.numItemsInBatch ?? targets.count;
  const loss = fused
    ? chunkedLmHeadLoss(tf.reshape(h, [B * T, H]) as tf.Tensor2D, lmHead as tf.Tensor2D, targets.targets, divisor)
    : crossEntropyLoss(tf.reshape(logits, [B * T, V]) as tf.Tensor2D, targets.targets, divisor);
  if (input.lossOnly && !fused) logits = tf.zeros([0]);
  return { logits, loss };
}

/** Keep the last `keep` positions of h [B, T, H]. */
export function lastPositions(h: tf.Tensor, keep: number | undefined): tf.Tensor {
  const [B, T, H] = h.shape as [number, number, number];
  return keep && keep < T ? tf.slice(h, [0, T - keep, 0], [B, keep, H]) : h;
}

/** Everything a forward call derives from its inputs before the layers run. */
export interface CallSetup {
  ids: tf.Tensor; // int32 [B, T]
  B: number;
  T: number;
  /** Cached positions. */
  P: number;
  /** Key mask [B, P + T] or null. */
  mask: Int32Array | null;
  /** Document ids [B, P + T] or null. */
  docs: Int32Array | null;
  /** RoPE tables of this call (dispose them when `owned`). */
  rope: RopeTables & { owned: boolean };
}

export function setupCall(
  input: CausalLMInput, cache: { length: number; mask: Int32Array | null } | null, vocabSize: number, rotary: RotaryEmbedding,
): CallSetup {
  const ids = tokenIds(input.inputIds, vocabSize);
  const [B, T] = ids.shape as [number, number];
  const P = cache ? cache.length : 0;
  const mask = keyMask(input.attentionMask, cache?.mask ?? null, B, T, P);
  const docs = input.documentIds !== undefined ? documentIdsHost(input.documentIds, B, T, P) : null;
  const rope = input.positionIds !== undefined
    ? rotary.tables(hostInts(input.positionIds, 'positionIds').data, B, T)
    : rotary.tables(P, B, T);
  return { ids, B, T, P, mask, docs, rope };
}

/** Final-norm output h [B, T, H] -> logits of the kept positions and the HF causal loss when labels are given. */
export function finishCall(h: tf.Tensor, lmHead: tf.Tensor, input: CausalLMInput, call: CallSetup): { logits: tf.Tensor; loss?: tf.Scalar } {
  h = lastPositions(h, input.logitsToKeep);
  if (input.labels !== undefined && h.shape[1] !== call.T) throw new Error('labels cannot be combined with logitsToKeep');
  const targets = input.labels !== undefined ? shiftedTargets(input.labels, call.B, call.T, call.docs, call.P) : null;
  return lmHeadAndLoss(h, lmHead, input, targets);
}

/** How a forward call keeps its decoding cache (both models). */
export interface CacheModeInput {
  /**
   * For a new cache: 'full' (default) keeps every key; 'bounded' keeps at most keep_window_size keys per kv head and
   * attention layer (src/modules/dmattn-cache.ts), exact under the 'recent' tie rule. A given cache keeps its mode.
   */
  cacheMode?: 'full' | 'bounded';
  /** Top-k tie rule without a bounded cache: 'torch' (default, HF on CPU) or 'recent' (what a bounded cache uses). */
  topkTies?: 'torch' | 'recent';
}

const warned = new Set<string>();
/** console.warn a message once per process. */
export function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  console.warn(message);
}

/**
 * Whether this call keeps a bounded cache: a given cache keeps its mode; a new one is bounded when asked for and
 * exact (`obstacle` null), else full with one warning naming the reason; `nothingToBound` (no window at all: every key
 * stays visible, as the seed's Cheems) keeps the full cache without a warning.
 */
export function boundedCacheFor(
  input: CacheModeInput & { useCache?: boolean }, cache: { bounded?: boolean } | null, obstacle: string | null, nothingToBound = false,
): boolean {
  if (cache) return !!cache.bounded;
  if (!input.useCache || input.cacheMode !== 'bounded' || nothingToBound) return false;
  if (obstacle) {
    warnOnce(`bounded decoding cache: not exact with ${obstacle}; keeping the full cache`);
    return false;
  }
  return true;
}

/** The key mask of the T new tokens, row-major [B, T], from the key mask [B, P + T] (null when nothing is padded). */
export function newKeyMask(mask: Int32Array | null, B: number, T: number, P: number): Int32Array | null {
  if (!mask) return null;
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out[b * T + t] = mask[b * (P + T) + P + t];
  return out;
}

/**
 * Long inputs at inference: the attention of one forward over T tokens holds about (3 nh + 5 nm) buffers of T x S
 * floats per layer (scores, biased scores, probabilities; the mask and its top-k), which is what crashed wasm near
 * 3,000 tokens. Without gradients the models free each layer's buffers after the layer and, past this many bytes per
 * layer, run the tokens in chunks through the decoding cache (the same function: every query row sees the same keys).
 */
export const INFERENCE_MEMORY = {
  /** Attention buffers of one layer above which an inference forward runs in chunks. */
  chunkBytes: 192 * 1024 * 1024,
  /** What an inference forward may hold in outputs that grow with the length (logits, hidden states, full KV cache). */
  linearBytes: 2 * 1024 * 1024 * 1024,
};

/** Query rows per chunk so that a layer's attention buffers stay within the budget; null: one pass fits. */
export function inferenceChunk(B: number, T: number, P: number, buffers: number, keep: number): number | null {
  const perRow = (S: number) => buffers * B * S * 4;
  if (T * perRow(P + T) <= INFERENCE_MEMORY.chunkBytes) return null;
  // a bounded cache holds at most `keep` slots (times the query heads sharing a kv head; `keep` is passed that way)
  const S = Math.min(P + T, keep + T);
  let chunk = Math.floor(INFERENCE_MEMORY.chunkBytes / perRow(S));
  if (keep < P + T) chunk = Math.floor(INFERENCE_MEMORY.chunkBytes / perRow(Math.min(P + T, keep + chunk)));
  return Math.max(16, Math.min(T, chunk));
}

/** A clear error (naming the length and the limit) when an inference forward's length-proportional outputs cannot fit. */
export function checkLinearMemory(B: number, T: number, parts: Array<[string, number]>): void {
  const total = parts.reduce((a, [, n]) => a + n, 0);
  if (total <= INFERENCE_MEMORY.linearBytes) return;
  const mb = (n: number) => { const v = n / (1024 * 1024); return `${v < 10 ? v.toFixed(1) : Math.round(v)} MB`; };
  throw new Error(`forward: batch ${B} x ${T} tokens needs about ${mb(total)} (${parts.filter(([, n]) => n > 0).map(([what, n]) => `${what} ${mb(n)}`).join(', ')}), more than the ${mb(INFERENCE_MEMORY.linearBytes)} an inference forward may hold; `
    + 'pass lossOnly or logitsToKeep, a bounded cache, or a shorter input');
}

type ChunkCache = { layers: object[]; length: number; mask: Int32Array | null };

/** What a model's length-proportional outputs cost per token (for checkLinearMemory before a chunked forward). */
export interface ChunkSizes {
  vocabSize: number;
  hiddenSize: number;
  /** Bytes the decoding cache grows by per token and row (0 for a bounded cache, which does not grow). */
  kvBytesPerToken: number;
}

/**
 * An inference forward over a long input in chunks of `chunk` tokens through the decoding cache: `run` is the model's
 * own forward returning the final-norm hidden states of a chunk (and the cache it extends). The lm_head and the loss
 * run once over the concatenated hidden states (finishCall), so logits and loss are those of one forward. Outputs that
 * cannot fit are refused first (checkLinearMemory); the chunks build their own RoPE tables, so the call's are freed.
 */
export function forwardInChunks<C extends ChunkCache>(
  input: CausalLMInput & CacheModeInput & { cache?: C | null; useCache?: boolean }, call: CallSetup, chunk: number, lmHead: tf.Tensor,
  sizes: ChunkSizes,
  run: (part: CausalLMInput & CacheModeInput & { cache?: C; useCache: boolean }) => { h: tf.Tensor; cache: C },
  disposeCache: (c: C) => void,
): { logits: tf.Tensor; loss?: tf.Scalar; cache?: C } {
  const { B, T, P, mask } = call;
  const kept = input.logitsToKeep ? Math.min(T, input.logitsToKeep) : T;
  checkLinearMemory(B, T, [
    ['logits', input.lossOnly ? 0 : 4 * B * kept * sizes.vocabSize], ['hidden states', 2 * 4 * B * T * sizes.hiddenSize],
    ['KV cache', B * (P + T) * sizes.kvBytesPerToken],
  ]);
  if (call.rope.owned) { call.rope.cos.dispose(); call.rope.sinSigned.dispose(); }
  const ids = call.ids.arraySync() as number[][];
  const pos = input.positionIds !== undefined ? (toIntTensor(input.positionIds, 'positionIds').arraySync() as number[][]) : null;
  let cache = input.cache ?? undefined;
  const hs: tf.Tensor[] = [];
  for (let s = 0; s < T; s += chunk) {
    const e = Math.min(T, s + chunk);
    const part = run({
      inputIds: ids.map((r) => r.slice(s, e)),
      attentionMask: mask ? Array.from({ length: B }, (_, b) => Array.from(mask.subarray(b * (P + T), b * (P + T) + P + e))) : undefined,
      positionIds: pos ? pos.map((r) => r.slice(s, e)) : undefined,
      cache, useCache: true, cacheMode: input.cacheMode, topkTies: input.topkTies,
    });
    if (cache && cache !== input.cache) disposeCache(cache);
    cache = part.cache;
    hs.push(part.h);
  }
  const h = hs.length === 1 ? hs[0] : tf.concat(hs, 1);
  const out: { logits: tf.Tensor; loss?: tf.Scalar; cache?: C } = finishCall(h, lmHead, input, call);
  if (input.useCache || input.cache) out.cache = cache;
  else if (cache) disposeCache(cache);
  return out;
}
