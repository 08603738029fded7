/**
 * The SSD sequence mixer of Cheems (cheems-spec 5.2): State Space Duality with one B/C group per head, RoPE on B and C,
 * a starting state, and two forms of the same function (chunked for sequences, recurrent for decoding).
 *
 * Per head h (A_h = `A[h]` used as is, negative for a decaying state), state S [p, n] (p = n = head dim):
 *   S_t = exp(dt_t,h * A_h) * S_{t-1} + dt_t,h * x_t,h ⊗ B_t,h        y_t,h = S_t · C_t,h
 * Unrolled: y_t = Σ_{s<=t} (C_t · B_s) exp(A Σ_{r=s+1..t} dt_r) dt_s x_s, an attention-like matrix whose scores
 * C_t · B_s = c_t^T R(s - t) b_s depend only on the offset once B and C are rotated: the paper's "RoPE in SSD".
 *
 * Layer (`ssd.*` of a Cheems layer): u -> C = c_proj u, B = b_proj u, x = x_proj u (each [B, T, nh, hd]),
 * dt = softplus(dt_proj u) [B, T, nh]; RoPE on C and B; scan; out = out_proj(y). No D skip, no z gate, no conv.
 */
import { tf } from '../tf';
import { linearT, permute, sliceLast, weightT } from '../ops';
import { Module, makeInit, type Init, type InitOptions } from './module';
import { RotaryEmbedding, applyRope } from './rope';

// The two constants below are built per call (host loops, microseconds) and die in the caller's tidy with the other
// intermediates. A process-wide cache of them outlived every model: tensors left after dispose(), more for every new
// sequence length.

/** [n, n] upper-triangular ones: x [..., n] @ U = inclusive cumsum over the last axis (tf.cumsum crashes on wasm). */
function upperOnes(n: number): tf.Tensor {
  const m = new Float32Array(n * n);
  for (let j = 0; j < n; j++) for (let i = j; i < n; i++) m[j * n + i] = 1;
  return tf.tensor2d(m, [n, n]);
}

/** Additive mask [rows, cols]: 0 where col <= row - shift, else -inf (exp of it is exactly 0, and so is its gradient). */
function causalLogMask(rows: number, cols: number, shift: number): tf.Tensor {
  const m = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if (c > r - shift) m[r * cols + c] = -Infinity;
  return tf.tensor2d(m, [rows, cols]);
}

function cumsumLast(x: tf.Tensor): tf.Tensor {
  const n = x.shape[x.rank - 1];
  return tf.reshape(tf.matMul(tf.reshape(x, [-1, n]), upperOnes(n)), x.shape);
}

/**
 * The SSD as one matrix per head, its "dual" attention-like form over the whole sequence (zero starting state):
 *   L[t, s] = exp(A_h Σ_{r=s+1..t} dt_r) for s <= t, else 0        how much of token s's write is left at t
 *   M[t, s] = (C_t · B_s) L[t, s] dt_s                             y_t = Σ_s M[t, s] x_s, i.e. y = (L ∘ C Bᵀ)(dt ∘ x)
 * dt [b, T, h] (after softplus), A [h], B and C [b, T, h, n] -> L and M [b, h, T, T]. Quadratic in T: for looking
 * at (the chunked scan computes the same outputs in linear time).
 */
export function ssdMatrixForm(dt: tf.Tensor, A: tf.Tensor, B: tf.Tensor, C: tf.Tensor): { L: tf.Tensor4D; M: tf.Tensor4D } {
  return tf.tidy(() => {
    const [b, T, h] = dt.shape as [number, number, number];
    const a = permute(tf.mul(dt, A), [0, 2, 1]); // log-decay per step [b, h, T]
    const Acs = cumsumLast(a); // inclusive cumulative log-decay [b, h, T]
    const L = tf.exp(tf.add(tf.sub(tf.expandDims(Acs, -1), tf.expandDims(Acs, -2)), causalLogMask(T, T, 0))); // [b, h, T, T]
    const CB = tf.matMul(permute(C, [0, 2, 1, 3]), permute(B, [0, 2, 1, 3]), false, true); // C_t · B_s [b, h, T, T]
    const M = tf.mul(tf.mul(CB, L), tf.reshape(permute(dt, [0, 2, 1]), [b, h, 1, T]));
    return { L: L as tf.Tensor4D, M: M as tf.Tensor4D };
  });
}

