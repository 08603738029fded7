/**
 * State Space Duality (SSD), the sequence mixer of Mamba-2 (Dao & Gu 2024), as used for the SSD baseline of the
 * MQAR experiment and (with RoPE on B/C) by the Cheems models of "Wonderful Matrices".
 *
 * Recurrence per head h (state size N, head dim P, one B/C group shared by all heads):
 *   state_t = exp(dt_t * A_h) * state_{t-1} + (dt_t * x_t) ⊗ B_t        state [P, N]
 *   y_t     = state_t · C_t + D_h * x_t
 * with A_h = -exp(A_log_h) and dt_t = softplus(dt_raw_t + dt_bias_h).
 *
 * `ssdChunked` computes it for a whole sequence in tensor ops (the "minimal SSD" of the Mamba-2 paper): quadratic
 * attention-like blocks inside chunks of Q tokens plus a linear recurrence over chunk states. Cumulative sums are
 * matmuls with triangular ones matrices (tf.cumsum on the last axis crashes on wasm, and Einsum is missing there).
 * `ssdStep` is the plain one-token recurrence (for decoding and as the reference the chunked form is tested against).
 */
import { tf } from '../tf';
import { applyPlainRope as applyRope, cumsumLastAxis as cumsumLast, linearInOut as linear, lowerTriangle, plainRopeTables as ropeTables, TfSeededInit } from './mqar-blocks';
import { Module } from './module';
import { rmsNorm } from './rmsnorm';

/**
 * Chunked SSD scan without the D skip term.
 * x [b, T, h, p], dt [b, T, h] (already softplus'ed, > 0), A [h] (negative), B and C [b, T, n] -> y [b, T, h, p].
 * T need not be a multiple of chunkSize (the tail is zero-padded; padding sits after every real token, so
 * causality keeps it from touching real outputs).
 */
export function ssdChunked(x: tf.Tensor4D, dt: tf.Tensor3D, A: tf.Tensor1D, B: tf.Tensor3D, C: tf.Tensor3D, chunkSize: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, T, h, p] = x.shape;
    const n = B.shape[2];
    if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new Error(`ssd: chunkSize must be a positive integer, got ${chunkSize}`);
    const Q = Math.min(chunkSize, T);
    const c = Math.ceil(T / Q);
    const pad = c * Q - T;
    const padT = <R extends tf.Rank>(t: tf.Tensor<R>): tf.Tensor<R> =>
      pad === 0 ? t : (tf.pad(t, t.shape.map((_, i) => (i === 1 ? [0, pad] : [0, 0])) as Array<[number, number]>) as tf.Tensor<R>);

    const xdt = padT(tf.mul(x, tf.expandDims(dt, -1))); // [b, cQ, h, p]
    const a = padT(tf.mul(dt, A)); // [b, cQ, h]   log-decay per step (<= 0)
    const Xh = tf.transpose(tf.reshape(xdt, [b, c, Q, h, p]), [0, 3, 1, 2, 4]); // [b, h, c, Q, p]
    const ah = tf.transpose(tf.reshape(a, [b, c, Q, h]), [0, 3, 1, 2]); // [b, h, c, Q]
    const Bc = tf.reshape(padT(B), [b, c, Q, n]); // [b, c, Q, n]
    const Cc = tf.reshape(padT(C), [b, c, Q, n]); // [b, c, Q, n]

    // 1. Inside each chunk: y_l = Σ_{s<=l} (C_l·B_s) exp(Acs_l - Acs_s) xdt_s, an attention with a decay mask.
    const Acs = cumsumLast(ah); // [b, h, c, Q]   inclusive cumulative log-decay
    const diff = tf.sub(tf.expandDims(Acs, -1), tf.expandDims(Acs, -2)); // [b, h, c, Q(l), Q(s)]
    // min(., 0) keeps exp finite above the diagonal, where the triangle mask zeroes the entries anyway.
    const decay = tf.mul(tf.exp(tf.minimum(diff, 0)), lowerTriangle(Q)); // [b, h, c, Q, Q]
    const G = tf.expandDims(tf.matMul(Cc, Bc, false, true), 1); // [b, 1, c, Q, Q]   C_l · B_s
    const yDiag = tf.matMul(tf.mul(G, decay), Xh); // [b, h, c, Q, p]

    if (c === 1) {
      // A single chunk has no incoming state: the quadratic block is the whole answer.
      const y1 = tf.reshape(tf.transpose(yDiag, [0, 2, 3, 1, 4]), [b, Q, h, p]);
      return (pad === 0 ? y1 : tf.slice(y1, [0, 0, 0, 0], [b, T, h, p])) as tf.Tensor4D;
    }

    // 2. State at the end of each chunk from its own tokens: Σ_s exp(Acs_last - Acs_s) xdt_s ⊗ B_s.
    const AcsLast = tf.slice(Acs, [0, 0, 0, Q - 1], [b, h, c, 1]); // [b, h, c, 1]
    const decayToEnd = tf.exp(tf.sub(AcsLast, Acs)); // [b, h, c, Q]
    const Xd = tf.reshape(tf.transpose(tf.mul(Xh, tf.expandDims(decayToEnd, -1)), [0, 2, 3, 1, 4]), [b, c, Q, h * p]);
    const chunkStates = tf.matMul(Xd, Bc, true, false); // [b, c, h*p, n]

    // 3. Recurrence over chunks: state entering chunk z = Σ_{c'<z} exp(sum of log-decays of chunks c'+1..z-1) S_c'.
    const aChunk = tf.reshape(AcsLast, [b, h, c]); // [b, h, c]   total log-decay of each chunk
    const incl = cumsumLast(aChunk); // [b, h, c]
    const excl = tf.sub(incl, aChunk);
    const chunkDiff = tf.sub(tf.expandDims(excl, -1), tf.expandDims(incl, -2)); // [b, h, z, c']
    const strictLower = tf.sub(lowerTriangle(c), tf.eye(c));
    const chunkDecay = tf.mul(tf.exp(tf.minimum(chunkDiff, 0)), strictLower); // [b, h, z, c']
    const S = tf.transpose(tf.reshape(chunkStates, [b, c, h, p * n]), [0, 2, 1, 3]); // [b, h, c, p*n]
    const Hin = tf.matMul(chunkDecay, S); // [b, h, c, p*n]   state entering each chunk

    // 4. Contribution of the incoming state: exp(Acs_l) * (state · C_l).
    const Hc = tf.reshape(tf.transpose(tf.reshape(Hin, [b, h, c, p, n]), [0, 2, 4, 1, 3]), [b, c, n, h * p]); // [b, c, n, h*p]
    const yOffRaw = tf.transpose(tf.reshape(tf.matMul(Cc, Hc), [b, c, Q, h, p]), [0, 3, 1, 2, 4]); // [b, h, c, Q, p]
    const yOff = tf.mul(yOffRaw, tf.expandDims(tf.exp(Acs), -1));

    const y = tf.reshape(tf.transpose(tf.add(yDiag, yOff), [0, 2, 3, 1, 4]), [b, c * Q, h, p]); // [b, cQ, h, p]
    return (pad === 0 ? y : tf.slice(y, [0, 0, 0, 0], [b, T, h, p])) as tf.Tensor4D;
  });
}

