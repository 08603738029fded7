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
import { tf } from '../backend';
import { applyPlainRope as applyRope, additiveCausalMask as causalMask, linearInOut as linear, plainRopeTables as ropeTables, TfSeededInit } from './mqar-blocks';
import { Module } from './module';

export interface CausalAttentionOptions {
  dModel: number;
  /** Heads (default 1, as Zoology's MQAR attention). dModel must be a multiple. */
  numHeads?: number;
  ropeTheta?: number;
  seed?: number;
}

export class CausalAttention extends Module {
  readonly name = 'attention';
  readonly numHeads: number;
  readonly headDim: number;
  private readonly w: Record<string, tf.Variable> = {};
  private readonly cache = new Map<number, { cos: tf.Tensor2D; sin: tf.Tensor2D; mask: tf.Tensor2D }>();

  constructor(readonly options: CausalAttentionOptions) {
    super();
    const d = options.dModel;
    this.numHeads = options.numHeads ?? 1;
    if (d % this.numHeads !== 0) throw new Error(`attention: dModel (${d}) must be a multiple of numHeads (${this.numHeads})`);
    this.headDim = d / this.numHeads;
    if (this.headDim % 2 !== 0) throw new Error(`attention: head dim (${this.headDim}) must be even for RoPE`);
    const P = new TfSeededInit(options.seed ?? 0);
    this.w.qkv = this.paramFromTensor('qkv_proj.weight', P.normal([d, 3 * d], 0.02));
    this.w.out = this.paramFromTensor('out_proj.weight', P.normal([d, d], 0.02));
  }

  /** x [batch, seq, dModel] -> [batch, seq, dModel]. */
  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T, d] = x.shape;
      const nh = this.numHeads;
      const hd = this.headDim;
      const { cos, sin, mask } = this.tables(T);
      const qkv = tf.reshape(linear(x, this.w.qkv), [B, T, 3, nh, hd]);
      const heads = tf.transpose(qkv, [2, 0, 3, 1, 4]); // [3, B, nh, T, hd]
      const [q, k, v] = tf.unstack(heads, 0); // each [B, nh, T, hd]
      const qr = applyRope(q, cos, sin);
      const kr = applyRope(k, cos, sin);
      const scores = tf.add(tf.mul(tf.matMul(qr, kr, false, true), 1 / Math.sqrt(hd)), mask); // [B, nh, T, T]
      const o = tf.matMul(tf.softmax(scores), v); // [B, nh, T, hd]
      const merged = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B, T, d]);
      return linear(merged, this.w.out) as tf.Tensor3D;
    });
  }

  private tables(T: number): { cos: tf.Tensor2D; sin: tf.Tensor2D; mask: tf.Tensor2D } {
    let t = this.cache.get(T);
    if (!t) {
      const r = ropeTables(T, this.headDim, this.options.ropeTheta ?? 10000);
      t = { ...r, mask: causalMask(T) };
      for (const x of Object.values(t)) tf.keep(x);
      this.cache.set(T, t);
    }
    return t;
  }

  protected override onClearCaches(): void {
    for (const t of this.cache.values()) for (const x of Object.values(t)) x.dispose();
    this.cache.clear();
  }
}
