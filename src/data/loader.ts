/**
 * Training-time access to a packed split: every row is `seqLen` token ids. `openPackedDataset` reads the
 * shards into one Int32Array; `BatchLoader` walks it in a seeded random order, one permutation per epoch,
 * and can start at any position (rows consumed so far), so a resumed run sees exactly the batches an
 * uninterrupted run would have seen.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openPackedOnDisk } from './packed-disk';
import type { PackedDataset } from './packed-dataset';
import { checkShardRows, checkShardSizes, datasetDictSplits, datasetShardFiles, listColumnRows, readArrowBatches, readShardManifest } from './arrow';
import { permutation } from '../ops/random';

export type { PackedDataset };

class InMemoryPackedDataset implements PackedDataset {
  constructor(
    readonly dir: string,
    private readonly tokens: Int32Array, // [numRows * seqLen]
    readonly numRows: number,
    readonly seqLen: number,
    readonly maxTokenId: number,
    readonly minTokenId: number,
  ) {}
  row(i: number): Int32Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.numRows) {
      throw new Error(`PackedDataset ${this.dir}: row ${i} out of range [0, ${this.numRows})`);
    }
    return this.tokens.subarray(i * this.seqLen, (i + 1) * this.seqLen);
  }
}

export interface OpenPackedOptions {
  /**
   * `memory`: read all tokens into one Int32Array (fastest rows); `disk`: index the shards and read each
   * row from disk when asked (bounded memory, for splits larger than RAM); `auto` (default): disk when the
   * shards add up to more than `maxMemoryBytes`.
   */
  mode?: 'auto' | 'memory' | 'disk';
  /** Default 2 GiB. */
  maxMemoryBytes?: number;
}

/**
 * Open a packed split folder (`<out>/train`, `<out>/test`; a DatasetDict folder opens its `train` split).
 * Every row must have the same length; the column is `input_ids` (list or large_list of ints).
 */
export async function openPackedDataset(splitDir: string, o: OpenPackedOptions = {}): Promise<PackedDataset> {
  const splits = datasetDictSplits(splitDir);
  if (splits) {
    if (!splits.includes('train')) throw new Error(`${splitDir} is a DatasetDict without a 'train' split (has ${splits.join(', ')}); open a split folder`);
    splitDir = path.join(splitDir, 'train');
  }
  const files = datasetShardFiles(splitDir);
  const manifest = readShardManifest(splitDir);
  if (manifest) checkShardSizes(splitDir, manifest);
  const mode = o.mode ?? 'auto';
  const bytes = files.reduce((a, f) => a + fs.statSync(f).size, 0);
  if (mode === 'disk' || (mode === 'auto' && bytes > (o.maxMemoryBytes ?? 2 * 2 ** 30))) {
    const ds = openPackedOnDisk(splitDir, files);
    if (ds && manifest) checkShardRows(splitDir, manifest, ds.numRows);
    if (ds) return ds;
    if (mode === 'disk') throw new Error(`${splitDir}: its shards cannot be read from disk row by row (Arrow file format, compression, or column types); open it in memory`);
  }
  const rows: Int32Array[] = [];
  let seqLen = -1;
  let maxTokenId = -1;
  let minTokenId = Infinity;
  for (const file of files) {
    for await (const batch of readArrowBatches(file)) {
      const field = batch.schema.fields.find((f) => f.name === 'input_ids');
      if (!field) throw new Error(`${file}: column 'input_ids' is missing (columns: ${batch.schema.fields.map((f) => f.name).join(', ')})`);
      for (const r of listColumnRows(batch, 'input_ids', file)) {
        if (seqLen < 0) seqLen = r.length;
        if (r.length !== seqLen) {
          throw new Error(`${file}: row ${rows.length} of 'input_ids' has ${r.length} tokens, expected ${seqLen} like the rows before it (not a packed dataset)`);
        }
        for (let j = 0; j < r.length; j++) {
          if (r[j]! > maxTokenId) maxTokenId = r[j]!;
          if (r[j]! < minTokenId) minTokenId = r[j]!;
        }
        rows.push(r);
      }
    }
  }
  if (manifest) checkShardRows(splitDir, manifest, rows.length);
  if (rows.length === 0) throw new Error(`${splitDir}: the split has no rows`);
  const tokens = new Int32Array(rows.length * seqLen);
  rows.forEach((r, i) => tokens.set(r, i * seqLen));
  return new InMemoryPackedDataset(splitDir, tokens, rows.length, seqLen, maxTokenId, minTokenId);
}

