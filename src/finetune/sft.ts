/**
 * The SFT loss (spec 1.3, 1.5): token-level cross-entropy on the targets of a batch, where a target is a position
 * t >= 1 with lossMask[t] = 1 (and a real token), predicted from position t - 1.
 *
 *   loss = sum over targets of -log p(x_t | x_<t)  /  numItemsInBatch
 *
 * numItemsInBatch defaults to the batch's own target count (a mean). With gradient accumulation pass the target
 * count of the whole optimizer step (HF Trainer's `num_items_in_batch`): the step's loss is then the token mean over
 * all its micro-batches, not the mean of micro-batch means (they differ when rows have different target counts).
 * Packed rows also pass positionIds / documentIds (document-aware packing, see packing.ts).
 */
import { tf } from '../tf';
import { IGNORE_INDEX } from '../ops';
import type { CausalLMInput } from '../models/causal-lm';
import type { PackedRow } from './packing';

type IntInput = tf.Tensor | number[][];

export interface SftBatch {
  inputIds: IntInput; // int32 [B, T]
  lossMask: IntInput; // [B, T], 1 = target (when t >= 1)
  attentionMask?: IntInput; // [B, T], 1 = real token
  positionIds?: IntInput; // [B, T]
  documentIds?: IntInput; // [B, T] (document-aware packing)
}

export interface SftLossOptions {
  training?: boolean;
  dropoutSeed?: number;
}

/** The model surface sftLoss needs (every registered causal LM has it). */
export interface SftModel {
  forward(input: CausalLMInput): { logits: tf.Tensor; loss?: tf.Scalar };
}

function host(x: IntInput, what: string): { data: Int32Array; shape: [number, number] } {
  if (x instanceof tf.Tensor) {
    if (x.rank !== 2) throw new Error(`sftLoss: ${what} must be [batch, seq], got [${x.shape}]`);
    return { data: Int32Array.from(x.dataSync()), shape: x.shape as [number, number] };
  }
  if (!Array.isArray(x) || !x.length || !x.every((r) => Array.isArray(r) && r.length === x[0]!.length)) {
    throw new Error(`sftLoss: ${what} must be a rectangular number[][] or an int32 tensor`);
  }
  return { data: Int32Array.from(x.flat()), shape: [x.length, x[0]!.length] };
}

/** HF labels from a loss mask: the id where the mask (and attention) is 1, else IGNORE_INDEX. Also the target count. */
export function sftLabels(inputIds: IntInput, lossMask: IntInput, attentionMask?: IntInput): { labels: Int32Array; shape: [number, number]; numTargets: number } {
  const ids = host(inputIds, 'inputIds');
  const m = host(lossMask, 'lossMask');
  const a = attentionMask !== undefined ? host(attentionMask, 'attentionMask') : undefined;
  const [B, T] = ids.shape;
  for (const [name, x] of [['lossMask', m], ['attentionMask', a]] as const) {
    if (x && (x.shape[0] !== B || x.shape[1] !== T)) throw new Error(`sftLoss: ${name} has shape [${x.shape}], inputIds [${B}, ${T}]`);
  }
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  let numTargets = 0;
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
    const i = b * T + t;
    if (m.data[i] && (!a || a.data[i])) {
      labels[i] = ids.data[i]!;
      if (t >= 1) numTargets++;
    }
  }
  return { labels, shape: [B, T], numTargets };
}

/** Scalar SFT loss (see the file header). Inside tf.variableGrads it is differentiable w.r.t. the model. */
export function sftLoss(model: SftModel, batch: SftBatch, numItemsInBatch?: number, opts: SftLossOptions = {}): tf.Scalar {
  const { labels, shape, numTargets } = sftLabels(batch.inputIds, batch.lossMask, batch.attentionMask);
  const rows = (flat: Int32Array): number[][] => Array.from({ length: shape[0] }, (_, b) => Array.from(flat.subarray(b * shape[1], (b + 1) * shape[1])));
  return sftHostLoss(model, {
    inputIds: batch.inputIds, labels: rows(labels), attentionMask: batch.attentionMask, positionIds: batch.positionIds,
    documentIds: batch.documentIds, numTargets, tokens: 0,
  }, numItemsInBatch, opts);
}

