/**
 * The Mamba-2 block (Dao & Gu 2024) of the MQAR experiment's SSD baseline: State Space Duality with one B/C group
 * shared by all heads, a short causal conv, a D skip and a gated RMSNorm, around the library's one SSD scan
 * (`ssdChunkScan` of ssd-mixer.ts, which Cheems' SSDMixer runs too; here one B/C group shared by every head).
 *
 * Recurrence per head h (state size N, head dim P):
 *   state_t = exp(dt_t * A_h) * state_{t-1} + (dt_t * x_t) ⊗ B_t        state [P, N]
 *   y_t     = state_t · C_t + D_h * x_t
 * with A_h = -exp(A_log_h) and dt_t = softplus(dt_raw_t + dt_bias_h).
 * Weights in torch's layout and Mamba-2's names (in_proj.weight [2E + 2N + H, d], conv1d.weight [E + 2N, 1, W],
 * out_proj.weight [d, E]), drawn from the common seeded `Init` in registration order.
 */
import { tf } from '../tf';
import { linear } from '../ops';
import { CausalConv1d } from './causal-conv';
import { Module, makeInit, type InitOptions } from './module';
import { rmsNorm } from './rmsnorm';
import { RotaryEmbedding, applyRope } from './rope';
import { ssdChunkScan } from './ssd-mixer';

export interface SSDOptions extends InitOptions {
  /** Model width d. */
  dModel: number;
  /** State size N (default 64; the paper's SSD baseline uses 128). */
  dState?: number;
  /** Inner width = expand * d (default 2, as Mamba-2). */
  expand?: number;
  /** Head dim P; heads = expand * d / P (default min(64, expand * d), Mamba-2's 64). */
  headDim?: number;
  /** Depthwise causal convolution width on x, B, C (default 4, as Mamba-2; 0 disables it). */
  convWidth?: number;
  /** Tokens per chunk of the scan (default 64). */
  chunkSize?: number;
  /** Rotary position embedding on B and C, as the Cheems SSD of the paper (default false). */
  rope?: boolean;
  ropeTheta?: number;
}

/**
 * A Mamba-2 block: in_proj -> (z, x, B, C, dt); causal depthwise conv + SiLU on (x, B, C); optional RoPE on B, C;
 * SSD scan + D skip; gated RMSNorm(y * silu(z)); out_proj. Input and output [batch, seq, dModel].
 */
export class SSD extends Module {
  readonly name = 'ssd';
  readonly dInner: number;
  readonly dState: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly convWidth: number;
  readonly chunkSize: number;
  readonly inW: tf.Variable; // [2E + 2N + H, d]: z, x, B, C, dt rows
  readonly conv: CausalConv1d | null = null;
  readonly dtBias: tf.Variable; // [H]
  readonly ALog: tf.Variable; // [H]
  readonly D: tf.Variable; // [H]
  readonly normW: tf.Variable; // [E]
  readonly outW: tf.Variable; // [d, E]
  private readonly rope: RotaryEmbedding | null = null;

  constructor(readonly options: SSDOptions) {
    super();
    const d = options.dModel;
    const expand = options.expand ?? 2;
    this.dInner = expand * d;
    this.dState = options.dState ?? 64;
    this.headDim = options.headDim ?? Math.min(64, this.dInner);
    if (this.dInner % this.headDim !== 0) throw new Error(`SSD: expand*dModel (${this.dInner}) must be a multiple of headDim (${this.headDim})`);
    this.numHeads = this.dInner / this.headDim;
    this.convWidth = options.convWidth ?? 4;
    this.chunkSize = options.chunkSize ?? 64;
    if (options.rope && this.dState % 2 !== 0) throw new Error(`SSD: rope needs an even dState, got ${this.dState}`);
    const init = makeInit(options);
    const H = this.numHeads;
    const N = this.dState;
    this.inW = this.param('in_proj.weight', [2 * this.dInner + 2 * N + H, d], 'normal', init);
    if (this.convWidth > 0) this.conv = this.module('conv1d', new CausalConv1d(init, this.dInner + 2 * N, this.convWidth));
    // dt_bias = softplus^-1(dt0) with dt0 log-uniform in [1e-3, 1e-1], as Mamba-2.
    const dt0 = Array.from({ length: H }, (_, i) => Math.exp(Math.log(1e-3) + ((i + 0.5) / H) * (Math.log(1e-1) - Math.log(1e-3))));
    this.dtBias = this.paramFromValues('dt_bias', [H], Float32Array.from(dt0, (v) => v + Math.log(-Math.expm1(-v))));
    // A = -exp(A_log) with A in [1, 16], as Mamba-2.
    this.ALog = this.paramFromValues('A_log', [H], Float32Array.from({ length: H }, (_, i) => Math.log(1 + (15 * i) / Math.max(1, H - 1))));
    this.D = this.param('D', [H], 'ones', init);
    this.normW = this.param('norm.weight', [this.dInner], 'ones', init);
    this.outW = this.param('out_proj.weight', [d, this.dInner], 'normal', init);
    if (options.rope) this.rope = this.own(new RotaryEmbedding({ headDim: N, theta: options.ropeTheta }));
  }

  /** x [batch, seq, dModel] -> [batch, seq, dModel]. */
  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, T] = x.shape;
      const { dInner: E, dState: N, numHeads: H, headDim: Pd } = this;
      const proj = linear(x, this.inW); // [b, T, 2E + 2N + H]
      const [z, xBCraw, dtRaw] = tf.split(proj, [E, E + 2 * N, H], -1);
      const xBC = silu(this.conv ? this.conv.apply(xBCraw) : xBCraw);
      const [xs, Bs, Cs] = tf.split(xBC, [E, N, N], -1);
      // one B/C group: [b, T, 1, N], RoPE'd as one head, then seen by every head
      let B = tf.reshape(Bs, [b, T, 1, N]);
      let C = tf.reshape(Cs, [b, T, 1, N]);
      if (this.rope) {
        const { cos, sinSigned } = this.rope.tables(0, b, T); // [1, T, 1, N]
        B = applyRope(B, cos, sinSigned);
        C = applyRope(C, cos, sinSigned);
      }
      const dt = tf.softplus(tf.add(dtRaw, this.dtBias)); // [b, T, H]
      const A = tf.neg(tf.exp(this.ALog)); // [H]
      const xh = tf.reshape(xs, [b, T, H, Pd]);
      // B and C go in as one group [b, T, 1, N] (the scan shares it across heads; the state is not needed here)
      const { y: scan } = ssdChunkScan(xh, dt, A, B, C, this.chunkSize, null, false);
      const y = tf.add(scan, tf.mul(xh, tf.reshape(this.D, [1, 1, H, 1]))); // [b, T, H, P]
      const gated = tf.mul(tf.reshape(y, [b, T, E]), silu(z)); // [b, T, E]
      return linear(rmsNorm(gated, this.normW, 1e-5), this.outW) as tf.Tensor3D;
    });
  }
}

function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}
