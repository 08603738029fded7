// DMAttn's top-k window in MQAR: the shrinking-window curriculum (keepWindowShrinkSteps, --keep-window-shrink).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { createMixer, hasKeepWindow } from '../src/synthetic/mixers';
import { keepWindowAt, trainMqar } from '../src/synthetic/train';
import { generateMqarSplits } from '../src/synthetic/mqar-data';
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
  const plain = await runMqarGrid({ ...grid, recipe: 'full-window', keepWindowSize: 'K', batchSize: 16, epochs: 2, evalEvery: 2, stopAccuracy: 0 });
  assert.equal(plain[0].steps, 2, 'without a curriculum the run stops at the first evaluation past the target');
  const saved = JSON.parse(readFileSync(join(dir, 'results.jsonl'), 'utf8').trim());
  assert.equal(saved.recipe.keep_window_shrink_steps, 3);
});

test('keepWindowShrinkAtAccuracy: the window stays at L until an evaluation reaches the accuracy, then shrinks from there', async () => {
  await loadBackend();
  const { train, test: testSet } = generateMqarSplits({ vocabSize: 32, seqLen: 16, numKvPairs: 2, trainExamples: 128, testExamples: 64, seed: 0, randomNonQueries: false });
  const common = { mixer: 'dmattn' as const, dModel: 16, lr: 3e-3, epochs: 2, train, test: testSet, batchSize: 16, evalEvery: 2, stopAccuracy: 1.01, seed: 1, dmattnA: -1 };
  // the full-window run (window L = 16, no curriculum) gives the curve the trigger reads
  const full = await trainMqar({ ...common, keepWindowSize: 16 });
  assert.equal(full.curriculum, null, 'window L has nothing to narrow');
  const threshold = full.curve.find((p) => p.step > 0 && p.accuracy > 0)?.accuracy;
  assert.ok(threshold !== undefined, 'the full-window run never got a test example right');
  const expected = full.curve.find((p) => p.accuracy >= threshold)!.step;
  const before = tf.memory().numTensors;
  const r = await trainMqar({ ...common, keepWindowSize: 2, keepWindowShrinkSteps: 2, keepWindowShrinkAtAccuracy: threshold });
  assert.equal(tf.memory().numTensors, before, 'the triggered curriculum (or setting A = -1) leaked tensors');
  assert.deepEqual(r.curriculum, { shrink_steps: 2, start: null, at_accuracy: threshold, started_at: expected });
  // up to the trigger it is the full-window run, point for point; two steps after it the window is 2 and the run differs
  const upTo = (c: typeof r.curve, s: number) => c.filter((p) => p.step <= s).map((p) => [p.step, p.accuracy, p.loss]);
  assert.deepEqual(upTo(r.curve, expected), upTo(full.curve, expected));
  const after = r.curve.find((p) => p.step >= expected + 4)!;
  assert.notEqual(after.loss, full.curve.find((p) => p.step === after.step)!.loss, 'the run did not change after the trigger');
  // the best accuracy counts only the final window: evaluations from step expected + 2 on
  assert.equal(r.accuracy, Math.max(...r.curve.filter((p) => p.step >= expected + 2).map((p) => p.accuracy)));
  // an accuracy never reached: the window stays wide, the run says so, and its accuracy is the wide model's last
  const never = await trainMqar({ ...common, keepWindowSize: 2, keepWindowShrinkSteps: 2, keepWindowShrinkAtAccuracy: 1 });
  assert.equal(never.curriculum?.started_at, null);
  assert.deepEqual(never.curve.map((p) => p.loss), full.curve.map((p) => p.loss));
  assert.equal(never.accuracy, never.final_accuracy);
  // with a step start as well, whichever comes first: step 4 here, before the trigger can fire at 1.0
  const capped = await trainMqar({ ...common, keepWindowSize: 2, keepWindowShrinkSteps: 2, keepWindowShrinkStart: 4, keepWindowShrinkAtAccuracy: 1 });
  assert.deepEqual(capped.curriculum, { shrink_steps: 2, start: 4, at_accuracy: 1, started_at: 4 });
  assert.equal(tf.memory().numTensors, before, 'the curriculum runs leaked tensors');
  // nothing to narrow: attention, or DMAttn at window L, ignore the curriculum and count every evaluation
  for (const other of [{ mixer: 'attention' as const }, { keepWindowSize: 16 }]) {
    const x = await trainMqar({ ...common, ...other, keepWindowShrinkSteps: 2, keepWindowShrinkAtAccuracy: 1 });
    assert.equal(x.curriculum, null);
    assert.equal(x.accuracy, Math.max(...x.curve.map((p) => p.accuracy)));
  }
  await assert.rejects(trainMqar({ ...common, keepWindowSize: 2, keepWindowShrinkAtAccuracy: 0 }), /keepWindowShrinkAtAccuracy must be in \(0, 1\], got 0/);
  const grid = { mixers: ['dmattn' as const], seqLens: [16], dModels: [16], trainExamples: 64, testExamples: 16, kvPairs: 2, vocabSize: 32 };
  assert.throws(() => validateGrid({ ...grid, keepWindowShrinkAtAccuracy: 1.5 }), /keepWindowShrinkAtAccuracy must be in \(0, 1\], got 1.5/);
  const base = ['--mixers', 'dmattn', '--seq-lens', '16', '--d-models', '16', '--out', 'o'];
  assert.equal(parseMqarArgs([...base, '--keep-window-start-at', '0.9']).keepWindowShrinkAtAccuracy, 0.9);
  assert.throws(() => parseMqarArgs([...base, '--keep-window-start-at', 'soon']), /--keep-window-start-at: expected a number, got 'soon'/);
});
