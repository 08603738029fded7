// The comparison figure: bars per (task, metric) and model with standard errors; perplexity on its own log panel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evalComparisonFigure } from '../src/viz';

test('evalComparisonFigure: one trace per model and panel, stderr as error bars, perplexity on a log axis', () => {
  const rows = ['base', 'sft', 'dpo'].flatMap((model, i) => [
    { task: 'embedded', metric: 'acc', value: 0.25 + 0.1 * i, stderr: 0.02, model },
    { task: 'embedded', metric: 'acc_norm_nospace', value: 0.3 + 0.1 * i, stderr: 0.02, model },
    { task: 'perplexity', metric: 'ppl', value: 100 - 10 * i, stderr: null, model },
  ]);
  const fig = evalComparisonFigure(rows);
  assert.equal(fig.data.length, 6);
  const scores = fig.data.filter((t) => t.yaxis === 'y');
  assert.deepEqual(scores.map((t) => t.name), ['base', 'sft', 'dpo']);
  assert.deepEqual(scores[2].x, ['embedded acc', 'embedded acc_norm_nospace']);
  assert.deepEqual(scores[2].y, [0.45, 0.5]);
  assert.deepEqual((scores[0].error_y as { array: number[] }).array, [0.02, 0.02]);
  assert.equal((fig.layout.yaxis2 as { type: string }).type, 'log');
  assert.equal(fig.layout.barmode, 'group');
  // log ticks: 1-1.5-2-3-5-7 over the one decade 80..100 spans, short labels (not plotly's minor 2, 3, ... 9)
  const y2 = fig.layout.yaxis2 as { tickvals: number[]; ticktext: string[] };
  assert.deepEqual(y2.tickvals, [10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700]);
  const wide = evalComparisonFigure(rows.map((r) => (r.metric === 'ppl' ? { ...r, value: r.model === 'base' ? 736 : 26621 } : r)));
  const y2w = wide.layout.yaxis2 as { tickvals: number[]; ticktext: string[] };
  assert.deepEqual(y2w.tickvals, [100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000]);
  assert.deepEqual(y2w.ticktext.slice(2, 7), ['500', '1k', '2k', '5k', '10k']);
  assert.ok(fig.data.filter((t) => t.yaxis === 'y2').every((t) => t.showlegend === false), 'one legend entry per model');
  assert.throws(() => evalComparisonFigure([]), /no results given/);
  assert.throws(() => evalComparisonFigure([{ task: 't', metric: 'acc', value: NaN, stderr: null, model: 'm' }]), /m t acc is not a number/);
});
