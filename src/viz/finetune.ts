/**
 * DPO training curves as three small panels (TRL's names): the loss against its starting value ln 2, the reward
 * margin against 0, the reward accuracy on [0, 1] against chance (0.5). One axis per quantity, because they live on
 * different scales: on one axis, margins of 10 flatten an accuracy that moves between 0.5 and 1.
 * Each panel shows the raw per-step values faint and their moving average solid, in the same colour.
 */
import { baseLayout, gridAxes, type Figure, type PlotlyTrace } from './figure';
import { ema } from './training';

/** One logged DPO step (the trainer's metrics rows have these keys). */
export interface DpoStepRow {
  step: number;
  loss: number;
  'rewards/margins': number;
  'rewards/accuracies': number;
}

const PANELS = [
  { key: 'loss', title: 'loss (DPO + NLL term)', colour: '#4c72b0', ref: Math.LN2, refName: 'ln 2: DPO part at step 0' },
  { key: 'rewards/margins', title: 'rewards/margins (chosen − rejected)', colour: '#dd8452', ref: 0, refName: '0: no preference' },
  { key: 'rewards/accuracies', title: 'rewards/accuracies', colour: '#55a868', ref: 0.5, refName: '0.5: chance' },
] as const;

/** Hex colour with an alpha channel, for the faint raw curve. */
function faint(hex: string): string {
  return `${hex}59`; // ~35 % opacity
}

export function dpoCurvesFigure(rows: DpoStepRow[], options: { title?: string; smooth?: number; height?: number } = {}): Figure {
  if (rows.length === 0) throw new Error('dpoCurvesFigure: no rows given');
  const smooth = options.smooth ?? 0.8;
  const grid = gridAxes(3, 3, { titles: PANELS.map((p) => p.title), gap: 0.07, xTitle: 'step' });
  const axes = grid.axes as Record<string, Record<string, unknown>>;
  const steps = rows.map((r) => r.step);
  const data: PlotlyTrace[] = [];
  PANELS.forEach((p, i) => {
    const y = rows.map((r) => {
      const v = r[p.key];
      if (!Number.isFinite(v)) throw new Error(`dpoCurvesFigure: step ${r.step} has ${p.key} = ${v}`);
      return v;
    });
    const ids = grid.ids[i]!;
    const common = { xaxis: ids.x, yaxis: ids.y, legendgroup: p.key, showlegend: false };
    data.push({ type: 'scatter', mode: 'lines', name: `${p.key} (per step)`, x: steps, y, line: { color: faint(p.colour), width: 1 }, ...common });
    data.push({ type: 'scatter', mode: 'lines', name: `${p.key} (moving average)`, x: steps, y: ema(y, smooth), line: { color: p.colour, width: 2.5 }, ...common });
    data.push({ type: 'scatter', mode: 'lines', name: p.refName, x: [steps[0], steps[steps.length - 1]], y: [p.ref, p.ref], line: { color: '#999999', dash: 'dash', width: 1 }, hoverinfo: 'name', ...common });
    const k = i === 0 ? '' : String(i + 1);
    if (p.key === 'rewards/accuracies') Object.assign(axes[`yaxis${k}`]!, { range: [0, 1.02], autorange: false });
  });
  return {
    data,
    layout: { ...baseLayout({ title: options.title ?? 'DPO training', height: options.height ?? 300 }), ...axes, annotations: grid.annotations, showlegend: false },
  };
}
