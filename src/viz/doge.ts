/**
 * Figures for looking inside Doge: the dynamic mask of DMAttn and the product-key retrieval of CDMoE.
 *
 * DMAttn (one layer, one kv head): from the value states it computes one number per key position,
 *   dt = exp(A * softplus(dt_proj(v)))                                   // [batch, kv_heads, keys]
 * keeps the `keep_window_size` largest per head, adds them to the scores of every query for that key
 * column, and masks the other columns (plus the causal triangle) with -inf before softmax.
 *
 * CDMoE (one token): the router gives two halves of `num_keys = sqrt(num_experts)` logits each; the top-k of
 * each half form a k x k grid of candidates (score = sum, expert id = ix * num_keys + iy), of which the top-k
 * are the chosen experts, weighted by softmax over their scores. A dense shared MLP runs for every token.
 */
import { barFigure, heatmapGridFigure, lineFigure } from './basic';
import { baseLayout, checkMatrix, everyLabel, finiteOrNull, gridAxes, title, type Figure, type Matrix } from './figure';

/** Indices of the k largest values (ties: lower index first), in descending order of value. */
export function topKIndices(values: ArrayLike<number>, k: number): number[] {
  if (!Number.isInteger(k) || k < 1) throw new Error(`topKIndices: k must be a positive integer, got ${k}`);
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx.slice(0, Math.min(k, values.length));
}

/**
 * The part of a dynamic-mask row that DMAttn keeps: the `keepWindowSize` largest values, others -Infinity.
 * When the row is not longer than the window, everything is kept (as in the reference).
 */
export function keepWindow(row: ArrayLike<number>, keepWindowSize: number): number[] {
  const out = Array.from(row);
  if (out.length <= keepWindowSize) return out;
  const keep = new Set(topKIndices(row, keepWindowSize));
  return out.map((v, i) => (keep.has(i) ? v : -Infinity));
}

export interface DynamicMaskOptions {
  /** Show a second panel with only the kept window (other keys blank). */
  keepWindowSize?: number;
  /** Labels of the key positions (tokens). */
  tokens?: string[];
  title?: string;
}

/**
 * The dynamic mask of one layer for one sequence: `mask` is [kv_heads, keys] (a `[B, kv, S]` tensor's batch
 * row). Left: the dt values (how much each key column is boosted); right, with `keepWindowSize`: what
 * survives the top-k window selection.
 */
export function dynamicMaskFigure(mask: Matrix, options: DynamicMaskOptions = {}): Figure {
  checkMatrix(mask, 'dynamicMaskFigure mask');
  const heads = mask.map((_, h) => `head ${h}`);
  const mats: Matrix[] = [mask];
  const titles = ['dynamic mask values (dt) per key'];
  if (options.keepWindowSize !== undefined) {
    mats.push(mask.map((row) => keepWindow(row, options.keepWindowSize!)));
    // the last query sees every key, so its row of the window selection is the top-k over the whole row
    titles.push(`kept for the last query by keep_window_size = ${options.keepWindowSize} (blank = masked)`);
  }
  return heatmapGridFigure(mats, {
    title: options.title ?? 'DMAttn dynamic mask over key columns',
    titles,
    cols: mats.length,
    x: options.tokens,
    y: heads,
    xTitle: 'key position',
    colorscale: 'Viridis',
    // rows per head plus room for rotated token labels under the panels
    rowHeight: Math.max(220, 50 * mask.length + (options.tokens ? 150 : 80)),
  });
}

/**
 * Attention maps side by side ([query, key] each), e.g. without and with the dynamic mask, or for several
 * `keep_window_size` values. Masked cells (probability 0) stay dark; one colour scale for all panels.
 */
export function attentionMapsFigure(maps: Matrix[], titles: string[], options: { tokens?: string[]; title?: string } = {}): Figure {
  return heatmapGridFigure(maps, {
    title: options.title ?? 'attention probabilities (rows: queries, columns: keys)',
    titles,
    cols: Math.min(maps.length, 3),
    x: options.tokens,
    y: options.tokens,
    xTitle: 'key',
    yTitle: 'query',
    // white = probability 0 (masked), dark blue = high: masked cells read as blank
    colorscale: [[0, '#ffffff'], [0.15, '#c6dbef'], [0.5, '#4292c6'], [1, '#08306b']],
    zmin: 0,
    rowHeight: options.tokens ? 380 : 300,
  });
}

/** Everything CDMoE's product-key router decides for one token. */
export interface ProductKeyRetrieval {
  numKeys: number;
  topK: number;
  /** Router logits of the two halves, `numKeys` each. */
  scoresX: number[];
  scoresY: number[];
  /** Top-k key indices of each half (descending score). */
  topX: number[];
  topY: number[];
  /** [topK, topK] candidate scores `scoresX[topX[i]] + scoresY[topY[j]]` and their expert ids. */
  gridScores: Matrix;
  gridExperts: Matrix;
  /** The chosen experts (descending score), their scores and routing weights (softmax over the chosen). */
  experts: number[];
  expertScores: number[];
  weights: number[];
}

