import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadBackend, tf } from '../src/backend';

test('loadBackend picks a backend and names it', async () => {
  const info = await loadBackend({ log: false });
  assert.equal(tf.getBackend(), info.tfjsBackend);
  assert.ok(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].includes(info.name));
});

test('an unknown forced backend is refused with the valid names', async () => {
  await assert.rejects(loadBackend({ backend: 'webgpu', log: false }), /'webgpu' is not a backend; choose one of tensorflow-gpu, tensorflow, wasm, cpu/);
});
