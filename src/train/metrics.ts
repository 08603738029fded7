/**
 * Run metrics: one JSON object per line in `<output_dir>/metrics.jsonl` (training rows carry `loss`, eval rows
 * `eval_loss`), and a `loss.html` plot drawn from them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

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

interface Figure {
  data: unknown[];
  layout: Record<string, unknown>;
}

/** A plotly figure of training and eval loss against step (used when src/viz does not provide one). */
export function fallbackLossFigure(rows: MetricsRow[]): Figure {
  const train = rows.filter((r): r is TrainRow => 'loss' in r);
  const evals = rows.filter((r): r is EvalRow => 'eval_loss' in r);
  return {
    data: [
      { type: 'scatter', mode: 'lines', name: 'train loss', x: train.map((r) => r.step), y: train.map((r) => r.loss) },
      { type: 'scatter', mode: 'lines+markers', name: 'eval loss', x: evals.map((r) => r.step), y: evals.map((r) => r.eval_loss) },
    ],
    layout: { title: { text: 'Loss' }, xaxis: { title: { text: 'step' } }, yaxis: { title: { text: 'cross-entropy (nats/token)' } } },
  };
}

function fallbackWriteHtml(fig: Figure, file: string): void {
  // plotly.js-dist-min is a dependency; inline it so the page works offline.
  const plotly = fs.readFileSync(require.resolve('plotly.js-dist-min'), 'utf8');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>loss</title><script>${plotly}</script></head>
<body><div id="plot" style="width:100%;height:90vh"></div>
<script>Plotly.newPlot('plot', ${JSON.stringify(fig.data)}, ${JSON.stringify(fig.layout)});</script></body></html>\n`;
  fs.writeFileSync(file, html);
}

/** Write `loss.html` from the metrics rows, with src/viz's figure builders when they exist. */
export async function writeLossHtml(rows: MetricsRow[], file: string): Promise<void> {
  let viz: Record<string, unknown> = {};
  try {
    viz = (await import('../viz')) as Record<string, unknown>;
  } catch {
    viz = {};
  }
  const build = viz.lossCurveFigure as ((r: MetricsRow[]) => Figure) | undefined;
  const write = viz.writeFigureHtml as ((f: Figure, file: string) => void | Promise<void>) | undefined;
  const fig = build ? build(rows) : fallbackLossFigure(rows);
  const tmp = `${file}.tmp-${process.pid}`;
  if (write) await write(fig, tmp);
  else fallbackWriteHtml(fig, tmp);
  fs.renameSync(tmp, file);
}
