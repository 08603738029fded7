/**
 * Wasm-safe building-block ops, written once for the whole library.
 *
 * The tfjs wasm backend has no `UnsortedSegmentSum` kernel (used by the gradient of `tf.gather`), no `Einsum`,
 * and `tf.cumsum` on the last axis crashes there. The ops below avoid all three:
 *  - `gatherRows(table, ids)`: row lookup whose gradient is a `tf.scatterND` (duplicates are summed), which is
 *    also much faster than the generic gather gradient on every backend.
 *  - `stopGradient(x)`: identity whose gradient is zero (for masks computed from differentiable values).
 *  - `crossEntropyLoss(logits, targets, divisor)`: fused log-softmax cross-entropy with a hand-written gradient
 *    (and `chunkedLmHeadLoss`, the same fused with the LM head in chunks); `tokenLogprobs` for scoring.
 *  - `linear(x, w, b)`: y = x W^T (+ b) with PyTorch's [out, in] weight layout.
 * Plus host-side helpers: a seeded RNG (for init, dropout seeds and sampling) and `F32_MIN`.
 */
import { tf } from '../tf';
export { Rng } from './random';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type CustomFn = (...args: any[]) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] };

/** tf.customGrad with loose typing (tfjs' own signature does not accept typed tensor parameters). */
export function customOp(f: CustomFn): (...inputs: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...inputs: tf.Tensor[]) => tf.Tensor;
}

/** Most negative finite float32 (torch.finfo(torch.float32).min), used for "not allowed" mask entries. */
export const F32_MIN = -3.4028234663852886e38;

/**
 * table [R, D], ids int32 [...] -> [..., D]. Gradient w.r.t. table: scatterND of the output gradient, with the rows
 * of `zeroGradRow` (the embedding's padding_idx) left at zero. ids are not differentiable.
 */
export function gatherRows(table: tf.Tensor, ids: tf.Tensor, zeroGradRow: number | null = null): tf.Tensor {
  const idShape = ids.shape;
  const [R, D] = table.shape as [number, number];
  const op = customOp((t: tf.Tensor, save: tf.GradSaveFunc) => {
    const flat = tf.reshape(ids, [-1]); // [N]
    const out = tf.reshape(tf.gather(t, flat, 0), [...idShape, D]); // [..., D]
    // tensors used by the gradient must be saved: the forward scope disposes everything else
    save([flat]);
    return {
      value: out,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [flat] = saved;
        const dy2 = tf.reshape(dy, [-1, D]); // [N, D]
        let upd = dy2;
        if (zeroGradRow !== null) {
          // rows looked up at the padding index get no gradient (torch Embedding padding_idx)
          const keep = tf.reshape(tf.cast(tf.notEqual(flat, zeroGradRow), 'float32'), [-1, 1]);
          upd = tf.mul(dy2, keep);
        }
        return tf.scatterND(tf.reshape(flat, [-1, 1]), upd, [R, D]);
      },
    };
  });
  return op(table) as tf.Tensor;
}

/** The label that means "no target here" (HF / torch `ignore_index`): causal-LM labels, SFT masks, MQAR labels. */
export const IGNORE_INDEX = -100;

/**
 * The log-probability of each row's target, the one way the library scores tokens (DPO, eval, MQAR):
 * logits [N, V], targets N ids -> [N], logSoftmax(logits)[n, targets[n]]. Differentiable w.r.t. the logits; the
 * lookup is a `gatherRows` of single elements, whose gradient is a scatter (wasm-safe).
 */
export function tokenLogprobs(logits: tf.Tensor, targets: ArrayLike<number>): tf.Tensor1D {
  const [N, V] = logits.shape as [number, number];
  if (targets.length !== N) throw new Error(`tokenLogprobs: ${targets.length} targets for ${N} logit rows`);
  const flat = Int32Array.from(targets, (t, n) => n * V + t); // [N] element index into [N * V]
  return tf.reshape(gatherRows(tf.reshape(tf.logSoftmax(logits), [N * V, 1]), tf.tensor1d(flat, 'int32')), [N]) as tf.Tensor1D;
}

/** Identity in the forward pass, zero gradient in the backward pass. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const op = customOp((a: tf.Tensor) => ({ value: a.clone(), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) }));
  return op(x) as T;
}

/** y = x W^T (+ b). x [..., in], w [out, in], b [out] -> [..., out]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor | null): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1];
  const lead = x.shape.slice(0, -1);
  const y = tf.matMul(tf.reshape(x, [-1, inDim]), w, false, true); // [N, out]
  const yb = b ? tf.add(y, b) : y;
  return lead.length === 1 ? yb : tf.reshape(yb, [...lead, w.shape[0]]);
}

/**
 * Causal-LM cross-entropy on pre-shifted targets.
 * logits [N, V] float32, targets: Int32Array of length N (IGNORE_INDEX = ignored), divisor: what the summed loss is divided
 * by (number of non-ignored targets for a mean, or num_items_in_batch). Returns a scalar.
 * The gradient is (softmax - onehot) * valid / divisor, computed directly (no LogSoftmax/gather gradients).
 */
