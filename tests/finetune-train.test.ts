// SFT and DPO training runs on a small model: the loss falls, checkpoints and the final folder are written, a
// stopped-and-resumed run reproduces the uninterrupted one exactly (losses and DPO metrics), TRL's metric names
// reach metrics.jsonl, the schedule, the tensor count stays flat, and bad input fails before anything is written.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { trainTokenizer } from '../src/data';
import { lrMultiplier, readMetrics } from '../src/train';
import { defaultChats, loadFinetuneConfig, parseFinetuneConfig, runDpo, runSft, type FinetuneConfig } from '../src/finetune';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-ft-train-'));
const base = path.join(root, 'base');

before(async () => {
  await loadBackend({ log: false });
  const texts = defaultChats({ seed: 1, n: 300 }).map((c) => c.messages.map((m) => m.content).join('\n'));
  await trainTokenizer({ texts, vocabSize: 400, outDir: base, log: false });
  const model = new DogeForCausalLM(new DogeConfig({ vocab_size: 400, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 256 }), { seed: 3 });
  model.savePretrained(base);
  model.dispose();
});

function sftConfig(out: string, extra: Record<string, unknown> = {}): FinetuneConfig {
  return parseFinetuneConfig({
    model: { init_from: base },
    data: { train: 'embedded:chats', max_train_rows: 200, max_eval_rows: 24 },
    sft: { seq_len: 64 },
    training: {
      output_dir: out, seed: 5, max_steps: 6, per_device_train_batch_size: 4, per_device_eval_batch_size: 8, learning_rate: 3e-3,
      lr_scheduler_type: 'cosine_with_min_lr', lr_scheduler_kwargs: { min_lr_rate: 0.1 }, warmup_ratio: 0.2,
      logging_steps: 1, eval_steps: 3, save_steps: 3, eval_batches: 0, ...extra,
    },
  }, 'sft', 'test-sft');
}

const trainLosses = (dir: string): number[] => readMetrics(path.join(dir, 'metrics.jsonl')).filter((r) => 'loss' in r).map((r) => (r as { loss: number }).loss);
const quiet = { log: () => {} };

test('cosine_with_min_lr: HF get_cosine_with_min_lr_schedule_with_warmup', () => {
  const spec = { type: 'cosine_with_min_lr' as const, totalSteps: 110, warmupSteps: 10, minLrRatio: 0.1 };
  assert.equal(lrMultiplier(spec, 0), 0);
  assert.equal(lrMultiplier(spec, 5), 0.5);
  assert.equal(lrMultiplier(spec, 10), 1);
  assert.ok(Math.abs(lrMultiplier(spec, 60) - (0.5 * 0.9 + 0.1)) < 1e-12);
  assert.ok(Math.abs(lrMultiplier(spec, 110) - 0.1) < 1e-12);
  assert.equal(parseFinetuneConfig({ model: { init_from: 'x' }, data: { train: 'y' }, training: { lr_scheduler_type: 'cosine_with_min_lr', lr_scheduler_kwargs: { min_lr_rate: 0.1 } } }, 'sft').training.lr_scheduler_kwargs.min_lr_ratio, 0.1);
});

test('runSft: eval loss falls, checkpoints + final folder, exact resume after a stop', async () => {
  const full = path.join(root, 'sft-full');
  const live: number[] = [];
  const r = await runSft(sftConfig(full), { ...quiet, onStep: () => { live.push(tf.memory().numTensors); } });
  // the first eval adds the inference weight cache (cleared by model.dispose); after that the count is flat
  assert.equal(new Set(live.slice(3)).size, 1, `live tensors stay flat over steps: ${live}`);
  assert.equal(r.steps, 6);
  const rows = readMetrics(path.join(full, 'metrics.jsonl'));
  const evals = rows.filter((x) => 'eval_loss' in x).map((x) => (x as { eval_loss: number }).eval_loss);
  assert.equal(evals.length, 2);
  assert.ok(evals[1]! < evals[0]!, `eval loss falls: ${evals}`);
  assert.ok(fs.existsSync(path.join(full, 'final', 'model.safetensors')) && fs.existsSync(path.join(full, 'final', 'tokenizer.json')));
  // stop after step 3 (the checkpoint), resume, compare every logged loss
  const part = path.join(root, 'sft-part');
  await runSft(sftConfig(part), { ...quiet, onStep: (row, trainer) => { if (row.step === 3) trainer.requestStop(); } });
  assert.ok(!fs.existsSync(path.join(part, 'final')), 'a stopped run writes no final model');
  await runSft(sftConfig(part), { ...quiet, resume: 'latest' });
  assert.deepEqual(trainLosses(part), trainLosses(full));
  console.log(`sft losses ${trainLosses(full).map((x) => x.toFixed(4)).join(' ')}; eval ${evals.map((x) => x.toFixed(4)).join(' ')}`);
});

