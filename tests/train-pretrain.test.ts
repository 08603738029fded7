import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { writePackedSplit, writeDatasetDict } from '../src/data';
import { run, parseArgs } from '../src/cli/pretrain';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { acquireOutputLock, inheritParameters, loadPretrainConfig, runPretrain, Trainer, TRAINING_DEFAULTS, type EvalRow, type StepRow } from '../src/train';

before(async () => {
  await loadBackend({ log: false });
});

const V = 256;
const T = 32;

/** A packed DatasetDict (train/test) of seeded token rows in [0, maxId]. */
async function makeDataset(dir: string, o: { rows?: number; seqLen?: number; maxId?: number } = {}): Promise<string> {
  const seqLen = o.seqLen ?? T;
  const maxId = o.maxId ?? V - 1;
  let s = 12345;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const mk = (n: number) => Array.from({ length: n }, () => {
    const r = new Int32Array(seqLen);
    r[0] = Math.floor(rand() * (maxId + 1));
    for (let t = 1; t < seqLen; t++) r[t] = rand() < 0.7 ? (r[t - 1] * 7 + 3) % (maxId + 1) : Math.floor(rand() * (maxId + 1));
    return r;
  });
  const train = mk(o.rows ?? 48);
  const testRows = mk(8);
  await writePackedSplit(path.join(dir, 'train'), { seqLen, numRows: train.length, row: (i) => train[i], split: 'train' });
  await writePackedSplit(path.join(dir, 'test'), { seqLen, numRows: testRows.length, row: (i) => testRows[i], split: 'test' });
  writeDatasetDict(dir, ['train', 'test']);
  return dir;
}

/** A tiny Doge config file (vocab 256, 2 layers, seq 32) over `datasetDir`. */
function writeConfig(dir: string, datasetDir: string, extra: { model?: string; training?: string } = {}): string {
  const file = path.join(dir, 'tiny.yaml');
  fs.writeFileSync(file, `model:
  vocab_size: ${V}
  hidden_size: 32
  intermediate_size: 64
  num_hidden_layers: 2
  num_attention_heads: 4
  num_key_value_heads: 2
  max_position_embeddings: 64
  tie_word_embeddings: true
${extra.model ?? ''}
data:
  dataset_dir: ${datasetDir}
  seq_len: ${T}
training:
  output_dir: ${path.join(dir, 'out')}
  max_steps: 8
  per_device_train_batch_size: 4
  per_device_eval_batch_size: 4
  learning_rate: 1.0e-2
  logging_steps: 2
  eval_steps: 4
  eval_batches: 2
  save_steps: 4
${extra.training ?? ''}
`);
  return file;
}

function tmp(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `wm-pretrain-${name}-`));
}

test('argument parsing: flags, overrides, --resume with and without a folder', () => {
  assert.deepEqual(parseArgs(['--config', 'c.yaml', '--max-steps', '200', '--output-dir=runs/x', '--resume']),
    { config: 'c.yaml', resume: true, prepareDefault: false, overrides: { 'max-steps': '200', 'output-dir': 'runs/x' } });
  assert.deepEqual(parseArgs(['--resume', 'runs/x/checkpoint-4', '--prepare-default', '--config', 'c.yaml']),
    { config: 'c.yaml', resume: 'runs/x/checkpoint-4', prepareDefault: true, overrides: {} });
  assert.throws(() => parseArgs(['--max-steps']), /^UsageError: wm pretrain: --max-steps needs a value$/);
});

test('a missing dataset folder is named', async () => {
  const dir = tmp('missing');
  const cfg = writeConfig(dir, path.join(dir, 'nope'));
  await assert.rejects(() => run(['--config', cfg]), /^Error: dataset folder not found: .*nope \(set data\.dataset_dir, run 'wm data prepare', or pass --prepare-default\)$/);
});

