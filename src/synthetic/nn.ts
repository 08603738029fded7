/**
 * Small building blocks for the MQAR models: seeded parameters, a wasm-safe row gather, RMSNorm, RoPE and a
 * lower-triangular cumulative sum. They work on every tfjs backend; the wasm backend lacks UnsortedSegmentSum
 * (tf.gather's gradient) and crashes in tf.cumsum on the last axis, hence the custom versions here.
 */
import { tf } from '../backend';
import { rmsNorm as dogeRmsNorm } from '../modules/rmsnorm';

/**
 * tfjs-core registers no gradient for TopK. DMAttn's top-keep_window_size selection (src/modules/dmattn.ts) runs
 * topk on a tensor that is on the tape, so backprop reaches TopK even though only a comparison with its values is
 * used. This registers the exact gradient of the `values` output (scatter dy back to the selected positions), only if
 * no other gradient is registered.
 */
if (!tf.getGradient('TopK')) {
  tf.registerGradient({
    kernelName: 'TopK',
    inputsToSave: ['x'],
    outputsToSave: [false, true],
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
      const [x, indices] = saved;
      const dy = Array.isArray(dys) ? dys[0] : dys;
      return {
        x: () =>
          tf.tidy(() => {
            const S = x.shape[x.rank - 1];
            const k = indices.shape[indices.rank - 1];
            const rows = x.size / S;
            const rowStart = tf.tensor2d(Int32Array.from({ length: rows }, (_, r) => r * S), [rows, 1], 'int32');
            const flatIdx = tf.add(tf.reshape(indices, [rows, k]), rowStart); // [rows, k]
            const dx = tf.scatterND(tf.reshape(flatIdx, [-1, 1]), tf.reshape(dy, [-1]), [rows * S]);
            return tf.reshape(dx, x.shape);
          }),
      };
    },
  });
}

/** A named set of trainable variables with deterministic initialisation. */
export class ParamStore {
  readonly vars = new Map<string, tf.Variable>();
  private counter = 0;

  constructor(private readonly seed: number, private readonly prefix = '') {}

  /** Normal(0, std) init, seeded by (store seed, creation order). */
  normal(name: string, shape: number[], std: number): tf.Variable {
    const seed = this.seed * 1000 + this.counter++;
    return this.add(name, tf.tidy(() => tf.randomNormal(shape, 0, std, 'float32', seed)));
  }

  /** Uniform(lo, hi) init, seeded by (store seed, creation order). */
  uniform(name: string, shape: number[], lo: number, hi: number): tf.Variable {
    const seed = this.seed * 1000 + this.counter++;
    return this.add(name, tf.tidy(() => tf.randomUniform(shape, lo, hi, 'float32', seed)));
  }

  /** A variable from a fixed initial tensor (which this store takes ownership of). */
  add(name: string, init: tf.Tensor): tf.Variable {
    const full = this.prefix + name;
    if (this.vars.has(full)) throw new Error(`parameter ${full} defined twice`);
    const v = tf.variable(init, true, `${full}_${Math.random().toString(36).slice(2, 8)}`);
    init.dispose();
    this.vars.set(full, v);
    return v;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

// Row lookup (scatter gradient, wasm-safe) and RMSNorm are the library's own (src/ops, src/modules/rmsnorm.ts).
export { gatherRows } from '../ops';

/** RMSNorm over the last axis: w * x / sqrt(mean(x^2) + eps) (the Doge block's, with the MQAR default eps). */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps = 1e-6): tf.Tensor {
  return dogeRmsNorm(x, weight, eps);
}

/** x [..., din] @ w [din, dout] (+ b) -> [..., dout]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const din = shape[shape.length - 1];
  const y = tf.matMul(tf.reshape(x, [-1, din]), w as tf.Tensor2D);
  const out = b ? tf.add(y, b) : y;
  return tf.reshape(out, [...shape.slice(0, -1), w.shape[1] as number]);
}

/** cos/sin tables [seq, dim] for non-interleaved ("rotate half") RoPE with base theta. */
export function ropeTables(seqLen: number, dim: number, theta = 10000): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  if (dim % 2 !== 0) throw new Error(`RoPE needs an even dimension, got ${dim}`);
  const half = dim / 2;
  const cos = new Float32Array(seqLen * dim);
  const sin = new Float32Array(seqLen * dim);
  for (let t = 0; t < seqLen; t++) {
    for (let i = 0; i < half; i++) {
      const a = t / Math.pow(theta, (2 * i) / dim);
      cos[t * dim + i] = cos[t * dim + i + half] = Math.cos(a);
      sin[t * dim + i] = sin[t * dim + i + half] = Math.sin(a);
    }
  }
  return { cos: tf.tensor2d(cos, [seqLen, dim]), sin: tf.tensor2d(sin, [seqLen, dim]) };
}

/** Applies RoPE to x [..., seq, dim] with tables [seq, dim]: x*cos + rotate_half(x)*sin. */
export function applyRope(x: tf.Tensor, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor {
  return tf.tidy(() => {
    const dim = x.shape[x.rank - 1];
    const [x1, x2] = tf.split(x, [dim / 2, dim / 2], -1);
    const rotated = tf.concat([tf.neg(x2), x1], -1);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  });
}

/** Lower-triangular ones [n, n] as float32 (1 where col <= row). */
export function lowerTriangle(n: number): tf.Tensor2D {
  return tf.tidy(() => tf.linalg.bandPart(tf.ones([n, n]), -1, 0) as tf.Tensor2D);
}

/** Inclusive cumulative sum over the last axis as a matmul with an upper-triangular ones matrix. */
export function cumsumLast(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const n = x.shape[x.rank - 1];
    const upper = tf.transpose(lowerTriangle(n)); // upper[j, i] = 1 when j <= i
    return linear(x, upper);
  });
}

/** Additive causal mask [seq, seq]: 0 where key <= query, -1e9 elsewhere. */
export function causalMask(seqLen: number): tf.Tensor2D {
  return tf.tidy(() => tf.mul(tf.sub(1, lowerTriangle(seqLen)), -1e9) as tf.Tensor2D);
}
