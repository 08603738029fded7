/**
 * Small tensor helpers of the MQAR baselines (src/synthetic consumes them): a `[in, out]`-layout linear, RoPE from
 * plain cos/sin tables, triangular masks and cumulative sums, and the tfjs-seeded initialiser the MQAR runs were
 * recorded with (`seed * 1000 + creation order`), so their numbers stay exactly as they were.
 * The Doge/Cheems layers use the `[out, in]` layout of torch (src/ops `linear`, `linearT`) and `Init` instead.
 */
import { tf } from '../tf';

/** tf.random-seeded initial tensors: normal / uniform, seeded by (seed, creation order). The caller owns them. */
export class TfSeededInit {
  private counter = 0;
  constructor(private readonly seed: number) {}

  normal(shape: number[], std: number): tf.Tensor {
    const seed = this.seed * 1000 + this.counter++;
    return tf.tidy(() => tf.randomNormal(shape, 0, std, 'float32', seed));
  }

  uniform(shape: number[], lo: number, hi: number): tf.Tensor {
    const seed = this.seed * 1000 + this.counter++;
    return tf.tidy(() => tf.randomUniform(shape, lo, hi, 'float32', seed));
  }
}

/** x [..., din] @ w [din, dout] (+ b) -> [..., dout] (weights stored [in, out]). */
export function linearInOut(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const din = shape[shape.length - 1];
  const y = tf.matMul(tf.reshape(x, [-1, din]), w as tf.Tensor2D);
  const out = b ? tf.add(y, b) : y;
  return tf.reshape(out, [...shape.slice(0, -1), w.shape[1] as number]);
}

/** cos/sin tables [seq, dim] for non-interleaved ("rotate half") RoPE with base theta. */
export function plainRopeTables(seqLen: number, dim: number, theta = 10000): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
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
export function applyPlainRope(x: tf.Tensor, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor {
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
export function cumsumLastAxis(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const n = x.shape[x.rank - 1];
    const upper = tf.transpose(lowerTriangle(n)); // upper[j, i] = 1 when j <= i
    return linearInOut(x, upper);
  });
}

/** Additive causal mask [seq, seq]: 0 where key <= query, -1e9 elsewhere. */
export function additiveCausalMask(seqLen: number): tf.Tensor2D {
  return tf.tidy(() => tf.mul(tf.sub(1, lowerTriangle(seqLen)), -1e9) as tf.Tensor2D);
}
