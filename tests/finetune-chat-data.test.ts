// Chat data for SFT: the render-difference assistant spans of text-vectors.json (ChatML and the seed's Doge
// layout), segment-wise encoding equal to whole-text encoding, loss masks for messages / prompt-completion / text
// rows, packing modes, and the bad-input errors.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizer, trainTokenizer, type WmTokenizer, type ChatMessage } from '../src/data';
import { assistantSpans, chatExample, countTargets, defaultChats, DOGE_CHAT_TEMPLATE, packDocuments, promptCompletionExample, sftExample, textExample, type ChatExample } from '../src/finetune';

const FT = path.join(__dirname, 'fixtures', 'finetune');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-ft-chat-'));
let chatml: WmTokenizer;
let doge: WmTokenizer;

before(async () => {
  const texts = [
    ...defaultChats({ seed: 0, n: 200 }).map((c) => c.messages.map((m) => m.content).join('\n')),
    'Hi there. Hello! How can I help? Be brief. 2+2? and 3+3? Name a fruit. An apple. A chair.',
  ];
  await trainTokenizer({ texts, vocabSize: 600, outDir: path.join(dir, 'chatml'), log: false });
  await trainTokenizer({
    texts, vocabSize: 600, outDir: path.join(dir, 'doge'), log: false, chatTemplate: DOGE_CHAT_TEMPLATE,
    specialTokens: { bos: '<|begin_of_text|>', eos: '<|end_of_text|>', pad: '<|finetune_right_pad_id|>', imStart: '<|start_header_id|>', imEnd: '<|end_header_id|>' },
  });
  chatml = await loadTokenizer(path.join(dir, 'chatml'));
  doge = await loadTokenizer(path.join(dir, 'doge'));
});

test('text-vectors chats: renders and assistant spans (ChatML and the seed Doge layout), segment-wise ids = whole ids', () => {
  const tv = JSON.parse(fs.readFileSync(path.join(FT, 'text-vectors.json'), 'utf8'));
  let n = 0;
  for (const c of tv.chats as { messages: ChatMessage[]; chatml: Record<string, unknown>; doge: Record<string, unknown> }[]) {
    for (const [layout, tok] of [['chatml', chatml], ['doge', doge]] as const) {
      const want = c[layout] as { render: string; render_with_generation_prompt: string; assistant_spans: [number, number][]; assistant_texts: string[] };
      assert.equal(tok.applyChatTemplate(c.messages), want.render, `${layout} render`);
      assert.equal(tok.applyChatTemplate(c.messages, { addGenerationPrompt: true }), want.render_with_generation_prompt, `${layout} generation prompt`);
      const { text, spans } = assistantSpans(tok, c.messages);
      assert.deepEqual(spans, want.assistant_spans, `${layout} spans`);
      assert.deepEqual(spans.map(([a, b]) => text.slice(a, b)), want.assistant_texts);
      const warnings: string[] = [];
      const ex = chatExample(tok, c.messages, { warn: (m) => warnings.push(m) });
      assert.deepEqual(warnings, [], 'segment-wise encoding equals whole-text encoding');
      assert.deepEqual(ex.inputIds, tok.encode(want.render));
      // the masked tokens decode to exactly the assistant texts
      const runs: string[] = [];
      let cur: number[] = [];
      ex.lossMask.forEach((m, i) => { if (m) cur.push(ex.inputIds[i]!); else if (cur.length) { runs.push(tok.decode(cur)); cur = []; } });
      if (cur.length) runs.push(tok.decode(cur));
      assert.deepEqual(runs, want.assistant_texts);
      n++;
    }
  }
  // the seed's DPO preprocessing strings render from the same template (prompt = chosen[:-1] without generation prompt)
  for (const s of tv.seed_dpo_preprocessing as { chosen_messages: ChatMessage[]; prompt: string; chosen: string }[]) {
    assert.equal(doge.applyChatTemplate(s.chosen_messages.slice(0, -1)), s.prompt);
    const emptySystem = doge.applyChatTemplate([]);
    assert.equal(doge.applyChatTemplate(s.chosen_messages.slice(-1)).replace(emptySystem, ''), s.chosen);
  }
  console.log(`text-vectors chats: ${n} renders, spans and masks identical`);
});

