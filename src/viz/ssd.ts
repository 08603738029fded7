/**
 * Figures for the SSD of Cheems: forgetting as impulse responses per head, and the state space duality (the SSD's
 * token-mixing matrix L ∘ C Bᵀ drawn next to an attention map: both are lower-triangular [query, key] matrices).
 */
import { baseLayout, checkMatrix, finiteOrNull, title, type Figure, type Matrix } from './figure';

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];

/**
 * How much of one token's write each head still holds k tokens later: `responses[h][k]` (e.g. L[s + k, s] of the SSD
 * decay), one line per head on a log axis, so a constant decay rate is a straight line and a faster-forgetting head
 * a steeper one.
 */
export function impulseResponseFigure(responses: Matrix, options: { title?: string; floor?: number } = {}): Figure {
  checkMatrix(responses, 'impulseResponseFigure responses');
  const floor = options.floor ?? 1e-12; // values below are left out (a log axis has no 0; a flat line at the floor would mislead)
  const data = responses.map((r, h) => ({
    type: 'scatter', mode: 'lines+markers', name: `head ${h}`,
    x: r.map((_, k) => k), y: r.map((v) => (v >= floor ? v : null)),
    line: { color: COLORS[h % COLORS.length], width: 2 }, marker: { size: 5 },
  }));
  const layout = {
    ...baseLayout({ title: options.title ?? 'SSD forgetting: what is left of one token, per head', height: 380 }),
    xaxis: { title: title('tokens later') },
    yaxis: { title: title('fraction left (log)'), type: 'log', exponentformat: 'power', range: [Math.log10(floor), 0.2] },
    legend: { orientation: 'v', x: 1.02, y: 1 },
  };
  return { data, layout };
}

/**
 * The duality, side by side: left the SSD head's matrix M (y = M x, M = L ∘ C Bᵀ ∘ dt; signed, so a diverging scale
 * symmetric around 0), right an attention head's probabilities (0 to 1). Both [query, key], causal.
 */
export function ssdDualityFigure(ssd: Matrix, attention: Matrix, options: { tokens?: string[]; titles?: [string, string]; title?: string } = {}): Figure {
  checkMatrix(ssd, 'ssdDualityFigure ssd');
  checkMatrix(attention, 'ssdDualityFigure attention');
  if (ssd.length !== attention.length) throw new Error(`ssdDualityFigure: ${ssd.length} SSD rows but ${attention.length} attention rows`);
  const labels = options.tokens ?? ssd.map((_, t) => String(t));
  let big = 0;
  for (const row of ssd) for (const v of row) if (Number.isFinite(v)) big = Math.max(big, Math.abs(v));
  big = big || 1;
  const [t1, t2] = options.titles ?? ['SSD: L ∘ CBᵀ (one head)', 'DMAttn: attention probabilities (one head)'];
  const causal = (m: Matrix) => finiteOrNull(m.map((row, t) => row.map((v, s) => (s > t ? -Infinity : v)))); // the zero triangle blank
  const layout = {
    ...baseLayout({ title: options.title ?? 'The state space duality: two lower-triangular token-mixing matrices', height: options.tokens ? 520 : 440 }),
    xaxis: { domain: [0, 0.4], anchor: 'y', title: title('key s'), automargin: true },
    yaxis: { domain: [0, 0.9], anchor: 'x', autorange: 'reversed', title: title('query t'), automargin: true },
    xaxis2: { domain: [0.55, 0.95], anchor: 'y2', title: title('key s'), automargin: true },
    yaxis2: { domain: [0, 0.9], anchor: 'x2', autorange: 'reversed', automargin: true },
    annotations: [
      { text: t1, showarrow: false, xref: 'paper', yref: 'paper', x: 0.2, y: 0.93, xanchor: 'center', yanchor: 'bottom', font: { size: 12 } },
      { text: t2, showarrow: false, xref: 'paper', yref: 'paper', x: 0.75, y: 0.93, xanchor: 'center', yanchor: 'bottom', font: { size: 12 } },
    ],
  };
  const data = [
    {
      type: 'heatmap', z: causal(ssd), x: labels, y: labels, xaxis: 'x', yaxis: 'y', hoverongaps: false,
      colorscale: [[0, '#2166ac'], [0.5, '#f7f7f7'], [1, '#b2182b']], zmin: -big, zmax: big,
      colorbar: { x: 0.42, len: 0.9, y: 0, yanchor: 'bottom', thickness: 12 },
    },
    {
      type: 'heatmap', z: causal(attention), x: labels, y: labels, xaxis: 'x2', yaxis: 'y2', hoverongaps: false,
      colorscale: [[0, '#ffffff'], [0.15, '#c6dbef'], [0.5, '#4292c6'], [1, '#08306b']], zmin: 0, zmax: 1,
      colorbar: { x: 0.97, len: 0.9, y: 0, yanchor: 'bottom', thickness: 12 },
    },
  ];
  return { data, layout };
}
