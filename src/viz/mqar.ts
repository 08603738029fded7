/**
 * The MQAR comparison as in the paper's figure: accuracy against model width, one panel per sequence length,
 * one line per token mixer (the mean over seeds, error bars from the worst to the best seed); and the training
 * curves behind it: test accuracy against optimizer steps, one line per run, where MQAR's plateau-then-jump shows.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assetsDir } from './diagrams';
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
const SYMBOLS = ['circle', 'square', 'diamond', 'triangle-up'];
const DASHES = ['solid', 'dash', 'dot', 'dashdot'];

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
        // a symbol per mixer: where two mixers reach the same accuracy both markers stay visible
        line: { color: PALETTE[m % PALETTE.length], dash: DASHES[m % DASHES.length] },
        marker: { symbol: SYMBOLS[m % SYMBOLS.length], size: 9 - 1.5 * (m % 3) },
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

/**
 * The paper's MQAR figure as numbers: accuracy read off the Wonderful Matrices repository's `assets/mqar.png`
 * (about +-0.02; docs/mqar.md). Setting: 2 layers, `V = L + 1`, `K = L/4` pairs, random filler. The paper's "Based"
 * is the `linear` mixer here (linear attention with Based's feature map), "QCAttn" is `attention`.
 */
export const MQAR_PAPER_RESULTS: readonly MqarPoint[] = (() => {
  // [L, d, Based, QCAttn, SSD, DMAttn]
  const rows: Array<[number, number, number, number, number, number]> = [
    [256, 32, 0.22, 0.51, 0.0, 0.54], [256, 64, 0.52, 0.68, 0.55, 1.0], [256, 128, 0.82, 0.9, 0.89, 1.0], [256, 256, 0.96, 1.0, 1.0, 1.0],
    [512, 32, 0, 0, 0, 0], [512, 64, 0.25, 0.65, 0.42, 0.79], [512, 128, 0.64, 0.73, 0.72, 1.0], [512, 256, 0.82, 1.0, 1.0, 1.0],
    [1024, 32, 0, 0, 0, 0], [1024, 64, 0.04, 0.11, 0.04, 0.18], [1024, 128, 0.27, 0.61, 0.6, 1.0], [1024, 256, 0.63, 0.99, 0.97, 1.0],
    [2048, 32, 0, 0, 0, 0.01], [2048, 64, 0, 0.09, 0, 0.16], [2048, 128, 0.04, 0.19, 0.12, 1.0], [2048, 256, 0.18, 0.36, 0.32, 1.0],
  ];
  const columns = ['linear', 'attention', 'ssd', 'dmattn'];
  // mixers in the order of the measured grid (attention, dmattn, ssd, linear), so colours match across figures
  return ['attention', 'dmattn', 'ssd', 'linear'].flatMap((mixer) =>
    rows.map(([seqLen, dModel, ...acc]) => ({ mixer, seqLen, dModel, accuracy: acc[columns.indexOf(mixer)] })));
})();

/** One measured run shipped in `assets/mqar-cpu-runs.jsonl` (see `readMqarRuns`). */
export interface MqarShippedRun {
  /** `cpu`: a run of `wm mqar --preset cpu`; `full-window`: DMAttn without top-k (the `full-window` recipe). */
  grid: string;
  mixer: string;
  seq_len: number;
  kv_pairs: number;
  vocab_size: number;
  d_model: number;
  seed: number;
  /** Best test accuracy that counts (DMAttn top-k: at its final window). */
  accuracy: number;
  steps: number;
  seconds?: number;
  /** Why the run ended: `accuracy` (reached 0.99), `time` (budget) or `steps`. */
  stopped: string;
  curve: Array<{ step: number; accuracy: number }>;
}

