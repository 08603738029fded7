// wm eval's outputs (issue #20 items 1, 2, 4): one name and one results file per model, results saved task by task,
// files written atomically and never through a symlink; perplexity batches bounded by a logits budget.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackend } from '../src/runtime/backend';
import { tf } from '../src/tf';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { brownCorpusDocuments, trainTokenizer } from '../src/data';
import { defaultModelNames, run as evalCli } from '../src/cli/eval';
import { perplexity, scoreContinuations, type EvalModel } from '../src/eval';
import { batchRows, DEFAULT_MAX_BATCH_ATTENTION, DEFAULT_MAX_BATCH_LOGITS } from '../src/eval/loglikelihood';
import { writeFileAtomic } from '../src/io/atomic';

let root: string;
let tokDir: string;

before(async () => {
  await loadBackend({ log: false });
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-eval-out-'));
  tokDir = path.join(root, 'tok');
  await trainTokenizer({ texts: brownCorpusDocuments().slice(0, 3), vocabSize: 280, outDir: tokDir, log: false });
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** A tiny Doge checkpoint with the shared tokenizer at `dir`. */
function saveModel(dir: string, seed: number): void {
  const m = new DogeForCausalLM(new DogeConfig({ vocab_size: 300, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, eos_token_id: 1, bos_token_id: 0, pad_token_id: 2 }), { seed });
  m.savePretrained(dir);
  m.dispose();
  for (const f of fs.readdirSync(tokDir)) fs.copyFileSync(path.join(tokDir, f), path.join(dir, f));
}

async function quiet<T>(f: () => Promise<T>): Promise<{ value?: T; error?: Error; printed: string }> {
  const printed: string[] = [];
  const [log, err] = [console.log, console.error];
  console.log = (...a: unknown[]) => { printed.push(a.join(' ')); };
  console.error = (...a: unknown[]) => { printed.push(a.join(' ')); };
  try {
    return { value: await f(), printed: printed.join('\n') };
  } catch (e) {
    return { error: e as Error, printed: printed.join('\n') };
  } finally {
    console.log = log;
    console.error = err;
  }
}

test('models in folders of the same name get the shortest path ending that tells them apart; one column and one results file each (item 1)', async () => {
  const runs = path.join(root, 'runs');
  const dirs = ['doge-tiny', 'doge-tiny-sft', 'doge-tiny-dpo'].map((n) => path.join(runs, n, 'final'));
  dirs.forEach((d, i) => saveModel(d, i + 1));
  assert.deepEqual(defaultModelNames(dirs), ['doge-tiny/final', 'doge-tiny-sft/final', 'doge-tiny-dpo/final']);
  assert.deepEqual(defaultModelNames(['a/x', 'b/y']), ['x', 'y']);
  assert.deepEqual(defaultModelNames(['p/a/m', 'q/a/m']), ['p/a/m', 'q/a/m']);
  const out = path.join(root, 'eval1');
  const r = await quiet(() => evalCli([...dirs.flatMap((d) => ['--model', d]), '--tasks', 'embedded', '--embedded-n', '6', '--out', out]));
  assert.equal(r.error, undefined, r.error?.message);
  const files = fs.readdirSync(out).filter((f) => f.startsWith('results-')).sort();
  assert.deepEqual(files, ['results-doge-tiny--final.json', 'results-doge-tiny-dpo--final.json', 'results-doge-tiny-sft--final.json']);
  const all = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as { model: string; metric: string; value: number }[];
  assert.deepEqual([...new Set(all.map((x) => x.model))], ['doge-tiny/final', 'doge-tiny-sft/final', 'doge-tiny-dpo/final']);
  for (const [i, f] of ['doge-tiny', 'doge-tiny-sft', 'doge-tiny-dpo'].entries()) {
    const doc = JSON.parse(fs.readFileSync(path.join(out, `results-${f}--final.json`), 'utf8')) as { model: string; modelDir: string; complete: boolean };
    assert.equal(doc.model, `${f}/final`);
    assert.equal(doc.modelDir, path.resolve(dirs[i]));
    assert.equal(doc.complete, true);
  }
  // the table: a header with the three names, one value column each
  const header = r.printed.split('\n').find((l) => /^task\s+metric/.test(l))!;
  assert.match(header, /doge-tiny\/final\s+doge-tiny-sft\/final\s+doge-tiny-dpo\/final$/);
  const accLine = r.printed.split('\n').find((l) => /^embedded\s+acc /.test(l))!;
  assert.equal(accLine.match(/\d\.\d{4} ± \d\.\d{4}/g)!.length, 3);

  // duplicate names are refused before any model loads
  await assert.rejects(evalCli(['--model', dirs[0], '--model', dirs[1], '--name', 'same', '--name', 'same', '--tasks', 'embedded']), /wm eval: two models are named 'same' \(--model 1 and 2\)/);
  await assert.rejects(evalCli(['--model', dirs[0], '--model', dirs[1], '--name', 'a/b', '--name', 'a--b', '--tasks', 'embedded']), /the names 'a\/b' and 'a--b' would share the results file results-a--b\.json/);
  await assert.rejects(evalCli(['--model', dirs[0], '--model', `${dirs[0]}/`, '--tasks', 'embedded']), /--model .*final\/ is given twice/);
});

test('each task\'s results are saved as it finishes: a later task\'s failure keeps them (item 2)', async () => {
  const d = path.join(root, 'm-partial');
  saveModel(d, 7);
  const out = path.join(root, 'eval2');
  const empty = path.join(root, 'no-benchmarks');
  fs.mkdirSync(empty);
  const r = await quiet(() => evalCli(['--model', d, '--tasks', 'embedded,arc_easy', '--embedded-n', '4', '--data', empty, '--out', out]));
  assert.ok(r.error, 'arc_easy has no files: the run fails');
  const doc = JSON.parse(fs.readFileSync(path.join(out, 'results-m-partial.json'), 'utf8')) as { complete: boolean; results: { task: string; metric: string }[] };
  assert.equal(doc.complete, false);
  assert.deepEqual(doc.results.map((x) => `${x.task}/${x.metric}`), ['embedded/acc', 'embedded/acc_norm_nospace']);
  assert.match(r.printed, /m-partial: failed after embedded; their results are in .*results-m-partial\.json/);
  const all = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as unknown[];
  assert.equal(all.length, 2);
});

test('perplexity batches stay within a logits and an attention budget (item 2: 4 rows of 2048 tokens crashed wasm with the defaults)', () => {
  // the default plan: one 2048-token window of a 32768-id model per forward, 16 of 64 tokens
  assert.equal(DEFAULT_MAX_BATCH_LOGITS, 2 ** 25);
  assert.equal(batchRows({}, 2048, { vocab_size: 32768 }, 50), 1);
  assert.equal(batchRows({}, 64, { vocab_size: 32768 }, 50), 16);
  assert.equal(batchRows({}, 16, { vocab_size: 300 }, 50), 32, 'small models keep --batch-size 32');
  // doge-tiny (vocab 4096, 4 layers x 4 heads): one 2048-token window per forward (4 crashed wasm), 16 of 512
  const dogeTiny = { vocab_size: 4096, num_attention_heads: 4, num_hidden_layers: 4 };
  assert.equal(DEFAULT_MAX_BATCH_ATTENTION, 2 ** 26);
  assert.equal(batchRows({}, 2048, dogeTiny, 50), 1);
  assert.equal(batchRows({}, 512, dogeTiny, 50), 16);
  // a stand-in model that records each forward's [B, T] and returns zero logits (uniform distribution)
  const V = 1024;
  const budget = 2 ** 20;
  const seen: number[][] = [];
  const model: EvalModel = {
    config: { vocab_size: V, max_position_embeddings: 64, eos_token_id: 1 },
    forward({ inputIds }) {
      const ids = inputIds as number[][];
      seen.push([ids.length, ids[0].length]);
      if (ids.length * ids[0].length * V > budget) throw new Error(`a batch of ${ids.length} x ${ids[0].length} x ${V} logits`);
      return { logits: tf.zeros([ids.length, ids[0].length, V]) };
    },
  };
  const docs = Array.from({ length: 17 }, (_, d) => Array.from({ length: 64 }, (__, t) => 3 + ((d * 7 + t) % 1000)));
  const before = tf.memory().numTensors;
  const r = perplexity(model, docs, { prefixId: 1, maxBatchLogits: budget });
  assert.equal(r.nTokens, 17 * 64);
  assert.ok(Math.abs(Math.log(r.ppl) - Math.log(V)) < 1e-4, `uniform logits give perplexity V: ${r.ppl}`);
  assert.deepEqual(seen, [[1, 1], [16, 64], [1, 64]], 'a cache probe, then 16 rows of 64 tokens x 1024 ids fill the budget');
  // a budget below one row still runs one row at a time
  seen.length = 0;
  const s = scoreContinuations(model, [{ context: [1], continuation: [5, 6, 7] }, { context: [1, 2], continuation: [8] }], { maxBatchLogits: 1, shareContext: false });
  assert.deepEqual(seen, [[1, 3], [1, 2]]);
  assert.ok(Math.abs(s[0].sum + 3 * Math.log(V)) < 1e-4);
  assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
});

test('eval outputs and tokenizer files replace a planted symlink instead of writing through it (item 4)', async () => {
  const d = path.join(root, 'm-link');
  saveModel(d, 3);
  const out = path.join(root, 'eval4');
  fs.mkdirSync(out);
  const victims = ['results.json', 'eval.html', 'results-m-link.json'].map((f) => {
    const target = path.join(root, `victim-${f}`);
    fs.writeFileSync(target, 'precious');
    fs.symlinkSync(target, path.join(out, f));
    return target;
  });
  const r = await quiet(() => evalCli(['--model', d, '--tasks', 'embedded', '--embedded-n', '4', '--out', out]));
  assert.equal(r.error, undefined, r.error?.message);
  for (const v of victims) assert.equal(fs.readFileSync(v, 'utf8'), 'precious', `${v} untouched`);
  for (const f of ['results.json', 'eval.html', 'results-m-link.json']) assert.ok(fs.lstatSync(path.join(out, f)).isFile(), `${f} is a regular file now`);
  assert.deepEqual(fs.readdirSync(out).filter((f) => f.includes('.tmp')), [], 'no temporary file left');

  // wm tokenizer train --overwrite: the same for tokenizer.json, tokenizer_config.json, special_tokens_map.json
  const tdir = path.join(root, 'tok-link');
  fs.mkdirSync(tdir);
  const tv = path.join(root, 'victim-tokenizer.json');
  fs.writeFileSync(tv, 'precious');
  fs.symlinkSync(tv, path.join(tdir, 'tokenizer.json'));
  await trainTokenizer({ texts: ['a b c a b'], vocabSize: 270, outDir: tdir, overwrite: true, log: false });
  assert.equal(fs.readFileSync(tv, 'utf8'), 'precious');
  assert.ok(fs.lstatSync(path.join(tdir, 'tokenizer.json')).isFile());

  // the helper: a symlink planted where its temporary file would go is never opened
  const f = path.join(root, 'plain.txt');
  writeFileAtomic(f, 'one');
  writeFileAtomic(f, 'two');
  assert.equal(fs.readFileSync(f, 'utf8'), 'two');
  assert.throws(() => writeFileAtomic(path.join(root, 'eval4'), 'x'), /writing .*eval4 failed: E(ISDIR|EXIST|NOTEMPTY)/);
});
