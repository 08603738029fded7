// The packed-dataset reader and the batch loader: exact resume, one pass per epoch, per-epoch orders,
// vocabulary checks; and the default corpus path used by `pnpm run pretrain` (built once, then reused).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Field, Float64, Int32, LargeList, List, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { BatchLoader, checkVocabulary, loadTokenizer, openPackedDataset, dataPermutation as permutation, prepareDefaultCorpus, writePackedSplit, PackedDataset } from '../src/data';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-data-loader-'));

/** A split of `n` rows where row i is [i*10, i*10+1, ...]: every row is recognisable. */
async function syntheticSplit(name: string, n: number, seqLen: number, patch?: (row: Int32Array, i: number) => void): Promise<PackedDataset> {
  const splitDir = path.join(dir, name);
  await writePackedSplit(splitDir, {
    seqLen,
    numRows: n,
    rowsPerShard: 7,
    row: (i) => {
      const r = Int32Array.from({ length: seqLen }, (_, j) => i * 10 + j);
      patch?.(r, i);
      return r;
    },
  });
  return openPackedDataset(splitDir);
}

const firstIds = (b: { inputIds: Int32Array; batchSize: number; seqLen: number }): number[] =>
  Array.from({ length: b.batchSize }, (_, k) => b.inputIds[k * b.seqLen]! / 10);

test('openPackedDataset reads sharded splits back exactly', async () => {
  const ds = await syntheticSplit('syn', 23, 5);
  assert.equal(ds.numRows, 23);
  assert.equal(ds.seqLen, 5);
  assert.equal(ds.maxTokenId, 22 * 10 + 4);
  assert.deepEqual(Array.from(ds.row(17)), [170, 171, 172, 173, 174]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'syn', 'state.json'), 'utf8'))._data_files.length, 4);
  assert.throws(() => ds.row(23), /row 23 out of range \[0, 23\)/);
});

