/**
 * Token embedding (HF nn.Embedding with padding_idx): lookup with a scatter gradient (wasm-safe, see src/ops),
 * the padding row gets no gradient from the lookup.
 */
import { tf } from '../tf';
import { gatherRows } from '../ops';
import { Module, type Init } from './module';

/** Embedding module: parameter `weight` [V, H]; the padding row is zeroed at init (as torch) unless `std` is 0. */
export class Embedding extends Module {
  readonly weight: tf.Variable; // [V, H]
  constructor(init: Init, readonly numEmbeddings: number, readonly dim: number, readonly paddingIdx: number | null = null) {
    super();
    this.weight = this.param('weight', [numEmbeddings, dim], 'normal', init);
  }

  /** torch zeroes the padding row at init (call after the weight was drawn; no-op without a padding index). */
  zeroPaddingRow(): void {
    if (this.paddingIdx === null) return;
    const p = this.paddingIdx, V = this.numEmbeddings;
    const row = tf.tidy(() => {
      const mask = tf.reshape(tf.oneHot(tf.tensor1d([p], 'int32'), V), [V, 1]);
      return tf.mul(this.weight, tf.sub(1, mask));
    });
    this.weight.assign(row);
    row.dispose();
  }
  /** ids int32 [...] -> [..., H] */
  apply(ids: tf.Tensor): tf.Tensor {
    return gatherRows(this.weight, ids, this.paddingIdx);
  }
}