/**
 * A micro-batch of packed rows built once on the host: ids, HF labels (the id where the loss mask and the attention
 * mask are 1, else IGNORE_INDEX), masks and positions as number[][], with its target and real-token counts. The model
 * uploads the ids once; labels, masks and document ids stay on the host (no tensor round trips).
 */
export interface SftHostBatch {
  inputIds: IntInput;
  labels: number[][];
  attentionMask?: IntInput;
  positionIds?: IntInput;
  documentIds?: IntInput;
  /** Targets: positions t >= 1 with a label. */
  numTargets: number;
  /** Real (attended) tokens. */
  tokens: number;
}

/** Packed rows -> an SftHostBatch (documentIds only for document-aware packing). */
export function rowsToSftHostBatch(rows: PackedRow[], opts: { documentAware?: boolean } = {}): SftHostBatch {
  if (!rows.length) throw new Error('rowsToSftHostBatch: no rows');
  const T = rows[0]!.inputIds.length;
  let numTargets = 0;
  let tokens = 0;
  const labels = rows.map((r, i) => {
    if (r.inputIds.length !== T) throw new Error(`rowsToSftHostBatch: row ${i} has ${r.inputIds.length} tokens, expected ${T}`);
    const lab = new Array<number>(T).fill(IGNORE_INDEX);
    for (let t = 0; t < T; t++) {
      if (r.attentionMask[t]) tokens++;
      if (r.lossMask[t] && r.attentionMask[t]) {
        lab[t] = r.inputIds[t]!;
        if (t >= 1) numTargets++;
      }
    }
    return lab;
  });
  const col = (f: (r: PackedRow) => Int32Array): number[][] => rows.map((r) => Array.from(f(r)));
  return {
    inputIds: col((r) => r.inputIds), labels, attentionMask: col((r) => r.attentionMask), positionIds: col((r) => r.positionIds),
    documentIds: opts.documentAware ? col((r) => r.documentIds) : undefined, numTargets, tokens,
  };
}

/** The SFT loss of a host batch: summed target NLL / numItemsInBatch (default: the batch's own target count). */
export function sftHostLoss(model: SftModel, batch: SftHostBatch, numItemsInBatch?: number, opts: SftLossOptions = {}): tf.Scalar {
  const divisor = numItemsInBatch ?? batch.numTargets;
  if (!(divisor > 0)) throw new Error('sftLoss: the batch has no target (every loss-mask entry after the first token is 0)');
  return tf.tidy(() => {
    const out = model.forward({
      inputIds: batch.inputIds,
      labels: batch.labels,
      attentionMask: batch.attentionMask,
      positionIds: batch.positionIds,
      documentIds: batch.documentIds,
      numItemsInBatch: divisor,
      training: opts.training ?? false,
      dropoutSeed: opts.dropoutSeed,
      lossOnly: true,
    });
    // a micro-batch with no target still contributes 0 (and a zero gradient) to the step
    return out.loss!;
  });
}

/** Stack packed rows into the tensors of an SFT batch (the caller disposes them). */
export function rowsToSftBatch(rows: PackedRow[], opts: { documentAware?: boolean } = {}): Required<Pick<SftBatch, 'inputIds' | 'lossMask' | 'attentionMask' | 'positionIds'>> & { documentIds?: tf.Tensor } {
  if (!rows.length) throw new Error('rowsToSftBatch: no rows');
  const T = rows[0]!.inputIds.length;
  const stack = (f: (r: PackedRow) => Int32Array): tf.Tensor2D => {
    const flat = new Int32Array(rows.length * T);
    rows.forEach((r, i) => {
      const x = f(r);
      if (x.length !== T) throw new Error(`rowsToSftBatch: row ${i} has ${x.length} tokens, expected ${T}`);
      flat.set(x, i * T);
    });
    return tf.tensor2d(flat, [rows.length, T], 'int32');
  };
  return {
    inputIds: stack((r) => r.inputIds),
    lossMask: stack((r) => r.lossMask),
    attentionMask: stack((r) => r.attentionMask),
    positionIds: stack((r) => r.positionIds),
    documentIds: opts.documentAware ? stack((r) => r.documentIds) : undefined,
  };
}
