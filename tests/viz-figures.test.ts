import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PLOTLY_MIME,
  attentionMapsFigure,
  dynamicMaskFigure,
  ema,
  expertCounts,
  expertUsageFigure,
  figureHtml,
  heatmapFigure,
  heatmapGridFigure,
  inTslab,
  keepWindow,
  liveLossPlot,
  lossCurveFigure,
  mimeBundle,
  mqarFigure,
  mqarSeedsFigure,
  maskEffectFigure,
  impulseResponseFigure,
  ssdDualityFigure,
  summarizeMqar,
  formatMqarSummary,
  MQAR_PAPER_RESULTS,
  readMqarRuns,
  productKeyRetrieval,
  show,
  toRows,
  topKIndices,
  writeFigureHtml,
  diagramSvg,
  DIAGRAMS,
  dpoCurvesFigure,
  evalComparisonFigure,
  type PlotlyTrace,
} from '../src/viz';

test('topKIndices: descending, ties by lower index', () => {
  assert.deepEqual(topKIndices([0.1, 0.9, 0.5, 0.9], 3), [1, 3, 2]);
  assert.throws(() => topKIndices([1], 0), /k must be a positive integer, got 0/);
});

test('keepWindow masks all but the keep_window_size largest, keeps short rows whole', () => {
  assert.deepEqual(keepWindow([3, 1, 2, 5], 2), [3, -Infinity, -Infinity, 5]);
  assert.deepEqual(keepWindow([3, 1], 4), [3, 1]);
});

test('productKeyRetrieval: product keys, k x k grid, top-k experts, softmax weights', () => {
  // num_keys = 4 (16 experts), top_k = 2; x half = [0.1, 0.5, 0.2, 0.9], y half = [0.3, 0.1, 0.8, 0.2]
  const r = productKeyRetrieval([0.1, 0.5, 0.2, 0.9, 0.3, 0.1, 0.8, 0.2], 4, 2);
  assert.deepEqual(r.topX, [3, 1]);
  assert.deepEqual(r.topY, [2, 0]);
  assert.deepEqual(r.gridExperts, [[14, 12], [6, 4]]);
  // candidate scores: x3+y2 = 1.7, x3+y0 = 1.2, x1+y2 = 1.3, x1+y0 = 0.8
  r.gridScores.flat().forEach((v, i) => assert.ok(Math.abs(v - [1.7, 1.2, 1.3, 0.8][i]) < 1e-12));
  assert.deepEqual(r.experts, [14, 6]);
  const w0 = 1 / (1 + Math.exp(1.3 - 1.7));
  assert.ok(Math.abs(r.weights[0] - w0) < 1e-12 && Math.abs(r.weights[0] + r.weights[1] - 1) < 1e-12);
  assert.throws(() => productKeyRetrieval([1, 2, 3], 4, 2), /expected 2 \* numKeys = 8 router logits, got 3/);
  assert.throws(() => productKeyRetrieval(new Array(8).fill(0), 4, 17), /topK 17 exceeds the 16 experts/);
  // top_k larger than num_keys: k per half is capped at num_keys, the grid is then complete
  const big = productKeyRetrieval([0, 1, 0, 1], 2, 3);
  assert.deepEqual(big.experts, [3, 2, 1]); // ties (2 and 1 both score 1) keep grid order
});

test('expertCounts counts ids and rejects ids outside the expert range', () => {
  assert.deepEqual(expertCounts(new Int32Array([0, 3, 3, 1]), 4), [1, 1, 0, 2]);
  assert.throws(() => expertCounts([0, 4], 4), /expert id 4 at 1 is outside \[0, 4\)/);
});

test('ema with bias correction starts at the first value', () => {
  const s = ema([2, 2, 2], 0.9);
  s.forEach((v) => assert.ok(Math.abs(v - 2) < 1e-12));
  assert.throws(() => ema([1], 1), /weight must be in \[0, 1\), got 1/);
});