/**
 * Chunked SSD scan (what mamba_chunk_scan_combined computes), per-head B/C, optional starting state.
 * x [b, T, h, p], dt [b, T, h] (after softplus), A [h], B and C [b, T, g, n] with g = h (a B/C per head, Cheems) or
 * g = 1 (one B/C group seen by every head, the Mamba-2 block of ssd.ts), state0 [b, h, p, n] or null
 * -> y [b, T, h, p] and the state after the last token [b, h, p, n] (null when `withState` is false: nothing of
 * it is computed). Any chunk size gives the same function: T is padded with steps of dt = 0, which neither decay nor
 * feed the state.
 * Why one group is not broadcast to the heads first: tf.broadcastTo is a Tile, which the wasm backend runs element
 * by element (it was most of the MQAR SSD's evaluation time), and C_l · B_s is then computed once instead of h times.
 * Why one chunk without a starting state skips steps 3-4: the state entering it is zero, so their whole
 * contribution to y (and to every gradient) is exactly zero; the matmuls are not (about half the scan's work).
 */
export function ssdChunkScan(
  x: tf.Tensor, dt: tf.Tensor, A: tf.Tensor, B: tf.Tensor, C: tf.Tensor, chunkSize: number, state0?: tf.Tensor | null,
): { y: tf.Tensor; state: tf.Tensor };
export function ssdChunkScan(
  x: tf.Tensor, dt: tf.Tensor, A: tf.Tensor, B: tf.Tensor, C: tf.Tensor, chunkSize: number, state0: tf.Tensor | null, withState: false,
): { y: tf.Tensor; state: null };
export function ssdChunkScan(
  x: tf.Tensor, dt: tf.Tensor, A: tf.Tensor, B: tf.Tensor, C: tf.Tensor, chunkSize: number, state0: tf.Tensor | null = null, withState = true,
): { y: tf.Tensor; state: tf.Tensor | null } {
  const [b, T, h, p] = x.shape as [number, number, number, number];
  const g = B.shape[2] as number;
  const n = B.shape[3] as number;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new Error(`ssd: chunk size must be a positive integer, got ${chunkSize}`);
  if ((g !== h && g !== 1) || C.shape[2] !== g) throw new Error(`ssd: B and C need ${h} heads (one per head) or 1 (shared), got ${B.shape[2]} and ${C.shape[2]}`);
  const Q = Math.min(chunkSize, T);
  const c = Math.ceil(T / Q);
  const pad = c * Q - T;
  const padT = (t: tf.Tensor) => (pad === 0 ? t : tf.pad(t, t.shape.map((_, i) => (i === 1 ? [0, pad] : [0, 0])) as Array<[number, number]>));
  const heads = (t: tf.Tensor, k: number, d: number) => permute(tf.reshape(padT(t), [b, c, Q, k, d]), [0, 3, 1, 2, 4]); // [b, k, c, Q, d]
  // a shared group as h copies, for the products that pair it with per-head tensors (batched matmuls broadcast only a
  // whole operand); the copies are contiguous blocks (Concat), the gradient sums them back
  const perHead = (t: tf.Tensor) => (g === h ? t : tf.concat(Array.from({ length: h }, () => t), 1));

  const X = heads(tf.mul(x, tf.expandDims(dt, -1)), h, p); // dt_s x_s            [b, h, c, Q, p]
  const Bh = heads(B, g, n), Ch = heads(C, g, n); //                              [b, g, c, Q, n]
  const a = permute(tf.reshape(padT(tf.mul(dt, A)), [b, c, Q, h]), [0, 3, 1, 2]); // log-decay per step [b, h, c, Q]
  const Acs = cumsumLast(a); // inclusive cumulative log-decay inside each chunk  [b, h, c, Q]

  // 1. inside each chunk: y_l = Σ_{s<=l} (C_l · B_s) exp(Acs_l - Acs_s) dt_s x_s
  const seg = tf.add(tf.sub(tf.expandDims(Acs, -1), tf.expandDims(Acs, -2)), causalLogMask(Q, Q, 0)); // [b, h, c, Q, Q]
  const scores = tf.mul(tf.matMul(Ch, Bh, false, true), tf.exp(seg)); // [b, h, c, Q, Q]
  const yDiag = tf.matMul(scores, X); // [b, h, c, Q, p]
  const toOutput = (yh: tf.Tensor) => {
    const y = tf.reshape(permute(yh, [0, 2, 3, 1, 4]), [b, c * Q, h, p]);
    return pad ? tf.slice(y, [0, 0, 0, 0], [b, T, h, p]) : y;
  };
  const singleChunk = c === 1 && !state0;
  if (singleChunk && !withState) return { y: toOutput(yDiag), state: null };

  // 2. each chunk's own contribution to the state at its end: Σ_s exp(Acs_last - Acs_s) dt_s x_s ⊗ B_s
  const AcsLast = tf.slice(Acs, [0, 0, 0, Q - 1], [b, h, c, 1]); // [b, h, c, 1]
  const toEnd = tf.exp(tf.sub(AcsLast, Acs)); // [b, h, c, Q]
  const chunkStates = tf.matMul(tf.mul(X, tf.expandDims(toEnd, -1)), perHead(Bh), true, false); // [b, h, c, p, n]
  // one chunk from a zero state: the state after it is its own contribution (steps 3-4 would add exact zeros)
  if (singleChunk) return { y: toOutput(yDiag), state: tf.reshape(chunkStates, [b, h, p, n]) };

  // 3. states entering chunks z = 0..c (z = c: the final state), from the starting state and earlier chunks
  const incl = cumsumLast(tf.reshape(AcsLast, [b, h, c])); // log-decay through the end of chunk z   [b, h, c]
  const before = tf.concat([tf.zeros([b, h, 1]), incl], 2); // log-decay before chunk z, z = 0..c   [b, h, c + 1]
  const pass = tf.exp(tf.add(tf.sub(tf.expandDims(before, -1), tf.expandDims(incl, -2)), causalLogMask(c + 1, c, 1))); // [b, h, c+1, c]
  let entering = tf.matMul(pass, tf.reshape(chunkStates, [b, h, c, p * n])); // [b, h, c + 1, p*n]
  if (state0) entering = tf.add(entering, tf.mul(tf.expandDims(tf.exp(before), -1), tf.reshape(state0, [b, h, 1, p * n])));
  const Hin = tf.reshape(tf.slice(entering, [0, 0, 0, 0], [b, h, c, p * n]), [b, h, c, p, n]);
  const state = withState ? tf.reshape(tf.slice(entering, [0, 0, c, 0], [b, h, 1, p * n]), [b, h, p, n]) : null;

  // 4. the entering state read by each position: exp(Acs_l) * (S_in · C_l)
  const yOff = tf.mul(tf.matMul(perHead(Ch), Hin, false, true), tf.expandDims(tf.exp(Acs), -1)); // [b, h, c, Q, p]

  return { y: toOutput(tf.add(yDiag, yOff)), state };
}

