// DMAttn's top-k window in MQAR: the shrinking-window curriculum (keepWindowShrinkSteps, --keep-window-shrink).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, loadBackend } from '../src/backend';
import { createMixer, hasKeepWindow } from '../src/synthetic/mixers';
import { keepWindowAt } from '../src/synthetic/train';
import { runMqarGrid, validateGrid } from '../src/synthetic/grid';
import { parseMqarArgs } from '../src/cli/mqar';

test('keepWindowAt: L at step 0, linear down to the target, then the target', () => {
  assert.equal(keepWindowAt(0, 100, 64, 4), 64);
  assert.equal(keepWindowAt(50, 100, 64, 4), 34);
  assert.equal(keepWindowAt(99, 100, 64, 4), 5);
  assert.equal(keepWindowAt(100, 100, 64, 4), 4);
  assert.equal(keepWindowAt(500, 100, 64, 4), 4);
  // a target at or above L is never narrowed
  assert.equal(keepWindowAt(0, 100, 64, 64), 64);
  assert.equal(keepWindowAt(10, 100, 32, 40), 40);
  // with a start: the full window first, then the same linear shrink, shifted
  assert.equal(keepWindowAt(299, 100, 64, 4, 300), 64);
  assert.equal(keepWindowAt(350, 100, 64, 4, 300), 34);
  assert.equal(keepWindowAt(400, 100, 64, 4, 300), 4);
  assert.equal(keepWindowAt(300, 0, 64, 4, 300), 4);
});

test('the DMAttn mixer takes a new window between calls: window L = no top-k, a narrow window changes the output', async () => {
  await loadBackend();
  const T = 12;
  const wide = createMixer('dmattn', { dModel: 16, keepWindowSize: T, seed: 2, dmattnA: -1, dtProjStd: 0.5, qkNorm: false });
  const ref = createMixer('dmattn', { dModel: 16, keepWindowSize: 1000, seed: 2, dmattnA: -1, dtProjStd: 0.5, qkNorm: false });
  assert.ok(hasKeepWindow(wide));
  assert.ok(!hasKeepWindow(createMixer('attention', { dModel: 16, seed: 2 })));
  const x = tf.randomNormal([2, T, 16], 0, 1, 'float32', 5) as tf.Tensor3D;
  const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
  const yRef = ref.apply(x);
  const yWide = wide.apply(x);
  assert.ok(maxDiff(yRef, yWide) < 1e-6, 'window L differs from no top-k');
  if (!hasKeepWindow(wide)) throw new Error('unreachable');
  wide.setKeepWindowSize(2);
  const yNarrow = wide.apply(x);
  assert.ok(maxDiff(yRef, yNarrow) > 1e-4, 'window 2 gives the same output as no top-k');
  // the first two rows have at most 2 allowed keys: top-2 keeps all of them, so they are unchanged
  const rows = (y: tf.Tensor) => tf.tidy(() => tf.slice(y, [0, 0, 0], [2, 2, 16]));
  assert.ok(maxDiff(rows(yRef), rows(yNarrow)) < 1e-6, 'rows with <= 2 keys changed under a window of 2');
  wide.setKeepWindowSize(T);
  assert.ok(maxDiff(yRef, wide.apply(x)) < 1e-6, 'setting the window back to L does not restore the output');
  tf.dispose([x, yRef, yWide, yNarrow]);
  wide.dispose();
  ref.dispose();
});

test('grid and CLI: --keep-window-shrink reaches the run and its row; bad values are refused', async () => {
  await loadBackend();
  const base = ['--mixers', 'dmattn', '--seq-lens', '16', '--d-models', '16', '--out', 'o'];
  assert.equal(parseMqarArgs([...base, '--keep-window-shrink', '200']).keepWindowShrinkSteps, 200);
  assert.equal(parseMqarArgs(base).keepWindowShrinkSteps, undefined);
  assert.equal(parseMqarArgs([...base, '--keep-window-start', '300']).keepWindowShrinkStart, 300);
  assert.throws(() => parseMqarArgs([...base, '--keep-window-shrink', 'soon']), /--keep-window-shrink: expected a number, got 'soon'/);
  const grid = { mixers: ['dmattn' as const], seqLens: [16], dModels: [16], trainExamples: 64, testExamples: 16, kvPairs: 2, vocabSize: 32 };
  assert.throws(() => validateGrid({ ...grid, keepWindowShrinkSteps: -1 }), /keepWindowShrinkSteps must be a non-negative integer, got -1/);
  assert.throws(() => validateGrid({ ...grid, keepWindowShrinkSteps: 1.5 }), /keepWindowShrinkSteps must be a non-negative integer, got 1.5/);
  assert.throws(() => validateGrid({ ...grid, keepWindowShrinkStart: -2 }), /keepWindowShrinkStart must be a non-negative integer, got -2/);
  const dir = mkdtempSync(join(tmpdir(), 'wm-mqar-topk-'));
  const before = tf.memory().numTensors;
  const rows = await runMqarGrid({ ...grid, keepWindowSize: 'K', keepWindowShrinkSteps: 3, keepWindowShrinkStart: 2, batchSize: 16, epochs: 2, evalEvery: 2, outDir: dir });
  assert.equal(tf.memory().numTensors, before, 'the shrinking-window run leaked tensors');
  assert.equal(rows[0].keep_window_size, 2);
  assert.equal(rows[0].recipe.keep_window_shrink_steps, 3);
  assert.equal(rows[0].recipe.keep_window_shrink_start, 2);
  assert.equal(rows[0].steps, 8);
  assert.ok(Number.isFinite(rows[0].sweep[0].loss));
  // early stop (and the best accuracy) only count once the window has reached K: with stop accuracy 0 every
  // evaluation passes, but the run must go on to the first evaluation at the final window (step 6 > 2 + 3)
  const early = await runMqarGrid({ ...grid, keepWindowSize: 'K', keepWindowShrinkSteps: 3, keepWindowShrinkStart: 2, batchSize: 16, epochs: 2, evalEvery: 2, stopAccuracy: 0 });
  assert.equal(early[0].steps, 6);
  assert.equal(early[0].sweep[0].stopped, 'accuracy');
  const plain = await runMqarGrid({ ...grid, keepWindowSize: 'K', batchSize: 16, epochs: 2, evalEvery: 2, stopAccuracy: 0 });
  assert.equal(plain[0].steps, 2, 'without a curriculum the run stops at the first evaluation past the target');
  const saved = JSON.parse(readFileSync(join(dir, 'results.jsonl'), 'utf8').trim());
  assert.equal(saved.recipe.keep_window_shrink_steps, 3);
});
