/**
 * Plain plotly figure objects, and the small helpers every builder shares.
 *
 * A figure is just JSON (`{ data, layout, config? }`): it can be shown in tslab, written to a standalone
 * HTML page, or passed to `Plotly.newPlot` in any page. Titles use the `{ text }` form, which every
 * plotly.js from 2.x (JupyterLab's renderer) to 4.x (the bundled one) understands.
 */

/** One plotly trace (heatmap, scatter, bar, ...); kept open because plotly has hundreds of attributes. */
export type PlotlyTrace = { type: string } & Record<string, unknown>;

export interface Figure {
  data: PlotlyTrace[];
  layout: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** A 2-D table of numbers (rows first), as plotly heatmaps want it. */
export type Matrix = number[][];

/**
 * Axis settings that label every category of a token axis up to 40 labels (plotly drops every other label once they
 * crowd, and on a token axis the dropped ones are often the positions the text talks about); smaller type above 24.
 */
export function everyLabel(labels: ArrayLike<unknown> | undefined): Record<string, unknown> {
  if (!labels || labels.length > 40) return {};
  return { dtick: 1, tickfont: { size: labels.length > 24 ? 9 : 11 } };
}

/** `{ text }` title object, or undefined when there is no text. */
export function title(text: string | undefined): { text: string } | undefined {
  return text === undefined ? undefined : { text };
}

/** Base layout: compact margins, white background, a fixed height so pages lay out before drawing. */
export function baseLayout(options: { title?: string; height?: number; width?: number } = {}): Record<string, unknown> {
  const layout: Record<string, unknown> = {
    margin: { l: 60, r: 30, t: options.title ? 50 : 20, b: 50 },
    height: options.height ?? 360,
    paper_bgcolor: 'white',
    plot_bgcolor: 'white',
  };
  if (options.title) layout.title = title(options.title);
  if (options.width) layout.width = options.width;
  return layout;
}

/** Check that a matrix is rectangular and finite; `what` names it in the error. */
export function checkMatrix(z: Matrix, what: string): void {
  if (!Array.isArray(z) || z.length === 0) throw new Error(`${what}: expected a non-empty 2-D array`);
  const cols = z[0].length;
  z.forEach((row, i) => {
    if (!Array.isArray(row) && !ArrayBuffer.isView(row)) throw new Error(`${what}: row ${i} is not an array`);
    if (row.length !== cols) throw new Error(`${what}: row ${i} has ${row.length} columns, row 0 has ${cols}`);
  });
}

/** Turn a flat row-major array of shape [rows, cols] into rows (plotly wants nested arrays). */
export function toRows(values: ArrayLike<number>, rows: number, cols: number): Matrix {
  if (values.length !== rows * cols) {
    throw new Error(`toRows: ${values.length} values cannot be shaped [${rows}, ${cols}]`);
  }
  const out: Matrix = [];
  for (let r = 0; r < rows; r++) out.push(Array.from({ length: cols }, (_, c) => values[r * cols + c]));
  return out;
}

/** Replace -Infinity (masked scores) by null so plotly leaves the cell blank instead of failing to scale. */
export function finiteOrNull(z: Matrix): (number | null)[][] {
  return z.map((row) => Array.from(row, (v) => (Number.isFinite(v) ? v : null)));
}

/**
 * Lay out `n` panels in a grid of `cols` columns; returns the layout axes (xaxis, xaxis2, ...) and the
 * axis ids for each panel. Plotly has no "subplots" helper in plain JSON, so domains are computed here.
 */
export function gridAxes(
  n: number,
  cols: number,
  options: { gap?: number; titles?: string[]; xTitle?: string; yTitle?: string; reverseY?: boolean } = {},
): { axes: Record<string, unknown>; ids: { x: string; y: string }[]; annotations: Record<string, unknown>[] } {
  const rows = Math.ceil(n / cols);
  const gap = options.gap ?? 0.06;
  const w = (1 - gap * (cols - 1)) / cols;
  const h = (1 - gap * 1.5 * (rows - 1)) / rows;
  const axes: Record<string, unknown> = {};
  const ids: { x: string; y: string }[] = [];
  const annotations: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i / cols);
    const c = i % cols;
    const k = i === 0 ? '' : String(i + 1);
    const x0 = c * (w + gap);
    const y1 = 1 - r * (h + gap * 1.5);
    // automargin: room for long (token) tick labels so axis titles do not overlap them
    axes[`xaxis${k}`] = {
      domain: [x0, x0 + w],
      anchor: `y${k}`,
      automargin: true,
      title: r === rows - 1 ? title(options.xTitle) : undefined,
    };
    axes[`yaxis${k}`] = {
      domain: [y1 - h, y1],
      anchor: `x${k}`,
      automargin: true,
      autorange: options.reverseY ? 'reversed' : true,
      title: c === 0 ? title(options.yTitle) : undefined,
    };
    ids.push({ x: `x${k}`, y: `y${k}` });
    if (options.titles?.[i]) {
      annotations.push({
        text: options.titles[i],
        showarrow: false,
        xref: 'paper',
        yref: 'paper',
        x: x0 + w / 2,
        y: y1,
        xanchor: 'center',
        yanchor: 'bottom',
        font: { size: 12 },
      });
    }
  }
  return { axes, ids, annotations };
}
