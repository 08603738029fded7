/**
 * Token embedding (HF nn.Embedding with padding_idx): lookup with a scatter gradient (wasm-safe, see src/ops),
 * the padding row gets no gradient from the lookup.
 */
import { tf } from '../backend';
import { gatherRows } from '../ops';
import type { Store } from './params';

export class Embedding {
  readonly weight: tf.Variable; // [V, H]
  constructor(store: Store, name: string, readonly numEmbeddings: number, readonly dim: number, readonly paddingIdx: number | null = null) {
    this.weight = store.add(name, [numEmbeddings, dim], 'normal');
  }
  /** ids int32 [...] -> [..., H] */
  apply(ids: tf.Tensor): tf.Tensor {
    return gatherRows(this.weight, ids, this.paddingIdx);
  }
}
