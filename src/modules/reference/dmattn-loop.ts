/**
 * Dynamic Mask Attention as plain loops: the clearest statement of what src/modules/dmattn.ts computes (spec 4.6),
 * one query row at a time, no tensors, no speed tricks. Tests hold the fast module to it; read it first.
 *
 *   const y = dmattnLoop(x, params, { nh: 4, nkv: 2, hd: 8, keep: 16 });   // x [B][T][H] -> [B][T][H]
 *
 * For every batch row b, query t and query head h (kv head c = floor(h / g), g = nh / nkv):
 *   q, k, v   = x Wq^T, x Wk^T, x Wv^T split into heads; q, k RMS-normalised per head (qkNorm), no RoPE
 *   d[j]      = exp(A * softplus(dt_proj(v_j)))        ('exp', HF)   or   A * softplus(dt_proj(v_j))  ('linear', 2508.02124)
 *   allowed   = j <= t and key j is not padding
 *   keep set  = 'topk' + 'row' (HF): the `keep` largest d among the allowed keys of this row (all allowed if fewer)
 *               'topk' + 'key': the `keep` largest d among all non-padding keys of the sequence, then causality
 *               'relu': the allowed keys with d > 0 (a row keeping none outputs 0)
 *   p         = softmax over the kept keys of q.k / sqrt(hd) + d;  o = sum p v;  out = concat_h(o) Wo^T
 * Ties in the top-k: `ties` 'torch' follows torch's CPU topk (src/ops/torch-topk.ts), 'recent' prefers the later key.
 */
import { F32_MIN } from '../../ops';
import { recentTopkIndices, torchTopkIndices } from '../../ops/torch-topk';

export interface DMAttnLoopOptions {
  nh: number;
  nkv: number;
  hd: number;
  /** Keys kept per row (Infinity: all). */
  keep: number;
  eps?: number;
  /** [B][T]: 1 = real token, 0 = padding. */
  mask?: number[][];
  bias?: 'exp' | 'linear';
  select?: 'row' | 'key';
  type?: 'topk' | 'relu';
  ties?: 'torch' | 'recent';
  /** 'kv' (HF): one d per kv head; 'query' (seed / Cheems): one per query head. */
  maskHeads?: 'kv' | 'query';
  qkNorm?: boolean;
}

/** Indices of the k largest of `row` under the tie rule. */
function topk(row: number[], k: number, ties: 'torch' | 'recent'): Set<number> {
  const pick = ties === 'torch' ? torchTopkIndices : recentTopkIndices;
  return new Set(pick(row, 1, row.length, Math.min(k, row.length)));
}

export function dmattnLoop(x: number[][][], p: Map<string, ArrayLike<number>>, o: DMAttnLoopOptions): number[][][] {
  const { nh, nkv, hd, keep } = o;
  const eps = o.eps ?? 1e-6, ties = o.ties ?? 'torch', type = o.type ?? 'topk', select = o.select ?? 'row';
  const perQuery = (o.maskHeads ?? 'kv') === 'query';
  const B = x.length, T = x[0].length, H = x[0][0].length, g = nh / nkv;
  const w = (name: string) => p.get(name);
  const lin = (v: number[], name: string, out: number, inp: number) => {
    const W = w(`${name}.weight`)!, b = w(`${name}.bias`);
    return Array.from({ length: out }, (_, r) => {
      let s = b ? b[r] : 0;
      for (let c = 0; c < inp; c++) s += W[r * inp + c] * v[c];
      return s;
    });
  };
  const norm = (v: number[], name: string) => {
    if (o.qkNorm === false) return v;
    const wt = w(name)!;
    const r = 1 / Math.sqrt(v.reduce((a, z) => a + z * z, 0) / v.length + eps);
    return v.map((z, i) => z * r * wt[i]);
  };
  const softplus = (z: number) => (z > 20 ? z : Math.log1p(Math.exp(z)));
  const out: number[][][] = [];
  for (let b = 0; b < B; b++) {
    const real = (j: number) => !o.mask || o.mask[b][j] === 1;
    // project: q [T][nh][hd], k, v [T][nkv][hd]; the dynamic mask d [T][mask heads]
    const q: number[][][] = [], k: number[][][] = [], v: number[][][] = [], d: number[][] = [];
    for (let t = 0; t < T; t++) {
      const qa = lin(x[b][t], 'q_proj', nh * hd, H), ka = lin(x[b][t], 'k_proj', nkv * hd, H), va = lin(x[b][t], 'v_proj', nkv * hd, H);
      q.push(Array.from({ length: nh }, (_, h) => norm(qa.slice(h * hd, (h + 1) * hd), 'q_norm.weight')));
      k.push(Array.from({ length: nkv }, (_, c) => norm(ka.slice(c * hd, (c + 1) * hd), 'k_norm.weight')));
      v.push(Array.from({ length: nkv }, (_, c) => va.slice(c * hd, (c + 1) * hd)));
      const dt = lin(va, 'dt_proj', perQuery ? nh : nkv, nkv * hd);
      d.push(dt.map((z, m) => {
        const a = w('A')![m] * softplus(z);
        return (o.bias ?? 'exp') === 'exp' ? Math.exp(a) : a;
      }));
    }
    const rows: number[][] = [];
    for (let t = 0; t < T; t++) {
      const concat: number[] = [];
      for (let h = 0; h < nh; h++) {
        const c = Math.floor(h / g), m = perQuery ? h : c;
        // which keys this query row attends to
        let kept: Set<number>;
        if (type === 'relu') {
          kept = new Set([...Array(t + 1).keys()].filter((j) => real(j) && d[j][m] > 0));
        } else if (select === 'key') {
          const row = Array.from({ length: T }, (_, j) => (real(j) ? d[j][m] : F32_MIN));
          const top = T > keep ? topk(row, keep, ties) : new Set(row.keys());
          kept = new Set([...top].filter((j) => j <= t && real(j)));
        } else {
          const row = Array.from({ length: T }, (_, j) => (j <= t && real(j) ? d[j][m] : F32_MIN));
          const top = T > keep ? topk(row, keep, ties) : new Set(row.keys());
          kept = new Set([...top].filter((j) => j <= t && real(j)));
        }
        if (kept.size === 0 && type === 'relu') { for (let i = 0; i < hd; i++) concat.push(0); continue; }
        // a row with no allowed key (a padding query) averages every key uniformly, as float32-min masking does
        const keys = kept.size ? [...kept] : [...Array(T).keys()];
        const s = keys.map((j) => (kept.size ? q[t][h].reduce((a, qq, i) => a + qq * k[j][c][i], 0) / Math.sqrt(hd) + d[j][m] : 0));
        const mx = Math.max(...s);
        const e = s.map((z) => Math.exp(z - mx));
        const Z = e.reduce((a, z) => a + z, 0);
        for (let i = 0; i < hd; i++) concat.push(keys.reduce((a, j, n) => a + (e[n] / Z) * v[j][c][i], 0));
      }
      rows.push(lin(concat, 'o_proj', H, nh * hd));
    }
    out.push(rows);
  }
  return out;
}