/**
 * One step of the recurrence (no D term). state [b, h, p, n], x [b, h, p], dt [b, h], A [h], B and C [b, n]
 * -> new state and y [b, h, p].
 */
export function ssdStep(state: tf.Tensor4D, x: tf.Tensor3D, dt: tf.Tensor2D, A: tf.Tensor1D, B: tf.Tensor2D, C: tf.Tensor2D): { state: tf.Tensor4D; y: tf.Tensor3D } {
  return tf.tidy(() => {
    const [b, h, p, n] = state.shape;
    const dA = tf.reshape(tf.exp(tf.mul(dt, A)), [b, h, 1, 1]);
    const dBx = tf.mul(tf.reshape(tf.mul(x, tf.expandDims(dt, -1)), [b, h, p, 1]), tf.reshape(B, [b, 1, 1, n])); // [b, h, p, n]
    const next = tf.add(tf.mul(dA, state), dBx) as tf.Tensor4D;
    const y = tf.reshape(tf.matMul(tf.reshape(next, [b, h * p, n]), tf.reshape(C, [b, n, 1])), [b, h, p]) as tf.Tensor3D;
    return { state: next, y };
  });
}

/** Step-by-step recurrence over a whole sequence (reference for tests; same arguments as `ssdChunked`). */
export function ssdRecurrent(x: tf.Tensor4D, dt: tf.Tensor3D, A: tf.Tensor1D, B: tf.Tensor3D, C: tf.Tensor3D): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, T, h, p] = x.shape;
    const n = B.shape[2];
    let state = tf.zeros([b, h, p, n]) as tf.Tensor4D;
    const ys: tf.Tensor3D[] = [];
    for (let t = 0; t < T; t++) {
      const step = ssdStep(
        state,
        tf.squeeze(tf.slice(x, [0, t, 0, 0], [b, 1, h, p]), [1]) as tf.Tensor3D,
        tf.squeeze(tf.slice(dt, [0, t, 0], [b, 1, h]), [1]) as tf.Tensor2D,
        A,
        tf.squeeze(tf.slice(B, [0, t, 0], [b, 1, n]), [1]) as tf.Tensor2D,
        tf.squeeze(tf.slice(C, [0, t, 0], [b, 1, n]), [1]) as tf.Tensor2D,
      );
      state = step.state;
      ys.push(step.y);
    }
    return tf.stack(ys, 1) as tf.Tensor4D;
  });
}

