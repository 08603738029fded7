/**
 * SwiGLU MLP (HF DogeMLP): mlp(x) = down( silu(gate(x)) * up(x) ), weights [out, in] like torch Linear.
 * gate and up are applied as one matmul on the concatenated weight (same math, one op fewer on the hot path).
 */
import { tf } from '../tf';
import { linearT, weightT } from '../ops';
import { swiglu, swigluPacked } from '../ops/fused';
import { Module, type Init } from './module';

export interface MLPOptions {
  hiddenSize: number;
  intermediateSize: number;
  bias?: boolean;
}

// silu(g) * u (`swiglu`) and its packed form are defined once in src/ops/fused.ts
export { swiglu, swigluPacked };

export class MLP extends Module {
  readonly gateW: tf.Variable; // [I, H]
  readonly upW: tf.Variable; // [I, H]
  readonly downW: tf.Variable; // [H, I]
  readonly gateB: tf.Variable | null = null;
  readonly upB: tf.Variable | null = null;
  readonly downB: tf.Variable | null = null;
  readonly I: number;

  constructor(init: Init, opts: MLPOptions) {
    super();
    const { hiddenSize: H, intermediateSize: I } = opts;
    this.I = I;
    this.gateW = this.param('gate_proj.weight', [I, H], 'normal', init);
    if (opts.bias) this.gateB = this.param('gate_proj.bias', [I], 'zeros', init);
    this.upW = this.param('up_proj.weight', [I, H], 'normal', init);
    if (opts.bias) this.upB = this.param('up_proj.bias', [I], 'zeros', init);
    this.downW = this.param('down_proj.weight', [H, I], 'normal', init);
    if (opts.bias) this.downB = this.param('down_proj.bias', [H], 'zeros', init);
  }

  /** x [..., H] -> [..., H] */
  apply(x: tf.Tensor): tf.Tensor {
    const b = this.gateB && this.upB ? tf.concat([this.gateB, this.upB], 0) : null;
    const gu = linearT(x, weightT([this.gateW, this.upW]), b); // [..., 2I]
    // silu(gate) * up straight from the packed product (one kernel where the backend has it, no slices)
    return linearT(swigluPacked(gu, this.I), weightT([this.downW]), this.downB);
  }
}
