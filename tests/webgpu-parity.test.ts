// The parity fixtures (tests/parity-cases.ts) on the webgpu backend. Without a GPU this runs on Mesa's software
// adapter (WM_BACKEND=webgpu forces it); the assertions are the same as on wasm (1e-4 relative).
import { test, before } from 'node:test';
import { loadBackend } from '../src/runtime/backend';
import { CHEEMS_CASES, DOGE_CASES, checkCheemsFixture, checkCheemsGenerate, checkDogeFixture, checkDogeGenerate, cheemsHasGenerate, dogeHasGenerate } from './parity-cases';

before(async () => {
  await loadBackend({ backend: 'webgpu', log: false });
});

for (const name of DOGE_CASES) {
  test(`webgpu: doge fixture ${name}: logits, loss, grads, dynamic masks, experts`, () => checkDogeFixture(name));
  if (dogeHasGenerate(name)) test(`webgpu: doge fixture ${name}: greedy generation`, () => checkDogeGenerate(name));
}
for (const name of CHEEMS_CASES) {
  test(`webgpu: cheems fixture ${name}: logits, loss, states, masks, experts, gradients`, () => checkCheemsFixture(name));
  if (cheemsHasGenerate(name)) test(`webgpu: cheems fixture ${name}: greedy generation`, () => checkCheemsGenerate(name));
}
