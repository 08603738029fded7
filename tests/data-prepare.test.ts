// `prepare`: tokenize + eos + pack + mix + shuffle + split into a datasets folder; determinism, the
// datasets file layout, mixing ratios, pre-tokenized inputs, and failures that leave nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { brownCorpusDocuments, loadTokenizer, mixCounts, openPackedDataset, prepareDataset, trainTokenizer, WmTokenizer } from '../src/data';
import { run as dataCli } from '../src/cli/data';

const FX = 'tests/fixtures/data';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-data-prep-'));
const tokDir = path.join(dir, 'tok');
let tok: WmTokenizer;

function allRows(ds: { numRows: number; row(i: number): Int32Array }): string[] {
  return Array.from({ length: ds.numRows }, (_, i) => Array.from(ds.row(i)).join(','));
}

test('setup: a small tokenizer', async () => {
  await trainTokenizer({ texts: brownCorpusDocuments().slice(0, 60), vocabSize: 1024, outDir: tokDir, log: false });
  tok = await loadTokenizer(tokDir);
});

test('prepare packs documents + eos into exact blocks, shuffles, splits, and writes a datasets folder', async () => {
  const out = path.join(dir, 'plain');
  const stats = await prepareDataset({ inputs: [path.join(FX, 'pretrain-snappy.parquet')], tokenizer: tokDir, seqLen: 128, outDir: out, testExamples: 20, seed: 7, log: false });

  // Expected blocks: the token stream (each document then eos), cut every 128 tokens, tail dropped.
  const docs = brownCorpusDocuments().slice(0, 120);
  const stream: number[] = [];
  for (const d of docs) stream.push(...tok.encode(d), tok.eosTokenId!);
  const nBlocks = Math.floor(stream.length / 128);
  assert.equal(stats.documents, 120);
  assert.equal(stats.tokens, stream.length);
  assert.equal(stats.blocks, nBlocks);
  assert.equal(stats.trainBlocks + stats.testBlocks, nBlocks);
  assert.equal(stats.testBlocks, 20);
  const expected = Array.from({ length: nBlocks }, (_, b) => stream.slice(b * 128, (b + 1) * 128).join(','));

  // The folder is a DatasetDict as save_to_disk writes it.
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'dataset_dict.json'), 'utf8')), { splits: ['train', 'test'] });
  for (const split of ['train', 'test']) {
    const state = JSON.parse(fs.readFileSync(path.join(out, split, 'state.json'), 'utf8'));
    assert.deepEqual(state._data_files, [{ filename: 'data-00000-of-00001.arrow' }]);
    assert.match(state._fingerprint, /^[0-9a-f]{16}$/);
    assert.equal(state._split, split);
    const info = JSON.parse(fs.readFileSync(path.join(out, split, 'dataset_info.json'), 'utf8'));
    assert.deepEqual(info.features, { input_ids: { feature: { dtype: 'int32', _type: 'Value' }, _type: 'Sequence' } });
    // Arrow IPC *stream* (no ARROW1 file magic), list<int32> with 32-bit offsets, features in the schema metadata.
    const bytes = fs.readFileSync(path.join(out, split, 'data-00000-of-00001.arrow'));
    assert.notEqual(bytes.subarray(0, 6).toString('latin1'), 'ARROW1');
    const table = tableFromIPC(bytes);
    assert.equal(String(table.schema.fields[0]!.type), 'List<Int32>');
    assert.equal(table.schema.fields[0]!.name, 'input_ids');
    assert.deepEqual(JSON.parse(table.schema.metadata.get('huggingface')!).info.features, info.features);
  }

  // Train and test are disjoint and together exactly the expected blocks (as a multiset).
  const train = await openPackedDataset(path.join(out, 'train'));
  const testDs = await openPackedDataset(path.join(out, 'test'));
  assert.equal(train.seqLen, 128);
  const got = [...allRows(train), ...allRows(testDs)];
  assert.deepEqual([...got].sort(), [...expected].sort());
  // Shuffled: not in stream order.
  assert.notDeepEqual(allRows(train).slice(0, 10), expected.slice(20, 30));
  // The DatasetDict folder itself opens as its train split.
  assert.equal((await openPackedDataset(out)).numRows, train.numRows);
  // The first rows decode to real text.
  assert.ok(tok.decode(train.row(0)).length > 100);

  // Same seed -> identical shards; another seed -> another order.
  const again = path.join(dir, 'again');
  await prepareDataset({ inputs: [path.join(FX, 'pretrain-zstd.parquet')], tokenizer: tok, seqLen: 128, outDir: again, testExamples: 20, seed: 7, log: false });
  assert.ok(fs.readFileSync(path.join(out, 'train', 'data-00000-of-00001.arrow')).equals(fs.readFileSync(path.join(again, 'train', 'data-00000-of-00001.arrow'))));
  const other = path.join(dir, 'other');
  await prepareDataset({ inputs: [path.join(FX, 'pretrain-zstd.parquet')], tokenizer: tok, seqLen: 128, outDir: other, testExamples: 20, seed: 8, log: false });
  assert.notDeepEqual(allRows(await openPackedDataset(path.join(other, 'test'))), allRows(testDs));
});

