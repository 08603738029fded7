// Byte-level BPE training on the embedded corpus, loading with @huggingface/tokenizers, exact round trips,
// chunked encoding, special tokens, the chat template, and the errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { run as tokenizerCli } from '../src/cli/tokenizer';
import { brownCorpusDocuments, chunkText, loadTokenizer, trainTokenizer, WmTokenizer } from '../src/data';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-data-tok-'));
const tokDir = path.join(dir, 'tok');
let tok: WmTokenizer;

const TEXTS = [
  'The jury said it did find that many of Georgia\'s registration and election laws "are outmoded".',
  'héllo wörld — naïve café, Ελληνικά, русский, 日本語のテキスト, 한국어, עברית, العربية',
  'emoji 🎉👩‍👩‍👧 and flags 🇫🇷, combining e\u0301 and zero\u200bwidth',
  '  leading spaces, trailing spaces   \n\n\ttabs\tand\r\nCRLF\n\n\n',
  "contractions: it's, we're, they've, I'm, you'll, he'd; numbers 3.14159 and 1,000,000",
  'control \u0000\u0001\u007f chars and a lone surrogate-free string <|im_start|> inside text',
  '',
  ' ',
];

test('train a byte-level BPE at vocab 4096 on the Brown corpus and write a HF tokenizer folder', async () => {
  const r = await trainTokenizer({ texts: brownCorpusDocuments(), vocabSize: 4096, outDir: tokDir, log: false });
  assert.equal(r.vocabSize, 4096);
  assert.equal(r.numMerges, 4096 - 256 - 5);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) assert.ok(fs.existsSync(path.join(tokDir, f)), f);
  const json = JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8'));
  assert.equal(json.model.type, 'BPE');
  assert.equal(json.pre_tokenizer.type, 'ByteLevel');
  assert.equal(json.decoder.type, 'ByteLevel');
  assert.equal(Object.keys(json.model.vocab).length, 4096);
  assert.equal(json.model.merges.length, r.numMerges);
  // Every merge is two existing symbols whose concatenation is a later symbol.
  for (const m of json.model.merges.slice(0, 50) as string[]) {
    const [a, b] = m.split(' ');
    assert.ok(json.model.vocab[a!] !== undefined && json.model.vocab[b!] !== undefined && json.model.vocab[a! + b!] > json.model.vocab[a!]);
  }
  assert.deepEqual(
    json.added_tokens.map((t: { id: number; content: string }) => [t.id, t.content]),
    [
      [0, '<|begin_of_text|>'],
      [1, '<|end_of_text|>'],
      [2, '<|pad|>'],
      [3, '<|im_start|>'],
      [4, '<|im_end|>'],
    ],
  );
  const cfg = JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer_config.json'), 'utf8'));
  assert.equal(cfg.tokenizer_class, 'PreTrainedTokenizerFast');
  assert.equal(cfg.eos_token, '<|end_of_text|>');
  assert.equal(typeof cfg.chat_template, 'string');
  tok = await loadTokenizer(tokDir);
});

test('loaded tokenizer: vocab and special ids', () => {
  assert.equal(tok.vocabSize, 4096);
  assert.equal(tok.bosTokenId, 0);
  assert.equal(tok.eosTokenId, 1);
  assert.equal(tok.padTokenId, 2);
  const marked = tok.encode('<|im_start|>user<|im_end|>');
  assert.equal(marked[0], 3);
  assert.equal(marked.at(-1), 4);
  assert.equal(tok.decode(marked.slice(1, -1)), 'user');
  assert.equal(tok.decode([3, 1]), '<|im_start|><|end_of_text|>');
  assert.equal(tok.decode([...marked, 1], { skipSpecialTokens: true }), 'user');
  // The frequent words of the corpus became single tokens.
  for (const w of [' the', ' of', ' said', 'The']) assert.equal(tok.encode(w).length, 1, w);
});

test('every test text round-trips exactly (byte level: any Unicode)', () => {
  for (const t of TEXTS) assert.equal(tok.decode(tok.encode(t)), t, JSON.stringify(t));
  // The Brown documents themselves, and the same through a plain @huggingface/tokenizers instance.
  const plain = new Tokenizer(
    JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8')),
    JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer_config.json'), 'utf8')),
  );
  assert.ok(tok.hasFastPath);
  for (const d of [...TEXTS, ...brownCorpusDocuments().slice(0, 20)]) {
    const ids = tok.encode(d);
    assert.equal(tok.decode(ids), d);
    // The cached piece-by-piece path gives exactly the library's ids.
    assert.deepEqual(plain.encode(d, { add_special_tokens: false }).ids, ids, JSON.stringify(d.slice(0, 40)));
  }
});

