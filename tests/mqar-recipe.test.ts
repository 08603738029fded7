// The MQAR training recipe's options (init, dmattn mask init, q/k norm, warmup, seeds) and the accuracy curves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { createMixer } from '../src/synthetic/mixers';
import { generateMqarSplits } from '../src/synthetic/mqar-data';
import { outProjStdFor, trainMqar } from '../src/synthetic/train';
import { runMqarGrid } from '../src/synthetic/grid';
import { MQAR_RECIPES, mqarRecipe } from '../src/synthetic/recipe';
import { MQAR_PRESETS, parseMqarArgs } from '../src/cli/mqar';
import { mqarCurveFigure, mqarFigure } from '../src/viz/mqar';

const std = (v: tf.Tensor): number => {
  const x = v.dataSync();
  let s = 0;
  for (const a of x) s += a * a;
  return Math.sqrt(s / x.length);
};

test('init options: the residual-writing projection is scaled, A and dt_proj std are set, q/k norm can be turned off', async () => {
  await loadBackend();
  assert.equal(outProjStdFor('plain', 2), 0.02);
  assert.equal(outProjStdFor('scaled', 2), 0.01);
  assert.ok(Math.abs(outProjStdFor('scaled', 8) - 0.02 / 4) < 1e-12);
  const outName = { attention: 'out_proj.weight', dmattn: 'o_proj.weight', ssd: 'out_proj.weight', linear: 'out_proj.weight' } as const;
  for (const kind of ['attention', 'dmattn', 'ssd', 'linear'] as const) {
    const base = { dModel: 32, keepWindowSize: 4, dState: 8, seed: 3 };
    const plain = createMixer(kind, base);
    const scaled = createMixer(kind, { ...base, outProjStd: 0.005 });
    const a = plain.parameters().get(outName[kind])!;
    const b = scaled.parameters().get(outName[kind])!;
    // same seeded draw, a quarter of the std: exactly a quarter of every entry
    const diff = tf.max(tf.abs(tf.sub(tf.mul(a, 0.25), b))).dataSync()[0];
    assert.ok(diff < 1e-7, `${kind}: scaled out projection is not 0.25 x the plain one (max diff ${diff})`);
    assert.ok(Math.abs(std(a) - 0.02) < 0.003, `${kind}: plain out projection std ${std(a)}`);
    // nothing else moved
    for (const [name, v] of plain.parameters()) {
      if (name === outName[kind]) continue;
      const d = tf.max(tf.abs(tf.sub(v, scaled.parameters().get(name)!))).dataSync()[0];
      assert.equal(d, 0, `${kind}: ${name} changed with outProjStd`);
    }
    plain.dispose();
    scaled.dispose();
  }
  const dm = createMixer('dmattn', { dModel: 32, keepWindowSize: 4, seed: 1, dmattnA: -2, dtProjStd: 0.5, qkNorm: false });
  const dmDefault = createMixer('dmattn', { dModel: 32, keepWindowSize: 4, seed: 1 });
  const p = dm.parameters();
  assert.deepEqual(Array.from(p.get('A')!.dataSync()), [-2]);
  const dtRatio = tf.max(tf.abs(tf.sub(tf.mul(dmDefault.parameters().get('dt_proj.weight')!, 25), p.get('dt_proj.weight')!))).dataSync()[0];
  assert.ok(dtRatio < 1e-6, `dt_proj with std 0.5 is not 25 x the default 0.02 draw (max diff ${dtRatio})`);
  assert.ok(!p.has('q_norm.weight') && !p.has('k_norm.weight'), 'qkNorm false still has q/k norm weights');
  assert.deepEqual(Array.from(dmDefault.parameters().get('A')!.dataSync()), [0]);
  assert.ok(dmDefault.parameters().has('q_norm.weight'));
  dm.dispose();
  dmDefault.dispose();
});

