/**
 * Dynamic Mask Attention (HF DogeAttention, spec 4.6; the seed-era variant of Cheems with `dynamicMaskHeads: 'query'`),
 * usable inside DogeForCausalLM / CheemsForCausalLM and standalone. The same computation as plain loops, one query row
 * at a time: src/modules/reference/dmattn-loop.ts (read that first; tests hold this module to it).
 *
 * Standalone use (e.g. as the sequence mixer of a small MQAR model):
 *
 *   const attn = new DynamicMaskAttention({ hiddenSize: 64, numHeads: 4, numKvHeads: 2, keepWindowSize: 32, seed: 1 });
 *   const y = attn.apply(x);                       // x [B, T, H] float32 -> y [B, T, H]; causal, positions 0..T-1
 *   const y2 = attn.apply(x, { attentionMask });   // attentionMask int32/float [B, T], 1 = real token, 0 = pad
 *   attn.parameters();                             // Map<'q_proj.weight' | 'A' | ..., tf.Variable> (HF names)
 *   attn.dispose();
 *
 * Options (defaults): hiddenSize, numHeads, numKvHeads (= numHeads), headDim (= hiddenSize / numHeads),
 * keepWindowSize (2048), attentionBias (false), rmsNormEps (1e-6), attentionDropout (0), qkNorm (true),
 * useRope (true), ropeTheta (10000), maxPositionEmbeddings (2048), seed (0), initializerRange (0.02),
 * dynamicMaskHeads ('kv': HF, A [nkv] and dt_proj [nkv, nkv*hd]; 'query': seed / Cheems, A [nh], dt_proj [nh, nkv*hd],
 * one dynamic mask per query head), aInit ('zeros'; the seed uses 'ones'). keepWindowSize null = no top-k (seed).
 * DMA as its authors write it since arXiv 2508.02124 / flash-dmattn (defaults = HF):
 *   dynamicMaskBias   'exp' (HF: d = exp(A softplus(dt)), in (0, 1] for A <= 0) | 'linear' (d = A softplus(dt), in
 *                     (-inf, 0] for A <= 0: no exp, "for numerical stability")
 *   dynamicMaskSelect 'row' (HF: top-k per query row after the causal mask) | 'key' (top-k once over the keys of the
 *                     call, shared by every query, causality after: early queries then see fewer keys, and a call over
 *                     T tokens is no longer the same function as T one-token steps)
 *   dynamicMaskType   'topk' (keep keepWindowSize keys) | 'relu' (keep a key iff d > 0, no top-k; a row keeping no key
 *                     outputs 0)
 *
 * The forward, in the paper's steps, x [B, T, H], P cached keys, S = P + T keys, g = nh / nkv:
 *   project:     q, k, v = x Wq^T, x Wk^T, x Wv^T; q, k = RMSNorm_hd(q), RMSNorm_hd(k); RoPE
 *   dynamicMask: d[b, c, j] = exp(A[c] * softplus(dt_proj(v_flat[b, j]))[c]) for every new key j       [B, nkv, T]
 *   maskScores:  M[b, c, t, j] = d[b, c, j] where allowed (causal, padding), else float32 min           [B, nkv, T, S]
 *                if S > keep_window_size: keep the keep_window_size largest M per row, others -> float32 min
 *   attend:      p = softmax(q k^T * hd^-0.5 + M) (query head h uses kv head floor(h / g)); o = p v; out = o Wo^T
 * Speed moves behind the steps: one matmul for q, k and v; hd^-0.5 folded into the q-norm weight; the g query heads
 * of a kv head stacked as rows of one batched matmul. "Replacement" by the float32 minimum is implemented as adding a
 * 0 / min bias: in float32, min + d == min for any d of ordinary size, so it is the same number, and the softmax
 * probability (hence the gradient) there is 0.
 *
 * Decoding as a state space (ctx.bounded, src/modules/dmattn-cache.ts): d_j depends on key j alone and every row keeps
 * the top keep_window_size keys it may see, so TopK(d_1..d_N) = TopK(TopK(d_1..d_N-1) ∪ {d_N}) under a total order:
 * a decoder needs only keep_window_size keys per kv head (their post-RoPE k, v and d). The tie rule is 'recent'
 * (equal d: the later key wins); the full path's default is torch's topk order ('torch'), which is not a total order.
 */
