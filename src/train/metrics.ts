/**
 * Run metrics: one JSON object per line in `<output_dir>/metrics.jsonl` (training rows carry `loss`, eval rows
 * `eval_loss`), and a `loss.html` plot drawn from them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic';
import { figureHtml, lineFigure, lossCurveFigure } from '../viz';
import type { Figure } from '../viz';

export interface TrainRow {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens: number;
  tokens_per_s: number;
  elapsed_s: number;
}

export interface EvalRow {
  step: number;
  eval_loss: number;
  eval_perplexity: number;
}

export type MetricsRow = TrainRow | EvalRow;

export class MetricsLog {
  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  }

  append(row: MetricsRow): void {
    fs.appendFileSync(this.file, JSON.stringify(row) + '\n');
  }

  rows(): MetricsRow[] {
    return readMetrics(this.file);
  }

  /** Drop rows after `step` (a resumed run rewrites what followed its checkpoint, so the file reads as one run). */
  truncateAfter(step: number): void {
    const keep = this.rows().filter((r) => r.step <= step);
    fs.writeFileSync(this.file, keep.map((r) => JSON.stringify(r) + '\n').join(''));
  }
}

/**
 * The rows of a metrics file. A torn last line (the process was killed while appending it) is dropped, since the
 * row it held is rewritten by the resumed run; a broken line before the last is an error naming it.
 */
export function readMetrics(file: string): MetricsRow[] {
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const rows: MetricsRow[] = [];
  let last = lines.length - 1;
  while (last >= 0 && lines[last].trim() === '') last--;
  for (let i = 0; i <= last; i++) {
    const l = lines[i];
    if (l.trim() === '') continue;
    try {
      rows.push(JSON.parse(l) as MetricsRow);
    } catch {
      if (i === last) break; // torn final append
      throw new Error(`${file}:${i + 1}: not a JSON line`);
    }
  }
  return rows;
}

/** The loss curves of a run: training loss and (when present) eval loss against step. */
export function lossFigure(rows: MetricsRow[]): Figure {
  const train = rows.filter((r): r is TrainRow => 'loss' in r);
  const evals = rows.filter((r): r is EvalRow => 'eval_loss' in r);
  const series = [{ name: 'train loss', x: train.map((r) => r.step), y: train.map((r) => r.loss) }];
  if (evals.length) series.push({ name: 'eval loss', x: evals.map((r) => r.step), y: evals.map((r) => r.eval_loss) });
  // DPO runs (src/finetune) log TRL's reward metrics too: show them on the same axes
  const extra = (r: MetricsRow): Record<string, number> => r as unknown as Record<string, number>;
  for (const key of ['rewards/margins', 'rewards/accuracies', 'eval_rewards/margins', 'eval_rewards/accuracies']) {
    const has = rows.filter((r) => typeof extra(r)[key] === 'number');
    if (has.length) series.push({ name: key, x: has.map((r) => r.step), y: has.map((r) => extra(r)[key]!) });
  }
  return lossCurveFigure(series, { title: rows.some((r) => 'rewards/margins' in r) ? 'DPO loss and rewards' : 'loss (nats/token)' });
}

/** The panels of `loss.html`: loss (train + eval), learning rate, and throughput, against step. */
export function trainingFigures(rows: MetricsRow[]): Figure[] {
  const train = rows.filter((r): r is TrainRow => 'loss' in r);
  const steps = train.map((r) => r.step);
  return [
    lossFigure(rows),
    lineFigure([{ name: 'learning rate', x: steps, y: train.map((r) => r.lr) }], { title: 'learning rate', xTitle: 'step', yTitle: 'lr', height: 260 }),
    lineFigure([{ name: 'tokens/s', x: steps, y: train.map((r) => r.tokens_per_s) }], { title: 'throughput (tokens/s)', xTitle: 'step', yTitle: 'tokens/s', height: 260 }),
  ];
}

/**
 * plotly.js next to the page, once per folder (`plotly-<version>.min.js`, ~4.6 MB) instead of inlined in every
 * page; rewritten only when missing or of another size. Returns its file name.
 */
function ensurePlotlyNextTo(dir: string): string {
  const src = require.resolve('plotly.js-dist-min');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version = (require('plotly.js-dist-min/package.json') as { version: string }).version;
  const name = `plotly-${version}.min.js`;
  const dest = path.join(dir, name);
  if (!fs.existsSync(dest) || fs.statSync(dest).size !== fs.statSync(src).size) {
    writeFileAtomic(dest, fs.readFileSync(src));
  }
  return name;
}

/**
 * Write `loss.html` from the metrics rows (loss, learning rate and tokens/s panels; offline: plotly.js is a file
 * next to it, shared by the folder); replaced atomically.
 */
export function writeLossHtml(rows: MetricsRow[], file: string): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const lib = ensurePlotlyNextTo(dir);
  const html = `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>training</title>\n<script type="text/javascript" src="${lib}"></script></head>\n<body>\n` +
    `${trainingFigures(rows).map((f) => figureHtml(f)).join('\n')}\n</body></html>\n`;
  writeFileAtomic(file, html);
}