export function crossEntropyLoss(logits: tf.Tensor2D, targets: Int32Array, divisor: number): tf.Scalar {
  const [N, V] = logits.shape;
  if (targets.length !== N) throw new Error(`crossEntropyLoss: ${targets.length} targets for ${N} logit rows`);
  const valid = new Float32Array(N);
  const safe = new Int32Array(N);
  const flatIdx = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const t = targets[i];
    flatIdx[i] = i * V; // ignored rows point at their own row (their gradient is 0), so indices stay unique
    if (t === IGNORE_INDEX) continue;
    if (t < 0 || t >= V) throw new Error(`labels: target id ${t} is outside the vocabulary [0, ${V})`);
    valid[i] = 1;
    safe[i] = t;
    flatIdx[i] = i * V + t;
  }
  // Large vocabularies (e.g. 2048 x 32768 logits = 268 MB per copy) must not keep extra full-size copies alive:
  // above ~16M entries the softmax is recomputed in the backward pass instead of saved, and the gradient is built
  // with at most two full-size tensors alive at a time.
  const keepSoftmax = N * V <= 16 * 1024 * 1024;
  const op = customOp((lg: tf.Tensor, save: tf.GradSaveFunc) => {
    const validT = tf.tensor1d(valid); // [N]
    // The softmax kernel instead of exp(): on wasm it is XNNPACK's vectorised softmax, ~7x faster than the Exp
    // kernel (and as accurate). logsumexp from it: p at the row maximum is exp(0) / z = 1 / z, so
    // lse = max + log z = max - log(max p), and max p >= 1 / V never underflows.
    const p = tf.softmax(lg); // [N, V]
    const lse = tf.sub(tf.max(lg, 1), tf.log(tf.max(p, 1))); // [N]
    const picked = tf.gather(tf.reshape(lg, [-1]), tf.tensor1d(flatIdx, 'int32')); // [N]
    const loss = tf.div(tf.sum(tf.mul(tf.sub(lse, picked), validT)), divisor) as tf.Scalar;
    save(keepSoftmax ? [p, validT] : [lg, validT]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const v = saved[saved.length - 1]; // [N]
        const pp = keepSoftmax ? saved[0] : tf.softmax(saved[0]); // softmax [N, V]
        const scale = tf.reshape(tf.mul(v, tf.div(dy, divisor)), [N, 1]); // [N, 1]
        const g = tf.mul(pp, scale); // [N, V]
        if (!keepSoftmax) pp.dispose();
        // subtract scale at each row's target: g[n, t_n] -= scale_n
        const idx = tf.tensor2d(Array.from(flatIdx, (f) => [f]), [N, 1], 'int32');
        const flatG = tf.reshape(g, [N * V]);
        const at = tf.sub(tf.gather(flatG, tf.reshape(idx, [N])), tf.reshape(scale, [N]));
        const out = tf.tensorScatterUpdate(flatG, idx, at);
        g.dispose();
        return tf.reshape(out, [N, V]);
      },
    };
  });
  return op(logits) as tf.Scalar;
}

let varCounter = 0;
/** A tf.Variable with a process-unique tfjs name (`wm<k>/<name>`): tfjs refuses two variables with one name. */
export function makeVariable(values: Float32Array, shape: number[], name: string, trainable = true): tf.Variable {
  const init = tf.tensor(values, shape, 'float32');
  const v = tf.variable(init, trainable, `wm${varCounter++}/${name}`);
  init.dispose(); // the variable holds its own reference to the data
  return v;
}

/** Slice [start, start + len) of the last axis (tf.slice: fast on wasm with the Slice patch, unlike tf.split). */
export function sliceLast(x: tf.Tensor, start: number, len: number): tf.Tensor {
  const r = x.shape.length;
  const begin = new Array<number>(r).fill(0);
  begin[r - 1] = start;
  const size = [...x.shape];
  size[r - 1] = len;
  return tf.slice(x, begin, size);
}

/** Slice [start, start + len) of axis `axis`. */
export function sliceAxis(x: tf.Tensor, axis: number, start: number, len: number): tf.Tensor {
  const begin = new Array<number>(x.shape.length).fill(0);
  begin[axis] = start;
  const size = [...x.shape];
  size[axis] = len;
  return tf.slice(x, begin, size);
}

