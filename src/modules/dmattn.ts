/**
 * Dynamic Mask Attention (HF DogeAttention, spec 4.6; the seed-era variant of Cheems with `dynamicMaskHeads: 'query'`),
 * usable inside DogeForCausalLM / CheemsForCausalLM and standalone.
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
 *
 * Math per layer, x [B, T, H], P cached tokens, S = P + T keys, g = nh / nkv:
 *   q, k, v = x Wq^T, x Wk^T, x Wv^T            (one matmul on the concatenated weight)
 *   q, k = RMSNorm_hd(q), RMSNorm_hd(k); RoPE   (hd^-0.5 folded into the q-norm weight: same math)
 *   d[b, c, j] = exp(A[c] * softplus(dt_proj(v_flat[b, j]))[c])   for every cached key j    [B, nkv, S]
 *   M[b, c, t, j] = d[b, c, j] where allowed (causal, padding), else float32 min              [B, nkv, T, S]
 *   if S > keep_window_size: keep the keep_window_size largest M per row, others -> float32 min
 *   p = softmax(q k^T * hd^-0.5 + M) (query head h uses kv head floor(h / g)); o = p v; out = o Wo^T
 * "Replacement" by the float32 minimum is implemented as adding a 0 / min bias: in float32, min + d == min for any
 * d of ordinary size, so it is the same number, and the softmax probability (hence the gradient) there is 0.
 */
import { tf } from '../tf';
import { F32_MIN, bmm, linearT, sliceAxis, sliceLast, stopGradient, weightT, isRecordingGradients, permute } from '../ops';
import { torchTopkIndices } from '../ops/torch-topk';
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
}

/** Per-layer KV cache: post-norm, post-RoPE keys, values and the dynamic bias of every cached key. */
export interface LayerCache {
  k: tf.Tensor; // [B, nkv, S, hd]
  v: tf.Tensor; // [B, nkv, S, hd]
  d: tf.Tensor; // [B, nkv | nh, S]
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

  /** Full call used by the model (and by incremental decoding). x [B, T, H]. */
  forward(x: tf.Tensor, ctx: AttnContext): AttnResult {
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
    const kNew = permute(k4, [0, 2, 1, 3]); // [B, nkv, T, hd]
    const vNew = permute(tf.reshape(vFlat, [B, T, nkv, hd]), [0, 2, 1, 3]); // [B, nkv, T, hd]

    const dNew = this.dynamicMask(vFlat); // [B, nkv | nh, T]

    const K = ctx.cache ? tf.concat([ctx.cache.k, kNew], 2) : kNew; // [B, nkv, S, hd]
    const V = ctx.cache ? tf.concat([ctx.cache.v, vNew], 2) : vNew; // [B, nkv, S, hd]
    const D = ctx.cache ? tf.concat([ctx.cache.d, dNew], 2) : dNew; // [B, nm, S]
    const S = K.shape[2] as number;
    const nm = this.maskHeads;

    // mask M [B, nm, T|1, S]
    let M: tf.Tensor = tf.reshape(D, [B, nm, 1, S]);
    // replace (not add): d * allowed + bias, so masked entries get no gradient (torch masked_fill)
    if (ctx.maskBias) M = tf.add(tf.mul(M, ctx.maskBias.allowed), ctx.maskBias.bias); // [B, nm, T, S]
    if (S > this.keepWindowSize) M = keepTopK(M, B, nm, T, S, this.keepWindowSize);

    const scores = bmm(q, tf.reshape(K, [B * nkv, S, hd]), false, true); // [B*nkv, g*T, S]
    const Tm = M.shape[2] as number;
    // per kv head the mask is shared by its g query heads; per query head it is laid out like them (h = c * g + i)
    const Mg = nm === nkv ? tf.reshape(M, [B, nkv, 1, Tm, S]) : tf.reshape(M, [B, nkv, g, Tm, S]);
    const biased = tf.add(tf.reshape(scores, [B, nkv, g, T, S]), Mg);
    let probs = tf.softmax(biased); // [B, nkv, g, T, S]
    if (ctx.training && this.attentionDropout > 0) probs = tf.dropout(probs, this.attentionDropout, undefined, ctx.dropoutSeed);
    const o = bmm(tf.reshape(probs, [B * nkv, g * T, S]), tf.reshape(V, [B * nkv, S, hd])); // [B*nkv, g*T, hd]
    const oFlat = tf.reshape(permute(tf.reshape(o, [B, nkv, g, T, hd]), [0, 3, 1, 2, 4]), [B, T, nh * hd]);
    const out = linearT(oFlat, weightT([this.oW]), this.oB); // [B, T, H]
    const res: AttnResult = { out, cache: { k: K, v: V, d: D } };
    if (ctx.outputAttentions) {
      res.probs = tf.reshape(probs, [B, nh, T, S]);
      res.dynamicMask = D;
    }
    return res;
  }

  /**
   * The paper's dynamic mask: d[b, c, j] = exp(A[c] * softplus(dt_proj(v_j))[c]) for every new key j, from the
   * key's values alone (v_flat [B, T, nkv*hd], the raw v_proj layout) -> [B, nm, T] (nm = kv or query heads).
   */
  dynamicMask(vFlat: tf.Tensor): tf.Tensor {
    const dt = linearT(vFlat, weightT([this.dtW]), this.dtB); // [B, T, nm]
    return permute(tf.exp(tf.mul(this.A, tf.softplus(dt))), [0, 2, 1]); // [B, nm, T]
  }

  protected override onClearCaches(): void {
    this.normCache?.t.dispose();
    this.normCache = null;
  }
}

/**
 * Keep the k largest entries of every row of M [B, nkv, T|1, S] (others -> float32 min), exactly k per row.
 * Equal values are common (repeated tokens give identical v, hence identical d), and which tied key survives changes
 * the output, so the choice follows torch's CPU topk (src/ops/torch-topk.ts) on the host when the mask is small
 * enough (rows * S <= 4M); larger masks use tfjs topk, preferring the later key among ties.
 */
function keepTopK(M: tf.Tensor, B: number, nkv: number, T: number, S: number, k: number): tf.Tensor {
  const full = M.shape[2] === T ? M : tf.tile(M, [1, 1, T, 1]); // rows differ per query once masked
  const fixed = stopGradient(full); // selection is not differentiated (torch: topk indices)
  const rows = B * nkv * T;
  let idx: tf.Tensor; // [rows, k] key indices to keep
  if (rows * S <= 4 * 1024 * 1024) {
    idx = tf.tensor(torchTopkIndices(fixed.dataSync(), rows, S, k), [rows, k], 'int32');
  } else {
    const rev = tf.reverse(tf.reshape(fixed, [rows, S]), 1);
    idx = tf.sub(tf.scalar(S - 1, 'int32'), tf.topk(rev, k, true).indices);
  }
  const flat = tf.add(idx, tf.reshape(tf.mul(tf.range(0, rows, 1, 'int32'), tf.scalar(S, 'int32')), [rows, 1]));
  const keep = tf.reshape(tf.scatterND(tf.reshape(flat, [rows * k, 1]), tf.ones([rows * k]), [rows * S]), full.shape);
  return tf.where(tf.greater(keep, 0), full, tf.fill(full.shape, F32_MIN));
}

/** allowed [B|1, 1, T, S]: 1 where the key may be attended, else 0; bias: 0 where allowed, float32 min elsewhere. */
export interface MaskBias {
  allowed: tf.Tensor;
  bias: tf.Tensor;
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