test('prompt/text rows go through the chat template; several shards; re-packing our own output', async () => {
  const out = path.join(dir, 'chat');
  const stats = await prepareDataset({ inputs: [path.join(FX, 'prompt-text.parquet')], tokenizer: tok, seqLen: 64, outDir: out, testExamples: 3, rowsPerShard: 50, log: false });
  assert.equal(stats.inputs[0]!.chatDocuments, 40);
  const train = await openPackedDataset(path.join(out, 'train'));
  const state = JSON.parse(fs.readFileSync(path.join(out, 'train', 'state.json'), 'utf8'));
  const n = Math.ceil(stats.trainBlocks / 50);
  assert.equal(state._data_files.length, n);
  assert.equal(state._data_files[n - 1].filename, `data-${String(n - 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.arrow`);
  const text = Array.from({ length: train.numRows }, (_, i) => tok.decode(train.row(i))).join('');
  assert.match(text, /<\|im_start\|>user\nWrite a short passage in the style of text c\w\d\d\.<\|im_end\|>\n<\|im_start\|>assistant\n/);

  // Our own folder as an input: pre-tokenized rows are appended as they are, so packing again at the
  // same length gives back the same rows.
  const re = path.join(dir, 'repacked');
  const st2 = await prepareDataset({ inputs: [path.join(out, 'train')], tokenizer: tok, seqLen: 64, outDir: re, testExamples: 1, log: false });
  assert.equal(st2.inputs[0]!.pretokenizedRows, train.numRows);
  const back = [...allRows(await openPackedDataset(path.join(re, 'train'))), ...allRows(await openPackedDataset(path.join(re, 'test')))];
  assert.deepEqual(back.sort(), allRows(train).sort());
});

test('mixing by ratio takes the largest mix with those shares', async () => {
  assert.deepEqual(mixCounts([100, 100], [undefined, undefined]), [100, 100]);
  assert.deepEqual(mixCounts([700, 1000, 1000, 1000], [7, 2, 0.5, 0.5]), [700, 200, 50, 50]);
  assert.deepEqual(mixCounts([1000, 10], [1, 1]), [10, 10]);
  const out = path.join(dir, 'mix');
  const stats = await prepareDataset({
    inputs: [
      { input: path.join(FX, 'pretrain-snappy.parquet'), ratio: 3 },
      { input: path.join(FX, 'prompt-text.parquet'), ratio: 1 },
    ],
    tokenizer: tok,
    seqLen: 64,
    outDir: out,
    testExamples: 5,
    log: false,
  });
  const [a, b] = stats.inputs;
  assert.equal(b!.used, b!.blocks); // the smaller corpus is used whole
  assert.equal(a!.used, Math.floor((b!.blocks * 3) / 1 + 1e-9));
  assert.equal(stats.blocks, a!.used + b!.used);
});