/** Reads a JSONL file of MQAR runs (default: the measured CPU runs shipped in the package's `assets/`). */
export function readMqarRuns(file: string = join(assetsDir(), 'mqar-cpu-runs.jsonl')): MqarShippedRun[] {
  if (!existsSync(file)) throw new Error(`readMqarRuns: ${file} does not exist`);
  const runs: MqarShippedRun[] = [];
  readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let row: MqarShippedRun;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new Error(`readMqarRuns: ${file} line ${i + 1} is not JSON (${(e as Error).message})`);
    }
    for (const k of ['mixer', 'grid', 'stopped'] as const) if (typeof row[k] !== 'string') throw new Error(`readMqarRuns: ${file} line ${i + 1}: '${k}' must be a string`);
    for (const k of ['seq_len', 'd_model', 'seed', 'accuracy', 'steps'] as const) {
      if (!Number.isFinite(row[k])) throw new Error(`readMqarRuns: ${file} line ${i + 1}: '${k}' must be a number`);
    }
    if (!Array.isArray(row.curve) || row.curve.length === 0) throw new Error(`readMqarRuns: ${file} line ${i + 1}: 'curve' must be a non-empty list`);
    runs.push(row);
  });
  if (runs.length === 0) throw new Error(`readMqarRuns: ${file} holds no runs`);
  return runs;
}

/** Per mixer and width: the seeds' accuracies, their mean, and how many reached `threshold`. */
export interface MqarSummaryCell {
  mixer: string;
  dModel: number;
  accuracies: number[];
  mean: number;
  solved: number;
  paper?: number;
}

/** Groups runs by (mixer, width) in first-seen order; `paper` values are matched by mixer and width. */
export function summarizeMqar(points: MqarPoint[], options: { paper?: MqarPoint[]; threshold?: number } = {}): MqarSummaryCell[] {
  const threshold = options.threshold ?? 0.99;
  const keys = [...new Set(points.map((p) => `${p.mixer}|${p.dModel}`))];
  return keys.map((k) => {
    const [mixer, d] = k.split('|');
    const dModel = Number(d);
    const accuracies = points.filter((p) => p.mixer === mixer && p.dModel === dModel).map((p) => p.accuracy);
    const paper = options.paper?.find((p) => p.mixer === mixer && p.dModel === dModel)?.accuracy;
    return {
      mixer, dModel, accuracies, mean: accuracies.reduce((s, a) => s + a, 0) / accuracies.length,
      solved: accuracies.filter((a) => a >= threshold).length, ...(paper === undefined ? {} : { paper }),
    };
  });
}

/** The summary as a plain-text table: one row per mixer, one column per width (`mean [worst-best] solved/seeds`). */
export function formatMqarSummary(cells: MqarSummaryCell[], options: { paperLabel?: string } = {}): string {
  const mixers = [...new Set(cells.map((c) => c.mixer))];
  const widths = [...new Set(cells.map((c) => c.dModel))].sort((a, b) => a - b);
  const withPaper = cells.some((c) => c.paper !== undefined);
  const cellText = (c: MqarSummaryCell | undefined) => {
    if (!c) return '-'.padEnd(34);
    const s = `${c.mean.toFixed(3)} [${Math.min(...c.accuracies).toFixed(3)}-${Math.max(...c.accuracies).toFixed(3)}] ${c.solved}/${c.accuracies.length}`;
    return (withPaper ? `${s} | ${c.paper === undefined ? '-' : c.paper.toFixed(2)}` : s).padEnd(34);
  };
  const head = 'mixer'.padEnd(10) + widths.map((d) => `d ${d}: here${withPaper ? ` | ${options.paperLabel ?? 'paper'}` : ''}`.padEnd(34)).join('');
  return [head, ...mixers.map((m) => m.padEnd(10) + widths.map((d) => cellText(cells.find((c) => c.mixer === m && c.dModel === d))).join(''))].join('\n').replace(/ +$/gm, '');
}

