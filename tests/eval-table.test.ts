import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatResultsTable, type EvalResult } from '../src/eval/run';

test('formatResultsTable leaves word_perplexity out unless asked for', () => {
  const base = { task: 'ppl_brown', stderr: null, n: 12, shots: 0, model: 'base', backend: 'wasm', seconds: 1 };
  const rows = [{ ...base, metric: 'ppl', value: 747.25 }, { ...base, metric: 'word_perplexity', value: 5012 }, { ...base, metric: 'bits_per_byte', value: 2.1 }] as EvalResult[];
  const table = formatResultsTable(rows);
  assert.deepEqual(table.split('\n').slice(2).map((l) => l.split(/\s+/)[1]), ['ppl', 'bits_per_byte']);
  assert.match(formatResultsTable(rows, { wordPerplexity: true }), /word_perplexity\s+12\s+0\s+5012\.000/);
});