/** One recurrence step. state [b, h, p, n], x [b, h, p], dt [b, h], A [h], B and C [b, h, n] -> y [b, h, p] and the new state. */
export function ssdRecurrentStep(
  state: tf.Tensor, x: tf.Tensor, dt: tf.Tensor, A: tf.Tensor, B: tf.Tensor, C: tf.Tensor,
): { y: tf.Tensor; state: tf.Tensor } {
  const [b, h, p, n] = state.shape as [number, number, number, number];
  const decay = tf.reshape(tf.exp(tf.mul(dt, A)), [b, h, 1, 1]);
  const input = tf.mul(tf.reshape(tf.mul(x, tf.expandDims(dt, -1)), [b, h, p, 1]), tf.reshape(B, [b, h, 1, n])); // dt x ⊗ B
  const next = tf.add(tf.mul(decay, state), input);
  const y = tf.reshape(tf.matMul(tf.reshape(next, [b * h, p, n]), tf.reshape(C, [b * h, n, 1])), [b, h, p]);
  return { y, state: next };
}

/** The recurrence token by token (the reference the chunked form is tested against). Same arguments as ssdChunkScan. */
export function ssdRecurrentScan(
  x: tf.Tensor, dt: tf.Tensor, A: tf.Tensor, B: tf.Tensor, C: tf.Tensor, state0: tf.Tensor | null = null,
): { y: tf.Tensor; state: tf.Tensor } {
  const [b, T, h, p] = x.shape as [number, number, number, number];
  const n = B.shape[3] as number;
  let state = state0 ?? tf.zeros([b, h, p, n]);
  const ys: tf.Tensor[] = [];
  const at = (t: tf.Tensor, i: number) => tf.squeeze(tf.slice(t, [0, i], [-1, 1]), [1]); // position i
  for (let t = 0; t < T; t++) {
    const r = ssdRecurrentStep(state, at(x, t), at(dt, t), A, at(B, t), at(C, t));
    state = r.state;
    ys.push(r.y);
  }
  return { y: tf.stack(ys, 1), state };
}