/**
 * Recompute CDMoE's retrieval for one token from its router logits (`2 * numKeys` values laid out as
 * [x half | y half], the per-token layout). Mirrors the reference: topk per half, k x k sums, topk again,
 * softmax over the chosen scores.
 */
export function productKeyRetrieval(routerLogits: ArrayLike<number>, numKeys: number, topK: number): ProductKeyRetrieval {
  if (routerLogits.length !== 2 * numKeys) {
    throw new Error(`productKeyRetrieval: expected 2 * numKeys = ${2 * numKeys} router logits, got ${routerLogits.length}`);
  }
  if (topK > numKeys * numKeys) throw new Error(`productKeyRetrieval: topK ${topK} exceeds the ${numKeys * numKeys} experts`);
  const scoresX = Array.from(routerLogits).slice(0, numKeys);
  const scoresY = Array.from(routerLogits).slice(numKeys);
  // a pair outside the top-k of either half cannot be among the top-k sums, so k per half is enough
  const perHalf = Math.min(topK, numKeys);
  const topX = topKIndices(scoresX, perHalf);
  const topY = topKIndices(scoresY, perHalf);
  const gridScores = topX.map((ix) => topY.map((iy) => scoresX[ix] + scoresY[iy]));
  const gridExperts = topX.map((ix) => topY.map((iy) => ix * numKeys + iy));
  const flat = gridScores.flat();
  const pick = topKIndices(flat, topK);
  const experts = pick.map((p) => gridExperts.flat()[p]);
  const expertScores = pick.map((p) => flat[p]);
  const m = Math.max(...expertScores);
  const e = expertScores.map((s) => Math.exp(s - m));
  const z = e.reduce((a, b) => a + b, 0);
  return { numKeys, topK, scoresX, scoresY, topX, topY, gridScores, gridExperts, experts, expertScores, weights: e.map((v) => v / z) };
}

/**
 * Three panels: the two halves' logits (top-k highlighted), and the k x k candidate grid with the chosen
 * experts outlined and labelled by expert id.
 */
export function productKeyFigure(r: ProductKeyRetrieval, options: { title?: string } = {}): Figure {
  const grid = gridAxes(3, 3, {
    titles: ['half 1 (x) logits', 'half 2 (y) logits', `candidates: ${r.topK}x${r.topK} sums, chosen boxed`],
    gap: 0.08,
  });
  const color = (top: number[], n: number) => Array.from({ length: n }, (_, i) => (top.includes(i) ? '#c44e52' : '#b0b0b0'));
  const keys = Array.from({ length: r.numKeys }, (_, i) => i);
  const chosen = new Set(r.experts);
  const text = r.gridExperts.map((row) => row.map((id) => (chosen.has(id) ? `<b>#${id}</b>` : `#${id}`)));
  const data = [
    { type: 'bar', x: keys, y: r.scoresX, marker: { color: color(r.topX, r.numKeys) }, xaxis: 'x', yaxis: 'y', name: 'x half', showlegend: false },
    { type: 'bar', x: keys, y: r.scoresY, marker: { color: color(r.topY, r.numKeys) }, xaxis: 'x2', yaxis: 'y2', name: 'y half', showlegend: false },
    {
      type: 'heatmap',
      z: r.gridScores,
      x: r.topY.map((i) => `y${i}`),
      y: r.topX.map((i) => `x${i}`),
      text,
      texttemplate: '%{text}',
      hovertemplate: 'expert %{text}<br>score %{z:.3f}<extra></extra>',
      colorscale: 'YlOrRd',
      reversescale: true,
      xaxis: 'x3',
      yaxis: 'y3',
      showscale: false,
    },
  ];
  const shapes = [] as Record<string, unknown>[];
  r.gridExperts.forEach((row, i) =>
    row.forEach((id, j) => {
      if (chosen.has(id)) {
        shapes.push({ type: 'rect', xref: 'x3', yref: 'y3', x0: j - 0.5, x1: j + 0.5, y0: i - 0.5, y1: i + 0.5, line: { color: 'black', width: 2 } });
      }
    }),
  );
  const axes = grid.axes as Record<string, Record<string, unknown>>;
  axes.xaxis.title = title('key index');
  axes.xaxis2.title = title('key index');
  axes.yaxis3.autorange = 'reversed';
  const layout = {
    ...baseLayout({ title: options.title ?? `CDMoE product-key retrieval: experts ${r.experts.join(', ')}`, height: 340 }),
    ...axes,
    annotations: grid.annotations,
    shapes,
  };
  return { data, layout };
}

