// The fused ops (src/ops/fused.ts) on the default backend (wasm in `pnpm test`): no fused kernel is registered
// there, so each op runs its plain-tfjs fallback, the ops the library ran before; it must equal the unfused math.
// The same cases on webgpu's WGSL kernels: tests/webgpu-fused-ops.test.ts.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '../src/tf';
import { loadBackend } from '../src/runtime/backend';
import { FUSED_KERNEL_NAMES, hasFusedKernel } from '../src/ops/fused';
import { CASES } from './fused-cases';

before(async () => {
  await loadBackend({ log: false });
});

test('fused ops: no fused kernel on wasm (the fallbacks run the same tfjs ops as before)', (t) => {
  if (tf.getBackend() !== 'wasm') return t.skip(`backend is ${tf.getBackend()}`);
  for (const name of Object.values(FUSED_KERNEL_NAMES)) assert.equal(hasFusedKernel(name), false, name);
});

for (const [name, check] of CASES) test(`fused ops (default backend): ${name} equals the unfused math, values and gradients`, () => check());
