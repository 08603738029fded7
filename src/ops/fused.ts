/**
 * Fused ops: each is defined once here, with the math written in plain tfjs ops (what wasm and every backend without
 * a fused kernel runs, the same ops the library ran before these existed) and, where a backend registered a kernel
 * of the op's name, one tfjs kernel call instead (`runFused`). The webgpu backend's kernels are WGSL programs in
 * src/runtime/webgpu-kernels.ts, registered by `loadBackend()`; this file never imports the runtime.
 *
 * Why: on a GPU a training step of a small model is dispatch-bound (a few µs per kernel launch, thousands of small
 * kernels per step); each op below replaces 4 to 15 element-wise kernels by one (two for some gradients):
 *   - adamwStep       the whole AdamW update of one parameter: new p, m, v in one kernel (was ~15 kernels)
 *   - sumOfSquares    sum of x^2 over a list of tensors, for global-norm clipping (was 2 per tensor + addN)
 *   - rmsNorm         y = w * x / sqrt(mean(x^2) + eps); its gradient in two kernels (dx, dw)
 *   - swigluPacked    silu(g) * u of a packed [..., 2I] gate/up projection, no slices; gradient in one kernel
 *   - dynamicMaskBias DMAttn's d = exp(A softplus(dt)) (or A softplus(dt)) transposed to [B, heads, T]
 *   - applyRope       x cos + swapHalves(x) sinSigned (RoPE of q/k heads, SSD's B and C); gradient in one kernel
 * Differentiable ones (rmsNorm, swigluPacked, dynamicMaskBias, applyRope) take a hand-written gradient that runs the backend's
 * gradient kernel, or the plain ops' gradient on the fallback. adamwStep and sumOfSquares are not differentiable
 * (they run outside gradient recording).
 *
 * `WM_FUSED_KERNELS=0` makes every op take the fallback (read at each call, for A/B runs and tests).
 */
import { tf } from '../tf';
import { customOp, isRecordingGradients, permute, sliceLast } from './index';

/** tfjs kernel names of the fused ops; a backend provides an op by registering a kernel under this name. */
export const FUSED_KERNEL_NAMES = {
  adamwStep: 'WmAdamWStep',
  sumOfSquares: 'WmSumOfSquares',
  rmsNorm: 'WmRmsNorm',
  rmsNormGrad: 'WmRmsNormGrad',
  swiglu: 'WmSwigluPacked',
  swigluGrad: 'WmSwigluPackedGrad',
  dynamicMask: 'WmDynamicMaskBias',
  dynamicMaskGrad: 'WmDynamicMaskBiasGrad',
  rope: 'WmRope',
  ropeGrad: 'WmRopeGrad',
} as const;
export type FusedKernelName = (typeof FUSED_KERNEL_NAMES)[keyof typeof FUSED_KERNEL_NAMES];

/** False when `WM_FUSED_KERNELS=0` (every fused op runs its plain-tfjs fallback). */
export function fusedKernelsEnabled(): boolean {
  return process.env.WM_FUSED_KERNELS !== '0';
}

/** Is a kernel of this name registered for the active backend (and fused kernels not switched off)? */
export function hasFusedKernel(name: FusedKernelName): boolean {
  return fusedKernelsEnabled() && tf.getKernel(name, tf.getBackend()) !== undefined;
}

/**
 * Runs the active backend's kernel `name` when one is registered (one tfjs kernel call: it shows in profiles and
 * kernel counts under its name), else `fallback()` (also when `eligible` is false: inputs the kernel does not take,
 * e.g. int32 or empty tensors). Outputs as an array in the kernel's output order.
 */
export function runFused(name: FusedKernelName, inputs: tf.NamedTensorMap, attrs: Record<string, number | boolean>, fallback: () => tf.Tensor[], eligible = true): tf.Tensor[] {
  if (!eligible || !hasFusedKernel(name)) return fallback();
  const out = tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
  return Array.isArray(out) ? out : [out];
}

/** The numbers of one AdamW update (see src/train/adamw.ts for the formula). */
export interface AdamWStepParams {
  beta1: number;
  beta2: number;
  eps: number;
  /** multiplies the gradient first (global-norm clipping coefficient) */
  gradScale: number;
  /** 1 - lr * weight_decay for decayed parameters, 1 for the others */
  decay: number;
  /** lr / (1 - beta1^t) */
  stepSize: number;
  /** sqrt(1 - beta2^t) */
  bc2Sqrt: number;
}

