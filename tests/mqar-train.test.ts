import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { createMixer, MIXER_KINDS } from '../src/synthetic/mixers';
import { generateMqarSplits } from '../src/synthetic/mqar-data';
import { trainMqar } from '../src/synthetic/train';
import { runMqarGrid, evalLengthExpr, evalKeepWindow } from '../src/synthetic/grid';
import { parseMqarArgs } from '../src/cli/mqar';

test('every mixer maps [B, T, d] to [B, T, d], is causal and has finite, non-zero gradients', async () => {
  await loadBackend();
  for (const kind of MIXER_KINDS) {
    const m = createMixer(kind, { dModel: 16, keepWindowSize: 4, dState: 8, seed: 2 });
    const x = tf.randomNormal([2, 12, 16], 0, 1, 'float32', 5) as tf.Tensor3D;
    const x2 = tf.concat([tf.slice(x, [0, 0, 0], [2, 11, 16]), tf.randomNormal([2, 1, 16], 0, 1, 'float32', 6)], 1) as tf.Tensor3D;
    const [early1, early2] = [m.apply(x), m.apply(x2)].map((y) => tf.slice(y, [0, 0, 0], [2, 11, 16]));
    const leak = tf.max(tf.abs(tf.sub(early1, early2))).dataSync()[0];
    assert.ok(leak < 1e-5, `${kind}: output before the changed last token moved by ${leak}`);
    const vars = [...m.parameters().values()];
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(m.apply(x))) as tf.Scalar, vars);
    let nonZero = 0;
    for (const v of vars) {
      const g = grads[v.name];
      assert.ok(g, `${kind}: no gradient for ${v.name}`);
      assert.ok(g.dataSync().every(Number.isFinite), `${kind}: non-finite gradient for ${v.name}`);
      if (tf.max(tf.abs(g)).dataSync()[0] > 0) nonZero++;
    }
    assert.ok(nonZero >= vars.length / 2, `${kind}: only ${nonZero}/${vars.length} parameters get a gradient`);
    tf.dispose([x, x2, early1, early2, value, ...Object.values(grads)]);
    m.dispose();
  }
});

test('a 2-layer attention model learns an easy MQAR setting, without leaking tensors', async () => {
  await loadBackend();
  const { train, test: testSet } = generateMqarSplits({ vocabSize: 32, seqLen: 16, numKvPairs: 2, trainExamples: 640, testExamples: 200, seed: 0, randomNonQueries: false });
  const before = tf.memory().numTensors;
  const epochs: number[] = [];
  const r = await trainMqar(
    { mixer: 'attention', dModel: 32, lr: 3e-3, epochs: 4, train, test: testSet, batchSize: 32, seed: 1 },
    { onEpoch: (e) => epochs.push(e.accuracy) },
  );
  assert.equal(tf.memory().numTensors, before, 'live tensors after training differ from before');
  // chance is 1/16 (values are [16, 32)); an untrained model is at ~0
  console.log(`easy MQAR accuracy per epoch: ${epochs.map((a) => a.toFixed(3)).join(' ')}`);
  assert.ok(r.accuracy > 0.3, `accuracy ${r.accuracy} after ${r.epochs} epochs; expected > 0.3 (chance 0.0625)`);
  assert.ok(Number.isFinite(r.loss) && r.loss < Math.log(32), `final loss ${r.loss} not below log(V)`);
});

