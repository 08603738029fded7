/**
 * Run metrics: one JSON object per line in `<output_dir>/metrics.jsonl` (training rows carry `loss`, eval rows
 * `eval_loss`), and a `loss.html` plot drawn from them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lossCurveFigure, writeFigureHtml } from '../viz';
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

export function readMetrics(file: string): MetricsRow[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as MetricsRow;
      } catch {
        throw new Error(`${file}:${i + 1}: not a JSON line`);
      }
    });
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

/** Write `loss.html` (standalone, offline plotly page) from the metrics rows; replaced atomically. */
export function writeLossHtml(rows: MetricsRow[], file: string): void {
  const tmp = `${file}.tmp-${process.pid}.html`;
  writeFigureHtml(lossFigure(rows), tmp, 'training loss');
  fs.renameSync(tmp, file);
}
