import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unigramBaseline } from '../src/eval/unigram';

const rows = (xs: number[][]) => ({ numRows: xs.length, row: (i: number) => xs[i]! });

test('unigram baseline: add-one smoothed training frequencies, first token of each eval row not predicted', () => {
  // counts with add-one over vocab 4: [4, 2, 1, 1] of 8; eval predicts 0 (4/8) and 1 (2/8): (ln 2 + ln 4) / 2
  const b = unigramBaseline(rows([[0, 0, 0, 1]]), rows([[3, 0, 1]]), 4);
  assert.equal(b.evalTokens, 2);
  assert.equal(b.trainTokens, 4);
  assert.ok(Math.abs(b.loss - 1.5 * Math.LN2) < 1e-12, String(b.loss));
  assert.ok(Math.abs(b.perplexity - 2 ** 1.5) < 1e-9);
  assert.ok(Math.abs(b.uniformLoss - Math.log(4)) < 1e-12);
  assert.equal(unigramBaseline([[0, 0, 0, 1]], [[3, 0, 1]], 4).loss, b.loss); // plain arrays of rows work too
});

test('unigram baseline names a token id outside the vocabulary', () => {
  assert.throws(() => unigramBaseline(rows([[0, 7]]), rows([[0, 1]]), 4), /training row 0 position 1 has token id 7 outside the vocabulary \(size 4\)/);
  assert.throws(() => unigramBaseline(rows([[0]]), rows([[0]]), 4), /no predicted tokens/);
});
