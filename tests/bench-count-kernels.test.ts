// wm bench's kernel counter (src/cli/bench.ts countKernels): it counts the tfjs kernels a function runs and leaves the
// engine exactly as it found it (no own property on the engine object, the class's method restored), so that the
// measurements after it in the same process are not slowed by it.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/tf';
import { loadBackend } from '../src/runtime/backend';
import { countKernels } from '../src/cli/bench';

before(async () => { await loadBackend({ log: false, backend: 'wasm' }); });

test('countKernels counts the kernels of a function by name and restores the engine', () => {
  const engine = tf.engine();
  const method = Object.getPrototypeOf(engine).runKernelFunc;
  const a = tf.tensor1d([1, 2, 3]);
  const { result, kernels, byKernel } = countKernels(() => tf.tidy(() => tf.mul(tf.add(a, a), a).dataSync()[0]));
  assert.equal(result, 2); // (1 + 1) * 1
  assert.equal(kernels, 2);
  assert.deepEqual([...byKernel.keys()].sort(), ['Add', 'Multiply']);
  assert.equal(Object.prototype.hasOwnProperty.call(engine, 'runKernelFunc'), false);
  assert.equal(Object.getPrototypeOf(engine).runKernelFunc, method);
  // restored also when the function throws
  assert.throws(() => countKernels(() => { tf.add(a, a).dispose(); throw new Error('boom'); }), /boom/);
  assert.equal(Object.getPrototypeOf(engine).runKernelFunc, method);
  // nothing counted outside it
  const again = countKernels(() => 0);
  assert.equal(again.kernels, 0);
  a.dispose();
});