export interface SSDMixerOptions extends InitOptions {
  hiddenSize: number;
  numHeads: number;
  /** Bias on all five Linears (Cheems hidden_bias). */
  bias?: boolean;
  /** Tokens per chunk of the scan (speed and rounding only). */
  chunkSize?: number;
  /** Standalone only: RoPE base of the module's own tables (a model passes its tables). */
  ropeTheta?: number;
}

/** Per-call inputs a model hands to the mixer. */
export interface SSDMixerContext {
  /** RoPE tables [B|1, T, 1, hd] (null: no RoPE). */
  cos: tf.Tensor | null;
  sinSigned: tf.Tensor | null;
  /** [B, T, 1]: 0 zeroes the input of a padded position (spec D10); null = every position real. */
  keep?: tf.Tensor | null;
  /** Cached state [B, nh, hd, hd] to continue from. */
  state?: tf.Tensor | null;
  /** Per row, the start positions of documents after the first (packed rows): the state restarts from zero there. */
  segments?: number[][] | null;
  /** Force a form: 'chunked' or 'recurrent' (default: recurrent for one token with a state, else chunked). */
  form?: 'chunked' | 'recurrent';
}

/** The Cheems SSD layer (`ssd.*`): c_proj, b_proj, A, dt_proj, x_proj, out_proj. */
export class SSDMixer extends Module {
  readonly hiddenSize: number;
  readonly numHeads: number;
  readonly headDim: number;
  chunkSize: number;
  readonly cW: tf.Variable; readonly cB: tf.Variable | null = null;
  readonly bW: tf.Variable; readonly bB: tf.Variable | null = null;
  readonly A: tf.Variable; // [nh], the continuous-time A itself (negative: decaying state)
  readonly dtW: tf.Variable; readonly dtB: tf.Variable | null = null;
  readonly xW: tf.Variable; readonly xB: tf.Variable | null = null;
  readonly outW: tf.Variable; readonly outB: tf.Variable | null = null;
  private rope: RotaryEmbedding | null = null;

  /** `init` given: a layer of a model; absent: standalone (own seeded init and RoPE tables). */
  constructor(opts: SSDMixerOptions, init?: Init) {
    super();
    const standalone = !init;
    const st = init ?? makeInit(opts);
    const H = (this.hiddenSize = opts.hiddenSize), nh = (this.numHeads = opts.numHeads);
    if (H % nh !== 0) throw new Error(`SSDMixer: hiddenSize ${H} must be divisible by numHeads ${nh}`);
    this.headDim = H / nh;
    if (this.headDim % 2 !== 0) throw new Error(`SSDMixer: head dim ${this.headDim} must be even (RoPE on B and C)`);
    this.chunkSize = opts.chunkSize ?? 256;
    const bias = !!opts.bias;
    const lin = (name: string, out: number): [tf.Variable, tf.Variable | null] => [
      this.param(`${name}.weight`, [out, H], 'normal', st), bias ? this.param(`${name}.bias`, [out], 'zeros', st) : null];
    [this.cW, this.cB] = lin('c_proj', H);
    [this.bW, this.bB] = lin('b_proj', H);
    // A_h = -(h + 1): head h forgets by about 2^-(h+1) per token at init (spec 7, decision D2)
    this.A = this.paramFromValues('A', [nh], Float32Array.from({ length: nh }, (_, i) => -(i + 1)));
    [this.dtW, this.dtB] = lin('dt_proj', nh);
    [this.xW, this.xB] = lin('x_proj', H);
    [this.outW, this.outB] = lin('out_proj', H);
    if (standalone) this.rope = this.own(new RotaryEmbedding({ headDim: this.headDim, theta: opts.ropeTheta }));
  }

  /** Standalone call: x [B, T, H] -> [B, T, H], positions 0..T-1, zero starting state. */
  apply(x: tf.Tensor): tf.Tensor {
    const [B, T] = x.shape;
    return tf.tidy(() => {
      const t = this.rope ? this.rope.tables(0, B, T) : null;
      return this.forward(x, { cos: t?.cos ?? null, sinSigned: t?.sinSigned ?? null }).out;
    });
  }