test('heatmaps: -Infinity becomes a gap, rows are checked, grids share one colour scale', () => {
  const f = heatmapFigure([[0, -Infinity], [1, 2]], { title: 'masked' });
  assert.deepEqual(f.data[0].z, [[0, null], [1, 2]]);
  assert.deepEqual(f.layout.title, { text: 'masked' });
  assert.throws(() => heatmapFigure([[1, 2], [3]]), /heatmapFigure z: row 1 has 1 columns, row 0 has 2/);
  const g = heatmapGridFigure([[[0, 1]], [[5, -Infinity]]], { titles: ['a', 'b'] });
  assert.equal(g.data.length, 2);
  assert.deepEqual(g.data.map((t) => [t.zmin, t.zmax, t.xaxis, t.yaxis]), [[0, 5, 'x', 'y'], [0, 5, 'x2', 'y2']]);
  assert.ok('xaxis2' in g.layout && 'yaxis2' in g.layout);
  assert.deepEqual(toRows([1, 2, 3, 4, 5, 6], 2, 3), [[1, 2, 3], [4, 5, 6]]);
  assert.throws(() => toRows([1, 2, 3], 2, 2), /3 values cannot be shaped \[2, 2\]/);
});

test('dynamic mask, attention maps, expert usage, MQAR and loss figures have the expected traces', () => {
  const mask = [[0.5, 2, 1, 3], [1, 1, 4, 0]];
  const dm = dynamicMaskFigure(mask, { keepWindowSize: 2 });
  assert.equal(dm.data.length, 2);
  assert.deepEqual(dm.data[1].z, [[null, 2, null, 3], [1, null, 4, null]]);
  const am = attentionMapsFigure([[[1, 0], [0.5, 0.5]], [[1, 0], [0, 1]]], ['no mask', 'mask']);
  assert.equal(am.data.length, 2);
  const eu = expertUsageFigure([3, 0, 1, 0]);
  assert.deepEqual((eu.layout.title as { text: string }).text, 'CDMoE expert usage: 2/4 experts used, 4 selections');
  assert.deepEqual(eu.data[1].y, [3, 1, 0, 0]);
  const mq = mqarFigure([
    { mixer: 'attention', seqLen: 64, dModel: 32, accuracy: 0.5 },
    { mixer: 'attention', seqLen: 64, dModel: 16, accuracy: 0.25 },
    { mixer: 'ssd', seqLen: 64, dModel: 16, accuracy: 0.1 },
    { mixer: 'ssd', seqLen: 128, dModel: 16, accuracy: 0.05 },
  ]);
  assert.equal(mq.data.length, 3);
  assert.deepEqual(mq.data[0].x, [16, 32]); // sorted by width
  assert.deepEqual(mq.data[2].xaxis, 'x2');
  assert.deepEqual((mq.layout.yaxis as { range: number[] }).range, [0, 1.05]);
  assert.equal((mq.layout.yaxis as { autorange: boolean }).autorange, false);
  assert.throws(() => mqarFigure([]), /no results given/);
  const lc = lossCurveFigure([{ name: 'train', x: [0, 1], y: [2, 1] }], { smooth: 0.5 });
  assert.deepEqual(lc.data.map((t) => t.name), ['train', 'train (smoothed)']);
});

test('figureHtml escapes </script> inside data; the bundle carries plotly JSON, HTML and text', () => {
  const f = heatmapFigure([[1]], { title: '</script><b>x' });
  const html = figureHtml(f, { id: 'p1' });
  assert.equal(html.match(/<\/script>/g)?.length, 1); // only the element's own end tag
  assert.ok(html.includes('\\u003c/script>'));
  const b = mimeBundle(f);
  assert.deepEqual(Object.keys(b), [PLOTLY_MIME, 'text/html', 'text/plain']);
  assert.equal(b['text/plain'], '<plotly figure: 1 trace(s), "</script><b>x">');
});