test('wm data prepare (CLI) with input@ratio and JSONL + text inputs', async () => {
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  const docs = brownCorpusDocuments().slice(200, 210);
  fs.writeFileSync(path.join(src, 'a.jsonl'), docs.slice(0, 5).map((text) => JSON.stringify({ text })).join('\n'));
  docs.slice(5).forEach((d, i) => fs.writeFileSync(path.join(src, `d${i}.txt`), d));
  const out = path.join(dir, 'cli');
  const lines: string[] = [];
  const orig = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    await dataCli(['prepare', '--input', path.join(src, 'a.jsonl') + '@1', '--input', path.join(src, '*.txt') + '@1', '--tokenizer', tokDir, '--seq-len', '32', '--out', out, '--test-examples', '4', '--seed', '3']);
  } finally {
    console.log = orig;
  }
  const stats = JSON.parse(lines.at(-1)!);
  assert.equal(stats.documents, 10);
  assert.equal(stats.testBlocks, 4);
  assert.equal((await openPackedDataset(path.join(out, 'test'))).numRows, 4);
});

test('progress and the final summary go to stderr', async () => {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (s: string) => lines.push(s);
  try {
    await prepareDataset({ inputs: [path.join(FX, 'prompt-text.parquet')], tokenizer: tok, seqLen: 64, outDir: path.join(dir, 'logged'), testExamples: 2, log: true });
  } finally {
    console.error = orig;
  }
  assert.match(lines.at(-1)!, /^prepare: 40 documents, \d+ tokens, \d+ blocks of 64 \(train \d+, test 2\) in [\d.]+s \(\d+ tokens\/s\) -> /);
});

test('failures name the problem and leave no output folder behind', async () => {
  const siblings = () => fs.readdirSync(dir).filter((f) => f.includes('.tmp-'));
  const out = path.join(dir, 'failed');
  await assert.rejects(prepareDataset({ inputs: [path.join(dir, 'missing.parquet')], tokenizer: tok, seqLen: 64, outDir: out, log: false }), /missing\.parquet does not exist/);
  const empty = path.join(dir, 'empty.jsonl');
  fs.writeFileSync(empty, '\n');
  await assert.rejects(prepareDataset({ inputs: [empty], tokenizer: tok, seqLen: 64, outDir: out, log: false }), /input .*empty\.jsonl has no documents \(empty corpus\)/);
  // A corrupt file after a good one: the error comes late, after blocks were written to scratch.
  const cut = path.join(dir, 'cut.parquet');
  const pq = fs.readFileSync(path.join(FX, 'pretrain-zstd.parquet'));
  fs.writeFileSync(cut, pq.subarray(0, pq.length - 100));
  await assert.rejects(
    prepareDataset({ inputs: [path.join(FX, 'prompt-text.parquet'), cut], tokenizer: tok, seqLen: 64, outDir: out, log: false }),
    /Parquet file .*cut\.parquet is corrupt or truncated/,
  );
  await assert.rejects(prepareDataset({ inputs: [path.join(FX, 'prompt-text.parquet')], tokenizer: tok, seqLen: 64, outDir: out, testExamples: 100000, log: false }), /testExamples 100000 leaves no training blocks/);
  await assert.rejects(prepareDataset({ inputs: [path.join(FX, 'prompt-text.parquet')], tokenizer: path.join(dir, 'nope'), seqLen: 64, outDir: out, log: false }), /tokenizer folder .*nope does not exist/);
  // Pre-tokenized rows with ids beyond the tokenizer's vocabulary (tokenized.arrows has ids up to ~1500).
  await assert.rejects(
    prepareDataset({ inputs: [path.join(FX, 'tokenized.arrows')], tokenizer: tok, seqLen: 16, outDir: out, log: false }),
    /input .*tokenized\.arrows, row \d+, position \d+: token id \d+ is outside the tokenizer's vocabulary \(size 1024\)/,
  );
  assert.ok(!fs.existsSync(out));
  assert.deepEqual(siblings(), []);
  // A failing run does not destroy an existing good output either.
  const good = path.join(dir, 'plain');
  await assert.rejects(prepareDataset({ inputs: [cut], tokenizer: tok, seqLen: 64, outDir: good, log: false, overwrite: true }), /cut\.parquet/);
  assert.ok(fs.existsSync(path.join(good, 'train', 'state.json')));
});
