// One fine-tuning pipeline for every registered causal LM: SFT and DPO of a tiny Cheems through the API and the CLI
// (it used to fail with "DogeConfig: model_type must be 'doge'"), DPO's reference log-probs computed only for the
// pairs the run uses, --resume refusing changed settings, foreign output folders refused, the --max-steps 1 rule.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackend } from '../src/runtime/backend';
import { CheemsConfig, CheemsForCausalLM } from '../src/models/cheems';
import { loadCausalLM } from '../src/models/auto';
import { trainTokenizer } from '../src/data';
import { readMetrics } from '../src/train';
import { defaultChats, IndexLoader, parseFinetuneConfig, runDpo, runSft, type FinetuneConfig } from '../src/finetune';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-ft-pipeline-'));
const cheems = path.join(root, 'cheems');

before(async () => {
  await loadBackend({ log: false });
  const texts = defaultChats({ seed: 1, n: 300 }).map((c) => c.messages.map((m) => m.content).join('\n'));
  await trainTokenizer({ texts, vocabSize: 300, outDir: cheems, log: false });
  const model = new CheemsForCausalLM(new CheemsConfig({
    vocab_size: 300, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1,
    attn_layer_period: 2, attn_layer_offset: 1, ssd_chunk_size: 16, rope_scaling: null, max_position_embeddings: 256,
  }), { seed: 4 });
  model.savePretrained(cheems);
  model.dispose();
});

const quiet = { log: () => {} };

function config(kind: 'sft' | 'dpo', out: string, extra: Record<string, unknown> = {}, training: Record<string, unknown> = {}): FinetuneConfig {
  return parseFinetuneConfig({
    model: { init_from: cheems },
    data: kind === 'sft' ? { train: 'embedded:chats', max_train_rows: 40, max_eval_rows: 8 } : { train: 'embedded:prefs', max_train_rows: 48, max_eval_rows: 8 },
    ...(kind === 'sft' ? { sft: { seq_len: 64 } } : { dpo: { max_length: 192, max_prompt_length: 128, reference: 'precompute' } }),
    ...extra,
    training: { output_dir: out, seed: 5, max_steps: 3, per_device_train_batch_size: 2, per_device_eval_batch_size: 4, learning_rate: 3e-3, logging_steps: 1, eval_steps: 0, save_steps: 0, warmup_ratio: 0, ...training },
  }, kind, `test-${kind}`);
}

test('SFT then DPO of a Cheems model through the API: the loss is finite, final/ is a Cheems folder, the summary measures before/after', async () => {
  const sftOut = path.join(root, 'cheems-sft');
  const r = await runSft(config('sft', sftOut), { ...quiet, summary: true });
  assert.equal(r.steps, 3);
  assert.ok(Number.isFinite(r.lastLoss));
  assert.ok(r.evalBefore && Number.isFinite(r.evalBefore.eval_loss) && r.lastEval && r.lastEval.eval_loss < r.evalBefore.eval_loss, `held-out loss falls: ${r.evalBefore?.eval_loss} -> ${r.lastEval?.eval_loss}`);
  assert.ok(r.sample && r.sample.prompt.length > 0, 'a sample of the final model');
  const back = loadCausalLM(r.finalDir!);
  assert.ok(back instanceof CheemsForCausalLM);
  back.dispose();
  const d = await runDpo({ ...config('dpo', path.join(root, 'cheems-dpo')), model: { init_from: r.finalDir!, router_layout: 'token' } }, quiet);
  const rows = readMetrics(path.join(root, 'cheems-dpo', 'metrics.jsonl')) as unknown as Record<string, number>[];
  assert.ok(Math.abs(rows.find((x) => 'loss' in x)!.loss! - Math.LN2) < 1e-5, 'DPO starts at ln 2 (policy = reference)');
  assert.ok(d.finalDir && loadCausalLM(d.finalDir) instanceof CheemsForCausalLM);
});