function dpoConfig(out: string, reference: 'copy' | 'precompute'): FinetuneConfig {
  return parseFinetuneConfig({
    model: { init_from: base },
    data: { train: 'embedded:prefs', max_train_rows: 64, max_eval_rows: 16 },
    dpo: { reference, max_length: 128, max_prompt_length: 100 },
    training: { output_dir: out, seed: 5, max_steps: 4, per_device_train_batch_size: 4, per_device_eval_batch_size: 8, learning_rate: 3e-3, logging_steps: 1, eval_steps: 2, save_steps: 2 },
  }, 'dpo', 'test-dpo');
}

test('runDpo: TRL metrics in metrics.jsonl, copy = precomputed reference, exact resume', async () => {
  const a = path.join(root, 'dpo-copy');
  const b = path.join(root, 'dpo-pre');
  await runDpo(dpoConfig(a, 'copy'), quiet);
  await runDpo(dpoConfig(b, 'precompute'), quiet);
  const ra = readMetrics(path.join(a, 'metrics.jsonl')) as unknown as Record<string, number>[];
  const rb = readMetrics(path.join(b, 'metrics.jsonl')) as unknown as Record<string, number>[];
  const first = ra.find((r) => 'loss' in r)!;
  for (const k of ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins', 'logps/chosen', 'logps/rejected', 'logits/chosen', 'logits/rejected']) assert.ok(k in first, `${k} logged`);
  assert.ok(Math.abs(first.loss! - Math.LN2) < 1e-5, `first step starts at ln 2 (policy = reference): ${first.loss}`);
  const ev = ra.filter((r) => 'eval_loss' in r);
  assert.ok(ev.length === 2 && 'eval_rewards/accuracies' in ev[0]!);
  ra.forEach((r, i) => {
    for (const k of ['loss', 'eval_loss', 'rewards/margins']) if (k in r) assert.ok(Math.abs(r[k]! - rb[i]![k]!) < 1e-4, `row ${i} ${k}: ${r[k]} vs ${rb[i]![k]}`);
  });
  const part = path.join(root, 'dpo-part');
  await runDpo(dpoConfig(part, 'precompute'), { ...quiet, onStep: (row, t) => { if (row.step === 2) t.requestStop(); } });
  await runDpo(dpoConfig(part, 'precompute'), { ...quiet, resume: 'latest' });
  const rp = readMetrics(path.join(part, 'metrics.jsonl')) as unknown as Record<string, number>[];
  assert.deepEqual(rp.map((r) => [r.step, r.loss, r['rewards/margins'], r.eval_loss]), rb.map((r) => [r.step, r.loss, r['rewards/margins'], r.eval_loss]));
});

test('bad input fails before training, naming the problem, and writes nothing', async () => {
  const out = path.join(root, 'bad');
  const write = (name: string, rows: unknown[]): string => {
    const f = path.join(root, name);
    fs.writeFileSync(f, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    return f;
  };
  const cfg = (kind: 'sft' | 'dpo', train: string, extra: Record<string, unknown> = {}) => parseFinetuneConfig({ model: { init_from: base }, data: { train, eval: train }, ...extra, training: { output_dir: out, max_steps: 2 } }, kind, 'bad.yaml');
  await assert.rejects(runSft(cfg('sft', write('a.jsonl', [{ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }] }, { question: 'x' }]))), /a\.jsonl line 2: no 'messages', 'conversations', 'prompt'\/'completion' or 'text' column \(columns: question\)/);
  await assert.rejects(runSft(cfg('sft', write('b.jsonl', [{ messages: [{ role: 'user', content: 'hi' }] }]))), /b\.jsonl line 1: no assistant message/);
  await assert.rejects(runDpo(cfg('dpo', write('c.jsonl', [{ prompt: 'x', chosen: 'y' }]))), /c\.jsonl line 1: no 'rejected' column/);
  const long = 'word '.repeat(200);
  await assert.rejects(runDpo(cfg('dpo', write('d.jsonl', [{ prompt: long, chosen: 'a', rejected: 'b' }]))), /d\.jsonl line 1: the prompt has \d+ tokens, more than dpo\.max_prompt_length 512/);
  await assert.rejects(runDpo(cfg('dpo', write('e.jsonl', [{ prompt: long, chosen: 'a', rejected: 'b' }]), { dpo: { max_prompt_length: null, max_length: 16 } })), /bad\.yaml: the training preference data is empty after truncation/);
  await assert.rejects(runDpo(cfg('dpo', write('f.jsonl', [{ chosen: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }], rejected: [{ role: 'user', content: 'other' }, { role: 'assistant', content: 'b' }] }]))), /f\.jsonl line 1: 'chosen' and 'rejected' differ before their last turn/);
  // a reference with another vocabulary
  const other = path.join(root, 'other');
  const m = new DogeForCausalLM(new DogeConfig({ vocab_size: 512, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1 }), { seed: 1 });
  m.savePretrained(other);
  m.dispose();
  await assert.rejects(runDpo(cfg('dpo', 'embedded:prefs', { dpo: { reference_model: other } })), /the policy .* has vocab_size 400 but the reference .* has 512/);
  // no chat template
  const noTpl = path.join(root, 'notpl');
  fs.cpSync(base, noTpl, { recursive: true });
  const tc = JSON.parse(fs.readFileSync(path.join(noTpl, 'tokenizer_config.json'), 'utf8'));
  delete tc.chat_template;
  fs.writeFileSync(path.join(noTpl, 'tokenizer_config.json'), JSON.stringify(tc));
  await assert.rejects(runSft(parseFinetuneConfig({ model: { init_from: noTpl }, data: { train: 'embedded:chats', max_train_rows: 4 }, training: { output_dir: out } }, 'sft')), /has no chat_template, which chat rows need/);
  assert.ok(!fs.existsSync(out), 'nothing written');
  assert.throws(() => parseFinetuneConfig({ model: { init_from: base }, data: { train: 'x' }, sft: { packing: 'bfd' } }, 'sft', 'p.yaml'), /p\.yaml: 'sft\.packing' must be one of document, wrapped, padding/);
  assert.throws(() => parseFinetuneConfig({ model: {}, data: { train: 'x' } }, 'sft', 'p.yaml'), /'model\.init_from' \(the checkpoint to fine-tune\) is required/);
  assert.throws(() => parseFinetuneConfig({ model: { init_from: 'a' }, data: { train: 'x' }, dpo: { loss_type: 'kto_pair' } }, 'dpo', 'p.yaml'), /'dpo\.loss_type' 'kto_pair' is not supported \(supported: sigmoid, hinge, ipo\)/);
});

