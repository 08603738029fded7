// Nothing lost, nothing silent (issue 11) for data: output folders are never wiped, shards cut short are caught,
// compressed inputs are read and binary ones refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { brownCorpusDocuments, openPackedDataset, prepareDataset, prepareDefaultCorpus, readRecords, trainTokenizer, writePackedSplit } from '../src/data';

const FX = 'tests/fixtures/data';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-data-safety-'));
const tokDir = path.join(dir, 'tok');
const docs = path.join(FX, 'docs.jsonl');

test('setup: a small tokenizer', async () => {
  await trainTokenizer({ texts: brownCorpusDocuments().slice(0, 30), vocabSize: 600, outDir: tokDir, log: false });
});

test('prepare never deletes what it did not write: foreign folders are refused, --overwrite replaces only its own entries', async () => {
  const proj = path.join(dir, 'project');
  fs.mkdirSync(path.join(proj, '.git'), { recursive: true });
  fs.writeFileSync(path.join(proj, 'main.ts'), 'source');
  const opts = { inputs: [docs], tokenizer: tokDir, seqLen: 16, testExamples: 2, log: false };
  await assert.rejects(prepareDataset({ ...opts, outDir: proj }), /project is not empty \(2 entries, e\.g\. '\.git'\) and was not written by wm data prepare \(no wm_prepare\.json\)/);
  await assert.rejects(prepareDataset({ ...opts, outDir: proj, overwrite: true }), /not written by wm data prepare/);
  assert.equal(fs.readFileSync(path.join(proj, 'main.ts'), 'utf8'), 'source');
  assert.ok(fs.existsSync(path.join(proj, '.git')));

  // Our own earlier output: refused without --overwrite; with it only the manifest's entries are replaced.
  const out = path.join(dir, 'out');
  await prepareDataset({ ...opts, outDir: out });
  fs.writeFileSync(path.join(out, 'NOTES.md'), 'mine');
  await assert.rejects(prepareDataset({ ...opts, outDir: out, seed: 2 }), /already holds the output of an earlier wm data prepare .*pass --overwrite/);
  const before = fs.readFileSync(path.join(out, 'train', 'state.json'), 'utf8');
  await prepareDataset({ ...opts, outDir: out, seed: 2, overwrite: true });
  assert.equal(fs.readFileSync(path.join(out, 'NOTES.md'), 'utf8'), 'mine');
  assert.notEqual(fs.readFileSync(path.join(out, 'train', 'state.json'), 'utf8'), before);
  assert.deepEqual(fs.readdirSync(out).sort(), ['NOTES.md', 'dataset_dict.json', 'test', 'train', 'wm_prepare.json']);
  // A foreign entry where prepare writes one of its own is not replaced.
  const clash = path.join(dir, 'clash');
  await prepareDataset({ ...opts, outDir: clash });
  const m = JSON.parse(fs.readFileSync(path.join(clash, 'wm_prepare.json'), 'utf8'));
  m.files = ['dataset_dict.json', 'wm_prepare.json'];
  fs.writeFileSync(path.join(clash, 'wm_prepare.json'), JSON.stringify(m));
  await assert.rejects(prepareDataset({ ...opts, outDir: clash, overwrite: true }), /has 'train', which the earlier wm data prepare did not write/);

  // wm tokenizer train writes only its three files: an existing tokenizer is replaced only with --overwrite, and
  // nothing else in the folder is touched (a model folder can get its tokenizer).
  await assert.rejects(trainTokenizer({ texts: ['a b c'], vocabSize: 300, outDir: tokDir, log: false }), /already holds a tokenizer \(special_tokens_map\.json, tokenizer\.json, tokenizer_config\.json\); pass --overwrite/);
  await trainTokenizer({ texts: ['a b c'], vocabSize: 300, outDir: proj, log: false });
  await assert.rejects(trainTokenizer({ texts: ['a b c'], vocabSize: 300, outDir: proj, log: false }), /already holds a tokenizer/);
  await trainTokenizer({ texts: ['a b c d'], vocabSize: 300, outDir: proj, log: false, overwrite: true });
  assert.equal(fs.readFileSync(path.join(proj, 'main.ts'), 'utf8'), 'source');
  assert.deepEqual(fs.readdirSync(proj).sort(), ['.git', 'main.ts', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
});

test('a shard that is cut short (still a valid Arrow stream, fewer rows) is an error, not fewer rows', async () => {
  const split = path.join(dir, 'split');
  const seqLen = 8;
  await writePackedSplit(split, { seqLen, numRows: 3000, row: (i) => new Int32Array(seqLen).fill(i % 50), rowsPerShard: 1000 });
  assert.equal((await openPackedDataset(split)).numRows, 3000);
  // Replace shard 2 with a shorter, valid stream: what a copy cut at a record-batch boundary reads like.
  const short = path.join(dir, 'short');
  await writePackedSplit(short, { seqLen, numRows: 300, row: () => new Int32Array(seqLen), rowsPerShard: 1000 });
  fs.copyFileSync(path.join(short, 'data-00000-of-00001.arrow'), path.join(split, 'data-00001-of-00003.arrow'));
  await assert.rejects(openPackedDataset(split), /data-00001-of-00003\.arrow has \d+ bytes but wm_shards\.json records \d+ \(1000 rows\): the shard is truncated or was replaced/);
  await assert.rejects(openPackedDataset(split, { mode: 'disk' }), /the shard is truncated or was replaced/);
});

test('.gz and .zst inputs are read transparently; archives, binary and non-UTF-8 files are refused by name', async () => {
  const texts = async (input: string) => { const out: string[] = []; for await (const r of readRecords(input)) out.push(r.text!); return out; };
  const plain = await texts(docs);
  assert.equal(plain.length, 40);
  const gz = path.join(dir, 'docs.jsonl.gz');
  fs.writeFileSync(gz, zlib.gzipSync(fs.readFileSync(docs)));
  assert.deepEqual(await texts(gz), plain);
  assert.deepEqual(await texts(path.join(FX, 'docs.jsonl.zst')), plain);
  const txtGz = path.join(dir, 'book.txt.gz');
  fs.writeFileSync(txtGz, zlib.gzipSync('Café naïve 日本語 🙂'));
  assert.deepEqual(await texts(txtGz), ['Café naïve 日本語 🙂']);

  const zip = path.join(dir, 'docs.zip');
  fs.writeFileSync(zip, Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(40, 7)]));
  await assert.rejects(texts(zip), /docs\.zip: is a zip file, not text or JSONL \(unzip it first\)/);
  const rnd = path.join(dir, 'random.jsonl');
  const bytes = Buffer.alloc(4096);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) % 251 + 1; // no NUL: caught as invalid UTF-8
  fs.writeFileSync(rnd, bytes);
  await assert.rejects(texts(rnd), /random\.jsonl: not valid UTF-8 near byte \d+/);
  const nul = path.join(dir, 'nul.txt');
  fs.writeFileSync(nul, Buffer.from('abc\0def'));
  await assert.rejects(texts(nul), /nul\.txt: byte 3 is NUL: a binary file/);
  const badGz = path.join(dir, 'cut.jsonl.gz');
  fs.writeFileSync(badGz, zlib.gzipSync(fs.readFileSync(docs)).subarray(0, 60));
  await assert.rejects(texts(badGz), /cut\.jsonl\.gz: gzip data is corrupt or truncated/);
  // The tokenizer trainer reads inputs the same way: no garbage tokenizer from a zip.
  await assert.rejects(prepareDataset({ inputs: [zip], tokenizer: tokDir, seqLen: 16, outDir: path.join(dir, 'z'), log: false }), /is a zip file/);
});

