// The output folder of a training run (src/train/run-folder.ts), the same for pretrain, SFT and DPO (their side in
// finetune-pipeline.test.ts): --resume refuses
// settings that break exactness (naming the keys), a non-empty folder no run created is refused unless
// --overwrite-output-dir (the user's files stay), previous-runs/ keeps the last few runs.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackend } from '../src/runtime/backend';
import { writePackedSplit, writeDatasetDict } from '../src/data';
import { run } from '../src/cli/pretrain';
import { prunePreviousRuns, resumeChanges } from '../src/train';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-run-folder-'));
let cfg = '';

before(async () => {
  await loadBackend({ log: false });
  const ds = path.join(root, 'ds');
  let s = 7;
  const rows = (n: number, T: number) => Array.from({ length: n }, () => Int32Array.from({ length: T }, () => (s = (s * 1103515245 + 12345) % 2 ** 31) % 64));
  for (const [split, n, T] of [['train', 24, 16], ['test', 4, 16]] as const) {
    const r = rows(n, T);
    await writePackedSplit(path.join(ds, split), { seqLen: T, numRows: n, row: (i) => r[i]!, split });
  }
  writeDatasetDict(ds, ['train', 'test']);
  // a second dataset with rows of another length (a data change on --resume)
  const r32 = rows(24, 32);
  await writePackedSplit(path.join(root, 'ds32', 'train'), { seqLen: 32, numRows: 24, row: (i) => r32[i]!, split: 'train' });
  cfg = path.join(root, 'tiny.yaml');
  fs.writeFileSync(cfg, ['model:', '  vocab_size: 64', '  hidden_size: 16', '  intermediate_size: 32', '  num_hidden_layers: 1', '  num_attention_heads: 2',
    '  num_key_value_heads: 1', '  max_position_embeddings: 64', 'data:', `  dataset_dir: ${ds}`, 'training:', '  max_steps: 4', '  per_device_train_batch_size: 2',
    '  logging_steps: 2', '  eval_steps: 0', '  save_steps: 2', '  sample_new_tokens: 0'].join('\n'));
});

test('--resume with a changed learning rate, sequence length or data is refused, naming the keys and how to start fresh', async () => {
  const out = path.join(root, 'resume');
  await run(['--config', cfg, '--output-dir', out, '--max-steps', '2']);
  await assert.rejects(run(['--config', cfg, '--output-dir', out, '--max-steps', '4', '--resume', '--learning-rate', '0.5']),
    /--resume: .*checkpoint-2 was trained with other settings, and continuing with these would not reproduce the run: training\.learning_rate 0\.001 -> 0\.5\. Resume with the saved settings \(.*training_config\.json\), or start a fresh run without --resume/);
  await assert.rejects(run(['--config', cfg, '--output-dir', out, '--max-steps', '4', '--resume', '--dataset-dir', path.join(root, 'ds32')]),
    /would not reproduce the run: data\.dataset_dir .* -> .*ds32"; data_fingerprint "24 rows of 16, fnv1a [0-9a-f]+" -> "24 rows of 32, fnv1a [0-9a-f]+"/);
  // what may change: max_steps, logging / eval / save cadence
  await run(['--config', cfg, '--output-dir', out, '--max-steps', '4', '--resume', '--logging-steps', '1']);
  assert.ok(fs.existsSync(path.join(out, 'checkpoint-4')));
  assert.deepEqual(resumeChanges({ training: { seed: 1, max_steps: 2 }, data: { seq_len: 16 } }, { training: { seed: 2, max_steps: 9 }, data: { seq_len: 32 } }),
    ['data.seq_len 16 -> 32', 'training.seed 1 -> 2']);
});

test('--output-dir refuses a non-empty folder no training run created (the repository root, say) unless --overwrite-output-dir', async () => {
  const repo = path.join(root, 'repo');
  fs.mkdirSync(repo);
  fs.writeFileSync(path.join(repo, 'README.md'), 'my notes\n');
  fs.mkdirSync(path.join(repo, 'src'));
  await assert.rejects(run(['--config', cfg, '--output-dir', repo]),
    /wm pretrain: the output folder .*repo is not empty \(2 entries no training run wrote, e\.g\. 'README\.md'\) and was not created by a training run \(no run\.json\); choose a new or empty --output-dir, or pass --overwrite-output-dir/);
  assert.deepEqual(fs.readdirSync(repo).sort(), ['README.md', 'src'], 'nothing written, not even the lock');
  await run(['--config', cfg, '--output-dir', repo, '--overwrite-output-dir']);
  assert.equal(fs.readFileSync(path.join(repo, 'README.md'), 'utf8'), 'my notes\n', 'the user\'s files stay');
  assert.ok(fs.existsSync(path.join(repo, 'final', 'model.safetensors')) && fs.existsSync(path.join(repo, 'run.json')));
  // a folder a run created is taken without the flag (a fresh run moves the earlier one aside)
  await run(['--config', cfg, '--output-dir', repo, '--max-steps', '2']);
  assert.equal(fs.readdirSync(path.join(repo, 'previous-runs')).length, 1);
});

test('previous-runs/ keeps the last N runs (training.keep_previous_runs, default 3), and says so', async () => {
  const out = path.join(root, 'prune');
  const notes: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => { notes.push(String(chunk)); return true; }) as typeof process.stderr.write;
  try {
    for (let i = 0; i < 4; i++) await run(['--config', cfg, '--output-dir', out, '--max-steps', '1', '--keep-previous-runs', '2']);
  } finally {
    process.stderr.write = orig;
  }
  assert.equal(fs.readdirSync(path.join(out, 'previous-runs')).length, 2);
  assert.match(notes.join(''), /previous-runs\/ keeps the last 2 runs \(--keep-previous-runs N, 0 = all\); removed the oldest: \S+/);
  assert.deepEqual(prunePreviousRuns(out, 0), [], '0 keeps all');
});

test('--max-steps 1 trains in pretrain too (one rule with SFT: ratio warmup/decay always leave a step at the full rate)', async () => {
  const { parsePretrainConfig, scheduleSpec, lrMultiplier } = await import('../src/train');
  // doge-tiny's schedule: WSD, warmup_ratio 0.1, decay_ratio 0.1 (was refused: "warmup (1) + decay (1) steps exceed training.max_steps (1)")
  const c = parsePretrainConfig({ training: { max_steps: 1, lr_scheduler_type: 'warmup_stable_decay', warmup_ratio: 0.1, lr_scheduler_kwargs: { decay_ratio: 0.1 } } });
  assert.equal(lrMultiplier(scheduleSpec(c.training), 0), 1);
  const ten = parsePretrainConfig({ training: { max_steps: 10, warmup_ratio: 0.1 } }).training;
  assert.deepEqual([scheduleSpec(ten).warmupSteps, scheduleSpec(ten).decaySteps], [1, 1], 'longer runs keep their schedule');
  assert.throws(() => parsePretrainConfig({ training: { max_steps: 4, warmup_steps: 2, lr_scheduler_kwargs: { num_decay_steps: 3 } } }),
    /warmup \(2\) \+ decay \(3\) steps exceed training\.max_steps \(4\); use --max-steps 5 or more, or give the decay as a ratio/);
});
