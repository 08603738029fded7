/**
 * The MQAR comparison as in the paper's figure: accuracy against model width, one panel per sequence length,
 * one line per token mixer (the mean over seeds, error bars from the worst to the best seed); and the training
 * curves behind it: test accuracy against optimizer steps, one line per run, where MQAR's plateau-then-jump shows.
 */
import { baseLayout, gridAxes, title, type Figure, type PlotlyTrace } from './figure';

export interface MqarPoint {
  /** Token mixer name (e.g. `attention`, `dmattn`, `ssd`). */
  mixer: string;
  seqLen: number;
  /** Model width (hidden size). */
  dModel: number;
  /** Test accuracy in [0, 1]. */
  accuracy: number;
  /** Seed of the run; several points of one (mixer, seqLen, dModel) are averaged, their range drawn as error bars. */
  seed?: number;
}

const PALETTE = ['#4c72b0', '#dd8452', '#55a868', '#c44e52', '#8172b3', '#937860', '#da8bc3', '#8c8c8c'];

export function mqarFigure(points: MqarPoint[], options: { title?: string } = {}): Figure {
  if (points.length === 0) throw new Error('mqarFigure: no results given');
  for (const p of points) {
    if (!Number.isFinite(p.accuracy)) throw new Error(`mqarFigure: accuracy of ${p.mixer} at seqLen ${p.seqLen}, dModel ${p.dModel} is not a number`);
  }
  const seqLens = [...new Set(points.map((p) => p.seqLen))].sort((a, b) => a - b);
  const mixers = [...new Set(points.map((p) => p.mixer))];
  const dModels = [...new Set(points.map((p) => p.dModel))].sort((a, b) => a - b);
  const grid = gridAxes(seqLens.length, Math.min(seqLens.length, 4), {
    titles: seqLens.map((s) => `sequence length ${s}`),
    xTitle: 'model dimension',
    yTitle: 'accuracy',
    gap: 0.05,
  });
  const axes = grid.axes as Record<string, Record<string, unknown>>;
  for (const [k, ax] of Object.entries(axes)) {
    if (k.startsWith('xaxis')) Object.assign(ax, { type: 'log', tickvals: dModels, ticktext: dModels.map(String) });
    else Object.assign(ax, { range: [0, 1.05], autorange: false }); // accuracies on one fixed scale across panels
  }
  const data: PlotlyTrace[] = [];
  seqLens.forEach((seqLen, panel) => {
    mixers.forEach((mixer, m) => {
      const pts = points.filter((p) => p.seqLen === seqLen && p.mixer === mixer);
      if (pts.length === 0) return;
      const widths = [...new Set(pts.map((p) => p.dModel))].sort((a, b) => a - b);
      const accs = widths.map((d) => pts.filter((p) => p.dModel === d).map((p) => p.accuracy));
      const mean = accs.map((a) => a.reduce((s, x) => s + x, 0) / a.length);
      const seeded = accs.some((a) => a.length > 1);
      data.push({
        type: 'scatter',
        mode: 'lines+markers',
        name: mixer,
        legendgroup: mixer,
        showlegend: panel === 0,
        line: { color: PALETTE[m % PALETTE.length] },
        x: widths,
        y: mean,
        // the seeds' spread: from the worst seed to the best one
        ...(seeded
          ? {
              error_y: {
                type: 'data', symmetric: false,
                array: accs.map((a, i) => Math.max(...a) - mean[i]),
                arrayminus: accs.map((a, i) => mean[i] - Math.min(...a)),
              },
              text: accs.map((a) => `${a.length} seeds: ${a.map((x) => x.toFixed(3)).join(', ')}`),
            }
          : {}),
        xaxis: grid.ids[panel].x,
        yaxis: grid.ids[panel].y,
      });
    });
  });
  const rows = Math.ceil(seqLens.length / 4);
  const layout = {
    ...baseLayout({ title: options.title ?? 'MQAR accuracy by token mixer', height: 300 * rows + 80 }),
    ...axes,
    annotations: grid.annotations,
    legend: { orientation: 'h', y: -0.2, title: title('mixer') },
  };
  return { data, layout };
}

/** One training run's accuracy curve. */
export interface MqarCurve {
  mixer: string;
  seqLen: number;
  dModel: number;
  seed?: number;
  /** Test accuracy after `step` optimizer steps, in step order. */
  points: Array<{ step: number; accuracy: number }>;
}

/**
 * Accuracy vs optimizer steps, one panel per (sequence length, width), one line per run coloured by mixer (seeds of
 * one mixer share its colour). Long flat stretches followed by a steep climb are the plateau-then-jump.
 */
export function mqarCurveFigure(curves: MqarCurve[], options: { title?: string } = {}): Figure {
  if (curves.length === 0) throw new Error('mqarCurveFigure: no curves given');
  for (const c of curves) {
    if (c.points.length === 0) throw new Error(`mqarCurveFigure: the curve of ${c.mixer} at seqLen ${c.seqLen}, dModel ${c.dModel} has no points`);
    for (const p of c.points) {
      if (!Number.isFinite(p.accuracy) || !Number.isFinite(p.step)) {
        throw new Error(`mqarCurveFigure: ${c.mixer} at seqLen ${c.seqLen}, dModel ${c.dModel}: point ${JSON.stringify(p)} is not a number`);
      }
    }
  }
  const panels = [...new Set(curves.map((c) => `${c.seqLen}|${c.dModel}`))]
    .map((k) => k.split('|').map(Number) as [number, number])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const mixers = [...new Set(curves.map((c) => c.mixer))];
  const grid = gridAxes(panels.length, Math.min(panels.length, 4), {
    titles: panels.map(([L, d]) => `L ${L}, d ${d}`),
    xTitle: 'optimizer steps',
    yTitle: 'test accuracy',
    gap: 0.05,
  });
  const axes = grid.axes as Record<string, Record<string, unknown>>;
  for (const [k, ax] of Object.entries(axes)) if (k.startsWith('yaxis')) Object.assign(ax, { range: [0, 1.05], autorange: false });
  const data: PlotlyTrace[] = [];
  const shown = new Set<string>();
  panels.forEach(([L, d], panel) => {
    for (const c of curves.filter((x) => x.seqLen === L && x.dModel === d)) {
      const m = mixers.indexOf(c.mixer);
      data.push({
        type: 'scatter',
        mode: 'lines',
        name: c.mixer,
        legendgroup: c.mixer,
        showlegend: !shown.has(c.mixer),
        hovertext: c.seed === undefined ? c.mixer : `${c.mixer}, seed ${c.seed}`,
        line: { color: PALETTE[m % PALETTE.length], width: 1.5 },
        x: c.points.map((p) => p.step),
        y: c.points.map((p) => p.accuracy),
        xaxis: grid.ids[panel].x,
        yaxis: grid.ids[panel].y,
      });
      shown.add(c.mixer);
    }
  });
  const rows = Math.ceil(panels.length / 4);
  const layout = {
    ...baseLayout({ title: options.title ?? 'MQAR test accuracy during training', height: 300 * rows + 80 }),
    ...axes,
    annotations: grid.annotations,
    legend: { orientation: 'h', y: -0.2, title: title('mixer') },
  };
  return { data, layout };
}