test('temporaries a killed prepare left (sibling .tmp folders, replaced-entry trash) are removed by the next prepare', async () => {
  const out = path.join(dir, 'again');
  const opts = { inputs: [docs], tokenizer: tokDir, seqLen: 16, testExamples: 2, log: false };
  await prepareDataset({ ...opts, outDir: out });
  fs.mkdirSync(path.join(dir, 'again.tmp-999999-1700000000000', 'dataset'), { recursive: true });
  fs.mkdirSync(path.join(out, '.wm-replaced-999999-1700000000000', 'train'), { recursive: true });
  const live = path.join(dir, `again.tmp-${process.pid}-1`); // a running process's: kept
  fs.mkdirSync(live);
  await prepareDataset({ ...opts, outDir: out, overwrite: true });
  assert.ok(!fs.existsSync(path.join(dir, 'again.tmp-999999-1700000000000')));
  assert.ok(!fs.existsSync(path.join(out, '.wm-replaced-999999-1700000000000')));
  assert.ok(fs.existsSync(live));
  assert.equal((await openPackedDataset(path.join(out, 'train'))).seqLen, 16);
});

test('wm data default / pretrain --prepare-default: a tokenizer or files it did not write are refused, untouched (issue #20 item 3)', async () => {
  const out = path.join(dir, 'default-theirs');
  fs.mkdirSync(path.join(out, 'tokenizer'), { recursive: true });
  fs.writeFileSync(path.join(out, 'tokenizer', 'tokenizer.json'), 'my own tokenizer');
  await assert.rejects(prepareDefaultCorpus({ outDir: out, vocabSize: 300, seqLen: 32, log: false }),
    (e: Error) => e.message === `wm data default: ${out} is not empty and was not written by wm data default (no wm_default_corpus.json; it has 'tokenizer'); nothing is replaced. Choose a new or empty folder`);
  assert.equal(fs.readFileSync(path.join(out, 'tokenizer', 'tokenizer.json'), 'utf8'), 'my own tokenizer');
  assert.deepEqual(fs.readdirSync(out), ['tokenizer'], 'nothing written next to it');
  const other = path.join(dir, 'default-notes');
  fs.mkdirSync(other);
  fs.writeFileSync(path.join(other, 'notes.txt'), 'x');
  await assert.rejects(prepareDefaultCorpus({ outDir: other, vocabSize: 300, seqLen: 32, log: false }), /default-notes is not empty \(1 entries, e\.g\. 'notes\.txt'\) and was not written by wm data default/);
});