test('long texts are encoded in chunks with the same ids as whole', () => {
  const long = brownCorpusDocuments().slice(0, 6).join('\n\n') + ' tail  with   spaces\n';
  const pieces = chunkText(long, 1000);
  assert.ok(pieces.length > 10);
  assert.equal(pieces.join(''), long);
  tok.useFastPath = false;
  tok.chunkChars = 1000;
  const chunked = tok.encode(long);
  tok.chunkChars = 0;
  const whole = tok.encode(long);
  tok.chunkChars = 4096;
  tok.useFastPath = true;
  assert.deepEqual(chunked, whole);
  assert.deepEqual(tok.encode(long), whole);
  // Text with no safe cut point stays one piece.
  assert.deepEqual(chunkText('x'.repeat(50), 10), ['x'.repeat(50)]);
});

test('chat template renders ChatML with the role markers', () => {
  const messages = [
    { role: 'user', content: 'Hi there' },
    { role: 'assistant', content: 'Hello!' },
  ];
  assert.equal(tok.applyChatTemplate(messages), '<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n');
  assert.equal(tok.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: true }), '<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n');
  const ids = tok.encodeChat(messages);
  assert.equal(ids[0], 3);
  assert.equal(ids.filter((i) => i === 4).length, 2);
  assert.throws(() => tok.applyChatTemplate([{ role: 'user' } as never]), /message 0 must have string 'role' and 'content'/);
});

test('custom special tokens and a small vocabulary', async () => {
  const out = path.join(dir, 'small');
  const r = await trainTokenizer({
    texts: ['aaa bbb aaa bbb ccc', 'aaa ddd'],
    vocabSize: 300,
    outDir: out,
    specialTokens: { bos: '<s>', eos: '</s>', pad: '<pad>', extra: ['<tool>'] },
    log: false,
  });
  // Few pairs in such a tiny corpus: training stops when no pair is seen twice.
  assert.ok(r.vocabSize < 300 && r.vocabSize > 262);
  const t = await loadTokenizer(out);
  assert.deepEqual([t.bosTokenId, t.eosTokenId, t.padTokenId, t.tokenToId('<tool>')], [0, 1, 2, 5]);
  assert.equal(t.decode(t.encode('zzz ünïcödé aaa')), 'zzz ünïcödé aaa');
});

test('errors: too small a vocabulary, empty corpus, folder without tokenizer.json, bad JSON', async () => {
  await assert.rejects(trainTokenizer({ texts: ['abc'], vocabSize: 100, outDir: path.join(dir, 'x'), log: false }), /vocabSize 100 must be an integer >= 261/);
  await assert.rejects(trainTokenizer({ texts: [], vocabSize: 300, outDir: path.join(dir, 'x'), log: false }), /the corpus is empty/);
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  await assert.rejects(loadTokenizer(empty), new RegExp(`${path.join(empty, 'tokenizer.json')} is missing`));
  await assert.rejects(loadTokenizer(path.join(dir, 'absent')), /tokenizer folder .*absent does not exist/);
  fs.writeFileSync(path.join(empty, 'tokenizer.json'), '{ not json');
  await assert.rejects(loadTokenizer(empty), /tokenizer\.json is not valid JSON/);
});

test('wm tokenizer train / encode / decode (CLI) print the training time and ids', async () => {
  const out = path.join(dir, 'cli');
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    await tokenizerCli(['train', '--input', 'tests/fixtures/data/prompt-text.parquet', '--vocab-size', '400', '--out', out, '--im-start', '<|user|>', '--im-end', '<|end|>']);
    await tokenizerCli(['encode', '--tokenizer', out, '--chat-user', 'hi', '--generation-prompt']);
    await tokenizerCli(['decode', '--tokenizer', out, '--ids', '3,4']);
  } finally {
    console.log = log;
  }
  assert.match(lines[1]!, /^trained vocab 400 in [\d.]+s$/);
  assert.equal(lines[2], JSON.stringify('<|user|>user\nhi<|end|>\n<|user|>assistant\n'));
  assert.equal(JSON.parse(lines[3]!)[0], 3);
  assert.equal(lines[4], JSON.stringify('<|user|><|end|>'));
  await assert.rejects(tokenizerCli(['decode', '--tokenizer', out, '--ids', '3,999']), /--ids: item 2 \(999\) is not a token id of this tokenizer \(vocab 400\)/);
});
