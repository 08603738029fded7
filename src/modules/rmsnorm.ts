/**
 * RMSNorm (HF DogeRMSNorm): y = w * x / sqrt(mean(x^2 over the last axis) + eps), in float32.
 * Used for the block norms ([H] weights) and for the per-head q/k norms ([hd] weights).
 */
import { tf } from '../tf';
import { customOp, isRecordingGradients } from '../ops';
import { Module, type Init } from './module';

/** x [..., D], w broadcastable to [..., D] -> [..., D]. Hand-written gradient (fewer ops than autodiff). */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor, eps: number): tf.Tensor {
  if (!isRecordingGradients()) return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps))), w);
  const D = x.shape[x.shape.length - 1];
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
  void D;
  return op(x, w) as tf.Tensor;
}

/** RMSNorm module: parameter `weight` [size]. */
export class RMSNorm extends Module {
  readonly weight: tf.Variable;
  constructor(init: Init, size: number, readonly eps: number) {
    super();
    this.weight = this.param('weight', [size], 'ones', init); // [size]
  }
  apply(x: tf.Tensor): tf.Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}
