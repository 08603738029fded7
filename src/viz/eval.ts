/**
 * Benchmark results of several models side by side (e.g. base vs SFT vs DPO): one group of bars per
 * (task, metric), one colour per model, error bars = standard error. Scores in [0, 1] share one panel; perplexities
 * and bits per byte (lower is better, other scales) get a second, log-scale panel when present.
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

export function evalComparisonFigure(results: EvalPoint[], options: { title?: string; height?: number } = {}): Figure {
  if (results.length === 0) throw new Error('evalComparisonFigure: no results given');
  for (const r of results) {
    if (!Number.isFinite(r.value)) throw new Error(`evalComparisonFigure: ${r.model} ${r.task} ${r.metric} is not a number (${r.value})`);
  }
  const models = [...new Set(results.map((r) => r.model))];
  const isPpl = (r: EvalPoint) => LOWER_BETTER.has(r.metric);
  const panels = [results.filter((r) => !isPpl(r)), results.filter(isPpl)].filter((p) => p.length > 0);
  const grid = gridAxes(panels.length, panels.length, {
    titles: panels.map((p) => (isPpl(p[0]) ? 'perplexity, bits per byte (lower is better)' : 'score (higher is better)')),
    gap: 0.08,
  });
  const axes = grid.axes as Record<string, Record<string, unknown>>;
  const data: PlotlyTrace[] = [];
  panels.forEach((rows, panel) => {
    const k = panel === 0 ? '' : String(panel + 1);
    const ppl = isPpl(rows[0]);
    Object.assign(axes[`yaxis${k}`], ppl ? { type: 'log' } : { range: [0, Math.min(1.05, Math.max(...rows.map((r) => r.value + (r.stderr ?? 0))) * 1.15 + 0.02)], autorange: false });
    Object.assign(axes[`xaxis${k}`], { type: 'category' });
    const keys = [...new Set(rows.map((r) => `${r.task} ${r.metric}`))];
    models.forEach((model, m) => {
      const mine = keys.map((key) => rows.find((r) => `${r.task} ${r.metric}` === key && r.model === model));
      if (mine.every((r) => r === undefined)) return;
      data.push({
        type: 'bar',
        name: model,
        legendgroup: model,
        showlegend: panel === 0 || !panels[0].some((r) => r.model === model),
        marker: { color: PALETTE[m % PALETTE.length] },
        x: keys,
        y: mine.map((r) => (r ? r.value : null)),
        error_y: { type: 'data', array: mine.map((r) => (r && r.stderr !== null ? r.stderr : 0)), visible: !ppl },
        hovertemplate: `${model}<br>%{x}: %{y:.4f}<extra></extra>`,
        xaxis: grid.ids[panel].x,
        yaxis: grid.ids[panel].y,
      });
    });
  });
  const layout = {
    ...baseLayout({ title: options.title ?? 'evaluation', height: options.height ?? 420 }),
    ...axes,
    annotations: grid.annotations,
    barmode: 'group',
    legend: { orientation: 'h', y: -0.25, title: title('model') },
  };
  return { data, layout };
}
