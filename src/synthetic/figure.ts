/**
 * The MQAR grid as the paper's figure (accuracy vs model width, one panel per sequence length, one line per mixer,
 * mean and range over seeds) followed by the training curves (test accuracy vs steps, one line per run), built with
 * the viz area's `mqarFigure` / `mqarCurveFigure` and written as one standalone offline HTML page.
 */
import { mqarCurveFigure, mqarFigure, writeFigureHtml, type Figure } from '../viz';
import type { MqarCellResult } from './results';

/** The two figures of a grid's rows: the comparison and the accuracy curves. */
export function mqarFigures(rows: MqarCellResult[], title?: string): Figure[] {
  const first = rows[0];
  const seeds = new Set(rows.map((r) => r.seed)).size;
  const t = title ?? `MQAR (K = ${first?.kv_pairs === first?.seq_len / 4 ? 'L/4' : first?.kv_pairs}, V = ${first?.vocab_size}, ` +
    `${first?.train_examples} train examples, ${seeds} seed${seeds === 1 ? '' : 's'}, ${first?.backend})`;
  const figures = [mqarFigure(rows.map((r) => ({ mixer: r.mixer, seqLen: r.seq_len, dModel: r.d_model, accuracy: r.accuracy, seed: r.seed })), { title: t })];
  // rows read back from an older results.jsonl have no curve
  const withCurves = rows.filter((r) => r.curve?.length);
  if (withCurves.length) {
    figures.push(mqarCurveFigure(
      withCurves.map((r) => ({ mixer: r.mixer, seqLen: r.seq_len, dModel: r.d_model, seed: r.seed, points: r.curve })),
      { title: 'Test accuracy during training (best learning rate of each run)' },
    ));
  }
  return figures;
}

export function writeMqarFigure(rows: MqarCellResult[], file: string, title?: string): string {
  return writeFigureHtml(mqarFigures(rows, title), file, 'MQAR: Dynamic Mask Attention vs attention vs SSD');
}
