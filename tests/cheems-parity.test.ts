// Parity of CheemsForCausalLM with the reference fixtures (independent fp32 PyTorch implementation of the Cheems
// contract, tests/fixtures/cheems/): logits, loss, hidden states, final SSD states, dynamic masks, CDMoE expert sets,
// every parameter gradient, greedy generation (cached and uncached) and its per-step logits.
import { test, before } from 'node:test';
import { loadBackend } from '../src/runtime/backend';
import { CHEEMS_CASES, checkCheemsFixture, checkCheemsGenerate, cheemsHasGenerate } from './parity-cases';

before(async () => { await loadBackend({ log: false }); });

for (const name of CHEEMS_CASES) {
  test(`cheems fixture ${name}: logits, loss, hidden states, SSD states, dynamic masks, experts, gradients`, () => checkCheemsFixture(name));
}
for (const name of CHEEMS_CASES) {
  if (cheemsHasGenerate(name)) test(`cheems fixture ${name}: greedy generation (cached and full recomputation) and step logits`, () => checkCheemsGenerate(name));
}