test('token ids beyond the model vocabulary are reported with row, position and id', async () => {
  const dir = tmp('vocab');
  const ds = await makeDataset(path.join(dir, 'ds'), { maxId: 400 });
  const cfg = writeConfig(dir, ds);
  await assert.rejects(() => run(['--config', cfg]), /token id \d+ at row \d+, position \d+ of .*train is outside the model's vocabulary \(vocab_size 256\)/);
});

test('a sequence length above max_position_embeddings is refused', async () => {
  const dir = tmp('seqlen');
  const ds = await makeDataset(path.join(dir, 'ds'), { seqLen: 96, rows: 8 });
  const cfg = writeConfig(dir, ds);
  await assert.rejects(() => run(['--config', cfg, '--seq-len', '96']), /the sequence length 96 of .*train exceeds the model's max_position_embeddings 64/);
  await assert.rejects(() => run(['--config', cfg]), /data\.seq_len is 32 but the rows of .*train have 96 tokens/);
});

function metricsRows(dir: string): Record<string, number>[] {
  return fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

test('wm pretrain end to end on a tiny Doge: checkpoints, final model, and --resume reproduces the losses', async () => {
  const dir = tmp('e2e');
  const ds = await makeDataset(path.join(dir, 'ds'));
  const cfg = writeConfig(dir, ds, { model: '  hidden_dropout: 0.1\n  attention_dropout: 0.1', training: '  gradient_accumulation_steps: 2' });
  const out = path.join(dir, 'out');
  await run(['--config', cfg]);
  for (const f of ['checkpoint-4', 'checkpoint-8', 'final/model.safetensors', 'final/config.json', 'metrics.jsonl', 'loss.html']) {
    assert.ok(fs.existsSync(path.join(out, f)), f);
  }
  const full = metricsRows(out);
  const trainRows = full.filter((r) => 'loss' in r);
  assert.deepEqual(trainRows.map((r) => r.step), [2, 4, 6, 8]);
  assert.deepEqual(full.filter((r) => 'eval_loss' in r).map((r) => r.step), [4, 8]);
  assert.ok(trainRows[3].loss < trainRows[0].loss, `loss ${trainRows[0].loss} -> ${trainRows[3].loss}`);

  // The final folder is an HF checkpoint: it loads and equals the step-8 weights.
  const a = DogeForCausalLM.fromPretrained(path.join(out, 'final'));
  const b = DogeForCausalLM.fromPretrained(path.join(out, 'checkpoint-8'));
  for (const [name, p] of a.parameters()) assert.deepEqual(p.dataSync(), b.parameters().get(name)!.dataSync(), name);
  a.dispose();
  b.dispose();

  // Lose the end of the run, then resume from checkpoint-4: the same rows come back.
  fs.rmSync(path.join(out, 'checkpoint-8'), { recursive: true });
  await run(['--config', cfg, '--resume']);
  const resumed = metricsRows(out);
  assert.equal(resumed.length, full.length);
  for (let i = 0; i < full.length; i++) {
    assert.equal(resumed[i].step, full[i].step);
    for (const k of ['loss', 'grad_norm', 'lr', 'eval_loss']) {
      if (full[i][k] === undefined) continue;
      assert.ok(Math.abs(full[i][k] - resumed[i][k]) <= 1e-6, `row ${i} ${k}: ${full[i][k]} vs ${resumed[i][k]}`);
    }
  }
});

test('a dense checkpoint continues as MoE: only the new expert tensors are initialised', async () => {
  const dir = tmp('moe');
  const ds = await makeDataset(path.join(dir, 'ds'));
  const short = ['--max-steps', '2', '--save-steps', '0', '--eval-steps', '0'];
  const cfg = writeConfig(dir, ds);
  await run(['--config', cfg, ...short]);
  const dense = path.join(dir, 'out', 'final');
  const moeCfg = writeConfig(dir, ds, {
    model: `  is_moe: true\n  num_experts: 16\n  num_experts_per_tok: 4\n  init_from: ${dense}`,
  });
  const config = DogeConfig.fromJSON({ ...DogeConfig.fromPretrained(dense).toJSON(), is_moe: true, num_experts: 16, num_experts_per_tok: 4 });
  const moe = new DogeForCausalLM(config, { seed: 5 });
  const r = inheritParameters(moe.parameters(), dense);
  assert.deepEqual(r.ignored, []);
  assert.ok(r.initialised.length > 0);
  for (const n of r.initialised) assert.match(n, /\.mlp\.(router_gate\.weight|down_embed\.weight|up_embed\.weight)$/);
  const src = DogeForCausalLM.fromPretrained(dense);
  for (const n of r.copied) assert.deepEqual(moe.parameters().get(n)!.dataSync(), src.parameters().get(n)!.dataSync(), n);
  moe.dispose();
  src.dispose();
  // And the CLI trains it.
  await run(['--config', moeCfg, ...short, '--output-dir', path.join(dir, 'moe-out'), '--train-new-only-steps', '1']);
  const rows = metricsRows(path.join(dir, 'moe-out'));
  assert.ok(rows.every((row) => !('loss' in row) || Number.isFinite(row.loss)));
  assert.ok(fs.existsSync(path.join(dir, 'moe-out', 'final', 'model.safetensors')));
});

test('Doge training keeps the live tensor count constant across 200 steps', async () => {
  const config = new DogeConfig({ vocab_size: 32, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, hidden_dropout: 0.1, attention_dropout: 0.1, max_position_embeddings: 16 });
  const model = new DogeForCausalLM(config, { seed: 1 });
  const rows = Array.from({ length: 8 }, (_, i) => Int32Array.from({ length: 8 }, (_, t) => (i * 5 + t * 3) % 32));
  const counts: number[] = [];
  const trainer = new Trainer({
    model, seqLen: 8, writePlot: false, log: () => {},
    args: { ...structuredClone(TRAINING_DEFAULTS), output_dir: tmp('doge-leak'), max_steps: 200, per_device_train_batch_size: 2, per_device_eval_batch_size: 2,
      // eval every step: inference caches transposed weights (src/ops weightT) from the first eval on, so evaluating
      // from step 1 keeps that bounded cache in the same state at every count
      gradient_accumulation_steps: 2, eval_steps: 1, eval_batches: 1, save_steps: 100, logging_steps: 50 },
    evalDataset: { numRows: 4, seqLen: 8, row: (i) => rows[i] },
    trainLoader: (pos) => {
      let p = (pos as number | undefined) ?? 0;
      return { get position() { return p; }, next: () => [rows[p++ % 8], rows[p++ % 8]] };
    },
    onStep: (r) => { if (r.step >= 5) counts.push(tf.memory().numTensors); },
  });
  await trainer.train();
  assert.equal(counts.length, 196);
  assert.ok(counts.every((c) => c === counts[0]), `tensor counts vary: min ${Math.min(...counts)} max ${Math.max(...counts)}`);
  trainer.dispose();
  model.dispose();
});

/** Start `wm pretrain` as a real process; `signal` is sent once the progress line of step 3 appears. */
async function pretrainProcess(cfg: string, signal: NodeJS.Signals | undefined, extra: string[] = []) {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/wm.ts', 'pretrain', '--config', cfg, '--max-steps', '100000', '--save-steps', '0', '--eval-steps', '0', '--logging-steps', '1', ...extra], {
    env: { ...process.env, WM_BACKEND: 'wasm', WM_WASM_THREADS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let signalled = false;
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    if (signal && !signalled && /step +3\/100000/.test(err)) {
      signalled = true;
      child.kill(signal);
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, err, pid: child.pid! };
}

for (const [signal, exitCode, says] of [['SIGINT', 130, 'Ctrl-C'], ['SIGTERM', 143, 'SIGTERM']] as const) {
  test(`${signal} saves a checkpoint after the current step and exits ${exitCode}; stale temporaries are cleaned, a torn metrics line does not block --resume`, async () => {
    const dir = tmp(signal.toLowerCase());
    const ds = await makeDataset(path.join(dir, 'ds'));
    const cfg = writeConfig(dir, ds);
    const out = path.join(dir, 'out');
    // What a kill -9 during a save leaves behind (the process is gone, its pid no longer runs).
    fs.mkdirSync(path.join(out, '.checkpoint-2.tmp-999999', 'trainer_state'), { recursive: true });
    fs.writeFileSync(path.join(out, '.checkpoint-2.tmp-999999', 'model.safetensors'), Buffer.alloc(1000));
    const { code, err } = await pretrainProcess(cfg, signal);
    assert.equal(code, exitCode, err.slice(-2000));
    assert.match(err, new RegExp(`${says}: saving a checkpoint after this step`));
    assert.match(err, /removed 1 incomplete temporary folder\(s\) of an interrupted save/);
    assert.ok(!fs.existsSync(path.join(out, '.checkpoint-2.tmp-999999')));
    const m = /saved (.*checkpoint-(\d+)) \(stopped early; continue with --resume\)/.exec(err);
    assert.ok(m, err.slice(-2000));
    const step = Number(m[2]);
    assert.ok(step >= 3 && step < 100000);
    assert.ok(fs.existsSync(path.join(m[1], 'trainer_state', 'state.json')));
    assert.ok(!fs.existsSync(path.join(out, '.wm-lock')), 'the lock is released');
    // Killed while appending a metrics row: the torn last line is dropped on resume, the run continues.
    fs.appendFileSync(path.join(out, 'metrics.jsonl'), '{"step": 99999, "lo');
    await run(['--config', cfg, '--resume', '--max-steps', String(step + 2), '--save-steps', '0', '--eval-steps', '0', '--logging-steps', '1', '--sample-new-tokens', '0']);
    assert.deepEqual(metricsRows(out).filter((r) => 'loss' in r).map((r) => r.step), Array.from({ length: step + 2 }, (_, i) => i + 1));
  });
}

test('a second run into the same output folder is refused while the first holds the lock; a killed holder leaves a stale lock that is taken over', async () => {
  const dir = tmp('lock');
  const out = path.join(dir, 'out');
  const { spawn } = await import('node:child_process');
  // A real process holding the lock (what a running `wm pretrain` does first).
  const holder = spawn(process.execPath, ['-e', `require(${JSON.stringify(path.resolve('dist/train/checkpoint.js'))}).acquireOutputLock(${JSON.stringify(out)}); console.log('locked'); setInterval(() => {}, 1000);`],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout.on('data', (d: Buffer) => { if (d.toString().includes('locked')) resolve(); }));
  try {
    assert.throws(() => acquireOutputLock(out), new RegExp(`is in use by another run: process ${holder.pid} .*choose another --output-dir`));
    const ds = await makeDataset(path.join(dir, 'ds'));
    const cfg = writeConfig(dir, ds);
    const second = await pretrainProcess(cfg, undefined);
    assert.equal(second.code, 1);
    assert.match(second.err, new RegExp(`in use by another run: process ${holder.pid}`));
    assert.ok(!fs.existsSync(path.join(out, 'metrics.jsonl')), 'the refused run wrote nothing');
  } finally {
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.on('exit', resolve));
  }
  assert.ok(fs.existsSync(path.join(out, '.wm-lock')), 'kill -9 leaves the lock file');
  const notes: string[] = [];
  const release = acquireOutputLock(out, (l) => notes.push(l));
  assert.match(notes.join('\n'), new RegExp(`removed a stale lock of .* \\(process ${holder.pid} is no longer running\\)`));
  release();
  assert.ok(!fs.existsSync(path.join(out, '.wm-lock')));
});

test('--resume continues this folder\'s own run: a fresh run moves the earlier one aside, and checkpoints of other runs are never picked', async () => {
  const dir = tmp('runid');
  const ds = await makeDataset(path.join(dir, 'ds'));
  const cfg = writeConfig(dir, ds);
  const out = path.join(dir, 'out');
  const quiet = ['--eval-steps', '0', '--sample-new-tokens', '0', '--logging-steps', '2'];
  await run(['--config', cfg, '--max-steps', '8', '--save-steps', '8', ...quiet]);
  const runA = JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8')).run_id as string;
  await run(['--config', cfg, '--max-steps', '4', '--save-steps', '2', ...quiet]);
  const runB = JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8')).run_id as string;
  assert.notEqual(runA, runB);
  // Run A is kept, aside: nothing deleted.
  assert.ok(fs.existsSync(path.join(out, 'previous-runs', runA, 'checkpoint-8', 'model.safetensors')));
  assert.ok(fs.existsSync(path.join(out, 'previous-runs', runA, 'final', 'model.safetensors')));
  // A checkpoint of another run with a higher step in the folder (e.g. copied back) is not resumed.
  fs.cpSync(path.join(out, 'previous-runs', runA, 'checkpoint-8'), path.join(out, 'checkpoint-8'), { recursive: true });
  await run(['--config', cfg, '--max-steps', '6', '--save-steps', '2', '--resume', ...quiet]);
  const state = JSON.parse(fs.readFileSync(path.join(out, 'checkpoint-6', 'trainer_state', 'state.json'), 'utf8'));
  assert.equal(state.run_id, runB);
  assert.equal(state.global_step, 6);
  const rows = metricsRows(out).filter((r) => 'loss' in r);
  assert.deepEqual(rows.map((r) => r.step), [2, 4, 6]);
  assert.ok(rows.every((r) => Number.isFinite(r.loss)));
  // The foreign checkpoint was not pruned as if it were ours (save_total_limit 2 counts this run's only).
  assert.ok(fs.existsSync(path.join(out, 'checkpoint-8')));
  assert.ok(!fs.existsSync(path.join(out, 'checkpoint-2')));
});

test('loss.html: single points have markers, lr and tokens/s panels, plotly.js once per folder instead of inlined', async () => {
  const { writeLossHtml, trainingFigures } = await import('../src/train');
  const dir = tmp('losshtml');
  const rows = [
    { step: 1, loss: 5, lr: 1e-3, grad_norm: 1, tokens: 64, tokens_per_s: 900, elapsed_s: 1 },
    { step: 2, loss: 4, lr: 5e-4, grad_norm: 1, tokens: 128, tokens_per_s: 1000, elapsed_s: 2 },
    { step: 2, eval_loss: 4.2, eval_perplexity: Math.exp(4.2) },
  ];
  const figs = trainingFigures(rows);
  assert.equal(figs.length, 3);
  const evalTrace = figs[0].data.find((t) => t.name === 'eval loss') as unknown as { mode: string; y: number[] };
  assert.equal(evalTrace.mode, 'lines+markers');
  assert.deepEqual(evalTrace.y, [4.2]);
  assert.deepEqual((figs[1].data[0] as unknown as { y: number[] }).y, [1e-3, 5e-4]);
  assert.deepEqual((figs[2].data[0] as unknown as { y: number[] }).y, [900, 1000]);
  writeLossHtml(rows, path.join(dir, 'loss.html'));
  writeLossHtml(rows, path.join(dir, 'other.html'));
  const html = fs.readFileSync(path.join(dir, 'loss.html'), 'utf8');
  assert.ok(html.length < 50_000, `loss.html is ${html.length} bytes`);
  const libs = fs.readdirSync(dir).filter((f) => /^plotly-.*\.min\.js$/.test(f));
  assert.equal(libs.length, 1);
  assert.ok(html.includes(`src="${libs[0]}"`));
  assert.ok(fs.statSync(path.join(dir, libs[0])).size > 1_000_000);
  assert.match(html, /learning rate/);
  assert.match(html, /throughput \(tokens\/s\)/);
});

test('checkpoint folders are fsync\'ed (every file, the folders, and the parent after the rename)', async () => {
  const { writeFolderAtomically } = await import('../src/train');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const realFs = require('node:fs') as typeof fs;
  const synced: string[] = [];
  const open = realFs.openSync;
  const fsync = realFs.fsyncSync;
  const pathOf = new Map<number, string>();
  realFs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => { const fd = (open as (...a: unknown[]) => number)(p, ...rest); pathOf.set(fd, String(p)); return fd; }) as typeof fs.openSync;
  realFs.fsyncSync = ((fd: number) => { synced.push(pathOf.get(fd) ?? `fd ${fd}`); return fsync(fd); }) as typeof fs.fsyncSync;
  const dir = tmp('fsync');
  try {
    await writeFolderAtomically(path.join(dir, 'checkpoint-1'), (t) => {
      fs.writeFileSync(path.join(t, 'model.safetensors'), 'x');
      fs.mkdirSync(path.join(t, 'trainer_state'));
      fs.writeFileSync(path.join(t, 'trainer_state', 'state.json'), '{}');
    });
  } finally {
    realFs.openSync = open;
    realFs.fsyncSync = fsync;
  }
  const names = synced.map((p) => path.relative(dir, p).replace(/\.checkpoint-1\.tmp-\d+/, 'TMP'));
  for (const want of ['TMP/model.safetensors', 'TMP/trainer_state/state.json', 'TMP/trainer_state', 'TMP', '']) assert.ok(names.includes(want), `${want} not fsync'ed: ${names.join(', ')}`);
  assert.ok(fs.existsSync(path.join(dir, 'checkpoint-1', 'trainer_state', 'state.json')));
});

test('kill -9 in the middle of a run (saving every step): the next run takes over the stale lock, removes half-written checkpoints and resumes from the newest complete one', async () => {
  const dir = tmp('kill9');
  const ds = await makeDataset(path.join(dir, 'ds'));
  const cfg = writeConfig(dir, ds);
  const out = path.join(dir, 'out');
  const killed = await pretrainProcess(cfg, 'SIGKILL', ['--save-steps', '1', '--save-total-limit', '0']);
  assert.equal(killed.code, null, 'killed by the signal');
  assert.ok(fs.existsSync(path.join(out, '.wm-lock')), 'a kill -9 leaves its lock behind');
  const complete = fs.readdirSync(out).filter((n) => /^checkpoint-\d+$/.test(n) && fs.existsSync(path.join(out, n, 'trainer_state', 'state.json')));
  const newest = Math.max(...complete.map((n) => Number(n.split('-')[1])));
  assert.ok(newest >= 2, `complete checkpoints: ${complete.join(', ')}`);
  await run(['--config', cfg, '--resume', '--max-steps', String(newest + 1), '--save-steps', '0', '--eval-steps', '0', '--logging-steps', '1', '--sample-new-tokens', '0']);
  assert.deepEqual(fs.readdirSync(out).filter((n) => n.startsWith('.')), [], 'no lock and no temporaries left');
  const state = JSON.parse(fs.readFileSync(path.join(out, `checkpoint-${newest + 1}`, 'trainer_state', 'state.json'), 'utf8'));
  assert.equal(state.global_step, newest + 1);
  const steps = metricsRows(out).filter((r) => 'loss' in r).map((r) => r.step);
  assert.deepEqual(steps, Array.from({ length: newest + 1 }, (_, i) => i + 1));
});

test("runPretrain with logLevel 'summary' (notebooks): a start line, a line per 25 % with the evaluation of that step on it, a final line; onStep / onEval give the curves", async () => {
  const dir = tmp('summary');
  const config = loadPretrainConfig(writeConfig(dir, await makeDataset(path.join(dir, 'data'))));
  const lines: string[] = [];
  const steps: StepRow[] = [];
  const evals: EvalRow[] = [];
  const r = await runPretrain(config, { log: (l) => lines.push(l), logLevel: 'summary', onStep: (row) => steps.push(row), onEval: (row) => evals.push(row) });
  // 8 steps: lines at steps 2, 4 (with the eval of step 4) and 6; the eval of step 8 is on the final line
  assert.equal(lines.length, 5, lines.join('\n'));
  assert.match(lines[0]!, /^doge \(0\.\d\dM parameters\): 8 steps of 4 x 32 tokens from 48 training rows; peak lr 0\.01;\n {2}held-out evaluation every 4 steps and at the end$/);
  assert.match(lines[1]!, /^step 2\/8 \(25%\): loss \d\.\d{3} \| \d+s$/);
  assert.match(lines[2]!, /^step 4\/8 \(50%\): loss \d\.\d{3} \| held-out loss \d\.\d{3} \| perplexity \d+\.\d \| \d+s$/);
  assert.match(lines[3]!, /^step 6\/8 \(75%\): loss \d\.\d{3} \| \d+s$/);
  assert.match(lines[4]!, /^done: 8 steps in \d+s \| last 2 steps: loss \d\.\d{3} \| held-out loss \d\.\d{3} \| perplexity \d+\.\d$/);
  // the numbers on the lines are the run's: the mean loss of steps 3-4, and the evaluations
  const mean34 = (steps[2]!.loss + steps[3]!.loss) / 2;
  assert.equal(lines[2]!.match(/loss (\d\.\d{3}) \|/)![1], mean34.toFixed(3));
  assert.deepEqual(steps.map((s) => s.step), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(steps.every((s) => s.tokens === 4 * 32 && Number.isFinite(s.loss) && s.lr >= 0));
  assert.deepEqual(evals.map((e) => e.step), [4, 8]);
  assert.equal(lines[4]!.match(/held-out loss (\d\.\d{3})/)![1], evals[1]!.eval_loss.toFixed(3));
  assert.equal(r.lastEval!.eval_loss, evals[1]!.eval_loss);
  // the default ('steps', the CLI's) is unchanged: model and data lines, a progress line every logging_steps, evals, saves
  const cli: string[] = [];
  const again = loadPretrainConfig(writeConfig(dir, path.join(dir, 'data')));
  again.training.output_dir = path.join(dir, 'out2');
  await runPretrain(again, { log: (l) => cli.push(l) });
  assert.deepEqual(cli.map((l) => l.split(/[ :]/)[0]), ['model', 'data', 'step', 'step', 'eval', 'saved', 'step', 'step', 'eval', 'saved']);
});

test('joinWrapped: parts joined by "; " into lines of at most the width, later lines indented; a long part keeps a line', async () => {
  const { joinWrapped } = await import('../src/train/trainer');
  assert.equal(joinWrapped(['a', 'b', 'c']), 'a; b; c');
  assert.equal(joinWrapped(['aaaa', 'bbbb', 'cccc'], 11), 'aaaa; bbbb;\n  cccc'); // 11 with the ';'
  assert.equal(joinWrapped(['aaaa', 'bbbb', 'cccc'], 10), 'aaaa;\n  bbbb;\n  cccc');
  assert.equal(joinWrapped(['x'.repeat(15), 'y'], 10), `${'x'.repeat(15)};\n  y`);
  assert.equal(joinWrapped([]), '');
  const wrapped = joinWrapped(Array.from({ length: 30 }, (_, i) => `part ${i}`), 40);
  assert.ok(wrapped.split('\n').every((l) => l.length <= 40), wrapped);
  assert.equal(wrapped.replace(/;\n {2}/g, '; '), Array.from({ length: 30 }, (_, i) => `part ${i}`).join('; '));
});
