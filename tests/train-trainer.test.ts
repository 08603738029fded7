import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { Trainer, TRAINING_DEFAULTS, TrainingSection, listCheckpoints, readMetrics, NonFiniteLossError, TrainRow, dropoutSeedFor } from '../src/train';
import { StandInLM, syntheticRows, RowLoader } from './train-standin';

before(async () => {
  await loadBackend({ log: false });
});

const V = 32;
const H = 16;
const T = 16;
const rows = syntheticRows(64, T, V);
const evalRows = syntheticRows(8, T, V, 99);
const evalDataset = { numRows: evalRows.length, seqLen: T, row: (i: number) => evalRows[i] };

function tmpDir(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `wm-train-${name}-`));
}

function args(over: Partial<TrainingSection>): TrainingSection {
  return {
    ...structuredClone(TRAINING_DEFAULTS),
    max_steps: 20, per_device_train_batch_size: 4, per_device_eval_batch_size: 4, learning_rate: 3e-2,
    logging_steps: 1, eval_steps: 0, save_steps: 0, eval_batches: 2, ...over,
  };
}

function makeTrainer(model: StandInLM, a: TrainingSection, extra: { onStep?: (r: { step: number }, t: Trainer) => void; writePlot?: boolean } = {}): Trainer {
  return new Trainer({
    model, args: a, seqLen: T, evalDataset, writePlot: extra.writePlot ?? false, log: () => {},
    trainLoader: (pos) => new RowLoader(rows, a.per_device_train_batch_size, a.seed, (pos as number | undefined) ?? 0),
    onStep: extra.onStep,
  });
}

function trainLosses(dir: string): number[] {
  return readMetrics(path.join(dir, 'metrics.jsonl')).filter((r): r is TrainRow => 'loss' in r).map((r) => r.loss);
}

test('the loss falls on learnable synthetic data; eval loss and perplexity are reported', async () => {
  const out = tmpDir('falls');
  const model = new StandInLM(V, H);
  const trainer = makeTrainer(model, args({ output_dir: out, max_steps: 30, eval_steps: 30 }), { writePlot: true });
  const before = trainer.evaluate()!;
  const result = await trainer.train();
  assert.equal(result.steps, 30);
  assert.ok(result.lastEval!.eval_loss < before.eval_loss - 0.5, `eval loss ${before.eval_loss} -> ${result.lastEval!.eval_loss}`);
  assert.ok(Math.abs(result.lastEval!.eval_perplexity - Math.exp(result.lastEval!.eval_loss)) < 1e-9);
  const losses = trainLosses(out);
  assert.equal(losses.length, 30);
  assert.ok(losses[29] < losses[0] - 0.5);
  // The end-of-run checkpoint is a complete folder.
  const ckpts = listCheckpoints(out);
  assert.deepEqual(ckpts.map((c) => c.step), [30]);
  for (const f of ['config.json', 'model.safetensors', 'trainer_state/optimizer.safetensors', 'trainer_state/state.json']) {
    assert.ok(fs.existsSync(path.join(ckpts[0].dir, f)), f);
  }
  const html = fs.readFileSync(path.join(out, 'loss.html'), 'utf8');
  assert.match(html, /train loss/);
  assert.match(html, /eval loss/);
  trainer.dispose();
  model.dispose();
});

