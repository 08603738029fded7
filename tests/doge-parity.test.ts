// Parity of DogeForCausalLM with the reference fixtures (fp32 PyTorch implementation of HF DogeForCausalLM, eager):
// logits, loss, every parameter gradient, dynamic masks, expert ids, greedy generation and its per-step logits.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { loadSafetensors } from '../src/io/safetensors';
import { maxAbs, maxErr } from './parity-helpers';
import { DogeForCausalLM } from '../src/models/doge';

const ROOT = path.join(__dirname, 'fixtures', 'doge');
const CASES = ['dense', 'dense-window-bias', 'moe-token', 'moe-hf', 'padding'];

before(async () => { await loadBackend({ log: false }); });

/** max-abs error relative to the reference tensor's max-abs; asserts <= 1e-4. */
function checkClose(name: string, got: tf.Tensor, ref: tf.Tensor, report: string[]): number {
  assert.deepEqual(got.shape, ref.shape, `${name}: shape`);
  const r = ref.dataSync();
  const err = maxErr(got.dataSync(), r);
  const scale = maxAbs(r) || 1;
  report.push(`${name}: max err ${err.toExponential(2)} (rel ${(err / scale).toExponential(2)})`);
  assert.ok(err <= 1e-4 * scale, `${name}: max-abs error ${err} > 1e-4 * ${scale}`);
  return err / scale;
}

for (const name of CASES) {
  test(`fixture ${name}: logits, loss, grads, dynamic masks, experts`, () => {
    const dir = path.join(ROOT, name);
    const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
    const model = DogeForCausalLM.fromPretrained(dir, { routerLayout: expected.router_layout });
    const io = loadSafetensors(path.join(dir, 'io.safetensors')).tensors;
    const report: string[] = [];
    try {
      const inputIds = io.get('input_ids')!, attentionMask = io.get('attention_mask')!, labels = io.get('labels')!;
      const out = model.forward({ inputIds, attentionMask, labels, outputAttentions: true });
      checkClose('logits', out.logits, io.get('logits')!, report);
      const loss = out.loss!.dataSync()[0];
      report.push(`loss: ${loss} vs ${expected.loss} (err ${Math.abs(loss - expected.loss).toExponential(2)})`);
      assert.ok(Math.abs(loss - expected.loss) <= 1e-5, `loss ${loss} vs ${expected.loss}`);
      const L = model.config.num_hidden_layers;
      for (let l = 0; l < L; l++) {
        checkClose(`dynamic_mask.${l}`, out.dynamicMasks![l], io.get(`dynamic_mask.${l}`)!, report);
        if (model.config.is_moe) {
          assert.deepEqual(Array.from(out.expertIds![l].dataSync()), Array.from(io.get(`experts.${l}`)!.dataSync()), `experts.${l}`);
          report.push(`experts.${l}: identical`);
        }
      }
      tf.dispose(out as unknown as tf.TensorContainer);
      const { value, grads } = model.variableGrads(() => model.forward({ inputIds, attentionMask, labels }).loss!);
      value.dispose();
      let worst = 0;
      let worstName = '';
      const params = model.parameters();
      for (const pname of params.keys()) {
        const ref = io.get(`grad.${pname}`);
        assert.ok(ref, `fixture has grad.${pname}`);
        const g = grads.get(pname);
        assert.ok(g, `gradient for ${pname}`);
        const sub: string[] = [];
        let got = g!, want = ref!;
        const pad = model.config.pad_token_id;
        if (pname === 'model.embed_tokens.weight' && pad !== null) {
          // HF's nn.Embedding(padding_idx=pad_token_id) gives the padding row no gradient from the lookup (spec 4.1, 8);
          // the fixture generator did not use padding_idx, so that one row is compared without it (documented gap).
          const keep = tf.sub(1, tf.reshape(tf.oneHot(tf.tensor1d([pad], 'int32'), model.config.vocab_size), [-1, 1]));
          got = tf.mul(got, keep); want = tf.mul(want, keep);
          report.push(`grad.${pname}: row ${pad} (padding_idx) excluded from the comparison`);
        }
        const rel = checkClose(`grad.${pname}`, got, want, sub);
        if (rel > worst) { worst = rel; worstName = pname; }
      }
      for (const k of io.keys()) if (k.startsWith('grad.')) assert.ok(params.has(k.slice(5)), `model has parameter ${k.slice(5)}`);
      report.push(`grads: ${params.size} tensors, worst relative max error ${worst.toExponential(2)} (${worstName})`);
      for (const g of grads.values()) g.dispose();
    } finally {
      console.log(`[${name}]\n  ${report.join('\n  ')}`);
      for (const t of io.values()) t.dispose();
      model.dispose();
    }
  });

  const gen = path.join(ROOT, name, 'generate.safetensors');
  if (fs.existsSync(gen)) {
    test(`fixture ${name}: greedy generation and per-step logits (cached)`, () => {
      const dir = path.join(ROOT, name);
      const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
      const model = DogeForCausalLM.fromPretrained(dir, { routerLayout: expected.router_layout });
      const stepRef = loadSafetensors(gen).tensors.get('step_logits')!;
      const prompt: number[] = expected.generate.prompt;
      const greedy: number[] = expected.generate.greedy;
      const V = model.config.vocab_size;
      const steps: Float32Array[] = [];
      const seq = model.generate([prompt], { maxNewTokens: greedy.length, eosTokenId: null, onLogits: (l) => steps.push(Float32Array.from(l)) });
      assert.deepEqual(seq[0].slice(prompt.length), greedy);
      const ref = stepRef.dataSync();
      let worst = 0;
      for (let s = 0; s < greedy.length; s++) {
        const r = ref.subarray(s * V, (s + 1) * V);
        const rel = maxErr(steps[s], r) / (maxAbs(r) || 1);
        worst = Math.max(worst, rel);
      }
      console.log(`[${name}] generate: ${greedy.length} tokens identical, per-step logits worst relative max error ${worst.toExponential(2)}`);
      assert.ok(worst <= 1e-4);
      stepRef.dispose();
      model.dispose();
    });
  }
}