test('outside tslab, show() and liveLossPlot.close() write standalone pages with plotly.js inlined', () => {
  assert.equal(inTslab(), false);
  const dir = mkdtempSync(join(tmpdir(), 'wm-viz-'));
  const file = show(heatmapFigure([[1, 2]]), { file: join(dir, 'a.html'), log: false });
  assert.equal(file, join(dir, 'a.html'));
  const page = readFileSync(file!, 'utf8');
  assert.ok(page.startsWith('<!DOCTYPE html>'));
  assert.ok(page.includes('window.Plotly = Plotly')); // the inlined bundle, no CDN
  assert.ok(!/src="https?:/.test(page));
  const live = liveLossPlot();
  for (let i = 0; i < 3; i++) live.push(i, 3 - i);
  live.push(2, 2.5, 'validation');
  assert.deepEqual(live.series.map((s) => [s.name, s.y.length]), [['train', 3], ['validation', 1]]);
  const out = live.close({ file: join(dir, 'loss.html'), log: false });
  assert.equal(out, join(dir, 'loss.html'));
  const two = writeFigureHtml([heatmapFigure([[1]]), heatmapFigure([[2]])], join(dir, 'two.html'));
  assert.equal(readFileSync(two, 'utf8').match(/class="wm-plot"/g)?.length, 2);
});

test('every architecture diagram is a well-formed SVG with a title', () => {
  for (const name of DIAGRAMS) {
    const svg = diagramSvg(name);
    assert.match(svg, /<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/, name);
    assert.match(svg, /<title>[^<]+<\/title>/, name);
    assert.ok(svg.trimEnd().endsWith('</svg>'), name);
  }
  assert.throws(() => diagramSvg('nope' as never), /unknown diagram 'nope'/);
});

test('inside tslab, show() sends the plotly.js loader once, then MIME bundles; liveFigure updates one display', () => {
  // Stand-in for the kernel's module: show() finds tslab's jupyter.js in require.cache, as in a real kernel.
  const sent: { data: Record<string, unknown>; transient: Record<string, unknown>; update: boolean }[] = [];
  const key = join(tmpdir(), 'fake', 'node_modules', 'tslab', 'dist', 'jupyter.js');
  const fake = { exports: { lastWriteDisplayData: (d: { data: Record<string, unknown>; transient: Record<string, unknown> }, update: boolean) => sent.push({ ...d, update }) } };
  require.cache[key] = fake as unknown as NodeJS.Module;
  try {
    assert.equal(inTslab(), true);
    assert.equal(show(heatmapFigure([[1]])), undefined);
    show(heatmapFigure([[2]]));
    assert.equal(sent.length, 3);
    assert.deepEqual(Object.keys(sent[0].data), ['text/html', 'text/plain']); // the loader
    assert.ok((sent[0].data['text/html'] as string).includes('window.Plotly = Plotly'));
    assert.deepEqual(Object.keys(sent[1].data), [PLOTLY_MIME, 'text/html', 'text/plain']);
    assert.deepEqual((sent[2].data[PLOTLY_MIME] as { data: { z: number[][] }[] }).data[0].z, [[2]]);
    const live = liveLossPlot({ minIntervalMs: 0 });
    live.push(0, 2);
    live.push(1, 1);
    assert.equal(live.close(), undefined);
    const updates = sent.slice(3);
    assert.equal(updates.length, 3);
    const ids = new Set(updates.map((u) => u.transient.display_id));
    assert.equal(ids.size, 1); // one output, redrawn in place
    assert.deepEqual(updates.map((u) => u.update), [false, true, true]);
  } finally {
    delete require.cache[key];
  }
  assert.equal(inTslab(), false);
});

test('lossCurveFigure: a raw series and its smoothed line share one colour (raw faint, smoothed bold)', () => {
  const lc = lossCurveFigure([{ name: 'a', x: [0, 1, 2], y: [3, 2, 1] }, { name: 'b', x: [0, 1, 2], y: [3, 2.5, 2] }], { smooth: 0.6 });
  const colors = lc.data.map((t) => (t.line as { color: string }).color);
  assert.equal(colors[0], colors[1]);
  assert.equal(colors[2], colors[3]);
  assert.notEqual(colors[0], colors[2]);
  assert.ok((lc.data[0].opacity as number) < 1 && lc.data[1].opacity === undefined);
  assert.ok((lc.data[1].line as { width: number }).width > (lc.data[0].line as { width: number }).width);
  assert.deepEqual(lc.data.map((t) => t.legendgroup), ['a', 'a', 'b', 'b']);
});

test('lossCurveFigure baselines: one dashed, unsmoothed line across the steps drawn; liveLossPlot.baseline adds one', () => {
  const series = [{ name: 'train', x: [1, 2, 3, 4], y: [5, 4, 3, 2.5] }, { name: 'held-out', x: [2, 4], y: [4.2, 2.9] }];
  const lc = lossCurveFigure(series, { smooth: 0.6, baselines: [{ name: 'unigram baseline', value: 3.5 }] });
  assert.deepEqual(lc.data.map((t) => t.name), ['train', 'train (smoothed)', 'held-out', 'held-out (smoothed)', 'unigram baseline']);
  const b = lc.data[4];
  assert.deepEqual([b.x, b.y], [[1, 4], [3.5, 3.5]]);
  assert.equal((b.line as { dash: string }).dash, 'dash');
  assert.notEqual((b.line as { color: string }).color, (lc.data[0].line as { color: string }).color);
  assert.throws(() => lossCurveFigure(series, { baselines: [{ name: 'u', value: NaN }] }), /baseline 'u' must be a finite number, got NaN/);
  const live = liveLossPlot({ minIntervalMs: 1e9, smooth: 0.5 });
  live.push(1, 3);
  live.push(5, 2);
  live.baseline('unigram baseline', 2.7);
  assert.throws(() => live.baseline('x', Infinity), /liveLossPlot.baseline: 'x' must be a finite number, got Infinity/);
  const f = live.figure();
  assert.deepEqual(f.data.map((t) => t.name), ['train', 'train (smoothed)', 'unigram baseline']);
  assert.deepEqual(f.data[2].x, [1, 5]);
});

test('token axes of heatmaps label every token up to 40 (plotly would drop every other one), not beyond', () => {
  const tokens = (n: number) => Array.from({ length: n }, (_, i) => `${i}:t`);
  const square = (n: number) => Array.from({ length: n }, () => new Array<number>(n).fill(0.5));
  const axesOf = (f: { layout: Record<string, unknown> }) => Object.entries(f.layout).filter(([k]) => /^[xy]axis\d*$/.test(k));
  const maps = attentionMapsFigure([square(32), square(32)], ['a', 'b'], { tokens: tokens(32) });
  assert.equal(axesOf(maps).length, 4);
  for (const [name, axis] of axesOf(maps)) assert.deepEqual([(axis as { dtick: number }).dtick, (axis as { tickfont: { size: number } }).tickfont.size], [1, 9], name);
  const small = attentionMapsFigure([square(12)], ['a'], { tokens: tokens(12) });
  assert.equal((small.layout.xaxis as { tickfont: { size: number } }).tickfont.size, 11);
  const long = attentionMapsFigure([square(64)], ['a'], { tokens: tokens(64) });
  assert.equal((long.layout.xaxis as { dtick?: number }).dtick, undefined);
  const effect = maskEffectFigure(new Array(26).fill(1), square(26), { tokens: tokens(26) });
  assert.equal((effect.layout.xaxis as { dtick: number }).dtick, 1);
  assert.equal((effect.layout.yaxis as { dtick: number }).dtick, 1);
});

test('mqarSeedsFigure: a visible mean marker per mixer and width, one dot per seed, the paper as hollow markers', () => {
  const pts = [];
  for (const mixer of ['attention', 'dmattn', 'linear']) for (const dModel of [64, 128]) for (const seed of [0, 1, 2]) {
    pts.push({ mixer, seqLen: 64, dModel, seed, accuracy: 0.99 }); // every mixer at the same accuracy: none may hide another
  }
  const paper = [{ mixer: 'attention', seqLen: 256, dModel: 64, accuracy: 0.68 }, { mixer: 'dmattn', seqLen: 256, dModel: 128, accuracy: 1 }];
  const f = mqarSeedsFigure(pts, { paper, paperLabel: 'paper' });
  const means = f.data.filter((t) => String(t.name).endsWith('(mean)'));
  assert.deepEqual(means.map((t) => t.name), ['attention (mean)', 'dmattn (mean)', 'linear (mean)']);
  // each mixer's markers sit at their own x positions (no mixer drawn on top of another), widths side by side
  const xs = means.flatMap((t) => t.x as number[]);
  assert.equal(new Set(xs.map((x) => x.toFixed(6))).size, 6);
  for (const t of means) {
    assert.equal((t.x as number[]).length, 2);
    assert.ok((t.marker as { size: number }).size >= 10);
    assert.equal(t.visible, undefined);
  }
  const seeds = f.data.filter((t) => String(t.name).endsWith('(one seed)'));
  assert.equal(seeds.length, 3);
  seeds.forEach((t) => assert.equal((t.y as number[]).length, 6));
  const hollow = f.data.filter((t) => String(t.name).endsWith('(paper)'));
  assert.deepEqual(hollow.map((t) => [t.name, t.y]), [['attention (paper)', [0.68]], ['dmattn (paper)', [1]]]);
  hollow.forEach((t) => assert.match((t.marker as { symbol: string }).symbol, /-open$/));
  // the paper's marker sits at the x of its mixer and width
  assert.deepEqual(hollow[1].x, [(means[1].x as number[])[1]]);
  const ax = f.layout.xaxis as { ticktext: string[]; tickvals: number[] };
  assert.deepEqual(ax.ticktext.slice(0, 2), ['attention<br>d 64', 'attention<br>d 128']);
  assert.throws(() => mqarSeedsFigure([]), /no results given/);
});

test('summarizeMqar and formatMqarSummary: mean, worst-best, solved per mixer and width, the paper beside it', () => {
  const pts = [0.995, 0.5, 0.992].map((accuracy, seed) => ({ mixer: 'ssd', seqLen: 64, dModel: 64, seed, accuracy }));
  const cells = summarizeMqar(pts, { paper: [{ mixer: 'ssd', seqLen: 256, dModel: 64, accuracy: 0.55 }] });
  assert.equal(cells.length, 1);
  assert.ok(Math.abs(cells[0].mean - (0.995 + 0.5 + 0.992) / 3) < 1e-12);
  assert.equal(cells[0].solved, 2);
  assert.equal(cells[0].paper, 0.55);
  const text = formatMqarSummary(cells);
  assert.match(text, /^mixer +d 64: here \| paper$/m);
  assert.match(text, /^ssd +0\.829 \[0\.500-0\.995\] 2\/3 \| 0\.55$/m);
});

test('MQAR_PAPER_RESULTS: 4 lengths x 4 widths x 4 mixers; the paper figure draws a distinct symbol per mixer', () => {
  assert.equal(MQAR_PAPER_RESULTS.length, 64);
  assert.equal(MQAR_PAPER_RESULTS.find((p) => p.seqLen === 1024 && p.dModel === 128 && p.mixer === 'attention')?.accuracy, 0.61);
  const f = mqarFigure(MQAR_PAPER_RESULTS.slice());
  assert.equal(f.data.length, 16); // 4 panels x 4 mixers
  const symbols = new Set(f.data.slice(0, 4).map((t) => (t.marker as { symbol: string }).symbol));
  assert.equal(symbols.size, 4);
});

test('readMqarRuns reads the shipped runs and names the line of a bad row', () => {
  const runs = readMqarRuns();
  assert.equal(runs.filter((r) => r.grid === 'cpu').length, 24);
  assert.deepEqual([...new Set(runs.filter((r) => r.grid === 'cpu').map((r) => r.mixer))].sort(), ['attention', 'dmattn', 'linear', 'ssd']);
  assert.ok(runs.every((r) => r.curve.length > 0 && r.curve[0].step === 0));
  const dir = mkdtempSync(join(tmpdir(), 'wm-mqar-'));
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, `${JSON.stringify(runs[0])}\n{"mixer": "ssd"\n`);
  assert.throws(() => readMqarRuns(bad), /bad\.jsonl line 2 is not JSON/);
  writeFileSync(bad, `${JSON.stringify({ ...runs[0], accuracy: 'high' })}\n`);
  assert.throws(() => readMqarRuns(bad), /line 1: 'accuracy' must be a number/);
});