test('resume from a checkpoint reproduces the uninterrupted losses (dropout, accumulation, WSD)', async () => {
  const common = { max_steps: 12, gradient_accumulation_steps: 2, save_steps: 4, save_total_limit: 2, eval_steps: 6, warmup_steps: 2 };
  const full = tmpDir('full');
  const m1 = new StandInLM(V, H, 1, 0.2);
  const t1 = makeTrainer(m1, args({ ...common, output_dir: full }));
  await t1.train();
  t1.dispose();
  m1.dispose();

  // Interrupted run: stop after step 6 (saves checkpoint-6), then a fresh process-like start resumes.
  const cut = tmpDir('cut');
  const m2 = new StandInLM(V, H, 1, 0.2);
  const t2 = makeTrainer(m2, args({ ...common, output_dir: cut }), { onStep: (r, t) => { if (r.step === 6) t.requestStop(); } });
  const r2 = await t2.train();
  assert.equal(r2.stopped, true);
  assert.equal(r2.steps, 6);
  t2.dispose();
  m2.dispose();
  // checkpoint-4 and checkpoint-6 (keep 2).
  assert.deepEqual(listCheckpoints(cut).map((c) => c.step), [4, 6]);

  const m3 = new StandInLM(V, H, 5, 0.2); // a different init: everything must come from the checkpoint
  const t3 = makeTrainer(m3, args({ ...common, output_dir: cut }));
  t3.resume('latest');
  assert.equal(t3.globalStep, 6);
  await t3.train();
  t3.dispose();
  m3.dispose();

  const a = readMetrics(path.join(full, 'metrics.jsonl'));
  const b = readMetrics(path.join(cut, 'metrics.jsonl'));
  assert.equal(b.length, a.length);
  for (let i = 0; i < a.length; i++) {
    assert.equal(b[i].step, a[i].step);
    for (const key of ['loss', 'grad_norm', 'lr', 'eval_loss'] as const) {
      const x = (a[i] as unknown as Record<string, number>)[key];
      const y = (b[i] as unknown as Record<string, number>)[key];
      if (x === undefined) continue;
      assert.ok(Math.abs(x - y) <= 1e-6, `row ${i} ${key}: ${x} vs ${y}`);
    }
  }
  assert.deepEqual(listCheckpoints(cut).map((c) => c.step), [8, 12]);
});

test('gradient accumulation of 2 x batch 2 equals one batch of 4', async () => {
  const run = async (A: number, B: number) => {
    const model = new StandInLM(V, H, 3);
    const a = args({ output_dir: tmpDir(`acc${A}`), max_steps: 3, gradient_accumulation_steps: A, per_device_train_batch_size: B, warmup_steps: 0 });
    const trainer = makeTrainer(model, a);
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) losses.push(trainer.trainStep().loss);
    const w = model.parameters().get('model.embed_tokens.weight')!.dataSync().slice();
    trainer.dispose();
    model.dispose();
    return { losses, w };
  };
  const x = await run(2, 2);
  const y = await run(1, 4);
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(x.losses[i] - y.losses[i]) < 1e-5, `${x.losses[i]} vs ${y.losses[i]}`);
  let maxDiff = 0;
  for (let i = 0; i < x.w.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x.w[i] - y.w[i]));
  assert.ok(maxDiff < 1e-5, `max weight diff ${maxDiff}`);
});

test('the live tensor count stays constant across 200 steps (with eval and checkpoints)', async () => {
  const model = new StandInLM(8, 4, 1, 0.1);
  const a = args({ output_dir: tmpDir('leak'), max_steps: 200, per_device_train_batch_size: 2, gradient_accumulation_steps: 2, eval_steps: 50, save_steps: 100, eval_batches: 1 });
  const counts: number[] = [];
  const smallRows = syntheticRows(16, 8, 8);
  const trainer = new Trainer({
    model, args: a, seqLen: 8, writePlot: false, log: () => {},
    evalDataset: { numRows: 4, seqLen: 8, row: (i) => smallRows[i] },
    trainLoader: (pos) => new RowLoader(smallRows, 2, 1, (pos as number | undefined) ?? 0),
    onStep: (r) => { if (r.step >= 10) counts.push(tf.memory().numTensors); },
  });
  await trainer.train();
  assert.equal(counts.length, 191);
  assert.ok(counts.every((c) => c === counts[0]), `tensor counts vary: min ${Math.min(...counts)} max ${Math.max(...counts)}`);
  trainer.dispose();
  model.dispose();
});

test('a non-finite loss stops training before the update and names the step and the last good checkpoint', async () => {
  const out = tmpDir('nan');
  const model = new StandInLM(V, H);
  const a = args({ output_dir: out, max_steps: 10, save_steps: 2 });
  const trainer = makeTrainer(model, a, {
    onStep: (r) => {
      // Poison a weight after step 3: step 4 sees a NaN loss.
      if (r.step === 3) model.parameters().get('model.norm.weight')!.assign(tf.fill([H], NaN));
    },
  });
  await assert.rejects(() => trainer.train(), (e: unknown) => {
    assert.ok(e instanceof NonFiniteLossError);
    assert.equal(e.step, 4);
    assert.match(e.message, /^non-finite loss NaN at step 4; training stopped before the update, the last good checkpoint is .*checkpoint-2$/);
    return true;
  });
  assert.deepEqual(listCheckpoints(out).map((c) => c.step), [2]);
  trainer.dispose();
  model.dispose();
});