test('loss masks: all-tokens option, prompt/completion (strings and messages), text rows, row dispatch', () => {
  const msgs: ChatMessage[] = [{ role: 'user', content: 'What is 2 plus 3?' }, { role: 'assistant', content: '2 plus 3 is 5.' }];
  const all = chatExample(chatml, msgs, { lossOn: 'all' });
  assert.ok(all.lossMask.every((m) => m === 1));
  const pc = promptCompletionExample(chatml, [msgs[0]!], [msgs[1]!]);
  assert.deepEqual(pc, chatExample(chatml, msgs), 'prompt/completion messages = the chat with assistant-only loss');
  const s = promptCompletionExample(chatml, 'Q: 2 plus 3?\nA:', ' 5.');
  const eos = chatml.eosTokenId!;
  assert.equal(s.inputIds.at(-1), eos, 'string completions get EOS');
  const nPrompt = chatml.encode('Q: 2 plus 3?\nA:').length;
  assert.deepEqual(s.lossMask, s.inputIds.map((_, i) => (i < nPrompt ? 0 : 1)));
  const t = textExample(chatml, 'Plain text.');
  assert.equal(t.inputIds.at(-1), eos);
  assert.ok(t.lossMask.every((m) => m === 1));
  assert.deepEqual(sftExample(chatml, { messages: msgs }), chatExample(chatml, msgs));
  assert.deepEqual(sftExample(chatml, { conversations: [{ from: 'human', value: msgs[0]!.content }, { from: 'gpt', value: msgs[1]!.content }] }), chatExample(chatml, msgs));
  assert.deepEqual(sftExample(chatml, { text: 'Plain text.' }), t);
});

test('bad chat rows are errors naming the row and the field', () => {
  const where = 'train.jsonl row 7';
  assert.throws(() => sftExample(chatml, { foo: 1 }, { where }), /train\.jsonl row 7: no 'messages', 'conversations', 'prompt'\/'completion' or 'text' column \(columns: foo\)/);
  assert.throws(() => sftExample(chatml, { messages: [{ role: 'user', content: 'hi' }] }, { where }), /row 7: no assistant message/);
  assert.throws(() => sftExample(chatml, { messages: [{ role: 'robot', content: 'hi' }] }, { where }), /row 7: message 0 has role "robot"/);
  assert.throws(() => sftExample(chatml, { messages: [{ role: 'user' }] }, { where }), /row 7: message 0 \(user\) has no string 'content'/);
  assert.throws(() => sftExample(chatml, { prompt: 'x' }, { where }), /row 7: has 'prompt' but no 'completion' column/);
  const noTemplate = Object.assign(Object.create(Object.getPrototypeOf(chatml)), chatml, { chatTemplate: undefined }) as WmTokenizer;
  assert.throws(() => chatExample(noTemplate, [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }], { where }), /has no chat_template/);
});