test('trainMqar records the accuracy curve: step 0, every evalEvery steps, every epoch end; stops mid-epoch at the target', async () => {
  await loadBackend();
  const { train, test: testSet } = generateMqarSplits({ vocabSize: 32, seqLen: 16, numKvPairs: 2, trainExamples: 320, testExamples: 64, seed: 0, randomNonQueries: false });
  const before = tf.memory().numTensors;
  // 320 / 32 = 10 steps per epoch, a point every 4 steps: 0, 4, 8, 10 | 12, 16, 20
  const r = await trainMqar({ mixer: 'attention', dModel: 16, lr: 3e-3, epochs: 2, train, test: testSet, batchSize: 32, evalEvery: 4, stopAccuracy: 1.01, seed: 1 });
  assert.equal(tf.memory().numTensors, before, 'training leaked tensors');
  assert.deepEqual(r.curve.map((p) => p.step), [0, 4, 8, 10, 12, 16, 20]);
  assert.equal(r.steps, 20);
  assert.equal(r.stopped, 'epochs');
  assert.ok(Number.isNaN(r.curve[0].loss), 'step 0 has no training loss');
  for (const p of r.curve.slice(1)) assert.ok(Number.isFinite(p.loss) && p.loss > 0, `loss ${p.loss} at step ${p.step}`);
  for (const p of r.curve) assert.ok(p.accuracy >= 0 && p.accuracy <= 1);
  assert.equal(r.accuracy, Math.max(...r.curve.map((p) => p.accuracy)), 'best accuracy is the best curve point');
  assert.equal(r.final_accuracy, r.curve[r.curve.length - 1].accuracy);
  assert.ok(r.curve.every((p, i) => i === 0 || p.seconds >= r.curve[i - 1].seconds));

  // a target the untrained model is below and the first curve point after step 0 reaches: stop there, mid-epoch
  const target = await trainMqar({ mixer: 'attention', dModel: 16, lr: 3e-3, epochs: 2, train, test: testSet, batchSize: 32, evalEvery: 4, stopAccuracy: 1e-9, seed: 1 });
  assert.equal(target.stopped, 'accuracy');
  assert.equal(target.steps, 4);
  assert.deepEqual(target.curve.map((p) => p.step), [0, 4]);
  assert.equal(target.epochs, 1);

  // a step budget mid-epoch: train 6 steps, evaluate there, say why it stopped
  const budget = await trainMqar({ mixer: 'attention', dModel: 16, lr: 3e-3, epochs: 2, train, test: testSet, batchSize: 32, evalEvery: 4, stopAccuracy: 1.01, maxSteps: 6, seed: 1 });
  assert.equal(budget.stopped, 'steps');
  assert.equal(budget.steps, 6);
  assert.deepEqual(budget.curve.map((p) => p.step), [0, 4, 6]);
  // a step budget at an epoch boundary: the epoch-end evaluation is the last point, not repeated
  const boundary = await trainMqar({ mixer: 'attention', dModel: 16, lr: 3e-3, epochs: 2, train, test: testSet, batchSize: 32, evalEvery: 4, stopAccuracy: 1.01, maxSteps: 10, seed: 1 });
  assert.equal(boundary.stopped, 'steps');
  assert.deepEqual(boundary.curve.map((p) => p.step), [0, 4, 8, 10]);
  assert.equal(boundary.epochs, 1);
  assert.equal(tf.memory().numTensors, before, 'training leaked tensors');
});