export interface SSDOptions {
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
  /** Parameter init seed. */
  seed?: number;
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
  readonly rope: boolean;
  private readonly ropeTheta: number;
  private readonly w: Record<string, tf.Variable> = {};
  private readonly ropeCache = new Map<number, { cos: tf.Tensor2D; sin: tf.Tensor2D }>();

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
    this.rope = options.rope ?? false;
    this.ropeTheta = options.ropeTheta ?? 10000;
    if (this.rope && this.dState % 2 !== 0) throw new Error(`SSD: rope needs an even dState, got ${this.dState}`);
    const P = new TfSeededInit(options.seed ?? 0);
    const H = this.numHeads;
    const N = this.dState;
    const convDim = this.dInner + 2 * N;
    this.w.in_proj = this.paramFromTensor('in_proj.weight', P.normal([d, 2 * this.dInner + 2 * N + H], 0.02));
    if (this.convWidth > 0) {
      this.w.conv = this.paramFromTensor('conv1d.weight', P.uniform([this.convWidth, convDim], -1 / Math.sqrt(this.convWidth), 1 / Math.sqrt(this.convWidth)));
      this.w.conv_bias = this.paramFromTensor('conv1d.bias', tf.zeros([convDim]));
    }
    // dt_bias = softplus^-1(dt0) with dt0 log-uniform in [1e-3, 1e-1], as Mamba-2.
    const dt0 = Array.from({ length: H }, (_, i) => Math.exp(Math.log(1e-3) + ((i + 0.5) / H) * (Math.log(1e-1) - Math.log(1e-3))));
    this.w.dt_bias = this.paramFromTensor('dt_bias', tf.tensor1d(dt0.map((v) => v + Math.log(-Math.expm1(-v)))));
    // A = -exp(A_log) with A in [1, 16], as Mamba-2.
    this.w.A_log = this.paramFromTensor('A_log', tf.tensor1d(Array.from({ length: H }, (_, i) => Math.log(1 + (15 * i) / Math.max(1, H - 1)))));
    this.w.D = this.paramFromTensor('D', tf.ones([H]));
    this.w.norm = this.paramFromTensor('norm.weight', tf.ones([this.dInner]));
    this.w.out_proj = this.paramFromTensor('out_proj.weight', P.normal([this.dInner, d], 0.02));
  }

  /** x [batch, seq, dModel] -> [batch, seq, dModel]. */
  apply(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, T] = x.shape;
      const { dInner: E, dState: N, numHeads: H, headDim: Pd } = this;
      const proj = linear(x, this.w.in_proj); // [b, T, 2E + 2N + H]
      const [z, xBCraw, dtRaw] = tf.split(proj, [E, E + 2 * N, H], -1);
      const xBCact = this.convWidth > 0 ? silu(this.causalConv(xBCraw as tf.Tensor3D)) : silu(xBCraw);
      let [xs, B, C] = tf.split(xBCact, [E, N, N], -1) as tf.Tensor3D[];
      if (this.rope) {
        const { cos, sin } = this.ropeFor(T);
        B = applyRope(B, cos, sin) as tf.Tensor3D;
        C = applyRope(C, cos, sin) as tf.Tensor3D;
      }
      const dt = tf.softplus(tf.add(dtRaw, this.w.dt_bias)) as tf.Tensor3D; // [b, T, H]
      const A = tf.neg(tf.exp(this.w.A_log)) as tf.Tensor1D; // [H]
      const xh = tf.reshape(xs, [b, T, H, Pd]) as tf.Tensor4D;
      const y = tf.add(ssdChunked(xh, dt, A, B, C, this.chunkSize), tf.mul(xh, tf.reshape(this.w.D, [1, 1, H, 1]))); // [b, T, H, P]
      const gated = tf.mul(tf.reshape(y, [b, T, E]), silu(z)); // [b, T, E]
      return linear(rmsNorm(gated, this.w.norm, 1e-5), this.w.out_proj) as tf.Tensor3D;
    });
  }

  /** Depthwise causal conv over time: out_t = bias + Σ_k w_k * x_{t-(W-1)+k}. x [b, T, ch]. */
  private causalConv(x: tf.Tensor3D): tf.Tensor3D {
    const W = this.convWidth;
    const [b, T, ch] = x.shape;
    const padded = tf.pad(x, [[0, 0], [W - 1, 0], [0, 0]]);
    let out: tf.Tensor = this.w.conv_bias;
    for (let k = 0; k < W; k++) {
      const wk = tf.reshape(tf.slice(this.w.conv, [k, 0], [1, ch]), [ch]);
      out = tf.add(out, tf.mul(tf.slice(padded, [0, k, 0], [b, T, ch]), wk));
    }
    return out as tf.Tensor3D;
  }

  private ropeFor(T: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
    let r = this.ropeCache.get(T);
    if (!r) {
      r = tf.tidy(() => ropeTables(T, this.dState, this.ropeTheta));
      tf.keep(r.cos);
      tf.keep(r.sin);
      this.ropeCache.set(T, r);
    }
    return r;
  }

  protected override onClearCaches(): void {
    for (const r of this.ropeCache.values()) {
      r.cos.dispose();
      r.sin.dispose();
    }
    this.ropeCache.clear();
  }
}

function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}
