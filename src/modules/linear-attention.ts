/**
 * Causal linear attention with the Taylor feature map of Based (Arora et al. 2024), the "Based" curve's core in the
 * paper's MQAR figure. Simplified: one short causal conv + Taylor linear attention; Based's sliding-window softmax
 * attention part is left out, so this is a pure linear-attention (fixed-size state) baseline.
 *
 *   x' = causal depthwise conv(x) (width 3)                                   [B, T, d]
 *   q, k = x' Wq, x' Wk  (feature dim f = 16),  v = x' Wv                      [B, T, f], [B, T, d]
 *   phi(q)·phi(k) = 1 + s + s^2 / 2,  s = q·k / sqrt(f)     (2nd-order Taylor of exp; phi(z) = [1, z/f^¼, z⊗z/(√2·√f)])
 *   y_t = Σ_{j<=t} phi(q_t)·phi(k_j) v_j / Σ_{j<=t} phi(q_t)·phi(k_j);  out = y Wo
 *
 * The sum is evaluated in its quadratic (masked) form, which equals the recurrent form with a state of size
 * (1 + f + f^2) x d exactly; for the sequence lengths a CPU can train that is also the faster one.
 */
import { tf } from '../tf';
import { linearInOut as linear, lowerTriangle, TfSeededInit } from './mqar-blocks';
import { Module } from './module';

export interface LinearAttentionOptions {
  dModel: number;
  /** Feature dim f of q and k (default 16, as Based). */
  featureDim?: number;
  /** Width of the short causal conv (default 3; 0 disables it). */
  convWidth?: number;
  seed?: number;
}

export class TaylorLinearAttention extends Module {
  readonly name = 'linear';
  readonly featureDim: number;
  readonly convWidth: number;
  private readonly w: Record<string, tf.Variable> = {};
  private readonly masks = new Map<number, tf.Tensor2D>();

  constructor(readonly options: LinearAttentionOptions) {
    super();
    const d = options.dModel;
    this.featureDim = options.featureDim ?? 16;
    this.convWidth = options.convWidth ?? 3;
    const P = new TfSeededInit(options.seed ?? 0);
    if (this.convWidth > 0) this.w.conv = this.paramFromTensor('conv.weight', P.uniform([this.convWidth, d], -1 / Math.sqrt(this.convWidth), 1 / Math.sqrt(this.convWidth)));
    this.w.qk = this.paramFromTensor('qk_proj.weight', P.normal([d, 2 * this.featureDim], 0.02));
    this.w.v = this.paramFromTensor('v_proj.weight', P.normal([d, d], 0.02));
    this.w.out = this.paramFromTensor('out_proj.weight', P.normal([d, d], 0.02));
  }

  /** x [batch, seq, dModel] -> [batch, seq, dModel]. */
  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [B, T, d] = x.shape;
      const f = this.featureDim;
      let h: tf.Tensor = x;
      if (this.convWidth > 0) {
        const W = this.convWidth;
        const padded = tf.pad(x, [[0, 0], [W - 1, 0], [0, 0]]);
        h = tf.zerosLike(x);
        for (let k = 0; k < W; k++) {
          h = tf.add(h, tf.mul(tf.slice(padded, [0, k, 0], [B, T, d]), tf.reshape(tf.slice(this.w.conv, [k, 0], [1, d]), [d])));
        }
      }
      const [q, k] = tf.split(linear(h, this.w.qk), [f, f], -1); // [B, T, f] each
      const v = linear(h, this.w.v); // [B, T, d]
      const s = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(f)); // [B, T, T]
      const kernel = tf.add(tf.add(1, s), tf.mul(tf.square(s), 0.5)); // phi(q)·phi(k) > 0
      const weights = tf.mul(kernel, this.mask(T)); // causal
      const y = tf.div(tf.matMul(weights, v), tf.sum(weights, -1, true)); // [B, T, d]
      return linear(y, this.w.out) as tf.Tensor3D;
    });
  }

  private mask(T: number): tf.Tensor2D {
    let m = this.masks.get(T);
    if (!m) {
      m = tf.keep(lowerTriangle(T));
      this.masks.set(T, m);
    }
    return m;
  }

  protected override onClearCaches(): void {
    for (const m of this.masks.values()) m.dispose();
    this.masks.clear();
  }
}