import { tf } from '../tf';
import { F32_MIN, bmm, linearT, sliceAxis, sliceLast, stopGradient, weightT, isRecordingGradients, permute } from '../ops';
import { recentTopkIndices, torchTopkIndices } from '../ops/torch-topk';
import { dynamicMaskBias } from '../ops/fused';
import { boundLayerCache, withCachedSlots, type LayerCache, type MaskBias } from './dmattn-cache';

export type { LayerCache, MaskBias };
import { Module, makeInit, type Init, type InitOptions } from './module';
import { rmsNorm } from './rmsnorm';
import { RotaryEmbedding, applyRope } from './rope';

export interface DynamicMaskAttentionOptions extends InitOptions {
  hiddenSize: number;
  numHeads: number;
  numKvHeads?: number;
  headDim?: number;
  /** Keep only this many largest mask entries per query row when there are more keys (null: never, the seed). */
  keepWindowSize?: number | null;
  attentionBias?: boolean;
  rmsNormEps?: number;
  attentionDropout?: number;
  /** Per-head q/k RMSNorm (HF). false = seed-era attention without it. */
  qkNorm?: boolean;
  /** Standalone only: apply RoPE in `apply` (default true). */
  useRope?: boolean;
  ropeTheta?: number;
  maxPositionEmbeddings?: number;
  /** 'kv' (HF Doge, default): one dynamic mask per kv head; 'query' (seed / Cheems): one per query head. */
  dynamicMaskHeads?: 'kv' | 'query';
  /** Initial value of A (HF: zeros; the seed: ones). */
  aInit?: 'zeros' | 'ones';
  /** 'exp' (HF, default): d = exp(A softplus(dt)); 'linear' (arXiv 2508.02124): d = A softplus(dt). */
  dynamicMaskBias?: DynamicMaskBias;
  /** 'row' (HF, default): top-k per query row after the causal mask; 'key': once per key row, causality after. */
  dynamicMaskSelect?: DynamicMaskSelect;
  /** 'topk' (default): keep keepWindowSize keys; 'relu': keep a key iff d > 0. */
  dynamicMaskType?: DynamicMaskType;
}

export type DynamicMaskBias = 'exp' | 'linear';
export type DynamicMaskSelect = 'row' | 'key';
export type DynamicMaskType = 'topk' | 'relu';
/** Which of several keys with equal d the top-k keeps: torch's CPU topk order, or the later key ('recent', a total order). */
export type TopkTies = 'torch' | 'recent';

