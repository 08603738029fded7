/**
 * The MQAR grid as the paper's figure (accuracy vs model width, one panel per sequence length, one line per mixer),
 * built with the viz area's `mqarFigure` and written as a standalone offline HTML page.
 */
import { mqarFigure, writeFigureHtml } from '../viz';
import type { MqarCellResult } from './grid';

export function writeMqarFigure(rows: MqarCellResult[], file: string, title?: string): string {
  const fig = mqarFigure(
    rows.map((r) => ({ mixer: r.mixer, seqLen: r.seq_len, dModel: r.d_model, accuracy: r.accuracy })),
    { title: title ?? `MQAR (K = ${rows[0]?.kv_pairs === rows[0]?.seq_len / 4 ? 'L/4' : 'see results'}, ${rows[0]?.train_examples} train examples, ${rows[0]?.backend})` },
  );
  return writeFigureHtml(fig, file, 'MQAR: Dynamic Mask Attention vs attention vs SSD');
}
