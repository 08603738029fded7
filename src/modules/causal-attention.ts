/**
 * Plain causal softmax attention, the paper's "QCAttn" baseline of the MQAR figure (Zoology's MHA mixer).
 * Positional information: rotary embeddings (RoPE, theta 10000) on q and k, like the DMAttn it is compared with,
 * instead of Zoology's learned absolute positions; no q/k norm, no dynamic mask, no window.
 *
 *   q, k, v = x Wq, x Wk, x Wv       [B, T, nh, hd]
 *   q, k    = RoPE(q), RoPE(k)
 *   o       = softmax(q k^T / sqrt(hd) + causal) v
 *   out     = concat_h(o) Wo          [B, T, d]
 * Weights in torch's layout: qkv_proj.weight [3d, d] (the rows of Wq, Wk, Wv), out_proj.weight [d, d].
 */
import { tf } from '../tf';
import { bmm, linear, permute, sliceAxis, sliceLast } from '../ops';
import { RotaryEmbedding, applyRope } from './rope';
import { Module, makeInit, type InitOptions } from './module';

export interface CausalAttentionOptions extends InitOptions {
  dModel: number;
  /** Heads (default 1, as Zoology's MQAR attention). dModel must be a multiple. */
  numHeads?: number;
  ropeTheta?: number;
  /** Std of out_proj, the projection that writes into the residual stream (default: initializerRange, like qkv_proj). */
  outProjStd?: number;
}

/** Additive causal mask [T, T]: 0 where key <= query, -1e9 elsewhere (built per call; the caller's tidy frees it). */
function causalMask(T: number): tf.Tensor {
  const m = new Float32Array(T * T);
  for (let q = 0; q < T; q++) for (let k = q + 1; k < T; k++) m[q * T + k] = -1e9;
  return tf.tensor2d(m, [T, T]);
}

export class CausalAttention extends Module {
  readonly name = 'attention';
  readonly numHeads: number;
  readonly headDim: number;
  readonly qkvW: tf.Variable; // [3d, d]: q, k, v rows (torch layout)
  readonly outW: tf.Variable; // [d, d]
  private readonly rope: RotaryEmbedding;

  constructor(readonly options: CausalAttentionOptions) {
    super();
    const d = options.dModel;
    this.numHeads = options.numHeads ?? 1;
    if (d % this.numHeads !== 0) throw new Error(`attention: dModel (${d}) must be a multiple of numHeads (${this.numHeads})`);
    this.headDim = d / this.numHeads;
    if (this.headDim % 2 !== 0) throw new Error(`attention: head dim (${this.headDim}) must be even for RoPE`);
    const init = makeInit(options);
    this.qkvW = this.param('qkv_proj.weight', [3 * d, d], 'normal', init);
    this.outW = this.param('out_proj.weight', [d, d], 'normal', { ...init, std: options.outProjStd ?? init.std });
    this.rope = this.own(new RotaryEmbedding({ headDim: this.headDim, theta: options.ropeTheta }));
  }

  /** x [batch, seq, dModel] -> [batch, seq, dModel]. */
  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T, d] = x.shape;
      const nh = this.numHeads;
      const hd = this.headDim;
      const { probs, v } = this.attend(x);
      const o = bmm(probs, v); // [B*nh, T, hd]
      const merged = tf.reshape(permute(tf.reshape(o, [B, nh, T, hd]), [0, 2, 1, 3]), [B, T, d]);
      return linear(merged, this.outW) as tf.Tensor3D;
    });
  }

  /** The attention probabilities of x: [batch, heads, query, key] (row t: how much query t reads from each key). */
  attentionProbs(x: tf.Tensor3D): tf.Tensor4D {
    return tf.tidy(() => {
      const [B, T] = x.shape;
      return tf.reshape(this.attend(x).probs, [B, this.numHeads, T, T]) as tf.Tensor4D;
    });
  }

  /** softmax(q kᵀ / sqrt(hd) + causal mask) [B*nh, T, T] and the values v [B*nh, T, hd] (call inside a tidy). */
  private attend(x: tf.Tensor3D): { probs: tf.Tensor3D; v: tf.Tensor3D } {
    const [B, T, d] = x.shape;
    const nh = this.numHeads;
    const hd = this.headDim;
    const { cos, sinSigned } = this.rope.tables(0, B, T); // [1, T, 1, hd], cached by the rope module
    const qkv = linear(x, this.qkvW); // [B, T, 3d]
    // RoPE on q and k together (q heads then k heads)
    const qk = applyRope(tf.reshape(sliceLast(qkv, 0, 2 * d), [B, T, 2 * nh, hd]), cos, sinSigned);
    // heads to the batch axis: [B*nh, T, hd]
    const toBatch = (t: tf.Tensor) => tf.reshape(permute(t, [0, 2, 1, 3]), [B * nh, T, hd]) as tf.Tensor3D;
    const q = toBatch(sliceAxis(qk, 2, 0, nh));
    const k = toBatch(sliceAxis(qk, 2, nh, nh));
    const v = toBatch(tf.reshape(sliceLast(qkv, 2 * d, d), [B, T, nh, hd]));
    // bmm: the library's batched matmul (fast on wasm, where tf.matMul over a batch is slow)
    const scores = tf.add(tf.mul(bmm(q, k, false, true), 1 / Math.sqrt(hd)), causalMask(T)); // [B*nh, T, T]
    return { probs: tf.softmax(scores) as tf.Tensor3D, v };
  }
}