test('BatchLoader: one pass over every row per epoch, new order each epoch, deterministic for a seed', async () => {
  const ds = await syntheticSplit('epochs', 20, 3);
  const loader = new BatchLoader(ds, { batchSize: 4, seed: 5 });
  const epoch0 = Array.from({ length: 5 }, () => firstIds(loader.next())).flat();
  assert.deepEqual([...epoch0].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  assert.equal(loader.position, 20);
  assert.equal(loader.epoch, 1);
  const epoch1 = Array.from({ length: 5 }, () => firstIds(loader.next())).flat();
  assert.deepEqual([...epoch1].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  assert.notDeepEqual(epoch1, epoch0);
  assert.deepEqual(epoch0, Array.from(permutation(20, 5, 0)));
  const same = new BatchLoader(ds, { batchSize: 4, seed: 5 });
  assert.deepEqual(firstIds(same.next()), epoch0.slice(0, 4));
  assert.notDeepEqual(firstIds(new BatchLoader(ds, { batchSize: 4, seed: 6 }).next()), epoch0.slice(0, 4));
  // Unshuffled walk for evaluation.
  assert.deepEqual(firstIds(new BatchLoader(ds, { batchSize: 3, seed: 0, shuffle: false }).next()), [0, 1, 2]);
  // Rows are copied whole into the batch: [batch * seqLen].
  const b = new BatchLoader(ds, { batchSize: 2, seed: 1 }).next();
  assert.equal(b.inputIds.length, 2 * 3);
  assert.equal(b.inputIds[1]! - b.inputIds[0]!, 1);
});

test('BatchLoader resumes exactly at any position, across epoch boundaries', async () => {
  const ds = await syntheticSplit('resume', 13, 2);
  const ref = new BatchLoader(ds, { batchSize: 3, seed: 42 });
  const all = Array.from({ length: 20 }, () => firstIds(ref.next()));
  for (const step of [0, 1, 4, 5, 11]) {
    const resumed = new BatchLoader(ds, { batchSize: 3, seed: 42, position: step * 3 });
    for (let s = step; s < 20; s++) assert.deepEqual(firstIds(resumed.next()), all[s], `resume at step ${step}, batch ${s}`);
    assert.equal(resumed.position, 60);
  }
  assert.throws(() => new BatchLoader(ds, { batchSize: 0, seed: 1 }), /batchSize must be a positive integer, got 0/);
  assert.throws(() => new BatchLoader(ds, { batchSize: 2, seed: 1, position: -1 }), /position must be a non-negative integer, got -1/);
});

test('checkVocabulary names the offending id, row and position; ragged rows are refused', async () => {
  const ds = await syntheticSplit('vocab', 6, 4, (r, i) => {
    if (i === 4) r[2] = 5000;
  });
  assert.throws(() => checkVocabulary(ds, 4096), /token id 5000 at row 4, position 2 of .*vocab is outside the model's vocabulary \(vocab_size 4096\)/);
  checkVocabulary(ds, 5001);
  const negative = await syntheticSplit('negative', 3, 4, (r, i) => {
    if (i === 1) r[3] = -7;
  });
  assert.equal(negative.minTokenId, -7);
  assert.throws(() => checkVocabulary(negative, 4096), /token id -7 at row 1, position 3 of .*negative is negative/);
  const negDisk = await openPackedDataset(path.join(dir, 'negative'), { mode: 'disk' });
  assert.equal(negDisk.minTokenId, -7);
  assert.throws(() => checkVocabulary(negDisk, 4096), /token id -7 at row 1, position 3/);
  // A split whose rows differ in length is not packed.
  const ragged = path.join(dir, 'ragged');
  await writePackedSplit(ragged, { seqLen: 3, numRows: 2, row: () => new Int32Array(3) });
  // Rewrite its shard by hand with a table of unequal rows.
  const vec = vectorFromArray([[1, 2, 3], [4, 5]], new List(new Field('item', new Int32(), true)));
  fs.writeFileSync(path.join(ragged, 'data-00000-of-00001.arrow'), tableToIPC(new Table({ input_ids: vec }), 'stream'));
  fs.rmSync(path.join(ragged, 'wm_shards.json')); // a folder written by another tool has no shard manifest
  await assert.rejects(openPackedDataset(ragged), /row 1 of 'input_ids' has 2 tokens, expected 3 .*not a packed dataset/);
  await assert.rejects(openPackedDataset(ragged, { mode: 'disk' }), /a row of 'input_ids' has 2 tokens, expected 3 .*not a packed dataset/);
  await assert.rejects(openPackedDataset(path.join(dir, 'absent')), /absent is not a datasets folder: .*state\.json is missing/);
});

test('on-disk mode reads the same rows with bounded memory (list and large_list, other columns first)', async () => {
  const mem = await syntheticSplit('disk', 23, 5);
  const disk = await openPackedDataset(path.join(dir, 'disk'), { mode: 'disk' });
  assert.equal(disk.constructor.name, 'DiskPackedDataset');
  assert.deepEqual([disk.numRows, disk.seqLen, disk.maxTokenId], [mem.numRows, mem.seqLen, mem.maxTokenId]);
  for (let i = 0; i < mem.numRows; i++) assert.deepEqual(disk.row(i), mem.row(i));
  const a = new BatchLoader(mem, { batchSize: 4, seed: 9 });
  const b = new BatchLoader(disk, { batchSize: 4, seed: 9 });
  for (let k = 0; k < 12; k++) assert.deepEqual(b.next().inputIds, a.next().inputIds);
  // `auto` goes to disk above the memory budget.
  assert.equal((await openPackedDataset(path.join(dir, 'disk'), { maxMemoryBytes: 10 })).constructor.name, 'DiskPackedDataset');

  // A shard as another writer might lay it out: string and float columns before a large_list<int32>.
  const rows = Array.from({ length: 2500 }, (_, i) => [i, i + 1, i + 2]);
  const other = path.join(dir, 'large');
  await writePackedSplit(other, { seqLen: 3, numRows: 1, row: () => new Int32Array(3) });
  const table = new Table({
    name: vectorFromArray(rows.map((_, i) => `r${i}`), new Utf8()),
    n: vectorFromArray(rows.map((_, i) => i / 2), new Float64()),
    input_ids: vectorFromArray(rows, new LargeList(new Field('item', new Int32(), true))),
  });
  fs.writeFileSync(path.join(other, 'data-00000-of-00001.arrow'), tableToIPC(table, 'stream'));
  fs.rmSync(path.join(other, 'wm_shards.json')); // another writer's folder: no shard manifest
  const m2 = await openPackedDataset(other, { mode: 'memory' });
  const d2 = await openPackedDataset(other, { mode: 'disk' });
  assert.deepEqual([d2.numRows, d2.seqLen, d2.maxTokenId], [2500, 3, 2501]);
  for (const i of [0, 999, 1000, 2499]) assert.deepEqual(d2.row(i), m2.row(i));
  assert.deepEqual(Array.from(d2.row(1234)), [1234, 1235, 1236]);

  // The Arrow file format is read in memory only.
  fs.writeFileSync(path.join(other, 'data-00000-of-00001.arrow'), tableToIPC(table, 'file'));
  await assert.rejects(openPackedDataset(other, { mode: 'disk' }), /cannot be read from disk row by row/);
  assert.equal((await openPackedDataset(other)).numRows, 2500);
});

test('prepareDefaultCorpus: Brown -> tokenizer (vocab 4096) -> packed train/test; second call reuses it', async () => {
  const out = path.join(dir, 'default');
  const r = await prepareDefaultCorpus({ outDir: out, vocabSize: 4096, seqLen: 256, testExamples: 16, seed: 1, log: false });
  assert.equal(r.reusedTokenizer, false);
  assert.equal(r.stats.documents, 500);
  assert.equal(r.stats.testBlocks, 16);
  assert.ok(r.stats.tokens > 1_000_000, `tokens ${r.stats.tokens}`);
  assert.equal(r.stats.blocks, Math.floor(r.stats.tokens / 256));
  const tok = await loadTokenizer(r.tokenizerDir);
  assert.equal(tok.vocabSize, 4096);
  const train = await openPackedDataset(path.join(r.datasetDir, 'train'));
  assert.equal(train.seqLen, 256);
  assert.equal(train.numRows, r.stats.trainBlocks);
  checkVocabulary(train, tok.vocabSize);
  const loader = new BatchLoader(train, { batchSize: 8, seed: 0 });
  const batch = loader.next();
  assert.equal(batch.inputIds.length, 8 * 256);
  const onDisk = new BatchLoader(await openPackedDataset(path.join(r.datasetDir, 'train'), { mode: 'disk' }), { batchSize: 8, seed: 0 });
  assert.deepEqual(onDisk.next().inputIds, batch.inputIds);

  const mtime = fs.statSync(path.join(r.datasetDir, 'train', 'data-00000-of-00001.arrow')).mtimeMs;
  const again = await prepareDefaultCorpus({ outDir: out, vocabSize: 4096, seqLen: 256, testExamples: 16, seed: 1, log: false });
  assert.equal(again.reusedTokenizer, true);
  assert.equal(again.reusedDataset, true);
  assert.deepEqual(again.stats, r.stats);
  assert.equal(fs.statSync(path.join(r.datasetDir, 'train', 'data-00000-of-00001.arrow')).mtimeMs, mtime);
  // Another block length re-packs with the same tokenizer.
  const other = await prepareDefaultCorpus({ outDir: out, vocabSize: 4096, seqLen: 128, testExamples: 16, seed: 1, log: false });
  assert.equal(other.reusedTokenizer, true);
  assert.equal(other.reusedDataset, false);
  assert.equal((await openPackedDataset(path.join(other.datasetDir, 'test'))).seqLen, 128);
});
