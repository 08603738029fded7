// Parity of DogeForCausalLM with the reference fixtures (fp32 PyTorch implementation of HF DogeForCausalLM, eager):
// logits, loss, every parameter gradient, dynamic masks, expert ids, greedy generation and its per-step logits.
import { test, before } from 'node:test';
import { loadBackend } from '../src/runtime/backend';
import { DOGE_CASES, checkDogeFixture, checkDogeGenerate, dogeHasGenerate } from './parity-cases';

before(async () => { await loadBackend({ log: false }); });

for (const name of DOGE_CASES) {
  test(`fixture ${name}: logits, loss, grads, dynamic masks, experts`, () => checkDogeFixture(name));
  if (dogeHasGenerate(name)) test(`fixture ${name}: greedy generation and per-step logits (cached)`, () => checkDogeGenerate(name));
}