test('the shipped recipes parse', () => {
  for (const f of fs.readdirSync(path.join(__dirname, '..', 'configs')).filter((x) => /-(sft|dpo)\.yaml$/.test(x))) {
    const kind = f.endsWith('-sft.yaml') ? 'sft' : 'dpo';
    const c = loadFinetuneConfig(path.join(__dirname, '..', 'configs', f), kind);
    assert.equal(c.training.lr_scheduler_type, 'cosine_with_min_lr', f);
    assert.equal(c.training.lr_scheduler_kwargs.min_lr_ratio, 0.1, f);
  }
  // a recipe that is not a mapping is refused (it used to be read as an empty recipe)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-ft-yaml-'));
  try {
    fs.writeFileSync(path.join(dir, 'list.yaml'), '- model\n- data\n');
    assert.throws(() => loadFinetuneConfig(path.join(dir, 'list.yaml'), 'sft'), /list\.yaml: the config must be a YAML mapping with sections model, data, sft, training \(got a list\)/);
    assert.throws(() => loadFinetuneConfig(path.join(dir, 'missing.yaml'), 'dpo'), /config file not found: .*missing\.yaml/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('wm sft / wm dpo: YAML recipe with overrides, unknown options, --help', async () => {
  const { run: sftCli, parseFinetuneArgs } = await import('../src/cli/sft');
  const { run: dpoCli } = await import('../src/cli/dpo');
  const out = path.join(root, 'cli-sft');
  const yaml = path.join(root, 'sft.yaml');
  fs.writeFileSync(yaml, [
    'model:', `  init_from: ${base}`, 'data:', '  train: embedded:chats', '  max_train_rows: 40', '  max_eval_rows: 8', 'sft:', '  seq_len: 64',
    'training:', `  output_dir: ${out}`, '  max_steps: 50', '  per_device_train_batch_size: 2', '  lr_scheduler_type: cosine_with_min_lr',
    '  lr_scheduler_kwargs:', '    min_lr_rate: 0.1', '  save_steps: 0', '  logging_steps: 1',
  ].join('\n'));
  await sftCli(['--config', yaml, '--max-steps', '2', '--sft.packing', 'wrapped']);
  assert.ok(fs.existsSync(path.join(out, 'final', 'model.safetensors')));
  const saved = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint-2', 'training_config.json'), 'utf8'));
  assert.equal(saved.sft.packing, 'wrapped');
  assert.equal(saved.training.max_steps, 2);
  assert.equal(readMetrics(path.join(out, 'metrics.jsonl')).filter((r) => 'loss' in r).length, 2);
  assert.ok(fs.existsSync(path.join(out, 'final', 'generation_config.json')), 'final/ is a complete model folder');
  assert.ok(fs.existsSync(path.join(out, 'checkpoint-2', 'tokenizer.json')), 'checkpoints carry the tokenizer');
  // a fresh run into the same folder moves the earlier run aside (nothing is deleted)
  await sftCli(['--config', yaml, '--max-steps', '1']);
  assert.equal(fs.readdirSync(path.join(out, 'previous-runs')).length, 1);
  assert.ok(fs.existsSync(path.join(out, 'checkpoint-1')) && !fs.existsSync(path.join(out, 'checkpoint-2')));
  await assert.rejects(sftCli(['--config', yaml, '--max-stepz', '2']), /unknown option --max-stepz \(did you mean --max-steps\?\)/);
  await assert.rejects(dpoCli(['--config', yaml, '--max-steps', '1']), /embedded:chats \(train\) row 1: no 'chosen' column/);
  assert.equal(parseFinetuneArgs(['--help'], 'sft'), null);
  assert.deepEqual(parseFinetuneArgs(['--config', 'a.yaml', '--resume', '--beta=0.1'], 'dpo'), { config: 'a.yaml', resume: true, overrides: { beta: '0.1' } });
});
