/**
 * Wasm-safe building-block ops, written once for the whole library.
 *
 * The tfjs wasm backend has no `UnsortedSegmentSum` kernel (used by the gradient of `tf.gather`), no `Einsum`,
 * and `tf.cumsum` on the last axis crashes there. The ops below avoid all three:
 *  - `gatherRows(table, ids)`: row lookup whose gradient is a `tf.scatterND` (duplicates are summed), which is
 *    also much faster than the generic gather gradient on every backend.
 *  - `stopGradient(x)`: identity whose gradient is zero (for masks computed from differentiable values).
 *  - `causalLmLoss(logits, targets)`: fused log-softmax cross-entropy with a hand-written gradient.
 *  - `linear(x, w, b)`: y = x W^T (+ b) with PyTorch's [out, in] weight layout.
 * Plus host-side helpers: a seeded RNG (for init, dropout seeds and sampling) and `F32_MIN`.
 */
import { tf } from '../backend';
// The tfjs-core package registers no gradients by itself (the union package @tensorflow/tfjs does). This side-effect
// module of the same tfjs-core copy registers them; importing it twice is harmless. (It is ESM: fine under tsx.)
import '@tensorflow/tfjs-core/dist/register_all_gradients';

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
 * logits [N, V] float32, targets: Int32Array of length N (-100 = ignored), divisor: what the summed loss is divided
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
    if (t === -100) continue;
    if (t < 0 || t >= V) throw new Error(`labels: target id ${t} is outside the vocabulary [0, ${V})`);
    valid[i] = 1;
    safe[i] = t;
    flatIdx[i] = i * V + t;
  }
  const op = customOp((lg: tf.Tensor, save: tf.GradSaveFunc) => {
    const validT = tf.tensor1d(valid); // [N]
    const lse = tf.logSumExp(lg, 1); // [N]
    const picked = tf.gather(tf.reshape(lg, [-1]), tf.tensor1d(flatIdx, 'int32')); // [N]
    const loss = tf.div(tf.sum(tf.mul(tf.sub(lse, picked), validT)), divisor) as tf.Scalar;
    save([lg, lse, validT]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [l, s, v] = saved;
        const p = tf.exp(tf.sub(l, tf.reshape(s, [N, 1]))); // softmax [N, V]
        const onehot = tf.oneHot(tf.tensor1d(safe, 'int32'), V); // [N, V]
        const scale = tf.reshape(tf.mul(v, tf.div(dy, divisor)), [N, 1]);
        return tf.mul(tf.sub(p, onehot), scale);
      },
    };
  });
  return op(logits) as tf.Scalar;
}

/** Small deterministic PRNG (mulberry32) with a normal sampler (Box-Muller); identical on every backend. */
export class Rng {
  private state: number;
  private spare: number | null = null;
  constructor(seed: number) {
    this.state = (Math.floor(seed) >>> 0) ^ 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) { const s = this.spare; this.spare = null; return s; }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  /** A fresh 31-bit integer (e.g. to seed a sub-stream or a tfjs op). */
  int(): number {
    return Math.floor(this.next() * 2147483647);
  }
  normalArray(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * std;
    return out;
  }
}

let varCounter = 0;
/** A tf.Variable with a process-unique tfjs name (`wm<k>/<name>`): tfjs refuses two variables with one name. */
export function makeVariable(values: Float32Array, shape: number[], name: string, trainable = true): tf.Variable {
  const init = tf.tensor(values, shape, 'float32');
  const v = tf.variable(init, trainable, `wm${varCounter++}/${name}`);
  init.dispose(); // the variable holds its own reference to the data
  return v;
}
