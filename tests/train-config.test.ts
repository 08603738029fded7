import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadPretrainConfig, parsePretrainConfig, scheduleSpec, warmupSteps, decaySteps } from '../src/train';

const recipes = [
  { name: 'doge-20m', lr: 8e-3, acc: 256, steps: 8000 },
  { name: 'doge-60m', lr: 6e-3, acc: 512, steps: 16000 },
  { name: 'doge-160m', lr: 4e-3, acc: 768, steps: 24000 },
  { name: 'doge-320m', lr: 2e-3, acc: 1024, steps: 32000 },
];

test('the recipe configs load and carry the SmallDoge recipe values', () => {
  for (const r of recipes) {
    const c = loadPretrainConfig(`configs/${r.name}.yaml`);
    const t = c.training;
    assert.equal(c.model.preset, r.name);
    assert.equal(c.data.seq_len, 2048);
    assert.equal(t.learning_rate, r.lr);
    assert.equal(t.gradient_accumulation_steps, r.acc);
    assert.equal(t.max_steps, r.steps);
    assert.equal(warmupSteps(t), r.steps / 10);
    assert.equal(decaySteps(t), r.steps / 10);
    assert.equal(t.lr_scheduler_type, 'warmup_stable_decay');
    assert.deepEqual([t.weight_decay, t.adam_beta1, t.adam_beta2, t.adam_epsilon, t.max_grad_norm, t.seed], [0.01, 0.9, 0.95, 1e-8, 1.0, 233]);
  }
  for (const f of ['doge-tiny.yaml', 'doge-tiny-moe.yaml']) loadPretrainConfig(`configs/${f}`);
});

test('command-line overrides map to YAML keys; warmup/decay follow max_steps', () => {
  const c = loadPretrainConfig('configs/doge-20m.yaml', { 'max-steps': '200', 'output-dir': 'runs/x', 'training.learning-rate': '1e-3', 'model.hidden_size': '128', 'min-lr-ratio': '0.1' });
  assert.equal(c.training.max_steps, 200);
  assert.equal(c.training.output_dir, 'runs/x');
  assert.equal(c.training.learning_rate, 1e-3);
  assert.equal(c.model.fields.hidden_size, 128);
  assert.equal(c.training.lr_scheduler_kwargs.min_lr_ratio, 0.1);
  assert.deepEqual(scheduleSpec(c.training), { type: 'warmup_stable_decay', totalSteps: 200, warmupSteps: 20, decaySteps: 20, minLrRatio: 0.1 });
  assert.throws(() => loadPretrainConfig('configs/doge-20m.yaml', { 'max-step': '5' }), /^Error: unknown option --max-step \(did you mean --max-steps\?\)$/);
});

test('unknown keys are rejected with the key named (and the likely intent)', () => {
  assert.throws(() => parsePretrainConfig({ training: { lerning_rate: 1 } }, 'x.yaml'),
    /^Error: x\.yaml: unknown config key 'training\.lerning_rate' \(did you mean 'learning_rate'\?\); known keys in training: /);
  assert.throws(() => parsePretrainConfig({ model: { hiden_size: 64 } }, 'x.yaml'), /unknown config key 'model\.hiden_size' \(did you mean 'hidden_size'\?\)/);
  assert.throws(() => parsePretrainConfig({ data: { dataset: 'a' } }, 'x.yaml'), /unknown config key 'data\.dataset'/);
  assert.throws(() => parsePretrainConfig({ trainig: {} }, 'x.yaml'), /unknown config key 'trainig' \(did you mean 'training'\?\)/);
  assert.throws(() => parsePretrainConfig({ training: { lr_scheduler_kwargs: { min_lr: 0 } } }, 'x.yaml'), /unknown config key 'training\.lr_scheduler_kwargs\.min_lr'/);
});

test('bad values are named', () => {
  assert.throws(() => parsePretrainConfig({ training: { max_steps: 0 } }, 'x.yaml'), /^Error: x\.yaml: 'training\.max_steps' must be >= 1, got 0$/);
  assert.throws(() => parsePretrainConfig({ training: { learning_rate: 'fast' } }, 'x.yaml'), /'training\.learning_rate' must be a number, got "fast"/);
  assert.throws(() => parsePretrainConfig({ training: { lr_scheduler_type: 'cosine_with_restarts' } }, 'x.yaml'), /'training\.lr_scheduler_type' is 'cosine_with_restarts'; choose one of/);
  assert.throws(() => parsePretrainConfig({ training: { max_steps: 10, warmup_steps: 8, lr_scheduler_kwargs: { num_decay_steps: 5 } } }, 'x.yaml'), /warmup \(8\) \+ decay \(5\) steps exceed training\.max_steps \(10\)/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-cfg-'));
  fs.writeFileSync(path.join(dir, 'bad.yaml'), 'training: [1, 2');
  assert.throws(() => loadPretrainConfig(path.join(dir, 'bad.yaml')), /bad\.yaml: not valid YAML/);
  assert.throws(() => loadPretrainConfig(path.join(dir, 'missing.yaml')), /^Error: config file not found: .*missing\.yaml$/);
});
