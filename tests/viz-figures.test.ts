// What each notebook figure must show (the builders in src/viz), checked on the figure JSON: the panels it has,
// the axis each quantity is on, that a raw curve and its smoothed curve share a colour, that titles fit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dpoCurvesFigure, evalComparisonFigure, type PlotlyTrace } from '../src/viz';

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
