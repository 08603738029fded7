import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateMqar, generateMqarSplits, validateMqarOptions, IGNORE_INDEX, type MqarData } from '../src/synthetic/mqar-data';

/** Checks every invariant of the task definition on every example. */
function checkInvariants(d: MqarData, randomFill: boolean): void {
  const { seqLen: L, numKvPairs: K, vocabSize: V } = d;
  const half = Math.floor(V / 2);
  for (let e = 0; e < d.numExamples; e++) {
    const x = d.inputs.subarray(e * L, (e + 1) * L);
    const y = d.labels.subarray(e * L, (e + 1) * L);
    const valueOf = new Map<number, number>();
    const values = new Set<number>();
    for (let j = 0; j < K; j++) {
      const k = x[2 * j];
      const v = x[2 * j + 1];
      assert.ok(k >= 1 && k < half, `key ${k} outside [1, ${half})`);
      assert.ok(v >= half && v < V, `value ${v} outside [${half}, ${V})`);
      assert.ok(!valueOf.has(k), `key ${k} repeated in the context`);
      assert.ok(!values.has(v), `value ${v} repeated in the context`);
      valueOf.set(k, v);
      values.add(v);
      assert.equal(y[2 * j], IGNORE_INDEX);
      assert.equal(y[2 * j + 1], IGNORE_INDEX);
    }
    const queried = new Set<number>();
    for (let t = 2 * K; t < L; t++) {
      if (y[t] === IGNORE_INDEX) {
        if (!randomFill) assert.equal(x[t], 0, `non-query position ${t} should be filler 0`);
        else assert.ok(x[t] >= 0 && x[t] < V);
        continue;
      }
      assert.equal((t - 2 * K) % 2, 0, `query at odd offset ${t - 2 * K}`);
      assert.ok(valueOf.has(x[t]), `query token ${x[t]} is not a key of the context`);
      assert.equal(y[t], valueOf.get(x[t]), 'label is not the value of the queried key');
      assert.ok(!queried.has(x[t]), `key ${x[t]} queried twice`);
      queried.add(x[t]);
    }
    assert.equal(queried.size, K, 'every key is queried exactly once');
  }
}

test('MQAR invariants hold on many seeds and settings (filler 0 and random non-queries)', () => {
  const settings = [
    { vocabSize: 8192, seqLen: 64, numKvPairs: 4 },
    { vocabSize: 8192, seqLen: 128, numKvPairs: 8 },
    { vocabSize: 257, seqLen: 256, numKvPairs: 64 },
    { vocabSize: 65, seqLen: 64, numKvPairs: 16 },
    { vocabSize: 21, seqLen: 20, numKvPairs: 3 },
  ];
  for (const s of settings) {
    for (const randomNonQueries of [false, true]) {
      for (let seed = 0; seed < 10; seed++) {
        const d = generateMqar({ ...s, numExamples: 50, seed, randomNonQueries });
        checkInvariants(d, randomNonQueries);
      }
    }
  }
});

test('MQAR is deterministic for a seed and differs across seeds', () => {
  const o = { vocabSize: 8192, seqLen: 128, numKvPairs: 16, numExamples: 200, randomNonQueries: true };
  const a = generateMqar({ ...o, seed: 3 });
  const b = generateMqar({ ...o, seed: 3 });
  const c = generateMqar({ ...o, seed: 4 });
  assert.deepEqual(a.inputs, b.inputs);
  assert.deepEqual(a.labels, b.labels);
  assert.notDeepEqual(a.inputs, c.inputs);
});

test('power-law query placement: a = 0.01 favours short gaps, a = 1 is uniform', () => {
  // L = 128, K = 8: S = 56 slots; mean slot of the first key in context order.
  const meanSlot = (powerA: number): number => {
    const d = generateMqar({ vocabSize: 8192, seqLen: 128, numKvPairs: 8, numExamples: 2000, seed: 1, powerA });
    let s = 0;
    for (let e = 0; e < d.numExamples; e++) {
      const row = d.inputs.subarray(e * 128, (e + 1) * 128);
      const key = row[0];
      for (let t = 16; t < 128; t++) if (row[t] === key && d.labels[e * 128 + t] !== IGNORE_INDEX) s += (t - 16) / 2;
    }
    return s / d.numExamples;
  };
  const skewed = meanSlot(0.01);
  const uniform = meanSlot(1);
  assert.ok(Math.abs(uniform - 27.5) < 1.5, `uniform mean slot ${uniform} should be near 27.5`);
  assert.ok(skewed < uniform - 5, `a=0.01 mean slot ${skewed} should be well below uniform ${uniform}`);
});

test('train and test splits never share an example, even with a tiny vocabulary', () => {
  for (const seed of [0, 1, 2]) {
    const { train, test } = generateMqarSplits({ vocabSize: 9, seqLen: 8, numKvPairs: 2, trainExamples: 300, testExamples: 100, seed });
    const L = 8;
    const rows = new Set<string>();
    for (let e = 0; e < train.numExamples; e++) rows.add(train.inputs.subarray(e * L, (e + 1) * L).join(','));
    for (let e = 0; e < test.numExamples; e++) assert.ok(!rows.has(test.inputs.subarray(e * L, (e + 1) * L).join(',')));
    checkInvariants(test, false);
  }
  const big = generateMqarSplits({ vocabSize: 8192, seqLen: 64, numKvPairs: 4, trainExamples: 2000, testExamples: 500, seed: 5 });
  assert.notDeepEqual(big.train.inputs.subarray(0, 64), big.test.inputs.subarray(0, 64));
});

test('100k examples of length 256 are generated in seconds', () => {
  const t = Date.now();
  const d = generateMqar({ vocabSize: 8192, seqLen: 256, numKvPairs: 64, numExamples: 100_000, seed: 0, randomNonQueries: true });
  assert.equal(d.inputs.length, 100_000 * 256);
  console.log(`generated 100k x 256 in ${Date.now() - t} ms`);
});

test('impossible settings are refused with the rule that failed', () => {
  const base = { vocabSize: 8192, seqLen: 64, numKvPairs: 4 };
  assert.throws(() => validateMqarOptions({ ...base, seqLen: 63 }), /MQAR: seqLen must be even .*seqLen=63/);
  assert.throws(() => validateMqarOptions({ ...base, numKvPairs: 17 }), /MQAR: numKvPairs\*4 must be <= seqLen .*numKvPairs=17, seqLen=64/);
  assert.throws(() => validateMqarOptions({ ...base, vocabSize: 64 }), /MQAR: vocabSize must be larger than seqLen .*vocabSize=64, seqLen=64/);
  assert.throws(() => validateMqarOptions({ ...base, numKvPairs: 0 }), /MQAR: numKvPairs must be a positive integer, got 0/);
  assert.throws(() => generateMqar({ ...base, numExamples: 1, seed: 0, powerA: 0 }), /MQAR: powerA must be > 0, got 0/);
  assert.throws(() => generateMqar({ ...base, numExamples: -1, seed: 0 }), /MQAR: numExamples must be a non-negative integer, got -1/);
});