test('packing: document-aware (positions restart, first token no target), wrapped, padding', () => {
  const docs: ChatExample[] = [
    { inputIds: [10, 11, 12, 13, 14], lossMask: [0, 0, 1, 1, 1] },
    { inputIds: [20, 21, 22], lossMask: [1, 1, 1] },
    { inputIds: [30, 31, 32, 33, 34, 35, 36, 37, 38, 39], lossMask: new Array(10).fill(1) },
  ];
  const rows = packDocuments(docs, 8, 'document', { padId: 2 });
  // the 10-token document is cut to 8 and fills a row; 5 + 3 share the other
  assert.equal(rows.length, 2);
  assert.deepEqual(Array.from(rows[0]!.inputIds), [30, 31, 32, 33, 34, 35, 36, 37]);
  assert.deepEqual(Array.from(rows[1]!.inputIds), [10, 11, 12, 13, 14, 20, 21, 22]);
  assert.deepEqual(Array.from(rows[1]!.positionIds), [0, 1, 2, 3, 4, 0, 1, 2]);
  assert.deepEqual(Array.from(rows[1]!.documentIds), [0, 0, 0, 0, 0, 1, 1, 1]);
  assert.deepEqual(Array.from(rows[1]!.lossMask), [0, 0, 1, 1, 1, 0, 1, 1], 'first token of the second document is not a target');
  assert.deepEqual(rows[1]!.seqLengths, [5, 3]);
  assert.equal(countTargets(rows), 7 + 5);
  const wrapped = packDocuments(docs, 8, 'wrapped', { padId: 2 });
  assert.equal(wrapped.length, 2, '18 tokens -> two blocks of 8, tail dropped');
  assert.deepEqual(Array.from(wrapped[1]!.inputIds), [30, 31, 32, 33, 34, 35, 36, 37]);
  assert.deepEqual(Array.from(wrapped[1]!.positionIds), [0, 1, 2, 3, 4, 5, 6, 7]);
  const padded = packDocuments(docs, 8, 'padding', { padId: 2 });
  assert.equal(padded.length, 3);
  assert.deepEqual(Array.from(padded[1]!.inputIds), [20, 21, 22, 2, 2, 2, 2, 2]);
  assert.deepEqual(Array.from(padded[1]!.attentionMask), [1, 1, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(padded[1]!.lossMask), [0, 1, 1, 0, 0, 0, 0, 0]);
  assert.throws(() => packDocuments(docs, 8, 'bfd' as 'document', { padId: 2 }), /packing must be one of document, wrapped, padding/);
});

test('plain strings: the tokenizer\'s own BOS (TemplateProcessing), never a double BOS on rendered text', async () => {
  // the seed's Doge tokenizer adds <|begin_of_text|> in its post-processor
  const withBos = path.join(dir, 'doge-bos');
  fs.cpSync(path.join(dir, 'doge'), withBos, { recursive: true });
  const tj = JSON.parse(fs.readFileSync(path.join(withBos, 'tokenizer.json'), 'utf8'));
  tj.post_processor = {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [0], tokens: ['<|begin_of_text|>'] } },
  };
  fs.writeFileSync(path.join(withBos, 'tokenizer.json'), JSON.stringify(tj));
  const tok = await loadTokenizer(withBos);
  const plain = textExample(tok, 'Hi there');
  assert.equal(plain.inputIds[0], 0, 'BOS from the post-processor');
  assert.equal(plain.inputIds.filter((i) => i === 0).length, 1);
  assert.equal(plain.inputIds.at(-1), tok.eosTokenId);
  const rendered = textExample(tok, tok.applyChatTemplate([{ role: 'user', content: 'Hi there' }]));
  assert.equal(rendered.inputIds.filter((i) => i === 0).length, 1, 'a rendered template keeps its one BOS');
  // chats are encoded without the post-processor: one BOS (the template's)
  const chat = chatExample(tok, [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }]);
  assert.equal(chat.inputIds.filter((i) => i === 0).length, 1);
});

test('readFinetuneRows: Parquet (prompt/text pairs), Arrow with a messages list<struct> column, JSONL errors', async () => {
  const { readFinetuneRows } = await import('../src/finetune');
  const { tableToIPC, vectorFromArray, List, Struct, Field, Utf8, Table } = await import('apache-arrow');
  const pq = await readFinetuneRows(path.join(__dirname, 'fixtures', 'data', 'prompt-text.parquet'));
  assert.equal(pq.length, 40);
  assert.match(pq[3]!.where, /prompt-text\.parquet row 4/);
  const ex = sftExample(chatml, pq[0]!.row, { where: pq[0]!.where });
  assert.deepEqual(ex, chatExample(chatml, [{ role: 'user', content: pq[0]!.row.prompt as string }, { role: 'assistant', content: pq[0]!.row.text as string }]));
  // a datasets-style Arrow stream with messages: list<struct<role, content>>
  const msgType = new List(new Field('item', new Struct([new Field('role', new Utf8()), new Field('content', new Utf8())])));
  const convs = [
    [{ role: 'user', content: 'What is 1 plus 2?' }, { role: 'assistant', content: '1 plus 2 is 3.' }],
    [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }],
  ];
  const table = new Table({ messages: vectorFromArray(convs, msgType), source: vectorFromArray(['a', 'b'], new Utf8()) });
  const arrowFile = path.join(dir, 'chats.arrow');
  fs.writeFileSync(arrowFile, tableToIPC(table, 'stream'));
  const ar = await readFinetuneRows(arrowFile);
  assert.deepEqual(ar.map((r) => r.row.messages), convs);
  assert.deepEqual(sftExample(chatml, ar[1]!.row), chatExample(chatml, convs[1]!));
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, '{"text": "ok"}\n{not json}\n');
  await assert.rejects(readFinetuneRows(bad), /bad\.jsonl line 2: not valid JSON/);
});