test('the grid runner writes results.jsonl and the figure; dmattn and ssd cells train', async () => {
  await loadBackend();
  const out = mkdtempSync(join(tmpdir(), 'mqar-grid-'));
  const rows = await runMqarGrid({
    mixers: ['dmattn', 'ssd'], seqLens: [16], kvPairs: 2, vocabSize: 'L+1', dModels: [16], lrs: [3e-3], epochs: 1,
    trainExamples: 64, testExamples: 32, batchSize: 32, randomNonQueries: true, dState: 8, outDir: out,
  });
  assert.equal(rows.length, 2);
  const lines = readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  for (const l of lines) {
    for (const k of ['mixer', 'seq_len', 'kv_pairs', 'd_model', 'lr', 'accuracy', 'epochs', 'seconds']) assert.ok(k in l, `missing ${k}`);
    assert.equal(l.seq_len, 16);
    assert.equal(l.kv_pairs, 2);
    assert.equal(l.vocab_size, 17);
    assert.ok(l.accuracy >= 0 && l.accuracy <= 1);
  }
  assert.deepEqual(lines.map((l) => l.mixer), ['dmattn', 'ssd']);
  const html = readFileSync(join(out, 'mqar.html'), 'utf8');
  assert.ok(html.includes('sequence length 16') && html.length > 100_000, 'figure HTML should embed plotly and the panel');
  // a second grid into the same folder does not wipe the first one's results unless asked to
  const again = { mixers: ['ssd' as const], seqLens: [16], kvPairs: 2, vocabSize: 'L+1', dModels: [16], lrs: [3e-3], epochs: 1,
    trainExamples: 64, testExamples: 32, batchSize: 32, dState: 8, outDir: out };
  await assert.rejects(runMqarGrid(again), /results\.jsonl already holds the results of an earlier MQAR grid; .*--overwrite/);
  assert.equal(readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n').length, 2, 'earlier results kept');
  assert.equal((await runMqarGrid({ ...again, overwrite: true })).length, 1);
  assert.equal(readFileSync(join(out, 'results.jsonl'), 'utf8').trim().split('\n').length, 1);
  assert.equal(parseMqarArgs(['--preset', 'smoke', '--out', out, '--overwrite']).overwrite, true);
});

test('bad settings are refused with the rule that failed', () => {
  const base = ['--mixers', 'attention', '--seq-lens', '64', '--d-models', '32', '--lrs', '1e-3', '--epochs', '1', '--out', '/tmp/x'];
  const grid = (extra: string[]) => runMqarGrid(parseMqarArgs([...base, ...extra]));
  return Promise.all([
    assert.rejects(grid(['--seq-lens', '63']), /MQAR: seqLen must be even .*seqLen=63/),
    assert.rejects(grid(['--kv-pairs', '17']), /MQAR: numKvPairs\*4 must be <= seqLen .*numKvPairs=17, seqLen=64/),
    assert.rejects(grid(['--vocab', '64']), /MQAR: vocabSize must be larger than seqLen .*vocabSize=64, seqLen=64/),
    assert.rejects(grid(['--kv-pairs', 'L/3']), /kvPairs: 'L\/3' gives 21.333333333333332 for L=64, not an integer/),
    assert.rejects(grid(['--mixers', 'mamba']), /unknown mixer 'mamba'; choose from attention, dmattn, ssd, linear/),
    assert.rejects(grid(['--d-models', '33']), /d_model must be an even integer >= 2, got 33/),
  ]).then(() => {
    assert.throws(() => parseMqarArgs(['--preset', 'gpu', '--out', 'x']), /--preset: unknown preset 'gpu'; choose one of cpu, paper, smoke/);
    assert.throws(() => parseMqarArgs(['--mixers', 'attention']), /--seq-lens is required/);
    assert.throws(() => parseMqarArgs(['--preset', 'cpu']), /--out is required/);
    assert.throws(() => parseMqarArgs(['--preset', 'cpu', '--out', 'x', '--lr', '1']), /unknown option --lr/);
    assert.equal(evalLengthExpr('L/4', 256, 'k'), 64);
    assert.equal(evalLengthExpr('L+1', 256, 'v'), 257);
    assert.equal(evalLengthExpr('2*L', 8, 'v'), 16);
    // DMAttn's keep window: multiples of the kv pairs K, or sizes in L
    assert.deepEqual([evalKeepWindow('K', 64, 4), evalKeepWindow('2*K', 64, 4), evalKeepWindow('L', 64, 4), evalKeepWindow('L/2', 64, 4), evalKeepWindow(8, 64, 4)], [4, 8, 64, 32, 8]);
    assert.throws(() => evalKeepWindow('K/2', 64, 4), /keepWindowSize: 'K\/2' is not K, n\*K \(e.g. 2\*K\), L, a number or an expression in L/);
    const p = parseMqarArgs(['--preset', 'paper', '--out', 'o']);
    assert.deepEqual(p.seqLens, [256, 512, 1024, 2048]);
    assert.deepEqual(p.dModels, [32, 64, 128, 256]);
    assert.equal(p.kvPairs, 'L/4');
  });
});