/** Throw, naming the row, position and id, if any token id is negative or >= vocabSize. */
export function checkVocabulary(ds: PackedDataset, vocabSize: number): void {
  if (ds.maxTokenId < vocabSize) {
    if (ds.minTokenId !== undefined && ds.minTokenId >= 0) return;
    // Still catch negative ids (the max alone does not).
    for (let i = 0; i < ds.numRows; i++) {
      const r = ds.row(i);
      for (let j = 0; j < r.length; j++) {
        if (r[j]! < 0) throw new Error(`token id ${r[j]} at row ${i}, position ${j} of ${ds.dir} is negative`);
      }
    }
    return;
  }
  for (let i = 0; i < ds.numRows; i++) {
    const r = ds.row(i);
    for (let j = 0; j < r.length; j++) {
      if (r[j]! >= vocabSize || r[j]! < 0) {
        throw new Error(`token id ${r[j]} at row ${i}, position ${j} of ${ds.dir} is outside the model's vocabulary (vocab_size ${vocabSize})`);
      }
    }
  }
}

export interface BatchLoaderOptions {
  batchSize: number;
  seed: number;
  /** Rows already consumed (from a checkpoint); default 0. */
  position?: number;
  /** Walk rows in order instead of shuffling (evaluation); default true. */
  shuffle?: boolean;
}

export interface LoaderBatch {
  inputIds: Int32Array; // [batchSize * seqLen]
  batchSize: number;
  seqLen: number;
}

/**
 * Endless batches of rows. Row k of epoch e is `perm(seed, e)[k]`; `position` counts rows consumed over
 * all epochs, so `new BatchLoader(ds, { seed, position })` resumes exactly.
 */
export class BatchLoader {
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  /** Rows consumed so far (store it in checkpoints). */
  position: number;
  private permEpoch = -1;
  private perm: Uint32Array | undefined;

  constructor(
    readonly dataset: PackedDataset,
    o: BatchLoaderOptions,
  ) {
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new Error(`BatchLoader: batchSize must be a positive integer, got ${o.batchSize}`);
    if (!Number.isInteger(o.seed)) throw new Error(`BatchLoader: seed must be an integer, got ${o.seed}`);
    const position = o.position ?? 0;
    if (!Number.isInteger(position) || position < 0) throw new Error(`BatchLoader: position must be a non-negative integer, got ${position}`);
    this.batchSize = o.batchSize;
    this.seed = o.seed;
    this.shuffle = o.shuffle ?? true;
    this.position = position;
  }

  /** The epoch the next row comes from. */
  get epoch(): number {
    return Math.floor(this.position / this.dataset.numRows);
  }

  /** Batches per epoch (rounded down). */
  get batchesPerEpoch(): number {
    return Math.floor(this.dataset.numRows / this.batchSize);
  }

  /** Index (into the dataset) of the row at a global position. */
  rowIndexAt(position: number): number {
    const n = this.dataset.numRows;
    const epoch = Math.floor(position / n);
    if (!this.shuffle) return position % n;
    if (epoch !== this.permEpoch) {
      this.perm = permutation(n, this.seed, epoch);
      this.permEpoch = epoch;
    }
    return this.perm![position % n]!;
  }

  next(): LoaderBatch {
    const { seqLen } = this.dataset;
    const inputIds = new Int32Array(this.batchSize * seqLen);
    for (let b = 0; b < this.batchSize; b++) {
      inputIds.set(this.dataset.row(this.rowIndexAt(this.position)), b * seqLen);
      this.position++;
    }
    return { inputIds, batchSize: this.batchSize, seqLen };
  }
}
