/**
 * Benchmark results of several models side by side (e.g. base vs SFT vs DPO): one group of bars per
 * (task, metric), one colour per model, error bars = standard error. Each scale gets its own panel: scores in
 * [0, 1]; perplexity (lower is better, log axis: held-out sets differ by orders of magnitude); bits per byte (lower
 * is better, linear). `word_perplexity` (a third scale, rarely needed) is left out unless asked for. The legend sits
 * to the right of the panels, clear of the tick labels.
 */
import { baseLayout, gridAxes, title, type Figure, type PlotlyTrace } from './figure';

/** What the figure reads of an evaluation result row (src/eval's EvalResult has these fields). */
export interface EvalPoint {
  task: string;
  metric: string;
  value: number;
  stderr: number | null;
  model: string;
}

const PALETTE = ['#4c72b0', '#dd8452', '#55a868', '#c44e52', '#8172b3', '#937860', '#da8bc3', '#8c8c8c'];
/** Lower-is-better metrics on their own scale: perplexities and bits per byte. */
const LOWER_BETTER = new Set(['ppl', 'word_perplexity', 'bits_per_byte']);

/** The panels, in order: which metrics each holds, its title, and its y axis. */
const PANELS: { metrics: (m: string) => boolean; title: string; axis: Record<string, unknown> }[] = [
  { metrics: (m) => !LOWER_BETTER.has(m), title: 'score (higher is better)', axis: {} },
  { metrics: (m) => m === 'ppl', title: 'perplexity (log axis, lower is better)', axis: { type: 'log' } },
  { metrics: (m) => m === 'bits_per_byte', title: 'bits per byte (lower is better)', axis: { rangemode: 'tozero' } },
  { metrics: (m) => m === 'word_perplexity', title: 'word perplexity (log axis)', axis: { type: 'log' } },
];

/** 736, 10936 -> "1k"-style labels: 1000 -> 1k, 20000 -> 20k, 3e6 -> 3M. */
function shortNumber(v: number): string {
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(v);
}

/**
 * Tick marks for a log axis: 1, 2 and 5 times each power of ten the values span (only the powers of ten when they span
 * more than three decades, a finer 1, 1.5, 2, 3, 5, 7 within a single decade), labelled 1k, 2k, 5k, 10k. Plotly's own log ticks label every minor step (2, 3, ... 9) in
 * small print between the powers of ten, which reads as clutter on a short panel.
 */
function logTicks(values: number[]): { tickvals: number[]; ticktext: string[] } {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return { tickvals: [], ticktext: [] };
  const lo = Math.floor(Math.log10(Math.min(...positive)));
  const hi = Math.ceil(Math.log10(Math.max(...positive)));
  const steps = hi - lo > 3 ? [1] : hi - lo > 1 ? [1, 2, 5] : [1, 1.5, 2, 3, 5, 7];
  const tickvals: number[] = [];
  for (let e = lo; e <= hi; e++) for (const s of steps) tickvals.push(Number((s * 10 ** e).toPrecision(2)));
  return { tickvals, ticktext: tickvals.map(shortNumber) };
}

export function evalComparisonFigure(results: EvalPoint[], options: { title?: string; height?: number; wordPerplexity?: boolean } = {}): Figure {
  if (results.length === 0) throw new Error('evalComparisonFigure: no results given');
  for (const r of results) {
    if (!Number.isFinite(r.value)) throw new Error(`evalComparisonFigure: ${r.model} ${r.task} ${r.metric} is not a number (${r.value})`);
  }
  const shown = options.wordPerplexity ? results : results.filter((r) => r.metric !== 'word_perplexity');
  if (shown.length === 0) throw new Error('evalComparisonFigure: only word_perplexity rows given (pass wordPerplexity: true to show them)');
  const models = [...new Set(shown.map((r) => r.model))];
  const panels = PANELS.map((p) => ({ ...p, rows: shown.filter((r) => p.metrics(r.metric)) })).filter((p) => p.rows.length > 0);
  const grid = gridAxes(panels.length, panels.length, { titles: panels.map((p) => p.title), gap: 0.07 });
  const axes = grid.axes as Record<string, Record<string, unknown>>;
  const data: PlotlyTrace[] = [];
  const inLegend = new Set<string>();
  panels.forEach(({ rows, axis }, panel) => {
    const k = panel === 0 ? '' : String(panel + 1);
    const scores = !LOWER_BETTER.has(rows[0].metric);
    const yaxis = scores ? { range: [0, Math.min(1.05, Math.max(...rows.map((r) => r.value + (r.stderr ?? 0))) * 1.15 + 0.02)], autorange: false } : axis;
    Object.assign(axes[`yaxis${k}`], yaxis, !scores && axis.type === 'log' ? logTicks(rows.map((r) => r.value)) : {});
    Object.assign(axes[`xaxis${k}`], { type: 'category' });
    // one panel per metric scale: the category is the task, plus the metric where a panel holds several
    const several = new Set(rows.map((r) => r.metric)).size > 1;
    const label = (r: EvalPoint) => (several ? `${r.task} ${r.metric}` : r.task);
    const keys = [...new Set(rows.map(label))];
    models.forEach((model, m) => {
      const mine = keys.map((key) => rows.find((r) => label(r) === key && r.model === model));
      if (mine.every((r) => r === undefined)) return;
      data.push({
        type: 'bar',
        name: model,
        legendgroup: model,
        showlegend: !inLegend.has(model),
        marker: { color: PALETTE[m % PALETTE.length] },
        x: keys,
        y: mine.map((r) => (r ? r.value : null)),
        error_y: { type: 'data', array: mine.map((r) => (r && r.stderr !== null ? r.stderr : 0)), visible: scores },
        hovertemplate: `${model}<br>%{x}: %{y:.4f}<extra></extra>`,
        xaxis: grid.ids[panel].x,
        yaxis: grid.ids[panel].y,
      });
      inLegend.add(model);
    });
  });
  const layout = {
    ...baseLayout({ title: options.title ?? 'evaluation', height: options.height ?? 420 }),
    ...axes,
    annotations: grid.annotations,
    barmode: 'group',
    legend: { orientation: 'v', x: 1.02, xanchor: 'left', y: 1, yanchor: 'top', title: title('model') },
  };
  return { data, layout };
}
