/**
 * SwiGLU MLP (HF DogeMLP): mlp(x) = down( silu(gate(x)) * up(x) ), weights [out, in] like torch Linear.
 * gate and up are applied as one matmul on the concatenated weight (same math, one op fewer on the hot path).
 */
import { tf } from '../tf';
import { customOp, isRecordingGradients, linearT, sliceLast, weightT } from '../ops';
import { Module, type Init } from './module';

export interface MLPOptions {
  hiddenSize: number;
  intermediateSize: number;
  bias?: boolean;
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
    const g = sliceLast(gu, 0, this.I), u = sliceLast(gu, this.I, this.I); // [..., I] each
    return linearT(swiglu(g, u), weightT([this.downW]), this.downB);
  }
}
