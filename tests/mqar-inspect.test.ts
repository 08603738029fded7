// Looking inside a trained MQAR model: attention probabilities and dynamic masks per layer, and the onTrained hook
// that hands the trained model to the caller before it is freed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/runtime/backend';
import { createMixer } from '../src/synthetic/mixers';
import { MqarModel } from '../src/synthetic/model';
import { generateMqarSplits } from '../src/synthetic/mqar-data';
import { trainMqar } from '../src/synthetic/train';
import { runMqarGrid } from '../src/synthetic/grid';

test('attentionProbs: the probabilities apply mixes the values with (attention and DMAttn), causal rows summing to 1', async () => {
  await loadBackend();
  const x = tf.randomNormal([1, 9, 16], 0, 1, 'float32', 3) as tf.Tensor3D;
  for (const kind of ['attention', 'dmattn'] as const) {
    const m = createMixer(kind, { dModel: 16, numHeads: 2, keepWindowSize: 4, dmattnA: -1, seed: 4 });
    const p = m.attentionProbs!(x).arraySync()[0]; // [heads][T][T]
    assert.equal(p.length, 2);
    p.forEach((head) => head.forEach((row, t) => {
      assert.ok(Math.abs(row.reduce((s, v) => s + v, 0) - 1) < 1e-5, `${kind}: row ${t} sums to 1`);
      assert.ok(row.slice(t + 1).every((v) => v === 0), `${kind}: row ${t} reads no later key`);
      if (kind === 'dmattn') assert.ok(row.filter((v) => v > 0).length <= 4, `dmattn: row ${t} keeps at most keep_window_size = 4 keys`);
    }));
    m.dispose();
  }
  x.dispose();
});

test('MqarModel.attentionMaps / dynamicMasks: one entry per layer; mixers without attention are refused by name', async () => {
  await loadBackend();
  const before = tf.memory().numTensors;
  const dm = new MqarModel({ mixer: 'dmattn', vocabSize: 16, dModel: 16, keepWindowSize: 3, dmattnA: -1, seed: 1 });
  const ids = [1, 9, 2, 10, 0, 1, 0, 2];
  const maps = dm.attentionMaps(ids);
  assert.deepEqual([maps.length, maps[0].length, maps[0][0].length, maps[0][0][0].length], [2, 1, 8, 8]);
  const d = dm.dynamicMasks(ids);
  assert.deepEqual([d.length, d[0].length, d[0][0].length], [2, 1, 8]);
  // A = -1: d = exp(-softplus(.)) lies in (0, 1); equal tokens at layer 0 get equal d
  assert.ok(d[0][0].every((v) => v > 0 && v < 1));
  assert.ok(Math.abs(d[0][0][0] - d[0][0][5]) < 1e-6);
  dm.dispose();
  const ssd = new MqarModel({ mixer: 'ssd', vocabSize: 16, dModel: 16, seed: 1 });
  assert.throws(() => ssd.attentionMaps(ids), /MqarModel: the ssd mixer has no attentionProbs/);
  ssd.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test('onTrained sees the trained model before it is disposed (trainMqar and runMqarGrid)', async () => {
  await loadBackend();
  const { train, test: testSet } = generateMqarSplits({ vocabSize: 16, seqLen: 8, numKvPairs: 2, trainExamples: 32, testExamples: 8, seed: 0 });
  let seen = 0;
  const r = await trainMqar(
    { mixer: 'attention', dModel: 8, lr: 1e-3, epochs: 1, train, test: testSet, batchSize: 16 },
    { onTrained: (model) => { seen++; assert.equal(model.attentionMaps([1, 9, 2, 10, 1, 0, 2, 0]).length, 2); } },
  );
  assert.equal(seen, 1);
  assert.equal(r.steps, 2);
  const runs: string[] = [];
  await runMqarGrid(
    { mixers: ['attention', 'linear'], seqLens: [8], kvPairs: 2, vocabSize: 16, dModels: [8], trainExamples: 32, testExamples: 8, epochs: 1, seeds: [3] },
    { onTrained: (model, run) => runs.push(`${run.mixer} d${run.d_model} seed ${run.seed} L${run.seq_len} ${model.options.mixer}`) },
  );
  assert.deepEqual(runs, ['attention d8 seed 3 L8 attention', 'linear d8 seed 3 L8 linear']);
});
