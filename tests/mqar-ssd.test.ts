import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/backend';
import { SSD, ssdChunked, ssdRecurrent } from '../src/modules/ssd';

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

test('chunked SSD equals the step-by-step recurrence (chunk sizes that do and do not divide the length)', async () => {
  await loadBackend();
  for (const [T, chunks] of [[13, [1, 3, 4, 13, 16]], [20, [5, 6, 8]], [33, [8, 32]]] as Array<[number, number[]]>) {
    const b = 2, h = 3, p = 4, n = 5;
    tf.tidy(() => {
      const x = tf.randomNormal([b, T, h, p], 0, 1, 'float32', T) as tf.Tensor4D;
      const dt = tf.softplus(tf.randomNormal([b, T, h], 0, 1, 'float32', T + 1)) as tf.Tensor3D;
      const A = tf.neg(tf.exp(tf.randomNormal([h], 0, 0.5, 'float32', T + 2))) as tf.Tensor1D;
      const B = tf.randomNormal([b, T, n], 0, 1, 'float32', T + 3) as tf.Tensor3D;
      const C = tf.randomNormal([b, T, n], 0, 1, 'float32', T + 4) as tf.Tensor3D;
      const ref = ssdRecurrent(x, dt, A, B, C);
      const scale = tf.max(tf.abs(ref)).dataSync()[0];
      for (const q of chunks) {
        const y = ssdChunked(x, dt, A, B, C, q);
        assert.deepEqual(y.shape, [b, T, h, p]);
        const err = maxAbsDiff(y, ref);
        assert.ok(err < 1e-5 * Math.max(1, scale), `T=${T} chunk=${q}: max |chunked - recurrent| = ${err} (scale ${scale})`);
      }
    });
  }
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