/** Check one of the DMA option values (a clear error naming the option and the allowed values). */
export function checkDmaOption<T extends string>(name: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) throw new Error(`${name} must be ${allowed.map((a) => `'${a}'`).join(' or ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

export interface AttnContext {
  /** RoPE tables [B|1, T, 1, hd] or null for no RoPE. */
  cos: tf.Tensor | null;
  sinSigned: tf.Tensor | null;
  /** Causal + padding mask (see buildMaskBias), or null when every key is allowed. */
  maskBias: MaskBias | null;
  cache?: LayerCache;
  training?: boolean;
  dropoutSeed?: number;
  /** Also return the attention probabilities and the dynamic bias d. */
  outputAttentions?: boolean;
  /** Tie rule of the top-k (default 'torch'; a bounded cache uses 'recent'). */
  ties?: TopkTies;
  /**
   * Keep a bounded cache: at most keepWindowSize keys per kv head (src/modules/dmattn-cache.ts). `start`: sequence
   * index of the first new key; `newMask`: row-major [B, T] validity of the new keys (1 = real) or null. With a bounded
   * `cache`, `maskBias` covers the T new keys only ([B|1, 1, T, T]); the cached slots are always allowed (a slot a
   * head must not see carries d = float32 min).
   */
  bounded?: { start: number; newMask: Int32Array | null };
}

export interface AttnResult {
  out: tf.Tensor; // [B, T, H]
  cache: LayerCache; // new cache (old tensors are not disposed here)
  probs?: tf.Tensor; // [B, nh, T, S]
  dynamicMask?: tf.Tensor; // [B, nkv | nh, S]
}

export class DynamicMaskAttention extends Module {
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Keys kept per query row (Infinity: no top-k). Mutable so a training curriculum (MQAR's shrinking window) can set it between steps. */
  keepWindowSize: number;
  /** Heads of the dynamic mask: nkv ('kv') or nh ('query'). */
  readonly maskHeads: number;
  readonly eps: number;
  readonly attentionDropout: number;
  readonly qkNorm: boolean;
  readonly dynamicMaskBias: DynamicMaskBias;
  readonly dynamicMaskSelect: DynamicMaskSelect;
  readonly dynamicMaskType: DynamicMaskType;
  // weights (HF names in parameters()): q/k/v/o projections [out, in], their biases when attentionBias,
  // A [nm] and dt_proj [nm, nkv*hd] of the dynamic mask, the per-head q/k RMSNorm weights [hd] when qkNorm
  readonly qW: tf.Variable;
  readonly kW: tf.Variable;
  readonly vW: tf.Variable;
  readonly oW: tf.Variable;
  readonly qB: tf.Variable | null = null;
  readonly kB: tf.Variable | null = null;
  readonly vB: tf.Variable | null = null;
  readonly oB: tf.Variable | null = null;
  readonly A: tf.Variable;
  readonly dtW: tf.Variable;
  readonly dtB: tf.Variable | null = null;
  readonly qNormW: tf.Variable | null = null;
  readonly kNormW: tf.Variable | null = null;
  private rope: RotaryEmbedding | null = null;

  /** `init` given: a layer of a model (positions come from the model); absent: standalone, with its own RoPE. */
  constructor(opts: DynamicMaskAttentionOptions, init?: Init) {
    super();
    const standalone = !init;
    this.hiddenSize = opts.hiddenSize;
    this.numHeads = opts.numHeads;
    this.numKvHeads = opts.numKvHeads ?? opts.numHeads;
    if (this.numHeads % this.numKvHeads !== 0) {
      throw new Error(`num_attention_heads ${this.numHeads} must be a multiple of num_key_value_heads ${this.numKvHeads}`);
    }
    this.headDim = opts.headDim ?? Math.floor(opts.hiddenSize / opts.numHeads);
    this.keepWindowSize = opts.keepWindowSize === null ? Infinity : opts.keepWindowSize ?? 2048;
    this.eps = opts.rmsNormEps ?? 1e-6;
    this.attentionDropout = opts.attentionDropout ?? 0;
    this.qkNorm = opts.qkNorm ?? true;
    this.dynamicMaskBias = checkDmaOption('dynamicMaskBias', opts.dynamicMaskBias, ['exp', 'linear'] as const) ?? 'exp';
    this.dynamicMaskSelect = checkDmaOption('dynamicMaskSelect', opts.dynamicMaskSelect, ['row', 'key'] as const) ?? 'row';
    this.dynamicMaskType = checkDmaOption('dynamicMaskType', opts.dynamicMaskType, ['topk', 'relu'] as const) ?? 'topk';
    const st = init ?? makeInit(opts);
    const { hiddenSize: H } = this;
    const nh = this.numHeads, nkv = this.numKvHeads, hd = this.headDim;
    const bias = !!opts.attentionBias;
    const perQuery = (opts.dynamicMaskHeads ?? 'kv') === 'query';
    if (opts.dynamicMaskHeads !== undefined && opts.dynamicMaskHeads !== 'kv' && opts.dynamicMaskHeads !== 'query') {
      throw new Error(`DynamicMaskAttention: dynamicMaskHeads must be 'kv' or 'query', got '${opts.dynamicMaskHeads}'`);
    }
    const nm = (this.maskHeads = perQuery ? nh : nkv);
    const add = (name: string, shape: number[], kind: 'normal' | 'zeros' | 'ones') => this.param(name, shape, kind, st);
    this.qW = add('q_proj.weight', [nh * hd, H], 'normal');
    if (bias) this.qB = add('q_proj.bias', [nh * hd], 'zeros');
    this.kW = add('k_proj.weight', [nkv * hd, H], 'normal');
    if (bias) this.kB = add('k_proj.bias', [nkv * hd], 'zeros');
    this.vW = add('v_proj.weight', [nkv * hd, H], 'normal');
    if (bias) this.vB = add('v_proj.bias', [nkv * hd], 'zeros');
    this.A = add('A', [nm], opts.aInit ?? 'zeros');
    this.dtW = add('dt_proj.weight', [nm, nkv * hd], 'normal');
    if (bias) this.dtB = add('dt_proj.bias', [nm], 'zeros');
    this.oW = add('o_proj.weight', [H, nh * hd], 'normal');
    if (bias) this.oB = add('o_proj.bias', [H], 'zeros');
    if (this.qkNorm) {
      this.qNormW = add('q_norm.weight', [hd], 'ones');
      this.kNormW = add('k_norm.weight', [hd], 'ones');
    }
    if (standalone && (opts.useRope ?? true)) {
      this.rope = this.own(new RotaryEmbedding({ headDim: hd, theta: opts.ropeTheta, maxPositionEmbeddings: opts.maxPositionEmbeddings }));
    }
  }

  private normCache: { ids: object[]; t: tf.Tensor } | null = null;

  /** [nh + nkv, hd]: q_norm * hd^-0.5 for each query head, then k_norm for each kv head (cached when not training). */
  private qkNormWeight(scale: number): tf.Tensor {
    const qw = this.qNormW!, kw = this.kNormW!;
    const nh = this.numHeads, nkv = this.numKvHeads, hd = this.headDim;
    const build = () => tf.concat([
      tf.tile(tf.reshape(tf.mul(qw, scale), [1, hd]), [nh, 1]), tf.tile(tf.reshape(kw, [1, hd]), [nkv, 1])], 0);
    if (isRecordingGradients()) return build();
    const ids = [qw.dataId as object, kw.dataId as object];
    if (this.normCache && !this.normCache.t.isDisposed && this.normCache.ids[0] === ids[0] && this.normCache.ids[1] === ids[1]) return this.normCache.t;
    this.normCache?.t.dispose();
    this.normCache = { ids, t: tf.keep(tf.tidy(build)) };
    return this.normCache.t;
  }

  /** Standalone call: causal self-attention over x [B, T, H] (optional padding mask [B, T], positions) -> [B, T, H]. */
  apply(x: tf.Tensor, opts: { attentionMask?: tf.Tensor; positionIds?: ArrayLike<number>; training?: boolean; dropoutSeed?: number } = {}): tf.Tensor {
    return tf.tidy(() => this.standalone(x, opts, false).out);
  }

  /** Standalone: the attention probabilities [B, nh, T, T] of x [B, T, H] (with the dynamic mask, causal mask and top-k). */
  attentionProbs(x: tf.Tensor, opts: { attentionMask?: tf.Tensor; positionIds?: ArrayLike<number> } = {}): tf.Tensor4D {
    return tf.tidy(() => this.standalone(x, opts, true).probs as tf.Tensor4D);
  }

  /** Standalone: the dynamic mask d [B, mask heads, T] of x [B, T, H] (one value per key, from its value vector). */
  dynamicMaskOf(x: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => this.standalone(x, {}, true).dynamicMask as tf.Tensor3D);
  }

  private standalone(x: tf.Tensor, opts: { attentionMask?: tf.Tensor; positionIds?: ArrayLike<number>; training?: boolean; dropoutSeed?: number }, outputAttentions: boolean): AttnResult {
    const [B, T] = x.shape;
    // positionIds: row-major [B * T] positions for RoPE (default 0..T-1 in every row); owned tables die with the caller's tidy
    const tables = this.rope ? this.rope.tables(opts.positionIds ?? 0, B, T) : null;
    const maskHost = opts.attentionMask ? opts.attentionMask.dataSync() : null;
    const maskBias = buildMaskBias(B, T, 0, maskHost, null);
    return this.forward(x, {
      cos: tables?.cos ?? null, sinSigned: tables?.sinSigned ?? null, maskBias,
      training: opts.training, dropoutSeed: opts.dropoutSeed, outputAttentions,
    });
  }

  /**
   * Why a bounded decoding cache would not be exact for this layer (null: it is): without a window every key stays
   * visible, and 'relu' keeps every key with d > 0, however many.
   */
  boundedCacheObstacle(): string | null {
    if (this.keepWindowSize === Infinity) return 'no keep_window_size (every key stays visible)';
    if (this.dynamicMaskType === 'relu') return "dynamic_mask_type 'relu' (keeps every key with d > 0)";
    return null;
  }

  /** Full call used by the model (and by incremental decoding). x [B, T, H]. */
  forward(x: tf.Tensor, ctx: AttnContext): AttnResult {
    const [B, T] = x.shape;
    const { q, k, v, vFlat } = this.project(x, ctx);
    const dNew = this.dynamicMask(vFlat); // [B, nm, T]

    // append the new keys to the cache (post-RoPE k, v and their d)
    const c = ctx.cache;
    const K = c ? tf.concat([c.k, k], 2) : k; // [B, nkv, S, hd]
    const V = c ? tf.concat([c.v, v], 2) : v; // [B, nkv, S, hd]
    const D = c ? tf.concat([c.d, dNew], 2) : dNew; // [B, nm, S]
    const S = K.shape[2] as number;
    if (ctx.bounded && c && T === 1 && !ctx.outputAttentions) return this.boundedStep(q, K, V, D, c, B, ctx);
    // a bounded cache's slots are all allowed (d = float32 min marks what a head must not see)
    const maskBias = ctx.bounded && c ? withCachedSlots(ctx.maskBias, S - T) : ctx.maskBias;

    const M = this.maskScores(D, maskBias, B, T, S, ctx.ties ?? 'torch'); // [B, nm, T|1, S]
    const { out, probs } = this.attend(q, K, V, M, B, T, ctx);
    const cache = ctx.bounded
      ? boundLayerCache({ k: K, v: V, d: D, keys: c?.keys }, { ...ctx.bounded, T, keep: this.keepWindowSize, numKvHeads: this.numKvHeads })
      : { k: K, v: V, d: D };
    const res: AttnResult = { out, cache };
    if (ctx.outputAttentions) {
      res.probs = tf.reshape(probs, [B, this.numHeads, T, S]);
      res.dynamicMask = D;
    }
    return res;
  }

  /**
   * One decoding step with a bounded cache: bound first, then attend over what is kept. The new token's row sees
   * every key, so the keys its top-k keeps are exactly the ones the bounded cache keeps (dmattn-cache.ts: the same
   * order, padding never, per mask head, d = float32 min on a head's other slots), and attending over them gives the
   * row's output without a top-k over keep_window_size + 1 keys (past the bound, the largest cost of a step after the
   * eviction itself). Same math as forward()'s general path, which the tests compare it with.
   */
  private boundedStep(q: tf.Tensor, K: tf.Tensor, V: tf.Tensor, D: tf.Tensor, c: LayerCache, B: number, ctx: AttnContext): AttnResult {
    const cache = boundLayerCache({ k: K, v: V, d: D, keys: c.keys }, { ...ctx.bounded!, T: 1, keep: this.keepWindowSize, numKvHeads: this.numKvHeads });
    const slots = cache.k.shape[2] as number;
    const M = this.maskScores(cache.d, null, B, 1, slots, ctx.ties ?? 'torch'); // [B, nm, 1, slots]
    return { out: this.attend(q, cache.k, cache.v, M, B, 1, ctx).out, cache };
  }

  /**
   * q, k, v of x [B, T, H]: q grouped per kv head [B*nkv, g*T, hd] (query head h = c * g + i uses kv head c), k and v
   * [B, nkv, T, hd] (k normalised and rotated: what the cache keeps), and v in v_proj's layout [B, T, nkv*hd].
   */
  project(x: tf.Tensor, ctx: Pick<AttnContext, 'cos' | 'sinSigned'>): { q: tf.Tensor; k: tf.Tensor; v: tf.Tensor; vFlat: tf.Tensor } {
    const [B, T] = x.shape;
    const nh = this.numHeads, nkv = this.numKvHeads, hd = this.headDim, g = nh / nkv;
    const { qW, kW, vW, qB, kB, vB } = this;

    // one projection for q, k and v: [B, T, (nh + 2 nkv) * hd]
    const qkv = linearT(x, weightT([qW, kW, vW] as tf.Variable[]), qB && kB && vB ? tf.concat([qB, kB, vB], 0) : null);
    const qkFlat = sliceLast(qkv, 0, (nh + nkv) * hd);
    const vFlat = sliceLast(qkv, (nh + nkv) * hd, nkv * hd);
    let qk = tf.reshape(qkFlat, [B, T, nh + nkv, hd]); // q heads then k heads
    const scale = 1 / Math.sqrt(hd);
    if (this.qkNorm) {
      // per-head RMSNorm with q_norm for the nh query heads and k_norm for the nkv key heads; hd^-0.5 folded into q
      qk = rmsNorm(qk, this.qkNormWeight(scale), this.eps);
    } else {
      const s = new Float32Array(nh + nkv).fill(1);
      s.fill(scale, 0, nh);
      qk = tf.mul(qk, tf.tensor(s, [nh + nkv, 1]));
    }
    if (ctx.cos && ctx.sinSigned) qk = applyRope(qk, ctx.cos, ctx.sinSigned);
    const q4 = sliceAxis(qk, 2, 0, nh); // [B, T, nh, hd]
    const k4 = sliceAxis(qk, 2, nh, nkv); // [B, T, nkv, hd]
    // query head h = c * g + i uses kv head c: group the g query heads of a kv head along the row axis
    const q = tf.reshape(permute(tf.reshape(q4, [B, T, nkv, g, hd]), [0, 2, 3, 1, 4]), [B * nkv, g * T, hd]);
    const k = permute(k4, [0, 2, 1, 3]); // [B, nkv, T, hd]
    const v = permute(tf.reshape(vFlat, [B, T, nkv, hd]), [0, 2, 1, 3]); // [B, nkv, T, hd]
    return { q, k, v, vFlat };
  }

  /**
   * The paper's dynamic mask: d[b, c, j] = exp(A[c] * softplus(dt_proj(v_j))[c]) for every new key j ('linear':
   * without the exp), from the key's values alone (v_flat [B, T, nkv*hd], the raw v_proj layout) -> [B, nm, T]
   * (nm = kv or query heads).
   */
  dynamicMask(vFlat: tf.Tensor): tf.Tensor {
    const dt = linearT(vFlat, weightT([this.dtW]), this.dtB); // [B, T, nm]
    return dynamicMaskBias(dt, this.A, this.dynamicMaskBias); // [B, nm, T] (one kernel where the backend has it)
  }

  /**
   * The additive mask M [B, nm, T|1, S] from d of every key D [B, nm, S]: d where the query may see the key and the
   * dynamic mask keeps it, float32 min elsewhere (replacement, see the header).
   */
  maskScores(D: tf.Tensor, maskBias: MaskBias | null, B: number, T: number, S: number, ties: TopkTies): tf.Tensor {
    const nm = this.maskHeads, keep = this.keepWindowSize;
    const M = tf.reshape(D, [B, nm, 1, S]);
    // replace (not add): d * allowed + bias, so masked entries get no gradient (torch masked_fill)
    const causal = (m: tf.Tensor) => (maskBias ? tf.add(tf.mul(m, maskBias.allowed), maskBias.bias) : m); // [B, nm, T, S]
    if (this.dynamicMaskType === 'relu') {
      const Mc = causal(M);
      return tf.where(tf.greater(Mc, 0), Mc, tf.fill(Mc.shape, F32_MIN));
    }
    if (this.dynamicMaskSelect === 'key') {
      if (S <= keep) return causal(M);
      // one top-k per key row over the keys the call may see at all (padding out; the last query sees every key)
      const seen = maskBias ? tf.slice(maskBias.allowed, [0, 0, maskBias.allowed.shape[2]! - 1, 0], [-1, -1, 1, -1]) : null;
      const Mk = seen ? tf.add(tf.mul(M, seen), tf.mul(tf.sub(1, seen), F32_MIN)) : M;
      return causal(keepTopK(Mk, B, nm, 1, S, keep, ties));
    }
    const Mc = causal(M);
    return S > keep ? keepTopK(Mc, B, nm, T, S, keep, ties) : Mc;
  }

  /** Softmax attention of the grouped q over K, V [B, nkv, S, hd] with the mask M; returns out [B, T, H] and p. */
  attend(q: tf.Tensor, K: tf.Tensor, V: tf.Tensor, M: tf.Tensor, B: number, T: number, ctx: Pick<AttnContext, 'training' | 'dropoutSeed'>): { out: tf.Tensor; probs: tf.Tensor } {
    const nh = this.numHeads, nkv = this.numKvHeads, hd = this.headDim, g = nh / nkv, nm = this.maskHeads;
    const S = K.shape[2] as number;
    const scores = bmm(q, tf.reshape(K, [B * nkv, S, hd]), false, true); // [B*nkv, g*T, S]
    const Tm = M.shape[2] as number;
    // per kv head the mask is shared by its g query heads; per query head it is laid out like them (h = c * g + i)
    const Mg = nm === nkv ? tf.reshape(M, [B, nkv, 1, Tm, S]) : tf.reshape(M, [B, nkv, g, Tm, S]);
    const biased = tf.add(tf.reshape(scores, [B, nkv, g, T, S]), Mg);
    let probs = tf.softmax(biased); // [B, nkv, g, T, S]
    // 'relu': a row that keeps no key outputs 0 (not the uniform average float32-min masking would give)
    if (this.dynamicMaskType === 'relu') probs = tf.mul(probs, tf.cast(tf.greater(tf.max(Mg, -1, true), F32_MIN), 'float32'));
    if (ctx.training && this.attentionDropout > 0) probs = tf.dropout(probs, this.attentionDropout, undefined, ctx.dropoutSeed);
    const o = bmm(tf.reshape(probs, [B * nkv, g * T, S]), tf.reshape(V, [B * nkv, S, hd])); // [B*nkv, g*T, hd]
    const oFlat = tf.reshape(permute(tf.reshape(o, [B, nkv, g, T, hd]), [0, 3, 1, 2, 4]), [B, T, nh * hd]);
    const out = linearT(oFlat, weightT([this.oW]), this.oB); // [B, T, H]
    return { out, probs };
  }

  protected override onClearCaches(): void {
    this.normCache?.t.dispose();
    this.normCache = null;
  }
}

/**
 * Keep the k largest entries of every row of M [B, nkv, T|1, S] (others -> float32 min), exactly k per row.
 * Equal values are common (repeated tokens give identical v, hence identical d), and which tied key survives changes
 * the output, so the choice follows a stated rule on the host when the mask is small enough (rows * S <= 4M):
 * 'torch', torch's CPU topk (src/ops/torch-topk.ts), or 'recent', the later key; larger masks use tfjs topk, preferring
 * the later key among ties.
 */
function keepTopK(M: tf.Tensor, B: number, nkv: number, T: number, S: number, k: number, ties: TopkTies): tf.Tensor {
  const full = M.shape[2] === T ? M : tf.tile(M, [1, 1, T, 1]); // rows differ per query once masked
  const fixed = stopGradient(full); // selection is not differentiated (torch: topk indices)
  const rows = B * nkv * T;
  let idx: tf.Tensor; // [rows, k] key indices to keep
  if (rows * S <= 4 * 1024 * 1024) {
    idx = tf.tensor((ties === 'torch' ? torchTopkIndices : recentTopkIndices)(fixed.dataSync(), rows, S, k), [rows, k], 'int32');
  } else {
    const rev = tf.reverse(tf.reshape(fixed, [rows, S]), 1);
    idx = tf.sub(tf.scalar(S - 1, 'int32'), tf.topk(rev, k, true).indices);
  }
  const flat = tf.add(idx, tf.reshape(tf.mul(tf.range(0, rows, 1, 'int32'), tf.scalar(S, 'int32')), [rows, 1]));
  const keep = tf.reshape(tf.scatterND(tf.reshape(flat, [rows * k, 1]), tf.ones([rows * k]), [rows * S]), full.shape);
  return tf.where(tf.greater(keep, 0), full, tf.fill(full.shape, F32_MIN));
}

/**
 * Host-built mask [B|1, 1, T, S] (allowed: j <= P + t, key not padding, inside the sliding window, and, with
 * document ids, key in the query's document: the block-diagonal causal mask of packed sequences, HF's
 * flash-attention varlen / position-ids packing). Returns null when every key is allowed (single-token decoding
 * without padding). mask2d: row-major [B, S] (1 = real) or null; documentIds: row-major [B, S] or null.
 */
export function buildMaskBias(
  B: number, T: number, P: number, mask2d: ArrayLike<number> | null, slidingWindow: number | null,
  documentIds: ArrayLike<number> | null = null,
): MaskBias | null {
  const S = P + T;
  let anyPad = false;
  if (mask2d) {
    if (mask2d.length !== B * S) throw new Error(`attention_mask has ${mask2d.length} entries, expected batch ${B} x ${S} keys`);
    for (let i = 0; i < mask2d.length; i++) if (mask2d[i] === 0) { anyPad = true; break; }
  }
  if (documentIds && documentIds.length !== B * S) {
    throw new Error(`documentIds has ${documentIds.length} entries, expected batch ${B} x ${S} keys`);
  }
  const docs = documentIds;
  const needCausal = T > 1 || (slidingWindow !== null && S > slidingWindow);
  if (!anyPad && !needCausal && !docs) return null;
  const rows = anyPad || docs ? B : 1;
  const out = new Float32Array(rows * T * S);
  const allowed = new Float32Array(rows * T * S);
  for (let b = 0; b < rows; b++) {
    for (let t = 0; t < T; t++) {
      const base = (b * T + t) * S;
      for (let j = 0; j < S; j++) {
        let ok = j <= P + t;
        if (slidingWindow !== null && j <= P + t - slidingWindow) ok = false;
        if (anyPad && mask2d![b * S + j] === 0) ok = false;
        if (docs && docs[b * S + j] !== docs[b * S + P + t]) ok = false;
        if (!ok) out[base + j] = F32_MIN;
        else allowed[base + j] = 1;
      }
    }
  }
  return { allowed: tf.tensor(allowed, [rows, 1, T, S]), bias: tf.tensor(out, [rows, 1, T, S]) };
}