  /** u [B, T, H] -> out [B, T, H] and the state after the last token [B, nh, hd, hd]. */
  forward(u: tf.Tensor, ctx: SSDMixerContext): { out: tf.Tensor; state: tf.Tensor } {
    const [B, T, H] = u.shape as [number, number, number];
    const nh = this.numHeads, hd = this.headDim;
    if (ctx.keep) u = tf.mul(u, ctx.keep); // padded positions feed zeros (their biases still act, as in the seed)
    const { C, Bm, x, dt } = this.project(u);
    const Cr = ctx.cos && ctx.sinSigned ? applyRope(C, ctx.cos, ctx.sinSigned) : C;
    const Br = ctx.cos && ctx.sinSigned ? applyRope(Bm, ctx.cos, ctx.sinSigned) : Bm;
    const state0 = ctx.state ?? null;
    let r: { y: tf.Tensor; state: tf.Tensor };
    if (ctx.segments && ctx.segments.some((s) => s.length > 0)) {
      r = this.scanSegments(x, dt, Br, Cr, state0, ctx.segments);
    } else if ((ctx.form ?? (T === 1 && state0 ? 'recurrent' : 'chunked')) === 'recurrent') {
      r = ssdRecurrentScan(x, dt, this.A, Br, Cr, state0);
    } else {
      r = ssdChunkScan(x, dt, this.A, Br, Cr, this.chunkSize, state0);
    }
    const y = tf.reshape(r.y, [B, T, nh * hd]);
    return { out: linearT(y, weightT([this.outW]), this.outB), state: r.state };
  }

  /**
   * The layer's SSD as matrices over u [B, T, H] (positions from ctx's RoPE tables, zero starting state): the decay L
   * and the token-mixing matrix M = L ∘ C Bᵀ ∘ dt per head (see ssdMatrixForm), [B, nh, T, T] each.
   */
  matrixForm(u: tf.Tensor, ctx: Pick<SSDMixerContext, 'cos' | 'sinSigned'> | null = null): { L: tf.Tensor4D; M: tf.Tensor4D } {
    return tf.tidy(() => {
      const [B, T] = u.shape;
      const t = ctx ?? (this.rope ? this.rope.tables(0, B, T) : { cos: null, sinSigned: null });
      const { C, Bm, dt } = this.project(u);
      const rope = (z: tf.Tensor) => (t.cos && t.sinSigned ? applyRope(z, t.cos, t.sinSigned) : z);
      return ssdMatrixForm(dt, this.A, rope(Bm), rope(C));
    });
  }

  /** One matmul for c_proj, b_proj, x_proj and dt_proj; dt = softplus. Shapes [B, T, nh, hd] and [B, T, nh]. */
  private project(u: tf.Tensor): { C: tf.Tensor; Bm: tf.Tensor; x: tf.Tensor; dt: tf.Tensor } {
    const [B, T, H] = u.shape as [number, number, number];
    const nh = this.numHeads, hd = this.headDim;
    const biases = this.cB && this.bB && this.xB && this.dtB ? tf.concat([this.cB, this.bB, this.xB, this.dtB], 0) : null;
    const all = linearT(u, weightT([this.cW, this.bW, this.xW, this.dtW]), biases); // [B, T, 3H + nh]
    const view = (i: number) => tf.reshape(sliceLast(all, i * H, H), [B, T, nh, hd]);
    return { C: view(0), Bm: view(1), x: view(2), dt: tf.softplus(sliceLast(all, 3 * H, nh)) };
  }

  /** Packed rows: each document of each row is scanned on its own from a zero state (the first from state0). */
  private scanSegments(x: tf.Tensor, dt: tf.Tensor, Bm: tf.Tensor, C: tf.Tensor, state0: tf.Tensor | null, segments: number[][]): { y: tf.Tensor; state: tf.Tensor } {
    const [B, T] = x.shape as [number, number];
    const ys: tf.Tensor[] = [], states: tf.Tensor[] = [];
    const cut = (t: tf.Tensor, b: number, s: number, len: number) => tf.slice(t, [b, s], [1, len]);
    for (let b = 0; b < B; b++) {
      const starts = [0, ...segments[b], T];
      const rowY: tf.Tensor[] = [];
      let state: tf.Tensor | null = state0 ? tf.slice(state0, [b], [1]) : null;
      for (let i = 0; i + 1 < starts.length; i++) {
        const s = starts[i], len = starts[i + 1] - s;
        if (len <= 0) continue;
        if (i > 0) state = null; // a new document starts from a zero state
        const r = ssdChunkScan(cut(x, b, s, len), cut(dt, b, s, len), this.A, cut(Bm, b, s, len), cut(C, b, s, len), this.chunkSize, state);
        rowY.push(r.y);
        state = r.state;
      }
      ys.push(tf.concat(rowY, 1));
      states.push(state!);
    }
    return { y: tf.concat(ys, 0), state: tf.concat(states, 0) };
  }
}