/** One AdamW update of parameter p with moments m, v and gradient g: returns [p', m', v'] (new tensors). */
export function adamwStep(p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, h: AdamWStepParams): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const attrs = { ...h };
  const eligible = p.size > 0 && p.dtype === 'float32' && g.dtype === 'float32';
  const out = runFused(FUSED_KERNEL_NAMES.adamwStep, { p, m, v, g }, attrs, () => {
    // the unfused update, op for op what AdamW ran before the fused kernel existed
    const gs = h.gradScale === 1 ? g : tf.mul(g, h.gradScale);
    const mNew = tf.add(tf.mul(m, h.beta1), tf.mul(gs, 1 - h.beta1));
    const vNew = tf.add(tf.mul(v, h.beta2), tf.mul(tf.square(gs), 1 - h.beta2));
    const denom = tf.add(tf.div(tf.sqrt(vNew), h.bc2Sqrt), h.eps);
    const decayedP = h.decay === 1 ? p : tf.mul(p, h.decay);
    return [tf.sub(decayedP, tf.mul(tf.div(mNew, denom), h.stepSize)), mNew, vNew];
  }, eligible);
  return [out[0], out[1], out[2]];
}

/** sum over every tensor of sum(x^2), a scalar (0 for an empty list): the squared global gradient norm. */
export function sumOfSquares(xs: tf.Tensor[]): tf.Scalar {
  if (!xs.length) return tf.scalar(0);
  const eligible = xs.every((x) => x.dtype === 'float32' && x.size > 0);
  const inputs: tf.NamedTensorMap = {};
  xs.forEach((x, i) => { inputs[`x${i}`] = x; });
  return runFused(FUSED_KERNEL_NAMES.sumOfSquares, inputs, {}, () => [tf.addN(xs.map((x) => tf.sum(tf.square(x))))], eligible)[0] as tf.Scalar;
}

/**
 * A fused kernel on named inputs -> one output. While gradients are recorded it runs inside a custom op whose gradient
 * is the runtime's gradient kernel `grad`, given dy and the same named inputs (it returns one gradient per input, in
 * their order); otherwise the kernel alone.
 */
function withGradKernel(name: FusedKernelName, grad: FusedKernelName, inputs: Record<string, tf.Tensor>, attrs: Record<string, number | boolean>): tf.Tensor {
  const names = Object.keys(inputs);
  const named = (xs: tf.Tensor[]) => Object.fromEntries(names.map((n, i) => [n, xs[i]])) as tf.NamedTensorMap;
  const run = (xs: tf.Tensor[]) => tf.engine().runKernel(name, named(xs), attrs) as tf.Tensor;
  const xs = names.map((n) => inputs[n]);
  if (!isRecordingGradients()) return run(xs);
  const op = customOp((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const ts = args as tf.Tensor[];
    save(ts);
    return {
      value: run(ts),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.engine().runKernel(grad, { dy, ...named(saved) }, attrs) as tf.Tensor | tf.Tensor[],
    };
  });
  return op(...xs);
}

/** RMSNorm with the plain ops and a hand-written gradient (fewer ops than autodiff): the fallback of `rmsNorm`. */
function rmsNormOps(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  if (!isRecordingGradients()) return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w);
  const op = customOp((xi: tf.Tensor, wi: tf.Tensor, save: tf.GradSaveFunc) => {
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xi), -1, true), eps)); // [..., 1]
    const xhat = tf.mul(xi, r); // [..., D]
    save([xhat, r, wi]);
    return {
      value: tf.mul(xhat, wi),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rr, ww] = saved;
        const g = tf.mul(dy, ww); // dL/dxhat
        // dx = r * (g - xhat * mean(g * xhat))
        const dx = tf.mul(rr, tf.sub(g, tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))));
        // dw: sum dy*xhat over every axis that w was broadcast along
        let dw = tf.mul(dy, xh);
        const wShape = ww.shape;
        const lead = dw.shape.length - wShape.length;
        const axes: number[] = [];
        for (let i = 0; i < dw.shape.length; i++) {
          const wi2 = i - lead;
          if (wi2 < 0 || (wShape[wi2] === 1 && dw.shape[i] !== 1)) axes.push(i);
        }
        if (axes.length) dw = tf.reshape(tf.sum(dw, axes), wShape);
        return [dx, dw];
      },
    };
  });
  return op(x, w) as tf.Tensor;
}

/**
 * RMSNorm (HF DogeRMSNorm) over the last axis: x [..., D], w broadcastable to x -> [..., D], float32.
 * The fused kernel takes w whose shape is x's trailing axes (w [D] for a block norm, [heads, D] for the per-head
 * q/k norms of x [B, T, heads, D]); any other broadcast runs the plain ops.
 */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  const trailing = w.rank <= x.rank && w.shape.every((s, i) => s === x.shape[x.rank - w.rank + i]);
  if (!(trailing && w.rank >= 1 && x.size > 0 && x.dtype === 'float32' && hasFusedKernel(FUSED_KERNEL_NAMES.rmsNorm))) return rmsNormOps(x, w, eps);
  return withGradKernel(FUSED_KERNEL_NAMES.rmsNorm, FUSED_KERNEL_NAMES.rmsNormGrad, { x, w }, { eps });
}

