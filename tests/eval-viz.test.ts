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
  assert.ok(fig.data.filter((t) => t.yaxis === 'y2').every((t) => t.showlegend === false), 'one legend entry per model');
  assert.throws(() => evalComparisonFigure([]), /no results given/);
  assert.throws(() => evalComparisonFigure([{ task: 't', metric: 'acc', value: NaN, stderr: null, model: 'm' }]), /m t acc is not a number/);
});