test('maskEffectFigure: one bar of d per key above the difference map, on one key axis, colours symmetric around 0', () => {
  const f = maskEffectFigure([0.9, 0.1, 0.5], [[0, -Infinity, -Infinity], [0.2, -0.2, -Infinity], [0.1, -0.15, 0.05]], { tokens: ['0:a', '1:b', '2:c'] });
  const [bars, map] = f.data;
  assert.equal(bars.type, 'bar');
  assert.deepEqual(bars.x, ['0:a', '1:b', '2:c']);
  assert.deepEqual(bars.y, [0.9, 0.1, 0.5]);
  assert.equal(map.type, 'heatmap');
  assert.deepEqual(map.x, bars.x);
  assert.deepEqual((map.z as unknown[][])[0], [0, null, null]); // masked (future) keys are gaps
  assert.equal(map.zmin, -0.2);
  assert.equal(map.zmax, 0.2);
  assert.equal((f.layout.xaxis2 as { matches: string }).matches, 'x');
  const scale = map.colorscale as [number, string][];
  assert.equal(scale[0][1], '#2166ac'); // negative (loses weight) blue, positive red
  assert.equal(scale[2][1], '#b2182b');
  assert.throws(() => maskEffectFigure([1, 2], [[0, 0, 0]]), /2 mask values but 3 key columns/);
});

