/**
 * Depthwise causal convolution over time (torch `nn.Conv1d(ch, ch, W, groups=ch, padding=W-1)` keeping the first T
 * outputs), the short convolution of Mamba-2's SSD block and of Based's linear attention:
 *
 *   out[t, c] = bias[c] + Σ_{k<W} weight[c, 0, k] * x[t - (W-1) + k, c]        (x before position 0 is zero)
 *
 * Weight in torch's layout [ch, 1, W] under the name `weight` (and `bias` [ch]), drawn like torch's default
 * Conv1d init, uniform(-1/√W, 1/√W) (kaiming_uniform with a = √5, fan_in = W), from the common `Init`.
 */
import { tf } from '../tf';
import { sliceAxis } from '../ops';
import { Module, type Init } from './module';

export class CausalConv1d extends Module {
  readonly weight: tf.Variable; // [ch, 1, W]
  readonly bias: tf.Variable | null = null; // [ch]

  constructor(init: Init, readonly channels: number, readonly width: number, bias = true) {
    super();
    const bound = 1 / Math.sqrt(width);
    const values = Float32Array.from({ length: channels * width }, () => (2 * init.rng.next() - 1) * bound);
    this.weight = this.paramFromValues('weight', [channels, 1, width], values);
    if (bias) this.bias = this.param('bias', [channels], 'zeros', init);
  }

  /** x [b, T, ch] -> [b, T, ch]. */
  apply(x: tf.Tensor): tf.Tensor {
    const W = this.width;
    const [b, T, ch] = x.shape as [number, number, number];
    const taps = tf.transpose(tf.reshape(this.weight, [ch, W])); // [W, ch]
    const padded = tf.pad(x, [[0, 0], [W - 1, 0], [0, 0]]); // [b, T + W - 1, ch]
    let out: tf.Tensor | null = this.bias;
    for (let k = 0; k < W; k++) {
      const term = tf.mul(sliceAxis(padded, 1, k, T), tf.reshape(tf.slice(taps, [k, 0], [1, ch]), [ch]));
      out = out ? tf.add(out, term) : term;
    }
    return tf.reshape(out!, [b, T, ch]);
  }
}
