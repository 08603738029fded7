// Readers: the embedded Brown corpus, Parquet (snappy, zstd) and Arrow (stream and file, 64-bit offsets)
// written by an independent implementation (polars), JSONL, text, globs, and the errors on bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LargeUtf8, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { parquetMetadata } from 'hyparquet';
import { brownCorpusDocuments, brownCorpusEntries, untagSentence, readRecords, DataRecord, expandGlob, parquetReadPlan } from '../src/data';

const FX = 'tests/fixtures/data';

async function collect(input: string, o = {}): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const r of readRecords(input, o)) out.push(r);
  return out;
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'wm-data-src-'));
}

test('Brown corpus: 500 documents, tags stripped', () => {
  const docs = brownCorpusDocuments();
  assert.equal(docs.length, 500);
  assert.ok(docs.every((d) => d.length > 1000));
  // No part-of-speech tags left (a tag is /lowercase after a word, e.g. "jury/nn").
  assert.ok(!docs.some((d) => /\w\/(at|nn|vbd|in)\b/.test(d)));
  assert.equal(untagSentence("\tThe/at jury/nn said/vbd ``/`` no/at ''/'' ./."), `The jury said "no''.`);
});

test('Brown corpus text equals the independent fixture (pretrain-snappy/zstd.parquet) document by document', async () => {
  const brown = new Map(brownCorpusEntries().map((e) => [e.id, e.text]));
  for (const f of ['pretrain-snappy.parquet', 'pretrain-zstd.parquet']) {
    const rows = await collect(path.join(FX, f));
    assert.equal(rows.length, 120);
    const ids = brownCorpusEntries()
      .slice(0, 120)
      .map((e) => e.id);
    rows.forEach((r, i) => assert.equal(r.text, brown.get(ids[i]!), `${f} row ${i} (${ids[i]})`));
  }
});

test('Parquet prompt/text rows come out as instruction pairs', async () => {
  const rows = await collect(path.join(FX, 'prompt-text.parquet'));
  assert.equal(rows.length, 40);
  const brown = new Map(brownCorpusEntries().map((e) => [e.id, e.text]));
  for (const r of rows) {
    const id = /text (\w+)\.$/.exec(r.prompt!)![1]!;
    assert.ok(brown.get(id)!.startsWith(r.text!), `answer of ${id} is the start of its Brown text`);
  }
});

test('Arrow stream and file with large_list<int32> read as the expected input_ids', async () => {
  const expected = JSON.parse(fs.readFileSync(path.join(FX, 'tokenized.json'), 'utf8')) as number[][];
  for (const f of ['tokenized.arrows', 'tokenized.arrow']) {
    const rows = await collect(path.join(FX, f));
    assert.equal(rows.length, expected.length);
    rows.forEach((r, i) => assert.deepEqual(Array.from(r.inputIds!), expected[i], `${f} row ${i}`));
  }
});

test('Arrow string and large_string columns (32- and 64-bit offsets) both read', async () => {
  const dir = tmpDir();
  const table = new Table({
    prompt: vectorFromArray(['p0', 'p1'], new Utf8()),
    text: vectorFromArray(['héllo', 'wörld 🎉'], new LargeUtf8()),
  });
  fs.writeFileSync(path.join(dir, 'mixed.arrow'), tableToIPC(table, 'stream'));
  fs.writeFileSync(path.join(dir, 'mixed-file.arrow'), tableToIPC(table, 'file'));
  for (const f of ['mixed.arrow', 'mixed-file.arrow']) {
    assert.deepEqual(await collect(path.join(dir, f)), [
      { prompt: 'p0', text: 'héllo' },
      { prompt: 'p1', text: 'wörld 🎉' },
    ]);
  }
});

test('JSONL, text files, folders and globs', async () => {
  const dir = tmpDir();
  fs.writeFileSync(
    path.join(dir, 'a.jsonl'),
    '{"text":"one"}\n\n{"prompt":"q","text":"two"}\n{"input_ids":[1,2,3]}\n{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]}\n',
  );
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'b.txt'), 'plain text\nsecond line\n');
  fs.writeFileSync(path.join(dir, 'sub', 'c.txt'), 'another');
  const rows = await collect(path.join(dir, 'a.jsonl'));
  assert.deepEqual(rows.slice(0, 2), [{ text: 'one' }, { prompt: 'q', text: 'two' }]);
  assert.deepEqual(Array.from(rows[2]!.inputIds!), [1, 2, 3]);
  assert.deepEqual(rows[3], { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }] });
  assert.deepEqual(await collect(path.join(dir, 'sub', '*.txt')), [{ text: 'plain text\nsecond line\n' }, { text: 'another' }]);
  assert.equal((await collect(dir)).length, 6);
  assert.deepEqual(expandGlob(path.join(dir, '**', '*.txt')), [path.join(dir, 'sub', 'b.txt'), path.join(dir, 'sub', 'c.txt')]);
  // A large text file is streamed paragraph by paragraph.
  fs.writeFileSync(path.join(dir, 'big.txt'), 'p1 a\np1 b\n\n\np2\n');
  assert.deepEqual(await collect(path.join(dir, 'big.txt'), { wholeFileLimit: 4 }), [{ text: 'p1 a\np1 b' }, { text: 'p2' }]);
});

