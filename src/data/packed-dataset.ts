/**
 * What a packed split looks like to training code, however it is stored (read into memory by `openPackedDataset`,
 * or memory-light from the Arrow shards by `openPackedOnDisk`); its own file so both readers import it.
 */
export interface PackedDataset {
  /** The split folder this was read from. */
  readonly dir: string;
  readonly numRows: number;
  readonly seqLen: number;
  /** The largest token id in the split (to check against a model's vocabulary). */
  readonly maxTokenId: number;
  /** The smallest token id, when known (lets checkVocabulary skip its scan for negative ids). */
  readonly minTokenId?: number;
  /** Row i as a [seqLen] view (no copy). */
  row(i: number): Int32Array;
}
