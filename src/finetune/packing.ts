/**
 * Examples (ids + loss mask) -> fixed-length rows for SFT (spec 1.4).
 *
 *   'document' (default): best-fit decreasing bins of whole examples (an example longer than the row keeps its
 *              first seqLen tokens). Position ids restart at 0 per document, document ids keep attention inside each
 *              document, and the first token of a document is not a target: the same as running the documents one
 *              by one and pooling the loss (fixtures sft-packed, sft-packed-window). Unused tail slots are padding.
 *   'wrapped': the seed's packing (TRL 0.13 ConstantLengthDataset): concatenate, cut into seqLen blocks, drop the
 *              incomplete tail; plain causal attention across documents, positions 0..T-1.
 *   'padding': one example per row, first seqLen tokens, right-padded (attention mask 0, no target).
 */
import type { ChatExample } from './chat-data';

export type PackingMode = 'document' | 'wrapped' | 'padding';
export const PACKING_MODES: readonly PackingMode[] = ['document', 'wrapped', 'padding'];

/** One row of SFT input, host arrays of length seqLen. */
export interface PackedRow {
  inputIds: Int32Array;
  lossMask: Int32Array;
  /** 1 = real token, 0 = padding. */
  attentionMask: Int32Array;
  /** Positions for RoPE (restart per document in 'document' mode). */
  positionIds: Int32Array;
  /** Document index inside the row ('document' mode; padding gets its own id so it attends to nothing real). */
  documentIds: Int32Array;
  /** Real tokens of each document of the row, in order. */
  seqLengths: number[];
}

export interface PackOptions {
  padId: number;
}

function emptyRow(T: number, padId: number): PackedRow {
  return {
    inputIds: new Int32Array(T).fill(padId),
    lossMask: new Int32Array(T),
    attentionMask: new Int32Array(T),
    positionIds: new Int32Array(T),
    documentIds: new Int32Array(T),
    seqLengths: [],
  };
}

/** Put document `doc` (already cut to fit) at offset `at` of `row`. */
function place(row: PackedRow, doc: ChatExample, at: number, docIndex: number): void {
  const n = doc.inputIds.length;
  for (let i = 0; i < n; i++) {
    row.inputIds[at + i] = doc.inputIds[i]!;
    // the first token of a document is context only (it would be predicted from the previous document)
    row.lossMask[at + i] = i === 0 ? 0 : doc.lossMask[i]!;
    row.attentionMask[at + i] = 1;
    row.positionIds[at + i] = i;
    row.documentIds[at + i] = docIndex;
  }
  row.seqLengths.push(n);
}

/** Pack examples into rows of `seqLen` tokens (see the file header for the modes). */
export function packDocuments(docs: ChatExample[], seqLen: number, mode: PackingMode, opts: PackOptions): PackedRow[] {
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new Error(`packDocuments: seqLen must be an integer >= 2, got ${seqLen}`);
  if (!PACKING_MODES.includes(mode)) throw new Error(`packDocuments: packing must be one of ${PACKING_MODES.join(', ')}, got '${mode}'`);
  docs.forEach((d, i) => {
    if (d.inputIds.length !== d.lossMask.length) throw new Error(`packDocuments: example ${i} has ${d.inputIds.length} ids but ${d.lossMask.length} mask entries`);
  });
  const cut = (d: ChatExample): ChatExample => (d.inputIds.length <= seqLen ? d : { inputIds: d.inputIds.slice(0, seqLen), lossMask: d.lossMask.slice(0, seqLen) });
  const nonEmpty = docs.filter((d) => d.inputIds.length > 0);

  if (mode === 'padding') {
    return nonEmpty.map((d) => {
      const row = emptyRow(seqLen, opts.padId);
      const c = cut(d);
      place(row, c, 0, 0);
      // padded slots: a separate "document" so no real query ever sees them (they are masked anyway)
      for (let t = c.inputIds.length; t < seqLen; t++) row.documentIds[t] = 1;
      return row;
    });
  }

  if (mode === 'wrapped') {
    const ids: number[] = [];
    const mask: number[] = [];
    for (const d of nonEmpty) for (let i = 0; i < d.inputIds.length; i++) { ids.push(d.inputIds[i]!); mask.push(d.lossMask[i]!); }
    const rows: PackedRow[] = [];
    for (let start = 0; start + seqLen <= ids.length; start += seqLen) {
      const row = emptyRow(seqLen, opts.padId);
      for (let t = 0; t < seqLen; t++) {
        row.inputIds[t] = ids[start + t]!;
        row.lossMask[t] = mask[start + t]!;
        row.attentionMask[t] = 1;
        row.positionIds[t] = t;
      }
      row.seqLengths.push(seqLen);
      rows.push(row);
    }
    return rows;
  }

  // 'document': best-fit decreasing (longest first into the fullest row it fits), stable for equal lengths
  const order = nonEmpty.map((d, i) => ({ d: cut(d), i })).sort((a, b) => b.d.inputIds.length - a.d.inputIds.length || a.i - b.i);
  const bins: { used: number; docs: ChatExample[] }[] = [];
  for (const { d } of order) {
    const n = d.inputIds.length;
    let best = -1;
    for (let b = 0; b < bins.length; b++) {
      const free = seqLen - bins[b]!.used;
      if (free >= n && (best < 0 || free < seqLen - bins[best]!.used)) best = b;
    }
    if (best < 0) { bins.push({ used: 0, docs: [] }); best = bins.length - 1; }
    bins[best]!.docs.push(d);
    bins[best]!.used += n;
  }
  return bins.map((bin) => {
    const row = emptyRow(seqLen, opts.padId);
    let at = 0;
    bin.docs.forEach((d, k) => { place(row, d, at, k); at += d.inputIds.length; });
    for (let t = at; t < seqLen; t++) row.documentIds[t] = bin.docs.length;
    return row;
  });
}

/** Targets of rows: positions t >= 1 with lossMask 1 and a real token (what sftLoss counts). */
export function countTargets(rows: Pick<PackedRow, 'lossMask' | 'attentionMask'>[]): number {
  let n = 0;
  for (const r of rows) for (let t = 1; t < r.lossMask.length; t++) if (r.lossMask[t] && r.attentionMask[t]) n++;
  return n;
}