test('wm sft / wm dpo --init-from <a Cheems checkpoint> (used to fail: "DogeConfig: model_type must be \'doge\'")', async () => {
  const { run: sftCli } = await import('../src/cli/sft');
  const { run: dpoCli } = await import('../src/cli/dpo');
  const yaml = (kind: 'sft' | 'dpo'): string => {
    const f = path.join(root, `${kind}.yaml`);
    fs.writeFileSync(f, [
      'model:', `  init_from: ${cheems}`, 'data:', `  train: ${kind === 'sft' ? 'embedded:chats' : 'embedded:prefs'}`, '  max_train_rows: 24', '  max_eval_rows: 4',
      ...(kind === 'sft' ? ['sft:', '  seq_len: 64'] : ['dpo:', '  max_length: 192', '  max_prompt_length: 128']),
      'training:', '  per_device_train_batch_size: 2', '  save_steps: 0', '  eval_steps: 0', '  logging_steps: 1',
    ].join('\n'));
    return f;
  };
  const sftOut = path.join(root, 'cli-cheems-sft');
  await sftCli(['--config', yaml('sft'), '--max-steps', '2', '--output-dir', sftOut]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(sftOut, 'final', 'config.json'), 'utf8')).model_type, 'cheems');
  const dpoOut = path.join(root, 'cli-cheems-dpo');
  await dpoCli(['--config', yaml('dpo'), '--max-steps', '2', '--init-from', path.join(sftOut, 'final'), '--output-dir', dpoOut]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dpoOut, 'final', 'config.json'), 'utf8')).model_type, 'cheems');
});

test('DPO precompute: reference log-probs only for the micro-batches the run uses, equal to the copied reference\'s', async () => {
  const lines: string[] = [];
  // 48 pairs, 2 steps of 2 pairs: 4 pairs used
  await runDpo(config('dpo', path.join(root, 'dpo-lazy'), {}, { max_steps: 2 }), { log: (l) => lines.push(l) });
  assert.match(lines.join('\n'), /dpo: reference log-probs of the 4 training pairs this run uses \(2 micro-batches of 4\d pairs\) and the 8 eval pairs/);
  await runDpo(config('dpo', path.join(root, 'dpo-copy'), { dpo: { max_length: 192, max_prompt_length: 128, reference: 'copy' } }, { max_steps: 2 }), quiet);
  const strip = (d: string) => (readMetrics(path.join(root, d, 'metrics.jsonl')) as unknown as Record<string, number>[]).map(({ tokens_per_s: _a, elapsed_s: _b, ...r }) => r);
  assert.deepEqual(strip('dpo-lazy'), strip('dpo-copy'), 'precompute = copy, bit for bit');
  // the batches are those the loader will hand out
  const l = new IndexLoader(10, 3, 7, 3);
  const planned = l.batchesUntil(9);
  assert.deepEqual(planned, [{ position: 3, items: l.next() }, { position: 6, items: l.next() }]);
});

test('--max-steps 1 trains one step in SFT (one rule: a warmup given as a ratio always leaves a step at the full rate)', async () => {
  const r = await runSft(config('sft', path.join(root, 'one-step'), {}, { max_steps: 1, warmup_ratio: 0.1 }), quiet);
  const rows = readMetrics(path.join(root, 'one-step', 'metrics.jsonl')) as unknown as Record<string, number>[];
  assert.equal(r.steps, 1);
  assert.equal(rows.find((x) => 'lr' in x)!.lr, 3e-3, 'the one step runs at the full learning rate (it used to be 0: a step that did nothing)');
  assert.throws(() => config('sft', path.join(root, 'x'), {}, { max_steps: 2, warmup_steps: 2 }),
    /training\.warmup_steps \(2\) leaves no step at the full learning rate in training\.max_steps \(2\); use --max-steps 3 or more/);
});

test('wm sft / wm dpo refuse an --output-dir no training run created, and --resume with changed settings', async () => {
  const mine = path.join(root, 'my-folder');
  fs.mkdirSync(mine);
  fs.writeFileSync(path.join(mine, 'notes.txt'), 'keep me\n');
  for (const kind of ['sft', 'dpo'] as const) {
    const run = kind === 'sft' ? runSft : runDpo;
    await assert.rejects(run(config(kind, mine), quiet), new RegExp(`wm ${kind}: the output folder .*my-folder is not empty \\(1 entries no training run wrote, e\\.g\\. 'notes\\.txt'\\)`));
  }
  assert.deepEqual(fs.readdirSync(mine), ['notes.txt']);
  const out = path.join(root, 'sft-resume');
  await runSft(config('sft', out, {}, { max_steps: 2, save_steps: 1 }), { ...quiet, onStep: (row, t) => { if (row.step === 1) t.requestStop(); } });
  await assert.rejects(runSft(config('sft', out, { sft: { seq_len: 48 } }, { max_steps: 2, save_steps: 1 }), { ...quiet, resume: 'latest' }),
    /--resume: .*checkpoint-1 was trained with other settings, and continuing with these would not reproduce the run: data_fingerprint "\d+ items, fnv1a [0-9a-f]+" -> "\d+ items, fnv1a [0-9a-f]+"; sft\.seq_len 64 -> 48\./);
  const r = await runSft(config('sft', out, {}, { max_steps: 2, save_steps: 1 }), { ...quiet, resume: 'latest' });
  assert.equal(r.steps, 2);
});

