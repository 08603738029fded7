import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/runtime/backend';
import { SSD } from '../src/modules/ssd';
import { ssdChunkScan, ssdRecurrentScan } from '../src/modules/ssd-mixer';

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

test('the one SSD scan with one B/C group for all heads (the MQAR block): chunked equals the step-by-step recurrence (chunk sizes that do and do not divide the length)', async () => {
  await loadBackend();
  for (const [T, chunks] of [[13, [1, 3, 4, 13, 16]], [20, [5, 6, 8]], [33, [8, 32]]] as Array<[number, number[]]>) {
    const b = 2, h = 3, p = 4, n = 5;
    tf.tidy(() => {
      const x = tf.randomNormal([b, T, h, p], 0, 1, 'float32', T) as tf.Tensor4D;
      const dt = tf.softplus(tf.randomNormal([b, T, h], 0, 1, 'float32', T + 1)) as tf.Tensor3D;
      const A = tf.neg(tf.exp(tf.randomNormal([h], 0, 0.5, 'float32', T + 2))) as tf.Tensor1D;
      // one group: [b, T, n] seen by every head
      const B = tf.broadcastTo(tf.randomNormal([b, T, 1, n], 0, 1, 'float32', T + 3), [b, T, h, n]);
      const C = tf.broadcastTo(tf.randomNormal([b, T, 1, n], 0, 1, 'float32', T + 4), [b, T, h, n]);
      const ref = ssdRecurrentScan(x, dt, A, B, C).y;
      const scale = tf.max(tf.abs(ref)).dataSync()[0];
      for (const q of chunks) {
        const y = ssdChunkScan(x, dt, A, B, C, q).y;
        assert.deepEqual(y.shape, [b, T, h, p]);
        const err = maxAbsDiff(y, ref);
        assert.ok(err < 1e-5 * Math.max(1, scale), `T=${T} chunk=${q}: max |chunked - recurrent| = ${err} (scale ${scale})`);
      }
    });
  }
});

test('ssdChunkScan: a shared B/C group [b, T, 1, n] equals its copy per head (y, state, gradients), withState=false skips the state, and a single chunk from a zero state ends in the recurrent state', async () => {
  await loadBackend();
  const b = 2, T = 12, h = 3, p = 4, n = 5;
  tf.tidy(() => {
    const x = tf.randomNormal([b, T, h, p], 0, 1, 'float32', 21);
    const dt = tf.softplus(tf.randomNormal([b, T, h], 0, 1, 'float32', 22));
    const A = tf.neg(tf.exp(tf.randomNormal([h], 0, 0.5, 'float32', 23)));
    const B1 = tf.randomNormal([b, T, 1, n], 0, 1, 'float32', 24), C1 = tf.randomNormal([b, T, 1, n], 0, 1, 'float32', 25);
    const state0 = tf.randomNormal([b, h, p, n], 0, 1, 'float32', 26);
    const toHeads = (t: tf.Tensor) => tf.broadcastTo(t, [b, T, h, n]);
    const ref = ssdRecurrentScan(x, dt, A, toHeads(B1), toHeads(C1));
    for (const [q, s0] of [[T, null], [16, null], [5, null], [T, state0], [4, state0]] as Array<[number, tf.Tensor | null]>) {
      const perHead = ssdChunkScan(x, dt, A, toHeads(B1), toHeads(C1), q, s0);
      const shared = ssdChunkScan(x, dt, A, B1, C1, q, s0);
      assert.ok(maxAbsDiff(shared.y, perHead.y) < 1e-6, `chunk ${q}${s0 ? ' with state0' : ''}: y`);
      assert.ok(maxAbsDiff(shared.state, perHead.state) < 1e-6, `chunk ${q}${s0 ? ' with state0' : ''}: state`);
      const noState = ssdChunkScan(x, dt, A, B1, C1, q, s0, false);
      assert.equal(noState.state, null);
      assert.equal(maxAbsDiff(noState.y, shared.y), 0, `chunk ${q}: y without the state`);
      if (!s0) assert.ok(maxAbsDiff(shared.state, ref.state) < 1e-5, `chunk ${q}: final state vs the recurrence`);
      // gradients of a loss on y reach x, dt, B and C the same way through the shared group and through its copies
      const loss = (Bv: tf.Tensor, Cv: tf.Tensor) => (xv: tf.Tensor, dv: tf.Tensor, bv: tf.Tensor, cv: tf.Tensor) =>
        tf.sum(tf.mul(ssdChunkScan(xv, dv, A, Bv === B1 ? bv : toHeads(bv), Cv === C1 ? cv : toHeads(cv), q, s0, false).y, x)) as tf.Scalar;
      const gShared = tf.grads(loss(B1, C1))([x, dt, B1, C1]);
      const gCopies = tf.grads(loss(toHeads(B1), toHeads(C1)))([x, dt, B1, C1]);
      ['x', 'dt', 'B', 'C'].forEach((name, i) => {
        const scale = tf.max(tf.abs(gCopies[i])).dataSync()[0];
        assert.ok(maxAbsDiff(gShared[i], gCopies[i]) < 1e-5 * Math.max(1, scale), `chunk ${q}${s0 ? ' with state0' : ''}: d${name}`);
      });
    }
    assert.throws(() => ssdChunkScan(x, dt, A, tf.zeros([b, T, 2, n]), tf.zeros([b, T, 2, n]), 4), /B and C need 3 heads \(one per head\) or 1 \(shared\), got 2 and 2/);
  });
});