test('impulseResponseFigure: one line per head on a log axis; ssdDualityFigure: SSD matrix (signed) beside attention (0..1)', () => {
  const f = impulseResponseFigure([[1, 0.5, 0.25], [1, 0.1, 0]]);
  assert.deepEqual(f.data.map((t) => t.name), ['head 0', 'head 1']);
  assert.equal((f.layout.yaxis as { type: string }).type, 'log');
  assert.deepEqual(f.data[1].y, [1, 0.1, null]); // below the floor: a gap, not a flat line at the floor
  assert.notEqual((f.data[0].line as { color: string }).color, (f.data[1].line as { color: string }).color);
  const d = ssdDualityFigure([[2, 0], [-1, 0.5]], [[1, 0], [0.3, 0.7]], { tokens: ['0:a', '1:b'] });
  assert.equal(d.data.length, 2);
  assert.deepEqual([d.data[0].zmin, d.data[0].zmax], [-2, 2]);
  assert.deepEqual([d.data[1].zmin, d.data[1].zmax], [0, 1]);
  assert.deepEqual(d.data[0].z, [[2, null], [-1, 0.5]]); // the upper triangle is blank in both
  assert.deepEqual(d.data[1].z, [[1, null], [0.3, 0.7]]);
  assert.deepEqual([d.data[0].xaxis, d.data[1].xaxis], ['x', 'x2']);
  assert.throws(() => ssdDualityFigure([[1]], [[1, 0], [0, 1]]), /1 SSD rows but 2 attention rows/);
});