test('the grid runs every cell per seed and writes seed, recipe and curve to results.jsonl and both figures', async () => {
  await loadBackend();
  const out = mkdtempSync(join(tmpdir(), 'mqar-seeds-'));
  const rows = await runMqarGrid({
    mixers: ['attention', 'dmattn'], seqLens: [16], kvPairs: 2, vocabSize: 32, dModels: [16], lrs: [3e-3], epochs: 1,
    trainExamples: 64, testExamples: 32, batchSize: 32, randomNonQueries: false, seeds: [4, 5], evalEvery: 1,
    init: 'plain', qkNorm: false, dmattnA: -1, warmupFraction: 0.5, outDir: out,
  });
  assert.deepEqual(rows.map((r) => `${r.mixer}/${r.seed}`), ['attention/4', 'dmattn/4', 'attention/5', 'dmattn/5']);
  const lines = readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 4);
  for (const l of lines) {
    assert.deepEqual(l.curve.map((p: { step: number }) => p.step), [0, 1, 2], `curve of ${l.mixer} seed ${l.seed}`);
    assert.equal(l.recipe.init, 'plain');
    assert.equal(l.recipe.warmup_fraction, 0.5);
    assert.deepEqual(l.sweep[0].curve, l.curve);
  }
  assert.deepEqual(lines[1].recipe, {
    recipe: 'tuned', init: 'plain', epochs: 1, warmup_fraction: 0.5, weight_decay: 0.1, batch_size: 32, num_layers: 2, num_heads: 1,
    // the tuned window ends at 2K = 4 keys, after the full window until 0.99 and a 300-step shrink
    keep_window_size: 4, qk_norm: false, A: -1, dt_proj_std: MQAR_RECIPES.tuned.dtProjStd, keep_window_shrink_steps: 300, keep_window_shrink_at_accuracy: 0.99,
  });
  // 2 steps, far below 0.99: the trigger never fired, the window stayed at L, and the run says so
  assert.equal(lines[1].sweep[0].shrink_start_step, null);
  assert.equal(lines[0].recipe.qk_norm, undefined, 'dmattn-only fields on an attention row');
  // different seeds: different data and init, so different curves
  assert.notDeepEqual(lines[0].curve.map((p: { loss: number }) => p.loss), lines[2].curve.map((p: { loss: number }) => p.loss));
  const html = readFileSync(join(out, 'mqar.html'), 'utf8');
  assert.ok(html.includes('2 seeds') && html.includes('Test accuracy during training') && html.includes('L 16, d 16'), 'figure page misses the comparison or the curves');
  // the old choices come back with recipe 'first': plain init, q/k norm, keep window K, the lr sweep, 4 epochs
  const [old] = await runMqarGrid({ recipe: 'first', mixers: ['dmattn'], seqLens: [16], kvPairs: 2, vocabSize: 32, dModels: [16], trainExamples: 32, testExamples: 16, batchSize: 32, randomNonQueries: false });
  assert.deepEqual([old.recipe.init, old.recipe.qk_norm, old.recipe.keep_window_size, old.recipe.epochs, old.sweep.map((s) => s.lr)], ['plain', true, 2, 4, [1e-3, 3e-3]]);
  assert.equal(old.steps, 4);
  await assert.rejects(runMqarGrid({ mixers: ['attention'], seqLens: [16], kvPairs: 2, vocabSize: 32, dModels: [16], lrs: [1e-3], epochs: 1, trainExamples: 8, testExamples: 8, seeds: [] }),
    /seeds must be a non-empty list of non-negative integers, got \[\]/);
  await assert.rejects(runMqarGrid({ mixers: ['attention'], seqLens: [16], kvPairs: 2, vocabSize: 32, dModels: [16], lrs: [1e-3], epochs: 1, trainExamples: 8, testExamples: 8, init: 'xavier' as 'plain' }),
    /init must be 'scaled' or 'plain', got 'xavier'/);
  await assert.rejects(runMqarGrid({ mixers: ['attention'], seqLens: [16], kvPairs: 2, vocabSize: 32, dModels: [16], lrs: [1e-3], epochs: 1, trainExamples: 8, testExamples: 8, warmupFraction: 1 }),
    /warmupFraction must be in \[0, 1\), got 1/);
});

test('wm mqar: recipe flags parse, bad values are refused, presets carry the recipe', () => {
  const base = ['--mixers', 'dmattn', '--seq-lens', '64', '--d-models', '64', '--lrs', '1e-3', '--epochs', '1', '--out', 'o'];
  const o = parseMqarArgs([...base, '--seeds', '0,1,2', '--init', 'plain', '--warmup', '0.1', '--qk-norm', 'off', '--dmattn-a', '-1',
    '--dt-std', '0.3', '--eval-every', '10', '--weight-decay', '0']);
  assert.deepEqual(o.seeds, [0, 1, 2]);
  assert.equal(o.init, 'plain');
  assert.equal(o.warmupFraction, 0.1);
  assert.equal(o.qkNorm, false);
  assert.equal(o.dmattnA, -1);
  assert.equal(o.dtProjStd, 0.3);
  assert.equal(o.evalEvery, 10);
  assert.equal(o.weightDecay, 0);
  assert.equal(parseMqarArgs([...base, '--qk-norm', 'on']).qkNorm, true);
  assert.throws(() => parseMqarArgs([...base, '--qk-norm', 'maybe']), /--qk-norm: expected on or off, got 'maybe'/);
  assert.throws(() => parseMqarArgs([...base, '--seeds', '0,x']), /--seeds: '0,x' is not a comma-separated list of numbers/);
  // --seed alone overrides a preset's seeds
  assert.equal(parseMqarArgs(['--preset', 'cpu', '--seed', '7', '--out', 'o']).seeds, undefined);
  for (const name of Object.keys(MQAR_PRESETS)) {
    const p = parseMqarArgs(['--preset', name, '--out', 'o']);
    assert.equal(p.init, undefined, `preset ${name} overrides the recipe's init`);
    assert.equal(mqarRecipe(p.recipe).init, 'scaled', `preset ${name} does not train with the tuned recipe`);
  }
  const cpu = parseMqarArgs(['--preset', 'cpu', '--out', 'o']);
  assert.deepEqual([cpu.seqLens, cpu.kvPairs, cpu.vocabSize, cpu.randomNonQueries, cpu.dModels, cpu.seeds, cpu.batchSize], [[64], 4, 256, false, [64, 128], [0, 1, 2], 64]);
  // the tuned recipe: DMAttn's top-k curriculum to 2K keys; full-window: the same without top-k (the earlier tuned)
  assert.deepEqual(MQAR_RECIPES.tuned, {
    init: 'scaled', lrs: [1e-3], epochs: 10, warmupFraction: 0.05, weightDecay: 0.1, stopAccuracy: 0.99,
    keepWindowSize: '2*K', qkNorm: false, dmattnA: -1, dtProjStd: 0.02, keepWindowShrinkAtAccuracy: 0.99, keepWindowShrinkSteps: 300,
  });
  const { keepWindowShrinkAtAccuracy: _a, keepWindowShrinkSteps: _s, ...tunedFixedWindow } = MQAR_RECIPES.tuned;
  assert.deepEqual(MQAR_RECIPES['full-window'], { ...tunedFixedWindow, keepWindowSize: 'L', dmattnA: 0 });
  assert.equal(parseMqarArgs([...base, '--recipe', 'full-window']).recipe, 'full-window');
  const first = parseMqarArgs([...base, '--recipe', 'first']);
  assert.equal(first.recipe, 'first');
  assert.deepEqual(MQAR_RECIPES.first, { init: 'plain', lrs: [1e-3, 3e-3], epochs: 4, warmupFraction: 0.05, weightDecay: 0.1, stopAccuracy: 0.99, keepWindowSize: 'K', qkNorm: true, dmattnA: 0, dtProjStd: 0.02 });
  assert.throws(() => parseMqarArgs([...base, '--recipe', 'best']), /unknown recipe 'best'; choose one of tuned, full-window, first/);
  // without --lrs / --epochs the recipe's are used
  const bare = parseMqarArgs(['--mixers', 'attention', '--seq-lens', '64', '--d-models', '64', '--out', 'o']);
  assert.equal(bare.lrs, undefined);
  assert.equal(bare.epochs, undefined);
});

