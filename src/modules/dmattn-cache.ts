/**
 * The bounded decoding cache of Dynamic Mask Attention: "trained with attention, decoded as a state space".
 *
 * Why it is exact: the mask value d_j of key j depends on key j alone (its values), and a query row keeps the
 * keep_window_size keys with the largest d among those it may see. Under a total order on (d, index),
 *   TopK(d_1 .. d_N) = TopK(TopK(d_1 .. d_N-1) ∪ {d_N}),
 * so a key that drops out of the top keep_window_size is never selected again: per kv head the decoder needs only
 * keep_window_size keys, with their post-RoPE k (the rotary phase is in it), v and d. Memory and time per token are
 * then constant in the context length. The order is 'recent' (src/ops/torch-topk.ts recentTopkIndices): larger d
 * first, equal d -> the later key; the eviction drops the smallest d, the oldest among equal ones. An untrained model
 * (A = 0, every d equal) therefore decodes with a sliding window of the last keep_window_size keys.
 *
 * Not exact, so the models keep the full cache and say so once: a sliding_window (it expires keys that may have
 * evicted others), 'relu' masks (no bound on the kept keys), packed documents, no keep_window_size at all.
 *
 * Query-head masks (Cheems, nm = nh > nkv): every query head of a kv head keeps its own top-k; the kv head stores the
 * union of their keys (at most g * keep_window_size), and a head's d is float32 min on the slots it does not keep.
 */
import { tf } from '../tf';
import { F32_MIN } from '../ops';
import { recentBefore } from '../ops/torch-topk';

/** Per-layer KV cache: post-norm, post-RoPE keys, values and the dynamic bias of every cached key. */
export interface LayerCache {
  k: tf.Tensor; // [B, nkv, S, hd]
  v: tf.Tensor; // [B, nkv, S, hd]
  d: tf.Tensor; // [B, nkv | nh, S]; a bounded cache marks slots a mask head does not keep with float32 min
  /**
   * Bounded caches only (src/modules/dmattn-cache.ts): the sequence index of the key in each slot, row-major
   * [B, nkv, slots], -1 for an empty slot. Absent: the full cache, slot j = key j.
   */
  keys?: Int32Array;
}

/** allowed [B|1, 1, T, S]: 1 where the key may be attended, else 0; bias: 0 where allowed, float32 min elsewhere. */
export interface MaskBias {
  allowed: tf.Tensor;
  bias: tf.Tensor;
}


/** A mask over [cached slots + T new keys] from the mask over the new keys only: every cached slot allowed. */
export function withCachedSlots(newKeys: MaskBias | null, slots: number): MaskBias | null {
  if (!newKeys || slots === 0) return newKeys;
  const [rows, , T] = newKeys.allowed.shape as number[];
  return {
    allowed: tf.concat([tf.ones([rows, 1, T, slots]), newKeys.allowed], 3),
    bias: tf.concat([tf.zeros([rows, 1, T, slots]), newKeys.bias], 3),
  };
}

export interface BoundOptions {
  /** Sequence index of the first new key. */
  start: number;
  /** Row-major [B, T] validity of the new keys (1 = real) or null. */
  newMask: Int32Array | null;
  /** New keys (the last T slots of k, v, d). */
  T: number;
  keep: number;
  numKvHeads: number;
}

/**
 * k, v [B, nkv, S, hd] and d [B, nm, S] (cached slots then the T new keys) -> the bounded cache: per kv head the keys
 * some mask head keeps (top `keep` by d, 'recent' ties; padding never), in sequence order, padded with empty slots
 * (d = float32 min, index -1) to the batch's largest count. Below the bound and without padding it only appends.
 */