// nb 7 and nb 8 figures (what each must show)
const rows = Array.from({ length: 40 }, (_, i) => ({ step: i + 1, loss: 0.7 - 0.01 * i, 'rewards/margins': i % 7 === 0 ? 12 : 0.1 * i, 'rewards/accuracies': Math.min(1, 0.5 + 0.02 * i) }));

test('nb 7 DPO figure: three panels on their own axes, accuracy on [0, 1], raw and smoothed in one colour, reference lines', () => {
  const fig = dpoCurvesFigure(rows, { title: 'DPO: loss, reward margin, reward accuracy' });
  const axesOf = (name: string) => fig.data.filter((t) => String(t.name).startsWith(name)).map((t) => t.yaxis);
  assert.deepEqual(axesOf('loss'), ['y', 'y']);
  assert.deepEqual(axesOf('rewards/margins'), ['y2', 'y2']);
  assert.deepEqual(axesOf('rewards/accuracies'), ['y3', 'y3']);
  assert.deepEqual((fig.layout.yaxis3 as { range: number[] }).range, [0, 1.02]);
  for (const key of ['loss', 'rewards/margins', 'rewards/accuracies']) {
    const [raw, smooth] = fig.data.filter((t) => String(t.name).startsWith(key)) as (PlotlyTrace & { line: { color: string } })[];
    assert.equal(raw!.line.color.slice(0, 7), smooth!.line.color, `${key}: raw and smoothed share a colour`);
    assert.ok(raw!.line.color.length === 9, `${key}: the raw curve is faint (alpha)`);
  }
  const refs = fig.data.filter((t) => (t as { line?: { dash?: string } }).line?.dash === 'dash').map((t) => (t.y as number[])[0]);
  assert.deepEqual(refs, [Math.LN2, 0, 0.5]);
  assert.equal((fig.layout.annotations as unknown[]).length, 3, 'one title per panel');
  assert.throws(() => dpoCurvesFigure([{ ...rows[0]!, loss: NaN }]), /step 1 has loss = NaN/);
});