test('dropout seeds depend on (seed, step, micro-step) only', () => {
  assert.equal(dropoutSeedFor(233, 10, 1), dropoutSeedFor(233, 10, 1));
  const seen = new Set<number>();
  for (let s = 0; s < 50; s++) for (let m = 0; m < 4; m++) seen.add(dropoutSeedFor(233, s, m));
  assert.equal(seen.size, 200);
  assert.notEqual(dropoutSeedFor(1, 0, 0), dropoutSeedFor(2, 0, 0));
});

test('a checkpoint that fails while being written leaves no folder behind', async () => {
  const out = tmpDir('atomic');
  const model = new StandInLM(V, H);
  const trainer = makeTrainer(model, args({ output_dir: out, max_steps: 2, save_steps: 1 }));
  trainer.trainStep();
  const orig = model.savePretrained.bind(model);
  model.savePretrained = (dir: string) => {
    orig(dir);
    throw new Error('disk full');
  };
  await assert.rejects(() => trainer.saveCheckpoint(), /disk full/);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.includes('checkpoint')), []);
  model.savePretrained = orig;
  await trainer.saveCheckpoint();
  assert.deepEqual(listCheckpoints(out).map((c) => c.step), [1]);
  trainer.dispose();
  model.dispose();
});

test('disk full while saving: the message names the checkpoint, the intact last one and --resume (issue #20 item 12)', async () => {
  const out = tmpDir('enospc');
  const model = new StandInLM(V, H);
  const trainer = makeTrainer(model, args({ output_dir: out, max_steps: 3, save_steps: 1 }));
  trainer.trainStep();
  await trainer.saveCheckpoint();
  trainer.trainStep();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const realFs = require('node:fs') as typeof fs;
  const write = realFs.writeSync;
  realFs.writeSync = (() => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }); }) as typeof fs.writeSync;
  try {
    await assert.rejects(() => trainer.saveCheckpoint(), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ENOSPC');
      assert.equal(e.message, `saving checkpoint ${path.join(out, 'checkpoint-2')} (step 2) failed: the disk is full (ENOSPC). Nothing of it was kept; ` +
        `the last complete checkpoint, ${path.join(out, 'checkpoint-1')}, is intact: free space and run the same command with --resume to continue from it ` +
        `(writing ${path.join(out, '.checkpoint-2.tmp-' + process.pid, 'model.safetensors')} failed: ENOSPC: no space left on device, write (disk full; the previous version of the file, if any, is unchanged))`);
      return true;
    });
  } finally {
    realFs.writeSync = write;
  }
  assert.deepEqual(listCheckpoints(out).map((c) => c.step), [1]);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.includes('tmp')), []);
  trainer.dispose();
  model.dispose();
});

test('warmupOnly trains just the named tensors for the first steps (MoE continuation), then everything', () => {
  const model = new StandInLM(V, H, 2);
  const trainer = new Trainer({
    model, args: args({ output_dir: tmpDir('warmonly'), max_steps: 4, warmup_steps: 0 }), seqLen: T, writePlot: false, log: () => {},
    trainLoader: (pos) => new RowLoader(rows, 4, 1, (pos as number | undefined) ?? 0),
    warmupOnly: { names: ['model.norm.weight'], steps: 2 },
  });
  const snap = (n: string) => Array.from(model.parameters().get(n)!.dataSync());
  const emb0 = snap('model.embed_tokens.weight');
  const norm0 = snap('model.norm.weight');
  trainer.trainStep();
  trainer.trainStep();
  assert.deepEqual(snap('model.embed_tokens.weight'), emb0, 'frozen during the first 2 steps (no decay either)');
  assert.notDeepEqual(snap('model.norm.weight'), norm0);
  trainer.trainStep();
  assert.notDeepEqual(snap('model.embed_tokens.weight'), emb0);
  assert.throws(() => new Trainer({ model, args: args({ output_dir: tmpDir('warmonly2') }), seqLen: T, trainLoader: () => new RowLoader(rows, 4, 1), warmupOnly: { names: ['nope'], steps: 1 } }),
    /^Error: warmupOnly: 'nope' is not a parameter of the model$/);
  trainer.dispose();
  model.dispose();
});