/** How often each expert was chosen, from a flat list of selected expert ids. */
export function expertCounts(expertIds: ArrayLike<number>, numExperts: number): number[] {
  const counts = new Array<number>(numExperts).fill(0);
  for (let i = 0; i < expertIds.length; i++) {
    const id = expertIds[i];
    if (!Number.isInteger(id) || id < 0 || id >= numExperts) throw new Error(`expertCounts: expert id ${id} at ${i} is outside [0, ${numExperts})`);
    counts[id]++;
  }
  return counts;
}

/**
 * Expert usage over a batch: counts per expert id (left) and the same counts sorted, against the uniform
 * share (right), which shows at a glance how balanced the routing is.
 */
export function expertUsageFigure(counts: ArrayLike<number>, options: { title?: string } = {}): Figure {
  const c = Array.from(counts);
  const total = c.reduce((a, b) => a + b, 0);
  const byId = barFigure(c, { xTitle: 'expert id', yTitle: 'times chosen' });
  const sorted = [...c].sort((a, b) => b - a);
  const ranks = sorted.map((_, i) => i + 1);
  const curve = lineFigure(
    [
      { name: 'sorted usage', x: ranks, y: sorted },
      { name: 'uniform', x: [1, c.length], y: [total / c.length, total / c.length] },
    ],
    { markers: false },
  );
  const grid = gridAxes(2, 2, { titles: ['usage per expert', 'usage sorted vs uniform'], gap: 0.1 });
  const axes = grid.axes as Record<string, Record<string, unknown>>;
  axes.xaxis.title = title('expert id');
  axes.yaxis.title = title('times chosen');
  axes.xaxis2.title = title('rank');
  const data = [
    { ...byId.data[0], xaxis: 'x', yaxis: 'y', showlegend: false },
    ...curve.data.map((t) => ({ ...t, xaxis: 'x2', yaxis: 'y2' })),
  ];
  const used = c.filter((v) => v > 0).length;
  const layout = {
    ...baseLayout({ title: options.title ?? `CDMoE expert usage: ${used}/${c.length} experts used, ${total} selections`, height: 340 }),
    ...axes,
    annotations: grid.annotations,
  };
  return { data, layout };
}

/**
 * What the dynamic mask changes, for one head: on top the mask value d of every key (one bar per key), below the
 * attention with the mask minus the attention without it ([query, key]; red = the key gains weight, blue = loses),
 * on one key axis, so the columns that gain line up with the tall bars. The colour scale is symmetric around 0.
 */
export function maskEffectFigure(d: ArrayLike<number>, diff: Matrix, options: { tokens?: string[]; title?: string } = {}): Figure {
  checkMatrix(diff, 'maskEffectFigure diff');
  if (diff[0].length !== d.length) throw new Error(`maskEffectFigure: ${d.length} mask values but ${diff[0].length} key columns`);
  const keys = options.tokens ?? Array.from({ length: d.length }, (_, j) => String(j));
  if (keys.length !== d.length) throw new Error(`maskEffectFigure: ${keys.length} token labels for ${d.length} keys`);
  let big = 0;
  for (const row of diff) for (const v of row) if (Number.isFinite(v)) big = Math.max(big, Math.abs(v));
  big = big || 1;
  const layout = {
    ...baseLayout({ title: options.title ?? 'What the dynamic mask changes', height: 560 + (options.tokens ? 60 : 0) }),
    xaxis: { anchor: 'y', domain: [0, 0.9], automargin: true, title: title('key'), tickangle: options.tokens ? -60 : 0, ...everyLabel(keys) },
    xaxis2: { anchor: 'y2', domain: [0, 0.9], matches: 'x', showticklabels: false },
    yaxis: { anchor: 'x', domain: [0, 0.68], autorange: 'reversed', automargin: true, title: title('query'), ...everyLabel(keys) },
    yaxis2: { anchor: 'x2', domain: [0.76, 1], automargin: true, title: title('d'), rangemode: 'tozero' },
    showlegend: false,
  };
  const data = [
    {
      type: 'bar', x: keys, y: Array.from(d), xaxis: 'x2', yaxis: 'y2', marker: { color: '#4c72b0' },
      hovertemplate: 'key %{x}: d = %{y:.3f}<extra></extra>',
    },
    {
      type: 'heatmap', x: keys, y: options.tokens ?? Array.from({ length: diff.length }, (_, t) => String(t)), z: finiteOrNull(diff),
      colorscale: [[0, '#2166ac'], [0.5, '#f7f7f7'], [1, '#b2182b']], zmin: -big, zmax: big, hoverongaps: false, // blue = loses, red = gains
      colorbar: { title: title('Δ prob'), len: 0.68, y: 0, yanchor: 'bottom' },
      hovertemplate: 'query %{y}, key %{x}: %{z:+.3f}<extra></extra>',
    },
  ];
  return { data, layout };
}