test('nb 8 evaluation figure: score, perplexity (log) and bits per byte on separate panels; no word perplexity; legend beside the panels', () => {
  const results = ['base', 'sft'].flatMap((model, i) => [
    { task: 'embedded_chat', metric: 'acc', value: 0.25 + 0.1 * i, stderr: 0.014, model },
    { task: 'ppl_brown', metric: 'ppl', value: 700 * (1 + 5 * i), stderr: null, model },
    { task: 'ppl_chats', metric: 'ppl', value: 30 / (1 + i), stderr: null, model },
    { task: 'ppl_brown', metric: 'bits_per_byte', value: 2.5 + i, stderr: null, model },
    { task: 'ppl_brown', metric: 'word_perplexity', value: 5000, stderr: null, model },
  ]);
  const fig = evalComparisonFigure(results, { title: 'base vs sft' });
  const panelOf = (metricTask: string) => [...new Set(fig.data.filter((t) => (t.x as string[]).includes(metricTask)).map((t) => t.yaxis))];
  assert.deepEqual(panelOf('embedded_chat'), ['y']);
  const ppl = fig.data.filter((t) => t.yaxis === 'y2');
  assert.deepEqual(ppl[0]!.x, ['ppl_brown', 'ppl_chats']);
  assert.equal((fig.layout.yaxis2 as { type: string }).type, 'log');
  const bpb = fig.data.filter((t) => t.yaxis === 'y3');
  assert.deepEqual(bpb.map((t) => t.y), [[2.5], [3.5]]);
  assert.notEqual((fig.layout.yaxis3 as { type?: string }).type, 'log');
  assert.equal(fig.data.some((t) => t.yaxis === 'y4'), false, 'word_perplexity is left out by default');
  const legend = fig.layout.legend as { x: number; xanchor: string };
  assert.ok(legend.x >= 1 && legend.xanchor === 'left', 'the legend is outside the plotting area');
  assert.deepEqual(fig.data.filter((t) => t.showlegend).map((t) => t.name), ['base', 'sft'], 'one legend entry per model');
  assert.ok(evalComparisonFigure(results, { wordPerplexity: true }).data.some((t) => t.yaxis === 'y4'));
});