test('Ctrl-C during DPO\'s reference precompute stops cleanly: no step, no checkpoint, exit code 130, the folder\'s lock released', async () => {
  const { withStopSignals } = await import('../src/cli/training');
  const out = path.join(root, 'dpo-sigint');
  const lines: string[] = [];
  const before = process.exitCode;
  // the signal arrives after the first micro-batch's reference log-probs (the precompute yields between micro-batches;
  // it used to run in one synchronous piece, so Ctrl-C waited for all of it and then for a training step)
  const r = await withStopSignals((onTrainer) => runDpo(config('dpo', out), {
    log: (l) => lines.push(l),
    onTrainer: (t) => { onTrainer(t); setImmediate(() => setImmediate(() => process.emit('SIGINT', 'SIGINT'))); },
  }));
  assert.equal(process.exitCode, 130);
  process.exitCode = before;
  assert.equal(r.stopped, true);
  assert.equal(r.steps, 0);
  assert.equal(r.checkpoint, undefined);
  assert.equal(r.finalDir, undefined);
  const m = lines.join('\n').match(/dpo: stopped during the reference precompute \((\d+) of 3 micro-batches\); nothing was trained/);
  assert.ok(m && Number(m[1]) < 3, lines.join('\n'));
  assert.match(lines.join('\n'), /stopped before step 1: nothing was trained in this session/);
  assert.ok(!fs.readdirSync(out).some((f) => /^checkpoint-|^final$|\.wm-lock/.test(f)), fs.readdirSync(out).join(', '));
  // the lock is released: the next run in the folder trains
  const again = await runDpo(config('dpo', out), quiet);
  assert.equal(again.steps, 3);
});

test("runDpo with logLevel 'summary': the start line names the run, summary lines show rewards/margins and rewards/accuracies, onStep has the step's metrics", async () => {
  const lines: string[] = [];
  const metrics: Record<string, number>[] = [];
  const r = await runDpo(config('dpo', path.join(root, 'dpo-summary'), {}, { max_steps: 4, eval_steps: 2 }), {
    log: (l) => lines.push(l), logLevel: 'summary', onStep: (row) => metrics.push(row.metrics!),
  });
  assert.equal(r.steps, 4);
  assert.equal(lines.length, 5, lines.join('\n'));
  // the start line is wrapped at its '; ' into lines of at most 100 characters
  assert.ok(lines[0]!.includes('\n') && lines[0]!.split('\n').every((l) => l.length <= 100), lines[0]);
  assert.match(lines[0]!.replace(/;\n {2}/g, '; '), /^dpo: 48 training pairs, 8 eval pairs; .*4 steps of 2 x 1 pairs \(48 training examples, 8 eval examples\); peak lr 0\.003; held-out evaluation every 2 steps and at the end$/);
  assert.match(lines[1]!, /^step 1\/4 \(25%\): loss \d\.\d{3} \| rewards\/margins -?\d\.\d{3} \| rewards\/accuracies \d\.\d{3} \| \d+s$/);
  assert.match(lines[2]!, /^step 2\/4 \(50%\): loss .* \| held-out loss \d\.\d{3} \| rewards\/margins -?\d\.\d{3} \| rewards\/accuracies \d\.\d{3} \| \d+s$/);
  assert.match(lines[4]!, /^done: 4 steps in \d+s \| last 1 step: loss \d\.\d{3} \| held-out loss \d\.\d{3} \| rewards\/margins -?\d\.\d{3} \| rewards\/accuracies \d\.\d{3}$/);
  assert.equal(metrics.length, 4);
  assert.ok(metrics.every((m) => typeof m['rewards/margins'] === 'number' && m['rewards/accuracies']! >= 0 && m['rewards/accuracies']! <= 1));
  assert.equal(lines[1]!.match(/rewards\/accuracies (\d\.\d{3})/)![1], metrics[0]!['rewards/accuracies']!.toFixed(3));
});
