/**
 * RMSNorm (HF DogeRMSNorm): y = w * x / sqrt(mean(x^2 over the last axis) + eps), in float32.
 * Used for the block norms ([H] weights) and for the per-head q/k norms ([hd] weights).
 */
import { tf } from '../tf';
import { rmsNorm } from '../ops/fused';
import { Module, type Init } from './module';

// the one definition (plain ops, and the backend's fused kernel where one is registered) lives in src/ops/fused.ts
export { rmsNorm };

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