/** silu(g) * u with a hand-written gradient. g, u [..., I]. */
export function swiglu(g: tf.Tensor, u: tf.Tensor): tf.Tensor {
  if (!isRecordingGradients()) return tf.mul(tf.mul(g, tf.sigmoid(g)), u);
  const op = customOp((gi: tf.Tensor, ui: tf.Tensor, save: tf.GradSaveFunc) => {
    const s = tf.sigmoid(gi);
    const sg = tf.mul(gi, s); // silu(g)
    save([gi, ui, s, sg]);
    return {
      value: tf.mul(sg, ui),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [gg, uu, ss, ssg] = saved;
        // d silu(g)/dg = s + g*s*(1-s) = s + sg*(1-s)
        const dsilu = tf.add(ss, tf.mul(ssg, tf.sub(1, ss)));
        return [tf.mul(tf.mul(dy, uu), dsilu), tf.mul(dy, ssg)];
      },
    };
  });
  return op(g, u) as tf.Tensor;
}

/** SwiGLU of a packed projection gu [..., 2I] (gate in the first I columns, up in the last I) -> [..., I]. */
export function swigluPacked(gu: tf.Tensor, I: number): tf.Tensor {
  if (gu.shape[gu.rank - 1] !== 2 * I) throw new Error(`swigluPacked: last axis of gu is ${gu.shape[gu.rank - 1]}, expected 2 x ${I}`);
  if (!(gu.size > 0 && gu.dtype === 'float32' && hasFusedKernel(FUSED_KERNEL_NAMES.swiglu))) return swiglu(sliceLast(gu, 0, I), sliceLast(gu, I, I));
  return withGradKernel(FUSED_KERNEL_NAMES.swiglu, FUSED_KERNEL_NAMES.swigluGrad, { gu }, {});
}

/**
 * DMAttn's dynamic mask from dt = dt_proj(v) [B, T, nm] and A [nm]: d[b, c, t] = exp(A[c] softplus(dt[b, t, c]))
 * ('exp', HF) or A[c] softplus(dt[b, t, c]) ('linear') -> [B, nm, T].
 */
export function dynamicMaskBias(dt: tf.Tensor, A: tf.Tensor, kind: 'exp' | 'linear'): tf.Tensor {
  if (dt.rank !== 3 || A.rank !== 1 || A.shape[0] !== dt.shape[2]) throw new Error(`dynamicMaskBias: dt must be [B, T, nm] and A [nm], got [${dt.shape}] and [${A.shape}]`);
  const isExp = kind === 'exp';
  if (!(dt.size > 0 && dt.dtype === 'float32' && hasFusedKernel(FUSED_KERNEL_NAMES.dynamicMask))) {
    const a = tf.mul(A, tf.softplus(dt));
    return permute(isExp ? tf.exp(a) : a, [0, 2, 1]);
  }
  return withGradKernel(FUSED_KERNEL_NAMES.dynamicMask, FUSED_KERNEL_NAMES.dynamicMaskGrad, { dt, A }, { isExp });
}

/**
 * [hd, hd] permutation with x @ P = [x2, x1] (a matmul is far cheaper than tf.reverse on wasm). Built per call (an
 * hd x hd upload): a process-wide cache would outlive every model; the caller's tidy frees it.
 */
function swapHalves(hd: number): tf.Tensor {
  const m = new Float32Array(hd * hd);
  const half = hd / 2;
  for (let i = 0; i < half; i++) { m[(i + half) * hd + i] = 1; m[i * hd + i + half] = 1; }
  return tf.tensor2d(m, [hd, hd]);
}

/**
 * RoPE: x [B, T, heads, hd] -> rotated x, with tables cos, sinSigned = [-sin, sin] of shape [B|1, T, 1, hd]
 * (src/modules/rope.ts builds them): x cos + [x2, x1] sinSigned. The tables are constants (no gradient).
 */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sinSigned: tf.Tensor): tf.Tensor {
  const [B, T, Hh, hd] = x.shape;
  const tablesFit = x.rank === 4 && cos.rank === 4 && cos.shape.join() === sinSigned.shape.join()
    && (cos.shape[0] === 1 || cos.shape[0] === B) && cos.shape[1] === T && cos.shape[2] === 1 && cos.shape[3] === hd;
  if (!(tablesFit && hd % 2 === 0 && x.size > 0 && x.dtype === 'float32' && hasFusedKernel(FUSED_KERNEL_NAMES.rope))) {
    // [x1, x2] -> [x2, x1], then * [-sin, sin] gives rot(x) * sin
    const swapped = tf.reshape(tf.matMul(tf.reshape(x, [-1, hd]), swapHalves(hd)), [B, T, Hh, hd]);
    return tf.add(tf.mul(x, cos), tf.mul(swapped, sinSigned));
  }
  const run = (name: FusedKernelName, xi: tf.Tensor) => tf.engine().runKernel(name, { x: xi, cos, sin: sinSigned }, {}) as tf.Tensor;
  if (!isRecordingGradients()) return run(FUSED_KERNEL_NAMES.rope, x);
  // the tables are the caller's (alive until its tidy ends, after the backward pass): only x is differentiated
  const op = customOp((xi: tf.Tensor) => ({ value: run(FUSED_KERNEL_NAMES.rope, xi), gradFunc: (dy: tf.Tensor) => run(FUSED_KERNEL_NAMES.ropeGrad, dy) }));
  return op(x);
}