function bmmForward(a: tf.Tensor, b: tf.Tensor, transA: boolean, transB: boolean): tf.Tensor {
  const n = a.shape[0];
  const [, a1, a2] = a.shape as [number, number, number];
  const [, b1, b2] = b.shape as [number, number, number];
  const outs: tf.Tensor[] = [];
  for (let i = 0; i < n; i++) {
    const ai = tf.reshape(tf.slice(a, [i, 0, 0], [1, a1, a2]), [a1, a2]);
    const bi = tf.reshape(tf.slice(b, [i, 0, 0], [1, b1, b2]), [b1, b2]);
    const c = tf.matMul(ai, bi, transA, transB);
    outs.push(tf.reshape(c, [1, ...c.shape]));
  }
  return n === 1 ? outs[0] : tf.concat(outs, 0);
}

/**
 * Batched matmul a [n, M, K] x b [n, K, N] (with optional transposes of the last two axes) -> [n, M, N].
 * On wasm, BatchMatMul with a batch > 1 runs a slow generic loop (~1 GFLOP/s vs ~10 for XNNPACK 2-D matmuls), so
 * this runs n 2-D matmuls on slices and concatenates; the gradient does the same. Other backends: tf.matMul.
 */
export function bmm(a: tf.Tensor, b: tf.Tensor, transA = false, transB = false): tf.Tensor {
  // small products (decoding) are faster in one batched call than as n slices
  const work = a.shape[1]! * a.shape[2]! * (transB ? b.shape[1]! : b.shape[2]!);
  if (tf.getBackend() !== 'wasm' || a.shape[0] === 1 || work < 65536) return tf.matMul(a, b, transA, transB);
  const op = customOp((x: tf.Tensor, y: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x, y]);
    return {
      value: bmmForward(x, y, transA, transB),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xa, yb] = saved;
        // C = op(A) op(B); dA, dB follow tfjs' BatchMatMul gradient
        let da: tf.Tensor, db: tf.Tensor;
        if (!transA && !transB) { da = bmmForward(dy, yb, false, true); db = bmmForward(xa, dy, true, false); }
        else if (!transA && transB) { da = bmmForward(dy, yb, false, false); db = bmmForward(dy, xa, true, false); }
        else if (transA && !transB) { da = bmmForward(yb, dy, false, true); db = bmmForward(xa, dy, false, false); }
        else { da = bmmForward(yb, dy, true, true); db = bmmForward(dy, xa, true, true); }
        return [da, db];
      },
    };
  });
  return op(a, b);
}

/** True while tfjs records operations for a gradient (inside tf.grads / variableGrads / optimizer.minimize). */
export function isRecordingGradients(): boolean {
  const st = (tf.engine() as unknown as { state: { gradientDepth: number } }).state;
  return st.gradientDepth > 0;
}

const wtCache = new WeakMap<tf.Variable, { ids: object[]; t: tf.Tensor }>();

/**
 * The transposed concatenation [in, sum(out)] of torch-layout weights [out_i, in], for y = x W^T as a plain matmul.
 * Outside gradient recording (inference, decoding) the result is cached per weight set until a variable is
 * re-assigned (tfjs gives an assigned variable a new dataId): decoding then reuses the same matrix every step, which
 * also lets the wasm backend reuse its packed XNNPACK operator. Call `clearWeightCache` when disposing weights.
 */
export function weightT(vars: tf.Variable[]): tf.Tensor {
  if (!isRecordingGradients()) {
    const hit = wtCache.get(vars[0]);
    const ids = vars.map((v) => v.dataId as object);
    if (hit && !hit.t.isDisposed && hit.ids.length === ids.length && hit.ids.every((d, i) => d === ids[i])) return hit.t;
    if (hit) hit.t.dispose();
    const t = tf.keep(tf.tidy(() => tf.transpose(vars.length === 1 ? vars[0] : tf.concat(vars, 0))));
    wtCache.set(vars[0], { ids, t });
    return t;
  }
  return tf.transpose(vars.length === 1 ? vars[0] : tf.concat(vars, 0));
}

export function clearWeightCache(vars: Iterable<tf.Variable>): void {
  for (const v of vars) {
    const hit = wtCache.get(v);
    if (hit) { hit.t.dispose(); wtCache.delete(v); }
  }
}

/** y = x Wt (+ b) with Wt [in, out] (see weightT). x [..., in] -> [..., out]. */
export function linearT(x: tf.Tensor, wT: tf.Tensor, b?: tf.Tensor | null): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1];
  const lead = x.shape.slice(0, -1);
  const y = tf.matMul(tf.reshape(x, [-1, inDim]), wT); // [N, out]
  const yb = b ? tf.add(y, b) : y;
  return lead.length === 1 ? yb : tf.reshape(yb, [...lead, wT.shape[1] as number]);
}