test('bad input: errors name the file, column or line', async () => {
  const dir = tmpDir();
  await assert.rejects(collect(path.join(dir, 'nope.parquet')), new RegExp(`input ${path.join(dir, 'nope.parquet')} does not exist`));
  await assert.rejects(collect(path.join(dir, '*.parquet')), /no files match/);

  // Truncated Parquet (footer cut off) and a corrupt one (garbage with the magic bytes).
  const pq = fs.readFileSync(path.join(FX, 'pretrain-zstd.parquet'));
  fs.writeFileSync(path.join(dir, 'cut.parquet'), pq.subarray(0, pq.length >> 1));
  await assert.rejects(collect(path.join(dir, 'cut.parquet')), new RegExp(`Parquet file ${path.join(dir, 'cut.parquet')} is corrupt or truncated`));
  const bad = Buffer.from(pq);
  bad.fill(7, 4, bad.length - 8 - 200);
  fs.writeFileSync(path.join(dir, 'bad.parquet'), bad);
  await assert.rejects(collect(path.join(dir, 'bad.parquet')), /bad\.parquet is corrupt or truncated/);

  // Missing and wrongly typed columns.
  await assert.rejects(collect(path.join(FX, 'pretrain-zstd.parquet'), { textColumn: 'body' }), /pretrain-zstd\.parquet: column 'body' is missing \(columns: id, text\)/);
  // A Parquet text column of the wrong type (the fixture's metadata with `text` retyped as INT64).
  const meta = parquetMetadata(pq.buffer.slice(pq.byteOffset, pq.byteOffset + pq.byteLength) as ArrayBuffer);
  assert.deepEqual(parquetReadPlan('ok.parquet', meta), { mode: 'text', columns: ['text'], prompt: false });
  const textEl = meta.schema.find((e) => e.name === 'text')!;
  Object.assign(textEl, { type: 'INT64', converted_type: undefined, logical_type: undefined });
  assert.throws(() => parquetReadPlan('typed.parquet', meta), /Parquet file typed\.parquet: column 'text' has type INT64, expected a string column/);
  await assert.rejects(collect(path.join(FX, 'tokenized.arrows'), { textColumn: 'n' }), /tokenized\.arrows: column 'n' has type Float64, expected string or large_string/);
  await assert.rejects(collect(path.join(FX, 'tokenized.arrows'), { textColumn: 'body' }), /tokenized\.arrows: column 'body' is missing \(columns: input_ids, n\)/);

  // Truncated Arrow stream and garbage.
  const arr = fs.readFileSync(path.join(FX, 'tokenized.arrows'));
  fs.writeFileSync(path.join(dir, 'cut.arrows'), arr.subarray(0, Math.floor(arr.length * 0.6)));
  await assert.rejects(collect(path.join(dir, 'cut.arrows')), /cut\.arrows is corrupt or truncated/);
  fs.writeFileSync(path.join(dir, 'junk.arrow'), Buffer.from('this is not arrow at all, just text'));
  await assert.rejects(collect(path.join(dir, 'junk.arrow')), /junk\.arrow is corrupt/);

  // JSONL with a broken line and a wrongly typed field.
  fs.writeFileSync(path.join(dir, 'x.jsonl'), '{"text":"ok"}\n{"text":3}\n');
  await assert.rejects(collect(path.join(dir, 'x.jsonl')), /x\.jsonl:2: key 'text' must be a string, got number/);
  fs.writeFileSync(path.join(dir, 'm.jsonl'), '{"messages":[{"role":"user","content":"hi"},{"role":"assistant"}]}\n');
  await assert.rejects(collect(path.join(dir, 'm.jsonl')), /m\.jsonl:1: message 1 must have string 'role' and 'content', got \{"role":"assistant"\}/);
  fs.writeFileSync(path.join(dir, 'y.jsonl'), '{"text":"ok"}\n{oops\n');
  await assert.rejects(collect(path.join(dir, 'y.jsonl')), /y\.jsonl:2: not valid JSON/);
});
