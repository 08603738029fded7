// Parity of CheemsForCausalLM with the reference fixtures (independent fp32 PyTorch implementation of the Cheems
// contract, tests/fixtures/cheems/): logits, loss, hidden states, final SSD states, dynamic masks, CDMoE expert sets,
// every parameter gradient, greedy generation (cached and uncached) and its per-step logits.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { loadSafetensors } from '../src/io/safetensors';
import { maxAbs, maxErr } from './parity-helpers';
import { CheemsForCausalLM } from '../src/models/cheems';
import { loadCausalLM } from '../src/models/auto';

const ROOT = path.join(__dirname, 'fixtures', 'cheems');
const CASES = ['hybrid', 'hybrid-moe', 'padding-bias'];

before(async () => { await loadBackend({ log: false }); });

/** max-abs error relative to the reference tensor's max-abs; asserts <= 1e-4. Returns the relative error. */
function checkClose(name: string, got: tf.Tensor, ref: tf.Tensor, report: Map<string, number>): void {
  assert.deepEqual(got.shape, ref.shape, `${name}: shape`);
  const r = ref.dataSync();
  const err = maxErr(got.dataSync(), r);
  const scale = maxAbs(r) || 1;
  const group = name.replace(/\.\d+.*$/, '').replace(/^grad\..*/, 'grad');
  report.set(group, Math.max(report.get(group) ?? 0, err / scale));
  assert.ok(err <= 1e-4 * scale, `${name}: max-abs error ${err} > 1e-4 * ${scale}`);
}

for (const name of CASES) {
  test(`cheems fixture ${name}: logits, loss, hidden states, SSD states, dynamic masks, experts, gradients`, () => {
    const dir = path.join(ROOT, name);
    const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
    const model = loadCausalLM(dir) as CheemsForCausalLM;
    assert.ok(model instanceof CheemsForCausalLM, 'model instanceof CheemsForCausalLM');
    assert.deepEqual(model.config.layersType, expected.layers_type);
    const io = loadSafetensors(path.join(dir, 'io.safetensors')).tensors;
    const report = new Map<string, number>();
    try {
      const inputIds = io.get('input_ids')!, attentionMask = io.get('attention_mask')!, labels = io.get('labels')!;
      const out = model.forward({ inputIds, attentionMask, labels, outputAttentions: true, outputHiddenStates: true });
      checkClose('logits', out.logits, io.get('logits')!, report);
      const loss = out.loss!.dataSync()[0];
      const lossErr = Math.abs(loss - expected.loss);
      assert.ok(lossErr <= 1e-4, `loss ${loss} vs ${expected.loss}`);
      const L = model.config.num_hidden_layers;
      for (let l = 0; l < L; l++) {
        checkClose(`hidden.${l}`, out.hiddenStates![l], io.get(`hidden.${l}`)!, report);
        if (expected.layers_type[l] === 'ssd') checkClose(`ssd_state.${l}`, out.ssdStates![l]!, io.get(`ssd_state.${l}`)!, report);
        else checkClose(`dynamic_mask.${l}`, out.dynamicMasks![l]!, io.get(`dynamic_mask.${l}`)!, report);
        if (model.config.is_moe) {
          // expert ids as sets per (token, head)
          const ref = io.get(`experts.${l}`)!;
          assert.deepEqual(out.expertIds![l].shape, ref.shape);
          const k = ref.shape[2] as number;
          const g = out.expertIds![l].dataSync(), r = ref.dataSync();
          for (let i = 0; i < r.length; i += k) {
            assert.deepEqual([...g.slice(i, i + k)].sort((a, b) => a - b), [...r.slice(i, i + k)].sort((a, b) => a - b), `experts.${l} row ${i / k}`);
          }
        }
      }
      tf.dispose(out as unknown as tf.TensorContainer);

      const params = model.parameters();
      const { value, grads } = model.variableGrads(() => model.forward({ inputIds, attentionMask, labels, training: true }).loss!);
      value.dispose();
      let nGrads = 0;
      for (const [key, ref] of io) {
        if (!key.startsWith('grad.')) continue;
        const pname = key.slice(5);
        assert.ok(params.has(pname), `gradient for unknown parameter ${pname}`);
        checkClose(key, grads.get(pname)!, ref, report);
        nGrads++;
      }
      assert.equal(nGrads, params.size, 'a reference gradient for every parameter');
      for (const g of grads.values()) g.dispose();
      console.log(`${name}: loss err ${lossErr.toExponential(2)}; max rel err ${[...report].map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}; ${nGrads} gradients`);
    } finally {
      for (const t of io.values()) t.dispose();
      model.dispose();
    }
  });
}

for (const name of CASES) {
  const dir = path.join(ROOT, name);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  if (!expected.generate) continue;
  test(`cheems fixture ${name}: greedy generation (cached and full recomputation) and step logits`, () => {
    const model = CheemsForCausalLM.fromPretrained(dir);
    const stepRef = loadSafetensors(path.join(dir, 'generate.safetensors')).tensors.get('step_logits')!;
    try {
      const prompt: number[] = expected.generate.prompt;
      const greedy: number[] = expected.generate.greedy;
      const V = model.config.vocab_size;
      const ref = stepRef.dataSync();
      const scale = maxAbs(ref);
      for (const useCache of [true, false]) {
        const steps: Float32Array[] = [];
        const outIds = model.generate([prompt], { maxNewTokens: greedy.length, eosTokenId: null, useCache, onLogits: (l) => steps.push(Float32Array.from(l)) });
        assert.deepEqual(outIds[0].slice(prompt.length), greedy, `greedy tokens (useCache ${useCache})`);
        let err = 0;
        steps.forEach((s, i) => { err = Math.max(err, maxErr(s, ref.subarray(i * V, (i + 1) * V))); });
        console.log(`${name} generate useCache=${useCache}: tokens identical, step logits max err ${err.toExponential(2)} (scale ${scale.toFixed(2)})`);
        assert.ok(err <= 1e-4 * scale, `step logits err ${err}`);
      }
    } finally {
      stepRef.dispose();
      model.dispose();
    }
  });
}
