/**
 * Plain causal softmax attention, the paper's "QCAttn" baseline of the MQAR figure (Zoology's MHA mixer).
 * Positional information: rotary embeddings (RoPE, theta 10000) on q and k, like the DMAttn it is compared with,
 * instead of Zoology's learned absolute positions; no q/k norm, no dynamic mask, no window.
 *
 *   q, k, v = x Wq, x Wk, x Wv       [B, T, nh, hd]
 *   q, k    = RoPE(q), RoPE(k)
 *   o       = softmax(q k^T / sqrt(hd) + causal) v
 *   out     = concat_h(o) Wo          [B, T, d]
 */
import { tf } from '../tf';
import { bmm, permute, sliceAxis, sliceLast } from '../ops';
import { RotaryEmbedding } from './rope';
import { additiveCausalMask as causalMask, linearInOut as linear, TfSeededInit } from './mqar-blocks';
import { Module } from './module';

export interface CausalAttentionOptions {
  dModel: number;
  /** Heads (default 1, as Zoology's MQAR attention). dModel must be a multiple. */
  numHeads?: number;
  ropeTheta?: number;
  /** Std of out_proj, the projection that writes into the residual stream (default 0.02, like qkv_proj). */
  outProjStd?: number;
  seed?: number;
}

export class CausalAttention extends Module {
  readonly name = 'attention';
  readonly numHeads: number;
  readonly headDim: number;
  private readonly w: Record<string, tf.Variable> = {};
  private readonly rope: RotaryEmbedding;
  private readonly masks = new Map<number, tf.Tensor2D>();
  /** [hd, hd] permutation with x @ swap = [x2, x1] (a matmul is far cheaper than slicing and concatenating on wasm). */
  private readonly swap: tf.Tensor2D;

  constructor(readonly options: CausalAttentionOptions) {
    super();
    const d = options.dModel;
    this.numHeads = options.numHeads ?? 1;
    if (d % this.numHeads !== 0) throw new Error(`attention: dModel (${d}) must be a multiple of numHeads (${this.numHeads})`);
    this.headDim = d / this.numHeads;
    if (this.headDim % 2 !== 0) throw new Error(`attention: head dim (${this.headDim}) must be even for RoPE`);
    const P = new TfSeededInit(options.seed ?? 0);
    this.w.qkv = this.paramFromTensor('qkv_proj.weight', P.normal([d, 3 * d], 0.02));
    this.w.out = this.paramFromTensor('out_proj.weight', P.normal([d, d], options.outProjStd ?? 0.02));
    this.rope = this.own(new RotaryEmbedding({ headDim: this.headDim, theta: options.ropeTheta }));
    const hd = this.headDim;
    const m = new Float32Array(hd * hd);
    for (let i = 0; i < hd / 2; i++) {
      m[(i + hd / 2) * hd + i] = 1;
      m[i * hd + i + hd / 2] = 1;
    }
    this.swap = this.own(tf.tensor2d(m, [hd, hd]));
  }

  /** x [batch, seq, dModel] -> [batch, seq, dModel]. */
  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T, d] = x.shape;
      const nh = this.numHeads;
      const hd = this.headDim;
      const { cos, sinSigned } = this.rope.tables(0, B, T); // [1, T, 1, hd], cached by the rope module
      const qkv = linear(x, this.w.qkv); // [B, T, 3d]
      // RoPE on q and k together (q heads then k heads): x cos + [x2, x1] [-sin, sin] = x cos + rotate_half(x) sin
      const qkRaw = tf.reshape(sliceLast(qkv, 0, 2 * d), [B, T, 2 * nh, hd]);
      const swapped = tf.reshape(tf.matMul(tf.reshape(qkRaw, [-1, hd]), this.swap), [B, T, 2 * nh, hd]);
      const qk = tf.add(tf.mul(qkRaw, cos), tf.mul(swapped, sinSigned));
      // heads to the batch axis: [B*nh, T, hd]
      const toBatch = (t: tf.Tensor) => tf.reshape(permute(t, [0, 2, 1, 3]), [B * nh, T, hd]);
      const q = toBatch(sliceAxis(qk, 2, 0, nh));
      const k = toBatch(sliceAxis(qk, 2, nh, nh));
      const v = toBatch(tf.reshape(sliceLast(qkv, 2 * d, d), [B, T, nh, hd]));
      // bmm: the library's batched matmul (fast on wasm, where tf.matMul over a batch is slow)
      const scores = tf.add(tf.mul(bmm(q, k, false, true), 1 / Math.sqrt(hd)), this.mask(T)); // [B*nh, T, T]
      const o = bmm(tf.softmax(scores), v); // [B*nh, T, hd]
      const merged = tf.reshape(permute(tf.reshape(o, [B, nh, T, hd]), [0, 2, 1, 3]), [B, T, d]);
      return linear(merged, this.w.out) as tf.Tensor3D;
    });
  }

  private mask(T: number): tf.Tensor2D {
    let m = this.masks.get(T);
    if (!m) {
      m = tf.keep(causalMask(T));
      this.masks.set(T, m);
    }
    return m;
  }

  protected override onClearCaches(): void {
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
  }
}
