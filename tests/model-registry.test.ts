// The model registry (src/models/registry.ts): a third model is one `registerModel` call, and the generic paths
// (createCausalLM / buildModelConfig by preset or model_type, savePretrained -> loadCausalLM, describeModelConfig, the
// Trainer) take it; the built-in models are registered lazily, not by importing a module.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf } from '../src/tf';
import { loadBackend } from '../src/runtime/backend';
import { buildModelConfig, createCausalLM, describeModelConfig, loadCausalLM, modelTypeOf } from '../src/models/auto';
import { allPresets, registerModel, registeredModels, unregisterModel } from '../src/models/registry';
import { Trainer } from '../src/train';
import { ToyConfig, ToyForCausalLM, registerToy } from './fixtures/toy-model';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-registry-'));
before(async () => { await loadBackend({ log: false }); });
after(() => { unregisterModel('toy'); fs.rmSync(root, { recursive: true, force: true }); });

test('the built-in models are registered on first use, Doge first (the default)', () => {
  const types = registeredModels().map((r) => r.modelType);
  assert.deepEqual(types.slice(0, 2), ['doge', 'cheems']);
  assert.ok(allPresets().includes('doge-tiny') && allPresets().includes('cheems-tiny'));
  assert.equal(buildModelConfig(undefined, { vocab_size: 8, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 1 }).constructor.name, 'DogeConfig');
  assert.equal(buildModelConfig('cheems-tiny', {}).constructor.name, 'CheemsConfig');
  assert.throws(() => buildModelConfig(undefined, { model_type: 'llama' }), /model_type "llama" is not supported \(registered: doge, cheems/);
});

test('a toy model registered with one call is created, described, saved, loaded and trained through the generic paths', async () => {
  registerToy();
  assert.ok(allPresets().includes('toy-tiny'));
  const config = buildModelConfig('toy-tiny', { vocab_size: 32 });
  assert.ok(config instanceof ToyConfig);
  assert.equal(describeModelConfig(config), 'Toy, bigram, hidden 16');
  const model = createCausalLM({ model_type: 'toy', vocab_size: 32, hidden_size: 8 }, { seed: 1 });
  assert.ok(model instanceof ToyForCausalLM);
  const dir = path.join(root, 'toy');
  model.savePretrained(dir);
  assert.equal(modelTypeOf(dir), 'toy');
  const back = loadCausalLM(dir);
  assert.ok(back instanceof ToyForCausalLM);
  const ids = [[1, 2, 3, 4]];
  const a = model.forward({ inputIds: ids }).logits;
  const b = back.forward({ inputIds: ids }).logits;
  assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
  tf.dispose([a, b]);
  assert.equal(back.generate(ids, { maxNewTokens: 3 })[0]!.length, 7);
  // the Trainer takes it as it is (typed CausalLM, no cast)
  const rows = [Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), Int32Array.from([8, 7, 6, 5, 4, 3, 2, 1])];
  const { TRAINING_DEFAULTS } = await import('../src/train/config');
  const trainer = new Trainer({
    model, seqLen: 8, writePlot: false, log: () => {},
    args: { ...TRAINING_DEFAULTS, output_dir: path.join(root, 'run'), max_steps: 2, per_device_train_batch_size: 2, learning_rate: 0.1, warmup_steps: 0, save_steps: 0, logging_steps: 1 },
    trainLoader: () => ({ next: () => rows, position: 0 }),
  });
  const s1 = trainer.trainStep();
  const s2 = trainer.trainStep();
  assert.ok(s2.loss < s1.loss, `loss falls: ${s1.loss} -> ${s2.loss}`);
  trainer.dispose();
  model.dispose();
  back.dispose();
  // a preset of another model cannot be taken over
  assert.throws(() => registerModelWithPreset('doge-tiny'), /preset 'doge-tiny' is already a preset of 'doge'/);
});

function registerModelWithPreset(preset: string): void {
  registerModel({ modelType: 'toy2', description: 'x', configClass: ToyConfig, modelClass: ToyForCausalLM, presets: [preset] });
}