test('chat helpers: end-of-turn id of each layout, streamed reply = returned text, stop rate bounds', async () => {
  const { endOfTurnId, chatReply, stopRate } = await import('../src/finetune');
  const { DogeConfig, DogeForCausalLM } = await import('../src/models/doge');
  const { loadBackend } = await import('../src/runtime/backend');
  await loadBackend({ log: false });
  assert.equal(endOfTurnId(chatml), chatml.tokenToId('<|im_end|>'));
  assert.equal(endOfTurnId(doge), doge.tokenToId('<|end_of_text|>'));
  const model = new DogeForCausalLM(new DogeConfig({ vocab_size: 600, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1 }), { seed: 4 });
  try {
    const pieces: string[] = [];
    const r = chatReply(model, chatml, [{ role: 'user', content: 'What is 2 plus 3?' }], { maxNewTokens: 12, onText: (p) => pieces.push(p) });
    assert.equal(pieces.join(''), r.text);
    assert.ok(r.ids.length <= 12 && r.stopped === (r.ids.at(-1) === endOfTurnId(chatml)));
    const s = stopRate(model, chatml, [[{ role: 'user', content: 'Hi' }], [{ role: 'user', content: 'What is 1 plus 1?' }]], { maxNewTokens: 6 });
    assert.ok(s.rate >= 0 && s.rate <= 1 && s.meanNewTokens <= 6 && s.n === 2);
  } finally {
    model.dispose();
  }
});

test('segment boundary inside a token: warning, whole-text ids, mask by character overlap', async () => {
  // 'Bot: ' as the generation prompt splits ' hello' (one GPT-2 piece) into ' ' + 'hello'
  const odd = path.join(dir, 'odd');
  fs.cpSync(path.join(dir, 'chatml'), odd, { recursive: true });
  const cfg = JSON.parse(fs.readFileSync(path.join(odd, 'tokenizer_config.json'), 'utf8'));
  cfg.chat_template = "{% for m in messages %}{% if m['role'] == 'assistant' %}{{ 'Bot: ' + m['content'] + '\\n' }}{% else %}{{ 'User: ' + m['content'] + '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Bot: ' }}{% endif %}";
  fs.writeFileSync(path.join(odd, 'tokenizer_config.json'), JSON.stringify(cfg));
  const tok = await loadTokenizer(odd);
  // a word whose space-prefixed form is its own token, so the two encodings really differ
  const word = ['is', 'the', 'plus', 'has', 'colour'].find((w) => tok.encode(' ' + w).join() !== [...tok.encode(' '), ...tok.encode(w)].join())!;
  assert.ok(word, 'some word merges with its leading space');
  const msgs: ChatMessage[] = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: `${word} there` }];
  const warnings: string[] = [];
  const ex = chatExample(tok, msgs, { warn: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /segment-wise encoding differs from whole-text encoding/);
  assert.deepEqual(ex.inputIds, tok.encode(`User: hi\nBot: ${word} there\n`));
  const target = tok.decode(ex.inputIds.filter((_, i) => ex.lossMask[i]));
  assert.equal(target, ` ${word} there\n`, 'every token holding a span character is a target');
});
