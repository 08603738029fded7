/**
 * Which k entries torch.topk(largest=True) picks on CPU when values tie, reproduced on the host.
 *
 * Why: DMAttn keeps the top keep_window_size keys per query row, and repeated tokens give identical values v, hence
 * identical dynamic-mask values d. Ties are common in real text, and which of the tied keys survives changes the
 * output. torch's CPU kernel (for k * 64 > n) runs libstdc++ `std::nth_element(q, q + k - 1, q_end, greater)` over
 * (value, index) pairs and returns the first k; this file follows libstdc++'s introselect step by step
 * (median-of-three pivot, unguarded partition, insertion sort below 4 elements). For k * 64 <= n torch uses
 * partial_sort instead; that case (and introselect's rare heap fallback) is approximated by a stable sort.
 */

/** For each of `rows` rows of length n in `values`, the indices of the k largest (torch CPU tie order). */
export function torchTopkIndices(values: ArrayLike<number>, rows: number, n: number, k: number): Int32Array {
  const out = new Int32Array(rows * k);
  const v = new Float64Array(n);
  const idx = new Int32Array(n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) { v[j] = values[r * n + j]; idx[j] = j; }
    if (k * 64 <= n) stableTopk(v, idx, k);
    else nthElement(v, idx, k - 1);
    for (let j = 0; j < k; j++) out[r * k + j] = idx[j];
  }
  return out;
}

// comp(a, b) = value[a] > value[b]  (NaN sorts first, as in torch)
function nthElement(v: Float64Array, idx: Int32Array, nth: number): void {
  const gt = (a: number, b: number) => (Number.isNaN(v[a]) && !Number.isNaN(v[b])) || v[a] > v[b];
  const swap = (a: number, b: number) => {
    const tv = v[a]; v[a] = v[b]; v[b] = tv;
    const ti = idx[a]; idx[a] = idx[b]; idx[b] = ti;
  };
  let first = 0;
  let last = v.length;
  let depth = 2 * Math.floor(Math.log2(last));
  while (last - first > 3) {
    if (depth === 0) { stableSortRange(v, idx, first, last); return; }
    depth--;
    // __unguarded_partition_pivot: median of (first+1, mid, last-1) moved to first
    const mid = first + Math.floor((last - first) / 2);
    const a = first + 1, b = mid, c = last - 1;
    if (gt(a, b)) {
      if (gt(b, c)) swap(first, b);
      else if (gt(a, c)) swap(first, c);
      else swap(first, a);
    } else if (gt(a, c)) swap(first, a);
    else if (gt(b, c)) swap(first, c);
    else swap(first, b);
    // __unguarded_partition(first + 1, last, pivot = first)
    let lo = first + 1;
    let hi = last;
    for (;;) {
      while (gt(lo, first)) lo++;
      hi--;
      while (gt(first, hi)) hi--;
      if (!(lo < hi)) break;
      swap(lo, hi);
      lo++;
    }
    const cut = lo;
    if (cut <= nth) first = cut;
    else last = cut;
  }
  // __insertion_sort(first, last)
  for (let i = first + 1; i < last; i++) {
    const val = v[i], vi = idx[i];
    const before = (x: number) => (Number.isNaN(val) && !Number.isNaN(v[x])) || val > v[x];
    if (before(first)) {
      for (let j = i; j > first; j--) { v[j] = v[j - 1]; idx[j] = idx[j - 1]; }
      v[first] = val; idx[first] = vi;
    } else {
      let j = i;
      while (before(j - 1)) { v[j] = v[j - 1]; idx[j] = idx[j - 1]; j--; }
      v[j] = val; idx[j] = vi;
    }
  }
}

function stableSortRange(v: Float64Array, idx: Int32Array, first: number, last: number): void {
  const order = Array.from({ length: last - first }, (_, i) => first + i).sort((a, b) => (v[b] - v[a]) || (a - b));
  const nv = order.map((o) => v[o]);
  const ni = order.map((o) => idx[o]);
  for (let i = 0; i < nv.length; i++) { v[first + i] = nv[i]; idx[first + i] = ni[i]; }
}

function stableTopk(v: Float64Array, idx: Int32Array, k: number): void {
  stableSortRange(v, idx, 0, v.length);
  void k;
}

/**
 * For each of `rows` rows of length n, the indices of the k largest under a total order: larger value first, and
 * among equal values the LATER index first ("recent wins"). Unlike torch's order this is a total order, so
 * TopK(a ∪ b) = TopK(TopK(a) ∪ b): the rule the bounded decoding cache (src/modules/dmattn-cache.ts) relies on.
 * Indices come out in descending order of preference.
 */
export function recentTopkIndices(values: ArrayLike<number>, rows: number, n: number, k: number): Int32Array {
  const out = new Int32Array(rows * k);
  const order = new Array<number>(n);
  for (let r = 0; r < rows; r++) {
    const base = r * n;
    for (let j = 0; j < n; j++) order[j] = j;
    order.sort((a, b) => (values[base + b] - values[base + a]) || (b - a));
    for (let j = 0; j < k; j++) out[r * k + j] = order[j];
  }
  return out;
}

/** a before b in the "recent wins" order (larger value, then later index). */
export function recentBefore(va: number, ia: number, vb: number, ib: number): boolean {
  return va > vb || (va === vb && ia > ib);
}
