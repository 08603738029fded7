/**
 * The MQAR comparison as in the paper's figure: accuracy against model width, one panel per sequence length,
 * one line per token mixer.
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
      const pts = points.filter((p) => p.seqLen === seqLen && p.mixer === mixer).sort((a, b) => a.dModel - b.dModel);
      if (pts.length === 0) return;
      data.push({
        type: 'scatter',
        mode: 'lines+markers',
        name: mixer,
        legendgroup: mixer,
        showlegend: panel === 0,
        line: { color: PALETTE[m % PALETTE.length] },
        x: pts.map((p) => p.dModel),
        y: pts.map((p) => p.accuracy),
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
