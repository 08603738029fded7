/**
 * Rotary position embeddings (HF DogeRotaryEmbedding), non-interleaved "rotate half".
 *
 *   inv_freq[i] = 1 / theta^(2i/hd)  (float32),  angle[t, i] = fp32(inv_freq[i] * pos[t]),  emb = [angle, angle]
 *   x' = x * cos(emb) + rot(x) * sin(emb),  rot(x) = [-x2, x1]
 *
 * Tables are computed on the host in float32 (no tfjs cumsum/einsum needed) and handed to the layers as
 * `cos` and `sinSigned = [-sin(angle), sin(angle)]` of shape [B|1, T, 1, hd], so rot(x) * sin becomes
 * swapHalves(x) * sinSigned, the swap one matmul with a permutation (`applyRope`; no slice/neg/concat).
 *
 * `rope_type: "dynamic"` (NTK) is stateful exactly like HF (spec 4.3): on each call n = max(pos) + 1; if n exceeds the
 * cached length the frequencies are recomputed with theta' = theta * ((factor*n/M) - (factor-1))^(hd/(hd-2)); if
 * n < M after growth they are restored. Other rope types are refused.
 */
import { tf } from '../tf';
import { applyRope } from '../ops/fused';

export interface RopeOptions {
  headDim: number;
  theta?: number; // default 10000
  ropeType?: string; // 'default' | 'dynamic'
  factor?: number; // dynamic only
  maxPositionEmbeddings?: number; // M, default 2048
}

export interface RopeTables {
  cos: tf.Tensor; // [B|1, T, 1, hd]
  sinSigned: tf.Tensor; // [B|1, T, 1, hd]
}

const f = Math.fround;

function invFreqFor(theta: number, hd: number): Float32Array {
  const out = new Float32Array(hd / 2);
  for (let i = 0; i < hd / 2; i++) out[i] = f(1 / f(Math.pow(f(theta), f(f(2 * i) / f(hd)))));
  return out;
}

export class RotaryEmbedding {
  readonly headDim: number;
  readonly theta: number;
  readonly ropeType: string;
  readonly factor: number;
  readonly maxPositionEmbeddings: number;
  private readonly originalInvFreq: Float32Array;
  private invFreq: Float32Array;
  private cachedLen: number;
  private version = 0;
  private shared = new Map<string, RopeTables>();

  constructor(opts: RopeOptions) {
    this.headDim = opts.headDim;
    if (this.headDim % 2 !== 0) throw new Error(`RoPE: head_dim ${this.headDim} must be even`);
    this.theta = opts.theta ?? 10000;
    this.ropeType = opts.ropeType ?? 'default';
    if (this.ropeType !== 'default' && this.ropeType !== 'dynamic') {
      throw new Error(`rope_parameters.rope_type '${this.ropeType}' is not supported (only 'default' and 'dynamic')`);
    }
    this.factor = opts.factor ?? 1;
    this.maxPositionEmbeddings = opts.maxPositionEmbeddings ?? 2048;
    this.originalInvFreq = invFreqFor(this.theta, this.headDim);
    this.invFreq = this.originalInvFreq;
    this.cachedLen = this.maxPositionEmbeddings;
  }

  /** Current inverse frequencies (float32, length hd/2). */
  get inverseFrequencies(): Float32Array {
    return this.invFreq;
  }

  /** Dynamic-NTK state update for a call whose largest position is maxPos (HF dynamic_rope_update). */
  private update(maxPos: number): void {
    if (this.ropeType !== 'dynamic') return;
    const n = maxPos + 1;
    const M = this.maxPositionEmbeddings;
    if (n > this.cachedLen) {
      const hd = this.headDim;
      const base = this.theta * Math.pow((this.factor * n) / M - (this.factor - 1), hd / (hd - 2));
      this.invFreq = invFreqFor(base, hd);
      this.cachedLen = n;
      this.version++;
      this.clearShared();
    } else if (n < M && this.cachedLen > M) {
      this.invFreq = this.originalInvFreq;
      this.cachedLen = M;
      this.version++;
      this.clearShared();
    }
  }

  private clearShared(): void {
    for (const t of this.shared.values()) { t.cos.dispose(); t.sinSigned.dispose(); }
    this.shared.clear();
  }

  private build(pos: ArrayLike<number>, rows: number, T: number): RopeTables {
    const hd = this.headDim;
    const half = hd / 2;
    const cos = new Float32Array(rows * T * hd);
    const sin = new Float32Array(rows * T * hd);
    for (let r = 0; r < rows * T; r++) {
      const p = pos[r];
      for (let i = 0; i < half; i++) {
        const a = f(this.invFreq[i] * p);
        const c = Math.cos(a);
        const s = Math.sin(a);
        cos[r * hd + i] = c;
        cos[r * hd + half + i] = c;
        sin[r * hd + i] = -s;
        sin[r * hd + half + i] = s;
      }
    }
    return { cos: tf.tensor(cos, [rows, T, 1, hd]), sinSigned: tf.tensor(sin, [rows, T, 1, hd]) };
  }

  /**
   * Tables for positions. `positions` is either a number P (positions P..P+T-1 for every row, tables [1,T,1,hd])
   * or a row-major array of B*T positions (tables [B,T,1,hd]). Arange tables starting at 0 are cached and must not
   * be disposed by the caller (check `owned`).
   */
  tables(positions: number | ArrayLike<number>, B: number, T: number): RopeTables & { owned: boolean } {
    if (typeof positions === 'number') {
      this.update(positions + T - 1);
      if (positions === 0) {
        const key = `${T}`;
        let t = this.shared.get(key);
        if (!t) {
          const pos = new Float32Array(T).map((_, i) => i);
          t = this.build(pos, 1, T);
          tf.keep(t.cos); tf.keep(t.sinSigned);
          this.shared.set(key, t);
        }
        return { ...t, owned: false };
      }
      const pos = new Float32Array(T).map((_, i) => positions + i);
      return { ...this.build(pos, 1, T), owned: true };
    }
    if (positions.length !== B * T) throw new Error(`RoPE: ${positions.length} positions for batch ${B} x ${T}`);
    let mx = 0;
    for (let i = 0; i < positions.length; i++) mx = Math.max(mx, positions[i]);
    this.update(mx);
    return { ...this.build(positions, B, T), owned: true };
  }

  dispose(): void {
    this.clearShared();
  }
}

// applyRope (x * cos + swapHalves(x) * sinSigned; one kernel where the backend has it) is defined in src/ops/fused.ts
export { applyRope };
