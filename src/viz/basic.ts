/**
 * General figure builders: heatmap, grid of heatmaps, bar chart, histogram, line chart.
 * Every builder returns a plain `Figure`; nothing here touches tensors (call `await t.array()` first).
 */
import { baseLayout, checkMatrix, everyLabel, finiteOrNull, gridAxes, title, type Figure, type Matrix } from './figure';

export interface HeatmapOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Tick labels for columns / rows (e.g. tokens). */
  x?: (string | number)[];
  y?: (string | number)[];
  /** A plotly colorscale name ('Viridis') or a list of [position, colour] stops. */
  colorscale?: string | [number, string][];
  zmin?: number;
  zmax?: number;
  height?: number;
  /** Put row 0 at the top, like a matrix (default true). */
  matrixOrder?: boolean;
  colorbarTitle?: string;
}

function heatmapTrace(z: Matrix, o: HeatmapOptions, axes?: { x: string; y: string }, showscale = true) {
  return {
    type: 'heatmap',
    // -Infinity (masked) cells become gaps instead of breaking the colour scale.
    z: finiteOrNull(z),
    x: o.x,
    y: o.y,
    colorscale: o.colorscale ?? 'Viridis',
    zmin: o.zmin,
    zmax: o.zmax,
    showscale,
    colorbar: o.colorbarTitle ? { title: title(o.colorbarTitle) } : undefined,
    hoverongaps: false,
    ...(axes ? { xaxis: axes.x, yaxis: axes.y } : {}),
  };
}

/** One heatmap of a 2-D array (rows on the y axis). */
export function heatmapFigure(z: Matrix, options: HeatmapOptions = {}): Figure {
  checkMatrix(z, 'heatmapFigure z');
  const layout = baseLayout({ title: options.title, height: options.height });
  layout.xaxis = { title: title(options.xTitle), automargin: true, ...everyLabel(options.x) };
  layout.yaxis = { title: title(options.yTitle), automargin: true, autorange: options.matrixOrder === false ? true : 'reversed', ...everyLabel(options.y) };
  return { data: [heatmapTrace(z, options)], layout };
}

export interface HeatmapGridOptions extends HeatmapOptions {
  /** Panel titles, one per matrix. */
  titles?: string[];
  /** Panels per row (default: all in one row, at most 4). */
  cols?: number;
  /** Height of one row of panels in px (default 260). */
  rowHeight?: number;
}

/**
 * Several heatmaps side by side sharing one colour scale (attention maps per head, masks per layer, ...).
 * When zmin/zmax are not given they are taken over all panels, so colours compare across panels.
 */
export function heatmapGridFigure(mats: Matrix[], options: HeatmapGridOptions = {}): Figure {
  if (mats.length === 0) throw new Error('heatmapGridFigure: no matrices given');
  mats.forEach((m, i) => checkMatrix(m, `heatmapGridFigure matrix ${i}`));
  const cols = options.cols ?? Math.min(mats.length, 4);
  const rows = Math.ceil(mats.length / cols);
  let { zmin, zmax } = options;
  if (zmin === undefined || zmax === undefined) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const m of mats) for (const row of m) for (const v of row) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    zmin ??= Number.isFinite(lo) ? lo : 0;
    zmax ??= Number.isFinite(hi) ? hi : 1;
  }
  const grid = gridAxes(mats.length, cols, {
    titles: options.titles,
    xTitle: options.xTitle,
    yTitle: options.yTitle,
    reverseY: options.matrixOrder !== false,
  });
  for (const [name, axis] of Object.entries(grid.axes)) Object.assign(axis as object, everyLabel(name.startsWith('x') ? options.x : options.y));
  const layout = {
    ...baseLayout({ title: options.title, height: (options.rowHeight ?? 260) * rows + (options.title ? 60 : 30) }),
    ...grid.axes,
    annotations: grid.annotations,
  };
  const data = mats.map((m, i) => heatmapTrace(m, { ...options, zmin, zmax }, grid.ids[i], i === 0));
  return { data, layout };
}

export interface BarOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  x?: (string | number)[];
  color?: string;
  height?: number;
}

/** A bar chart of `values` (x defaults to 0..n-1). */
export function barFigure(values: ArrayLike<number>, options: BarOptions = {}): Figure {
  const y = Array.from(values);
  const layout = baseLayout({ title: options.title, height: options.height });
  layout.xaxis = { title: title(options.xTitle) };
  layout.yaxis = { title: title(options.yTitle) };
  const trace = { type: 'bar', x: options.x ?? y.map((_, i) => i), y, marker: { color: options.color ?? '#4c72b0' } };
  return { data: [trace], layout };
}

export interface HistogramOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Number of bins (plotly picks when omitted). */
  bins?: number;
  height?: number;
}

/** A histogram of raw values (plotly bins them in the page). */
export function histogramFigure(values: ArrayLike<number>, options: HistogramOptions = {}): Figure {
  const x = Array.from(values).filter((v) => Number.isFinite(v));
  const layout = baseLayout({ title: options.title, height: options.height });
  layout.xaxis = { title: title(options.xTitle) };
  layout.yaxis = { title: title(options.yTitle ?? 'count') };
  const trace: Record<string, unknown> = { type: 'histogram', x, marker: { color: '#55a868' } };
  if (options.bins) trace.nbinsx = options.bins;
  return { data: [trace as { type: string }], layout };
}

export interface Series {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

export interface LineOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  logX?: boolean;
  logY?: boolean;
  height?: number;
  /** Draw markers on the points (default: only when a series has at most 40 points). */
  markers?: boolean;
}

/** Line chart of one or more named series. */
export function lineFigure(series: Series[], options: LineOptions = {}): Figure {
  const layout = baseLayout({ title: options.title, height: options.height });
  layout.xaxis = { title: title(options.xTitle), type: options.logX ? 'log' : 'linear' };
  layout.yaxis = { title: title(options.yTitle), type: options.logY ? 'log' : 'linear' };
  const data = series.map((s) => {
    if (s.x.length !== s.y.length) throw new Error(`lineFigure: series '${s.name}' has ${s.x.length} x and ${s.y.length} y values`);
    const markers = options.markers ?? s.x.length <= 40;
    return { type: 'scatter', mode: markers ? 'lines+markers' : 'lines', name: s.name, x: Array.from(s.x), y: Array.from(s.y) };
  });
  return { data, layout };
}