export function boundLayerCache(c: { k: tf.Tensor; v: tf.Tensor; d: tf.Tensor; keys?: Int32Array }, o: BoundOptions): LayerCache {
  const [B, nkv, S, hd] = c.k.shape as number[];
  const nm = c.d.shape[1] as number, g = nm / nkv, T = o.T, slots = S - T;
  // sequence index of every slot: the cached ones, then start + t
  const keys = new Int32Array(B * nkv * S);
  for (let r = 0; r < B * nkv; r++) {
    for (let j = 0; j < slots; j++) keys[r * S + j] = c.keys ? c.keys[r * slots + j] : j;
    for (let t = 0; t < T; t++) keys[r * S + slots + t] = o.start + t;
  }
  const anyPad = !!o.newMask && o.newMask.some((m) => m === 0);
  if (S <= o.keep && !anyPad && (!c.keys || c.keys.every((i) => i >= 0))) return { k: c.k, v: c.v, d: c.d, keys };

  const d = c.d.dataSync() as Float32Array;
  const live = (b: number, m: number, j: number) => {
    if (keys[(b * nkv + Math.floor(m / g)) * S + j] < 0 || d[(b * nm + m) * S + j] === F32_MIN) return false;
    return j < slots || !o.newMask || o.newMask[b * T + j - slots] === 1;
  };
  // per (b, mask head): the kept slots; per (b, kv head): their union in sequence order
  const kept: Array<Set<number>> = [];
  const unions: number[][] = [];
  for (let b = 0; b < B; b++) {
    for (let c2 = 0; c2 < nkv; c2++) {
      const union = new Set<number>();
      for (let m = c2 * g; m < (c2 + 1) * g; m++) {
        const cand: number[] = [];
        for (let j = 0; j < S; j++) if (live(b, m, j)) cand.push(j);
        const row = (b * nm + m) * S, kr = (b * nkv + c2) * S;
        const before = (x: number, y: number) => recentBefore(d[row + x], keys[kr + x], d[row + y], keys[kr + y]);
        const top = new Set(keepBest(cand, o.keep, before));
        kept[b * nm + m] = top;
        for (const j of top) union.add(j);
      }
      unions.push([...union].sort((x, y) => keys[(b * nkv + c2) * S + x] - keys[(b * nkv + c2) * S + y]));
    }
  }
  const cap = Math.max(1, ...unions.map((u) => u.length));
  const gather = new Int32Array(B * nkv * cap);
  const newKeys = new Int32Array(B * nkv * cap).fill(-1);
  const newD = new Float32Array(B * nm * cap).fill(F32_MIN);
  for (let b = 0; b < B; b++) {
    for (let c2 = 0; c2 < nkv; c2++) {
      const r = b * nkv + c2, u = unions[r];
      for (let s = 0; s < cap; s++) {
        const j = s < u.length ? u[s] : 0; // an empty slot repeats slot 0, invisible (d = min)
        gather[r * cap + s] = r * S + j;
        if (s >= u.length) continue;
        newKeys[r * cap + s] = keys[r * S + j];
        for (let m = c2 * g; m < (c2 + 1) * g; m++) if (kept[b * nm + m].has(j)) newD[(b * nm + m) * cap + s] = d[(b * nm + m) * S + j];
      }
    }
  }
  const idx = tf.tensor1d(gather, 'int32');
  const pick = (x: tf.Tensor) => tf.reshape(tf.gather(tf.reshape(x, [B * nkv * S, hd]), idx), [B, nkv, cap, hd]);
  return { k: pick(c.k), v: pick(c.v), d: tf.tensor3d(newD, [B, nm, cap]), keys: newKeys };
}

/**
 * The `keep` best of `cand` under the total order `before` (x ranks before y), in no particular order. Decoding past
 * the bound has keep + 1 candidates per head at each step: dropping the few worst by linear scans costs O(S) where a
 * sort of every candidate costs O(S log S) (it was the largest host cost of a bounded decoding step).
 */
export function keepBest(cand: number[], keep: number, before: (x: number, y: number) => boolean): number[] {
  const drop = cand.length - keep;
  if (drop <= 0) return cand;
  if (drop > 8) return [...cand].sort((x, y) => (before(x, y) ? -1 : 1)).slice(0, keep);
  const out = [...cand];
  for (let n = 0; n < drop; n++) {
    let worst = 0;
    for (let i = 1; i < out.length; i++) if (before(out[worst], out[i])) worst = i;
    out[worst] = out[out.length - 1];
    out.pop();
  }
  return out;
}

/** Bytes of the tensors of one layer cache (float32). */
export function layerCacheBytes(c: LayerCache): number {
  return 4 * (c.k.size + c.v.size + c.d.size);
}
