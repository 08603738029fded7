/**
 * Resume and init_from read checkpoints through the models' one loading path, so a sharded checkpoint
 * (model.safetensors.index.json + shards, what HF writes for large models) works there too.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { loadSafetensors, saveSafetensors } from '../src/io/safetensors';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { CheemsConfig, CheemsForCausalLM } from '../src/models/cheems';
import { Trainer, TRAINING_DEFAULTS, TrainingSection, inheritParameters, readMetrics, TrainRow } from '../src/train';
import { syntheticRows, RowLoader } from './train-standin';

before(async () => {
  await loadBackend({ log: false });
});

const V = 32;
const T = 8;
const rows = syntheticRows(32, T, V);

function tmpDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `wm-sharded-${name}-`));
}

/** Replace a folder's model.safetensors by two shards and an index (tensors split alternately). */
function shard(dir: string): void {
  const file = path.join(dir, 'model.safetensors');
  const { tensors } = loadSafetensors(file);
  const names = [...tensors.keys()];
  assert.ok(names.length >= 2, 'need at least two tensors to shard');
  const parts = [new Map<string, tf.Tensor>(), new Map<string, tf.Tensor>()];
  const weightMap: Record<string, string> = {};
  names.forEach((n, i) => {
    parts[i % 2].set(n, tensors.get(n)!);
    weightMap[n] = `model-0000${(i % 2) + 1}-of-00002.safetensors`;
  });
  parts.forEach((p, i) => saveSafetensors(path.join(dir, `model-0000${i + 1}-of-00002.safetensors`), p));
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  fs.rmSync(file);
  for (const t of tensors.values()) t.dispose();
}

function args(out: string, over: Partial<TrainingSection> = {}): TrainingSection {
  return {
    ...structuredClone(TRAINING_DEFAULTS), output_dir: out,
    max_steps: 6, per_device_train_batch_size: 2, per_device_eval_batch_size: 2, learning_rate: 1e-2,
    logging_steps: 1, eval_steps: 0, save_steps: 3, ...over,
  };
}

function trainer(model: DogeForCausalLM | CheemsForCausalLM, a: TrainingSection): Trainer {
  return new Trainer({
    model, args: a, seqLen: T, writePlot: false, log: () => {},
    trainLoader: (pos) => new RowLoader(rows, a.per_device_train_batch_size, a.seed, (pos as number | undefined) ?? 0),
  });
}

const losses = (out: string) => readMetrics(path.join(out, 'metrics.jsonl')).filter((r): r is TrainRow => 'loss' in r).map((r) => [r.step, r.loss]);

const models = {
  doge: () => new DogeForCausalLM(new DogeConfig({ vocab_size: V, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 16 }), { seed: 3 }),
  cheems: () => new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny', { vocab_size: V, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, max_position_embeddings: 16 }), { seed: 3 }),
};

for (const [kind, make] of Object.entries(models)) {
  test(`${kind}: resume from a sharded checkpoint reproduces the uninterrupted run`, async () => {
    const full = tmpDir(`${kind}-full`);
    const m1 = make();
    await trainer(m1, args(full)).train();
    m1.dispose();

    const cut = tmpDir(`${kind}-cut`);
    const m2 = make();
    await trainer(m2, args(cut, { max_steps: 3 })).train();
    m2.dispose();
    const ckpt = path.join(cut, 'checkpoint-3');
    shard(ckpt);
    assert.ok(!fs.existsSync(path.join(ckpt, 'model.safetensors')));

    const m3 = make();
    const t3 = trainer(m3, args(cut));
    assert.equal(t3.resume(ckpt), ckpt);
    await t3.train();
    m3.dispose();
    const a = losses(full);
    const b = losses(cut);
    assert.equal(b.length, a.length);
    for (let i = 0; i < a.length; i++) {
      assert.equal(b[i][0], a[i][0]);
      assert.ok(Math.abs(a[i][1] - b[i][1]) <= 1e-6, `step ${a[i][0]}: ${a[i][1]} vs ${b[i][1]}`);
    }
  });

  test(`${kind}: init_from a sharded checkpoint copies every tensor`, () => {
    const dir = tmpDir(`${kind}-init`);
    const src = make();
    src.savePretrained(dir);
    shard(dir);
    const dst = kind === 'doge'
      ? new DogeForCausalLM((src as DogeForCausalLM).config, { seed: 11 })
      : new CheemsForCausalLM((src as CheemsForCausalLM).config, { seed: 11 });
    const r = inheritParameters(dst, dir);
    assert.deepEqual(r.initialised, []);
    assert.deepEqual(r.ignored, []);
    assert.equal(r.copied.length, src.parameters().size);
    for (const [n, v] of src.parameters()) assert.deepEqual(dst.parameters().get(n)!.dataSync(), v.dataSync(), n);
    // a mis-shaped tensor is an error naming it and the folder
    const other = kind === 'doge'
      ? new DogeForCausalLM(new DogeConfig({ ...(src as DogeForCausalLM).config.toJSON(), intermediate_size: 24 }), { seed: 1 })
      : new CheemsForCausalLM(new CheemsConfig({ ...(src as CheemsForCausalLM).config.toJSON(), intermediate_size: 24 }), { seed: 1 });
    assert.throws(() => inheritParameters(other, dir), (e: Error) => e.message.startsWith(`model.init_from: ${dir}: tensor '`) && /has shape \[.*\] but the config needs/.test(e.message));
    src.dispose();
    dst.dispose();
    other.dispose();
  });
}