test('figures: seeds become a mean with worst-to-best error bars; curves are one line per run', () => {
  const f = mqarFigure([
    { mixer: 'dmattn', seqLen: 64, dModel: 64, accuracy: 0.2, seed: 0 },
    { mixer: 'dmattn', seqLen: 64, dModel: 64, accuracy: 1.0, seed: 1 },
    { mixer: 'dmattn', seqLen: 64, dModel: 64, accuracy: 0.9, seed: 2 },
    { mixer: 'dmattn', seqLen: 64, dModel: 32, accuracy: 0.1, seed: 0 },
  ]);
  assert.equal(f.data.length, 1);
  assert.deepEqual(f.data[0].x, [32, 64]);
  const y = f.data[0].y as number[];
  assert.ok(Math.abs(y[0] - 0.1) < 1e-12 && Math.abs(y[1] - 0.7) < 1e-12, `means ${y}`);
  const err = f.data[0].error_y as { array: number[]; arrayminus: number[] };
  assert.ok(Math.abs(err.array[1] - 0.3) < 1e-12 && Math.abs(err.arrayminus[1] - 0.5) < 1e-12 && err.array[0] === 0 && err.arrayminus[0] === 0);
  const c = mqarCurveFigure([
    { mixer: 'attention', seqLen: 64, dModel: 64, seed: 0, points: [{ step: 0, accuracy: 0 }, { step: 40, accuracy: 0.27 }, { step: 80, accuracy: 1 }] },
    { mixer: 'attention', seqLen: 64, dModel: 64, seed: 1, points: [{ step: 0, accuracy: 0 }, { step: 40, accuracy: 0.9 }] },
    { mixer: 'dmattn', seqLen: 64, dModel: 128, seed: 0, points: [{ step: 0, accuracy: 0 }] },
  ]);
  assert.equal(c.data.length, 3);
  assert.deepEqual(c.data.map((t) => t.showlegend), [true, false, true]);
  assert.deepEqual(c.data[0].x, [0, 40, 80]);
  assert.deepEqual(c.data[2].xaxis, 'x2');
  assert.equal(c.data[0].line && (c.data[0].line as { color: string }).color, (c.data[1].line as { color: string }).color);
  assert.throws(() => mqarCurveFigure([]), /no curves given/);
  assert.throws(() => mqarCurveFigure([{ mixer: 'ssd', seqLen: 16, dModel: 8, points: [] }]), /the curve of ssd at seqLen 16, dModel 8 has no points/);
  assert.throws(() => mqarCurveFigure([{ mixer: 'ssd', seqLen: 16, dModel: 8, points: [{ step: 1, accuracy: NaN }] }]), /ssd at seqLen 16, dModel 8: point .* is not a number/);
});