test('two prepares into one folder: the one that loses the race says so instead of a raw ENOTEMPTY, the winner\'s output kept (issue #20 item 12)', async () => {
  const opts = { inputs: [docs], tokenizer: tokDir, seqLen: 16, testExamples: 2, log: false };
  const out = path.join(dir, 'race');
  // the other run finishes first: its output appears just before this run's final rename
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const realFs = require('node:fs') as typeof fs;
  const rename = realFs.renameSync;
  realFs.renameSync = ((from: fs.PathLike, to: fs.PathLike) => {
    if (path.resolve(String(to)) === path.resolve(out) && !fs.existsSync(out)) {
      fs.mkdirSync(path.join(out, 'train'), { recursive: true });
      fs.writeFileSync(path.join(out, 'train', 'theirs'), 'x');
      fs.writeFileSync(path.join(out, 'dataset_dict.json'), '{"splits":["train"]}');
    }
    return rename(from, to);
  }) as typeof fs.renameSync;
  try {
    await assert.rejects(prepareDataset({ ...opts, outDir: out }), (e: Error) => e.message === `wm data prepare: ${out} was written by another run while this one worked (two prepares into one folder); ` +
      'the other output is kept and this one is discarded. Run one prepare per folder, or run again with --overwrite to replace it');
  } finally {
    realFs.renameSync = rename;
  }
  assert.equal(fs.readFileSync(path.join(out, 'train', 'theirs'), 'utf8'), 'x');
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('race.tmp')), [], 'no temporary left');
});