test('SSD layer: causal, finite gradients for every parameter, no tensor leak', async () => {
  await loadBackend();
  const m = new SSD({ dModel: 16, dState: 8, rope: true, chunkSize: 4, seed: 3 });
  const x = tf.randomNormal([2, 10, 16], 0, 1, 'float32', 9) as tf.Tensor3D;
  // causality: changing the last token leaves earlier outputs unchanged
  const x2 = tf.concat([tf.slice(x, [0, 0, 0], [2, 9, 16]), tf.randomNormal([2, 1, 16], 0, 1, 'float32', 10)], 1) as tf.Tensor3D;
  const y1 = m.apply(x);
  const y2 = m.apply(x2);
  assert.ok(maxAbsDiff(tf.slice(y1, [0, 0, 0], [2, 9, 16]), tf.slice(y2, [0, 0, 0], [2, 9, 16])) < 1e-6);
  assert.ok(maxAbsDiff(tf.slice(y1, [0, 9, 0], [2, 1, 16]), tf.slice(y2, [0, 9, 0], [2, 1, 16])) > 1e-6);
  tf.dispose([y1, y2, x2]);
  const vars = [...m.parameters().values()];
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(m.apply(x))) as tf.Scalar, vars);
    for (const v of vars) {
      const g = grads[v.name];
      assert.ok(g, `no gradient for ${v.name}`);
      const data = g.dataSync();
      assert.ok(data.every(Number.isFinite), `non-finite gradient for ${v.name}`);
    }
    assert.ok(Object.values(grads).some((g) => tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) > 0));
    tf.dispose([value, ...Object.values(grads)]);
  }
  assert.equal(tf.memory().numTensors, before, 'live tensor count grew across steps');
  m.dispose();
  x.dispose();
});

test('Taylor linear attention (quadratic form) equals the recurrent form with explicit features', async () => {
  await loadBackend();
  const { TaylorLinearAttention } = await import('../src/modules/linear-attention');
  const f = 4, d = 6, T = 7;
  const m = new TaylorLinearAttention({ dModel: d, featureDim: f, convWidth: 0, seed: 4 });
  const x = tf.randomNormal([1, T, d], 0, 3, 'float32', 11) as tf.Tensor3D;
  const y = m.apply(x).arraySync() as number[][][];
  // recurrent reference on the host: state S = Σ phi(k) v^T, z = Σ phi(k)
  const w = Object.fromEntries([...m.parameters()].map(([k, v]) => [k.split('_')[0], v.arraySync() as number[][]]));
  const xs = x.arraySync()[0];
  const mat = (a: number[], W: number[][]) => W.map((row) => row.reduce((s, wi, i) => s + wi * a[i], 0)); // W [out, in] (torch layout)
  const phi = (z: number[]) => [1, ...z.map((zi) => zi / Math.pow(f, 0.25)), ...z.flatMap((a) => z.map((b) => (a * b) / (Math.SQRT2 * Math.sqrt(f))))];
  let S: number[][] = [];
  let zsum: number[] = [];
  for (let t = 0; t < T; t++) {
    const qk = mat(xs[t], w['qk']);
    const [q, k] = [qk.slice(0, f), qk.slice(f)];
    const v = mat(xs[t], w['v']);
    const pk = phi(k);
    if (t === 0) {
      S = pk.map(() => new Array(d).fill(0));
      zsum = new Array(pk.length).fill(0);
    }
    pk.forEach((p, i) => {
      zsum[i] += p;
      for (let j = 0; j < d; j++) S[i][j] += p * v[j];
    });
    const pq = phi(q);
    const num = new Array(d).fill(0).map((_, j) => pq.reduce((s, p, i) => s + p * S[i][j], 0));
    const den = pq.reduce((s, p, i) => s + p * zsum[i], 0);
    const out = mat(num.map((n) => n / den), w['out']);
    for (let j = 0; j < d; j++) assert.ok(Math.abs(out[j] - y[0][t][j]) < 1e-4, `t=${t} j=${j}: ${out[j]} vs ${y[0][t][j]}`);
  }
  m.dispose();
  x.dispose();
});
