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
import { linear } from '../ops';
import { CausalConv1d } from './causal-conv';
import { Module, makeInit, type InitOptions } from './module';

export interface LinearAttentionOptions extends InitOptions {
  dModel: number;
  /** Feature dim f of q and k (default 16, as Based). */
  featureDim?: number;
  /** Width of the short causal conv (default 3; 0 disables it). */
  convWidth?: number;
}

/** Lower-triangular ones [T, T] (1 where key <= query), built per call; the caller's tidy frees it. */
function causalOnes(T: number): tf.Tensor {
  const m = new Float32Array(T * T);
  for (let q = 0; q < T; q++) for (let k = 0; k <= q; k++) m[q * T + k] = 1;
  return tf.tensor2d(m, [T, T]);
}

export class TaylorLinearAttention extends Module {
  readonly name = 'linear';
  readonly featureDim: number;
  readonly convWidth: number;
  readonly conv: CausalConv1d | null = null;
  readonly qkW: tf.Variable; // [2f, d]: q rows then k rows (torch layout)
  readonly vW: tf.Variable; // [d, d]
  readonly outW: tf.Variable; // [d, d]

  constructor(readonly options: LinearAttentionOptions) {
    super();
    const d = options.dModel;
    this.featureDim = options.featureDim ?? 16;
    this.convWidth = options.convWidth ?? 3;
    const init = makeInit(options);
    if (this.convWidth > 0) this.conv = this.module('conv', new CausalConv1d(init, d, this.convWidth, false));
    this.qkW = this.param('qk_proj.weight', [2 * this.featureDim, d], 'normal', init);
    this.vW = this.param('v_proj.weight', [d, d], 'normal', init);
    this.outW = this.param('out_proj.weight', [d, d], 'normal', init);
  }

  /** x [batch, seq, dModel] -> [batch, seq, dModel]. */
  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const T = x.shape[1];
      const f = this.featureDim;
      const h = this.conv ? this.conv.apply(x) : x;
      const [q, k] = tf.split(linear(h, this.qkW), [f, f], -1); // [B, T, f] each
      const v = linear(h, this.vW); // [B, T, d]
      const s = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(f)); // [B, T, T]
      const kernel = tf.add(tf.add(1, s), tf.mul(tf.square(s), 0.5)); // phi(q)·phi(k) > 0
      const weights = tf.mul(kernel, causalOnes(T)); // causal
      const y = tf.div(tf.matMul(weights, v), tf.sum(weights, -1, true)); // [B, T, d]
      return linear(y, this.outW) as tf.Tensor3D;
    });
  }
}