/**
 * Measured runs against the paper on one axis: per (mixer, width) a filled marker at the mean over seeds, each seed
 * a small dot beside it, the paper's value a hollow marker of the same colour. x = mixer, the widths side by side
 * within a mixer (categories, not a line: two widths do not make a trend).
 */
export function mqarSeedsFigure(
  points: MqarPoint[],
  options: { paper?: MqarPoint[]; paperLabel?: string; title?: string; height?: number } = {},
): Figure {
  if (points.length === 0) throw new Error('mqarSeedsFigure: no results given');
  for (const p of points) if (!Number.isFinite(p.accuracy)) throw new Error(`mqarSeedsFigure: accuracy of ${p.mixer} at dModel ${p.dModel} is not a number`);
  const cells = summarizeMqar(points, { paper: options.paper });
  const mixers = [...new Set(cells.map((c) => c.mixer))];
  const widths = [...new Set(cells.map((c) => c.dModel))].sort((a, b) => a - b);
  const slot = 1 / (widths.length + 1); // x position of (mixer m, width w): m + (w - (n - 1) / 2) * slot
  const xOf = (mixer: string, d: number) => mixers.indexOf(mixer) + (widths.indexOf(d) - (widths.length - 1) / 2) * slot;
  const data: PlotlyTrace[] = [];
  mixers.forEach((mixer, m) => {
    const color = PALETTE[m % PALETTE.length];
    const mine = cells.filter((c) => c.mixer === mixer);
    data.push({
      type: 'scatter', mode: 'markers', name: `${mixer} (mean)`, legendgroup: mixer,
      x: mine.map((c) => xOf(mixer, c.dModel)), y: mine.map((c) => c.mean),
      marker: { color, size: 14, symbol: 'circle', line: { color: 'white', width: 1 } },
      text: mine.map((c) => `${mixer}, d ${c.dModel}: mean ${c.mean.toFixed(3)} over ${c.accuracies.length} seeds`),
      hoverinfo: 'text',
    });
    // the seeds: small dots, spread sideways a little so equal accuracies stay visible
    const sx: number[] = [];
    const sy: number[] = [];
    for (const c of mine) c.accuracies.forEach((a, i) => { sx.push(xOf(mixer, c.dModel) + slot * 0.25 * (i - (c.accuracies.length - 1) / 2) / Math.max(1, c.accuracies.length - 1)); sy.push(a); });
    data.push({
      type: 'scatter', mode: 'markers', name: `${mixer} (one seed)`, legendgroup: mixer, showlegend: false,
      x: sx, y: sy, marker: { color, size: 6, opacity: 0.7, symbol: 'circle' }, hoverinfo: 'y',
    });
    const withPaper = mine.filter((c) => c.paper !== undefined);
    if (withPaper.length) {
      data.push({
        type: 'scatter', mode: 'markers', name: `${mixer} (${options.paperLabel ?? 'paper'})`, legendgroup: mixer,
        x: withPaper.map((c) => xOf(mixer, c.dModel)), y: withPaper.map((c) => c.paper!),
        marker: { color, size: 16, symbol: 'diamond-open', line: { width: 2, color } },
        text: withPaper.map((c) => `${options.paperLabel ?? 'paper'}: ${mixer}, d ${c.dModel}: ${c.paper!.toFixed(2)}`),
        hoverinfo: 'text',
      });
    }
  });
  const tickvals = mixers.flatMap((m) => widths.map((d) => xOf(m, d)));
  const ticktext = mixers.flatMap((m) => widths.map((d) => `${m}<br>d ${d}`));
  const layout = {
    ...baseLayout({ title: options.title ?? 'MQAR accuracy per mixer and width', height: options.height ?? 420 }),
    xaxis: { tickvals, ticktext, range: [-0.6, mixers.length - 0.4], zeroline: false, showgrid: false },
    yaxis: { title: title('test accuracy'), range: [-0.03, 1.05], autorange: false },
    legend: { orientation: 'h', y: -0.25 },
  };
  return { data, layout };
}