/** tf.transpose, or a (free) reshape when the permutation only moves size-1 axes (e.g. T = 1 while decoding). */
export function permute(x: tf.Tensor, perm: number[]): tf.Tensor {
  const moved = perm.filter((a) => x.shape[a] !== 1);
  const shape = perm.map((a) => x.shape[a] as number);
  if (moved.every((a, i) => i === 0 || a > moved[i - 1])) return tf.reshape(x, shape);
  return tf.transpose(x, perm);
}

/**
 * Fused lm_head + causal-LM cross-entropy over row chunks, for large vocabularies: never holds more than
 * [chunk, V] logits (the full [N, V] logits of doge-20m at 4 x 512 are 268 MB per copy and exhaust the wasm heap).
 * h [N, H], w [V, H] (torch layout), targets as in crossEntropyLoss.
 * When gradients are being recorded, each chunk's gradient is computed right after its loss, while its logits
 * exist: (softmax - onehot) * valid / divisor, then dh = g w and dW^T += h^T g; the backward pass only scales them
 * by the incoming gradient (1 for a loss). That is one lm_head-sized matmul and one softmax per chunk fewer than
 * recomputing the logits in the backward pass (for doge-20m 4 x 512: 34 GFLOP of ~190 per step).
 */
export function chunkedLmHeadLoss(h: tf.Tensor2D, w: tf.Tensor2D, targets: Int32Array, divisor: number, chunk = 512): tf.Scalar {
  const [N, H] = h.shape;
  const V = w.shape[0];
  if (targets.length !== N) throw new Error(`chunkedLmHeadLoss: ${targets.length} targets for ${N} rows`);
  const valid = new Float32Array(N);
  const safeIdx = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const t = targets[i];
    if (t === IGNORE_INDEX) continue;
    if (t < 0 || t >= V) throw new Error(`labels: target id ${t} is outside the vocabulary [0, ${V})`);
    valid[i] = 1;
    safeIdx[i] = t;
  }
  const chunks: [number, number][] = [];
  for (let s = 0; s < N; s += chunk) chunks.push([s, Math.min(chunk, N - s)]);
  const chunkIdx = (s: number, n: number) => tf.tensor2d(Array.from({ length: n }, (_, r) => [r * V + safeIdx[s + r]]), [n, 1], 'int32');
  const withGrad = isRecordingGradients();
  const op = customOp((hh: tf.Tensor, ww: tf.Tensor, save: tf.GradSaveFunc) => {
    const wT = tf.transpose(ww); // [H, V]
    let total: tf.Tensor = tf.scalar(0);
    const dhs: tf.Tensor[] = [];
    let dWT: tf.Tensor | null = null; // [H, V], transposed once at the end
    for (const [s, n] of chunks) {
      const parts = tf.tidy(() => {
        const hc = tf.slice(hh, [s, 0], [n, H]);
        const lg = tf.matMul(hc, wT); // [n, V]
        // softmax kernel, logsumexp from it (see crossEntropyLoss)
        const p = tf.softmax(lg); // [n, V]
        const lse = tf.sub(tf.max(lg, 1), tf.log(tf.max(p, 1))); // [n]
        const idx = chunkIdx(s, n);
        const picked = tf.gather(tf.reshape(lg, [-1]), tf.reshape(idx, [n]));
        const validC = tf.tensor1d(valid.subarray(s, s + n));
        const part = tf.sum(tf.mul(tf.sub(lse, picked), validC));
        if (!withGrad) return [part];
        const scale = tf.reshape(tf.div(validC, divisor), [n, 1]); // [n, 1]
        const g = tf.reshape(tf.mul(p, scale), [n * V]);
        const at = tf.sub(tf.gather(g, tf.reshape(idx, [n])), tf.reshape(scale, [n]));
        const gc = tf.reshape(tf.tensorScatterUpdate(g, idx, at), [n, V]); // [n, V]
        return [part, tf.matMul(gc, ww), tf.matMul(hc, gc, true, false)]; // [n, H], [H, V]
      });
      const next = tf.add(total, parts[0]);
      total.dispose(); parts[0].dispose();
      total = next;
      if (withGrad) {
        dhs.push(parts[1]);
        if (dWT) { const acc: tf.Tensor = tf.add(dWT, parts[2]); dWT.dispose(); parts[2].dispose(); dWT = acc; } else dWT = parts[2];
      }
    }
    if (withGrad) save([tf.concat(dhs, 0), tf.transpose(dWT!)]); // dh [N, H], dW [V, H]
    return {
      value: tf.div(total, divisor),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        // without gradient recording there is no tape, so this only runs for the withGrad case
        if (!withGrad) throw new Error('chunkedLmHeadLoss: gradient requested for a loss computed outside gradient recording');
        return [tf.mul(saved[0], dy), tf.mul(saved[1], dy)];
      },
    };
  });
  return op(h, w) as tf.Scalar;
}
