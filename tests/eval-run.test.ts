// Benchmark tasks end to end on the dense fixture checkpoint with a toy character tokenizer: local files in the hub
// datasets' layouts (Parquet with struct/list columns and JSONL), few-shot contexts, lighteval's pair encoding,
// scores checked against a direct computation, result rows, the table; wrong layouts and unknown tasks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { brownCorpusDocuments, trainTokenizer } from '../src/data';
import { run as evalCli } from '../src/cli/eval';
import {
  chatContext, embeddedChatDoc, encodePair, evalTask, evaluatePerplexity, evaluateTasks, fewshotContext, formatResultsTable, arcDoc, mcDecisions,
  scoreContinuations, selectShots, loadTaskDocs, SEED_TASKS, type EvalTokenizer,
} from '../src/eval';

let dir: string;
let model: DogeForCausalLM;

/** Characters -> ids 9..127 (BOS 0, EOS 1), a word-initial space merged into the next character's token. */
const charTok: EvalTokenizer = {
  eosTokenId: 1,
  encode(text, o = {}) {
    const ids: number[] = o.addSpecialTokens ? [0] : [];
    for (let i = 0; i < text.length; i++) {
      if (text[i] === ' ' && i + 1 < text.length && text[i + 1] !== ' ') { ids.push(9 + ((text.charCodeAt(i + 1) + 50) % 119)); i++; }
      else ids.push(9 + (text.charCodeAt(i) % 119));
    }
    return ids;
  },
  decode(ids) { return ids.map((i) => String.fromCharCode(i + 23)).join(''); },
};

const str = (name: string) => ({ name, repetition_type: 'OPTIONAL', type: 'BYTE_ARRAY', converted_type: 'UTF8' });
const strListOf = (name: string, n = 1) => [
  { name, repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
  { name: 'list', repetition_type: 'REPEATED', num_children: n },
  { name: 'element', repetition_type: 'OPTIONAL', type: 'BYTE_ARRAY', converted_type: 'UTF8' },
];

function writeParquet(file: string, columnData: { name: string; data: unknown[] }[], schema: Record<string, unknown>[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.from(parquetWriteBuffer({ columnData, schema } as never)));
}
function writeJsonl(file: string, rows: unknown[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

const ARC_SCHEMA = [
  { name: 'root', num_children: 4 }, str('id'), str('question'),
  { name: 'choices', repetition_type: 'OPTIONAL', num_children: 2 }, ...strListOf('text'), ...strListOf('label'),
  str('answerKey'),
];
const arcRows = (n: number, off: number) => Array.from({ length: n }, (_, i) => ({
  id: `q${off + i}`, question: `Which thing number ${off + i} is right?`,
  choices: { text: ['a cat', 'the dog', 'one fish', 'two birds'].map((t) => `${t} ${i}`), label: i % 2 ? ['1', '2', '3', '4'] : ['A', 'B', 'C', 'D'] },
  answerKey: i % 2 ? String(1 + (i % 4)) : 'ABCD'[i % 4],
}));
function arcParquet(file: string, rows: ReturnType<typeof arcRows>): void {
  writeParquet(file, ['id', 'question', 'choices', 'answerKey'].map((name) => ({ name, data: rows.map((r) => r[name as keyof typeof r]) })), ARC_SCHEMA);
}

before(async () => {
  await loadBackend({ log: false });
  model = DogeForCausalLM.fromPretrained(path.join(__dirname, 'fixtures', 'doge', 'dense'));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-eval-'));
  const d = (p: string) => path.join(dir, p);
  arcParquet(d('allenai/ai2_arc/ARC-Easy/train-00000-of-00001.parquet'), arcRows(6, 100));
  arcParquet(d('allenai/ai2_arc/ARC-Easy/test-00000-of-00001.parquet'), arcRows(5, 0));
  arcParquet(d('allenai/ai2_arc/ARC-Challenge/test-00000-of-00001.parquet'), arcRows(3, 50));
  writeJsonl(d('allenai/ai2_arc/ARC-Challenge/train-00000-of-00001.jsonl'), arcRows(4, 200));
  // cais/mmlu 'all': list<string> choices, int64 answers, a subject column
  const mmlu = (n: number, subjects: string[]) => Array.from({ length: n }, (_, i) => ({
    question: `What is ${i} plus ${i}?`, subject: subjects[i % subjects.length], choices: [`${2 * i}`, `${i}`, `${i + 1}`, `${3 * i}`], answer: BigInt(i % 4),
  }));
  const mmluSchema = [{ name: 'root', num_children: 4 }, str('question'), str('subject'), ...strListOf('choices'), { name: 'answer', repetition_type: 'OPTIONAL', type: 'INT64' }];
  for (const [split, n] of [['test', 6], ['dev', 4]] as const) {
    const rows = mmlu(n, ['anatomy', 'high_school_physics']);
    writeParquet(d(`cais/mmlu/all/${split}-00000-of-00001.parquet`), ['question', 'subject', 'choices', 'answer'].map((name) => ({ name, data: rows.map((r) => r[name as keyof typeof r]) })), mmluSchema);
  }
  // mandarjoshi/trivia_qa rc.nocontext: answer {aliases list<string>, value}
  const trivia = (n: number) => Array.from({ length: n }, (_, i) => ({ question: `Who is number ${i}?`, answer: { aliases: [`Name ${i}`, `name ${i}!`], value: `Name ${i}` } }));
  const triviaSchema = [{ name: 'root', num_children: 2 }, str('question'), { name: 'answer', repetition_type: 'OPTIONAL', num_children: 2 }, ...strListOf('aliases'), str('value')];
  for (const [split, n] of [['validation', 3], ['train', 4]] as const) {
    const rows = trivia(n);
    writeParquet(d(`mandarjoshi/trivia_qa/rc.nocontext/${split}-00000-of-00001.parquet`), [{ name: 'question', data: rows.map((r) => r.question) }, { name: 'answer', data: rows.map((r) => r.answer) }], triviaSchema);
  }
  const hs = (n: number, label = true) => Array.from({ length: n }, (_, i) => ({
    ind: i, activity_label: 'Cooking', ctx_a: `A man cuts ${i} onions.`, ctx_b: 'then he', ctx: '', endings: ['fries them.', 'eats [title] them.', 'sings.', 'leaves.'], source_id: 'x', split: 'val', split_type: 'indomain', label: label ? String(i % 4) : '',
  }));
  writeJsonl(d('Rowan/hellaswag/data/validation.jsonl'), hs(4));
  writeJsonl(d('Rowan/hellaswag/data/train.jsonl'), hs(5));
  const piqa = (n: number) => Array.from({ length: n }, (_, i) => ({ goal: `Open jar ${i}`, sol1: 'Twist the lid.', sol2: 'Sit on it.', label: i % 2 }));
  writeJsonl(d('ybisk--piqa/plain_text/validation/0000.jsonl'), piqa(4));
  writeJsonl(d('ybisk--piqa/plain_text/train/0000.jsonl'), piqa(6));
  const obqa = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `o${i}`, question_stem: `Plants need ${i}`, choices: { text: ['light', 'sand', 'salt', 'rocks'], label: ['A', 'B', 'C', 'D'] }, answerKey: ` ${'ABCD'[i % 4]}` }));
  writeJsonl(d('allenai/openbookqa/main/test-00000-of-00001.jsonl'), obqa(3));
  writeJsonl(d('allenai/openbookqa/main/train-00000-of-00001.jsonl'), obqa(6));
  const wg = (n: number) => Array.from({ length: n }, (_, i) => ({ sentence: `Tom gave Bob ${i} apples because _ was kind.`, option1: 'Tom', option2: 'Bob', answer: String(1 + (i % 2)) }));
  writeJsonl(d('allenai/winogrande/winogrande_xl/validation-00000-of-00001.jsonl'), wg(4));
  writeJsonl(d('allenai/winogrande/winogrande_xl/train-00000-of-00001.jsonl'), wg(5));
});

after(() => {
  model?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('encodePair: trailing space moves to the continuation; a merged last context token counts as continuation', () => {
  const r = encodePair(charTok, 'Answer: ', 'yes');
  // "Answer:" + " yes": the space merges into the "y" token
  assert.deepEqual(r.context, charTok.encode('Answer:', { addSpecialTokens: true }));
  assert.deepEqual(r.continuation, charTok.encode(' yes', { addSpecialTokens: false }));
  // a tokenizer whose whole encoding is no longer than the context's: the last token becomes the continuation
  const merging: EvalTokenizer = { ...charTok, encode: (t, o) => (t.endsWith('ab') ? [0, 20] : charTok.encode(t, o)) };
  const m = encodePair(merging, 'a', 'b');
  assert.deepEqual(m.continuation, [20]);
  assert.deepEqual(m.context, [0]);
  assert.deepEqual(encodePair(charTok, '', 'x').context, [1], 'an empty context is [EOS]');
});

test('every task of the seed reads its hub layout from local files and produces result rows', async () => {
  const lines: string[] = [];
  const rows = await evaluateTasks(model, charTok, { tasks: SEED_TASKS, dataDir: dir, limit: 3, shots: 1, modelName: 'dense', onLog: (l) => lines.push(l) });
  for (const name of SEED_TASKS) {
    const mine = rows.filter((r) => r.task === name);
    assert.deepEqual(mine.map((r) => r.metric), evalTask(name).metrics, name);
    for (const r of mine) {
      assert.ok(r.value >= 0 && r.value <= 1, `${name} ${r.metric} = ${r.value}`);
      assert.equal(r.shots, 1);
      assert.equal(r.model, 'dense');
      assert.equal(r.backend, 'wasm');
      assert.ok(r.seconds >= 0 && r.stderr !== null && r.stderr >= 0);
    }
  }
  // MMLU: limit per subject (3 + 3 of 6 test rows), macro average over the two subjects
  assert.equal(rows.find((r) => r.task === 'mmlu')!.n, 6);
  assert.equal(rows.find((r) => r.task === 'arc_easy')!.n, 3);
  assert.ok(lines.some((l) => /requests\/s/.test(l)), 'progress lines print requests/s');
  const table = formatResultsTable(rows);
  assert.match(table, /^task\s+metric\s+n\s+shots\s+dense$/m);
  assert.match(table, /arc_easy\s+acc_norm_nospace\s+3\s+1\s+\d\.\d{4} ± \d\.\d{4}/);
});

test('arc_easy scores equal a direct computation from the prompt functions (few-shot, pair encoding, decisions)', async () => {
  const task = evalTask('arc_easy');
  const data = await loadTaskDocs(task, { dataDir: dir, limit: 5 });
  const shots = selectShots(task, data, 2, 7);
  const [acc, nospace] = await evaluateTasks(model, charTok, { tasks: ['arc_easy'], dataDir: dir, limit: 5, shots: 2, seed: 7, log: false });
  let a = 0;
  let b = 0;
  data.docs.forEach((d, i) => {
    assert.equal(shots[i].length, 2);
    assert.ok(shots[i].every((s) => s.query !== d.doc.query));
    const ctx = fewshotContext(d.doc, shots[i]);
    const sums = d.doc.choices.map((c) => scoreContinuations(model, [encodePair(charTok, ctx, c)])[0]);
    const dec = mcDecisions(sums.map((s) => s.sum), d.doc.choices, sums.map((s) => s.tokenLogprobs.length), d.doc.gold);
    a += dec.correct.acc / 5;
    b += dec.correct.acc_norm_nospace / 5;
  });
  assert.ok(Math.abs(acc.value - a) < 1e-12 && Math.abs(nospace.value - b) < 1e-12, `${acc.value} vs ${a}, ${nospace.value} vs ${b}`);
  // the Parquet struct column came through: the first test row, as arcDoc sees it
  assert.deepEqual(data.docs[0].doc, arcDoc(arcRows(5, 0)[0]));
});

test('embedded task: ARC-layout rows in memory; perplexity rows', async () => {
  const items: { index: number; scores: Record<string, number> }[] = [];
  const rows = await evaluateTasks(model, charTok, { tasks: ['embedded'], embeddedRows: { eval: arcRows(8, 0), fewshot: arcRows(4, 300) }, log: false, onItem: (it) => items.push(it) });
  assert.deepEqual(items.map((it) => it.index), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(items.reduce((a, it) => a + it.scores.acc, 0) / 8, rows[0].value, 'per-item scores average to the task score');
  assert.deepEqual(rows.map((r) => [r.task, r.metric, r.n, r.shots]), [['embedded', 'acc', 8, 0], ['embedded', 'acc_norm_nospace', 8, 0]]);
  const ppl = evaluatePerplexity(model, charTok, ['The cat sat on the mat.', 'A dog ran.'], { modelName: 'dense' });
  assert.deepEqual(ppl.map((r) => r.metric), ['ppl', 'word_perplexity', 'bits_per_byte']);
  const ids = ['The cat sat on the mat.', 'A dog ran.'].map((t) => charTok.encode(t));
  const nTok = ids.reduce((s, x) => s + x.length, 0);
  // bits per byte and word perplexity are the same NLL over other units
  const nll = Math.log(ppl[0].value) * nTok;
  assert.ok(Math.abs(ppl[2].value - nll / 33 / Math.LN2) < 1e-9);
  assert.ok(Math.abs(ppl[1].value - Math.exp(nll / 9)) < 1e-6 * ppl[1].value);
});

test('embedded_chat: the question as a user turn, the choices complete the answer sentence; scores as computed directly', async () => {
  const chatTok: EvalTokenizer = {
    ...charTok,
    applyChatTemplate: (messages, o = {}) => messages.map((m) => `<${m.role}>${m.content}</>`).join('') + (o.addGenerationPrompt ? '<assistant>' : ''),
  };
  const rows = [0, 1, 2].map((i) => ({
    id: `c${i}`, question: `Ann has a red cup number ${i}. What colour is Ann's cup?`, choices: { text: ['red', 'blue', 'green', 'gray'], label: ['A', 'B', 'C', 'D'] },
    answerKey: 'A', answer_prefix: "Ann's cup is",
  }));
  const docs = rows.map((r) => embeddedChatDoc(r));
  assert.equal(chatContext(chatTok, docs[0]!), `<user>${rows[0]!.question}</><assistant>Ann's cup is`);
  // a shot is a user turn and the assistant's whole answer sentence
  assert.equal(chatContext(chatTok, docs[1]!, [docs[0]!]), `<user>${rows[0]!.question}</><assistant>Ann's cup is red.</><user>${rows[1]!.question}</><assistant>Ann's cup is`);
  const got = await evaluateTasks(model, chatTok, { tasks: ['embedded_chat'], embeddedRows: { eval: rows }, log: false });
  assert.deepEqual(got.map((r) => [r.task, r.metric, r.n, r.shots]), [['embedded_chat', 'acc', 3, 0], ['embedded_chat', 'acc_norm_nospace', 3, 0]]);
  // direct: rendered context encoded without special tokens (the template carries its own), one choice per request
  let correct = 0;
  for (const d of docs) {
    const reqs = d.choices.map((c) => encodePair(chatTok, chatContext(chatTok, d), c, false));
    assert.equal(reqs[0]!.context[0], chatTok.encode('<')[0], 'no BOS in front of a rendered chat');
    const sums = scoreContinuations(model, reqs, {}).map((x) => x.sum);
    correct += sums.indexOf(Math.max(...sums)) === d.gold ? 1 : 0;
  }
  assert.equal(got[0]!.value, correct / docs.length);
  await assert.rejects(evaluateTasks(model, charTok, { tasks: ['embedded_chat'], embeddedRows: { eval: rows }, log: false }), /embedded_chat: embedded_chat benchmark: row 0: a chat-format task needs a tokenizer with a chat template/);
  const { answer_prefix: _drop, ...noPrefix } = rows[0]!;
  await assert.rejects(evaluateTasks(model, chatTok, { tasks: ['embedded_chat'], embeddedRows: { eval: [noPrefix] }, log: false }), /embedded_chat benchmark: row 0: field 'answer_prefix' is missing/);
});

test('unknown tasks, wrong layouts and bad rows are errors naming the task, file, row and field', async () => {
  await assert.rejects(evaluateTasks(model, charTok, { tasks: ['arc_easy', 'arc_hard'], dataDir: dir }), /unknown task 'arc_hard' \(tasks: arc_easy, arc_challenge, piqa/);
  await assert.rejects(evaluateTasks(model, charTok, { tasks: ['mmlu:astrology'], dataDir: dir, shots: 0 }), /no rows with subject 'astrology'/);
  // lighteval's task strings name a task and its shots
  assert.equal(evalTask('leaderboard|arc:challenge|3|0').name, 'arc_challenge');
  assert.equal(evalTask('leaderboard|arc:challenge|3|0').shots, 3);
  assert.equal(evalTask('original|mmlu|5|0').name, 'mmlu');
  assert.throws(() => evalTask('lighteval|arc:hard|5|0'), /unknown task 'lighteval\|arc:hard\|5\|0' \(lighteval tasks: lighteval\|arc:easy\|5\|0/);
  const viaString = await evaluateTasks(model, charTok, { tasks: ['leaderboard|arc:challenge|2|0'], dataDir: dir, log: false });
  assert.equal(viaString[0].shots, 2);
  // a PIQA file where the layout is ARC's: the missing column and the expected layout are named
  const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-eval-bad-'));
  try {
    arcParquet(path.join(bad, 'ybisk/piqa/plain_text/validation/0000.parquet'), arcRows(2, 0));
    await assert.rejects(
      evaluateTasks(model, charTok, { tasks: ['piqa'], dataDir: bad, shots: 0 }),
      (e: Error) => /Parquet file .*0000\.parquet: column 'goal' is missing \(columns: id, question, choices, answerKey\); expected the layout ybisk\/piqa goal, sol1, sol2, label int/.test(e.message),
    );
    writeJsonl(path.join(bad, 'allenai/winogrande/winogrande_xl/validation.jsonl'), [
      { sentence: 'A _ b.', option1: 'x', option2: 'y', answer: '1' },
      { sentence: 'no blank', option1: 'x', option2: 'y', answer: '2' },
    ]);
    await assert.rejects(evaluateTasks(model, charTok, { tasks: ['winogrande'], dataDir: bad, shots: 0 }), /validation\.jsonl:2: field 'sentence' must contain exactly one '_'/);
    writeJsonl(path.join(bad, 'Rowan/hellaswag/data/test.jsonl'), [{ activity_label: 'a', ctx_a: 'b', ctx_b: 'c', endings: ['x', 'y'], label: '' }]);
    fs.renameSync(path.join(bad, 'Rowan/hellaswag/data/test.jsonl'), path.join(bad, 'Rowan/hellaswag/data/validation.jsonl'));
    await assert.rejects(evaluateTasks(model, charTok, { tasks: ['hellaswag'], dataDir: bad, shots: 0 }), /validation\.jsonl:1: no gold label \(an unlabeled test row\)/);
    await assert.rejects(evaluateTasks(model, charTok, { tasks: ['openbookqa'], dataDir: bad }), /has no folder for allenai\/openbookqa/);
  } finally {
    fs.rmSync(bad, { recursive: true, force: true });
  }
});

test('--hub: a task downloads its config folder and split through src/data/hub.ts (local stand-in server)', async () => {
  // serves the ARC files written above under the hub's tree/resolve routes
  const root = path.join(dir, 'allenai', 'ai2_arc');
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    seen.push(url.pathname);
    const tree = /^\/api\/datasets\/allenai\/ai2_arc\/tree\/main\/?(.*)$/.exec(url.pathname);
    if (tree) {
      const sub = decodeURIComponent(tree[1]!);
      if (!fs.existsSync(path.join(root, sub))) return void res.writeHead(404).end('{}');
      const files = fs.readdirSync(path.join(root, sub)).map((f) => ({ type: 'file', path: `${sub}/${f}`, size: fs.statSync(path.join(root, sub, f)).size }));
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(files));
    }
    const file = /^\/datasets\/allenai\/ai2_arc\/resolve\/main\/(.+)$/.exec(url.pathname);
    if (file) return void res.writeHead(200).end(fs.readFileSync(path.join(root, decodeURIComponent(file[1]!))));
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const cacheDir = path.join(dir, 'cache');
    const fromHub = await evaluateTasks(model, charTok, { tasks: ['arc_easy'], hub: true, endpoint, cacheDir, limit: 4, shots: 1, log: false });
    const local = await evaluateTasks(model, charTok, { tasks: ['arc_easy'], dataDir: dir, limit: 4, shots: 1, log: false });
    assert.deepEqual(fromHub.map((r) => r.value), local.map((r) => r.value));
    assert.ok(seen.includes('/api/datasets/allenai/ai2_arc/tree/main/ARC-Easy'), seen.join(' '));
    assert.ok(seen.includes('/datasets/allenai/ai2_arc/resolve/main/ARC-Easy/test-00000-of-00001.parquet'));
    assert.ok(fs.existsSync(path.join(cacheDir, 'datasets', 'allenai--ai2_arc', 'main', 'ARC-Easy', 'train-00000-of-00001.parquet')));
  } finally {
    server.close();
  }
});

test('wm eval: two models, a benchmark and perplexity -> per-model results JSON, results.json, figure, table', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-eval-cli-'));
  try {
    const dirs = ['base', 'tuned'].map((n) => path.join(root, n));
    for (const [i, d] of dirs.entries()) {
      const m = new DogeForCausalLM(new DogeConfig({ vocab_size: 512, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, eos_token_id: 1, bos_token_id: 0, pad_token_id: 2 }), { seed: i + 1 });
      m.savePretrained(d);
      m.dispose();
      const tokDir = path.join(root, 'tok');
      if (i === 0) await trainTokenizer({ texts: brownCorpusDocuments().slice(0, 5), vocabSize: 300, outDir: tokDir, log: false });
      for (const f of fs.readdirSync(tokDir)) fs.copyFileSync(path.join(tokDir, f), path.join(d, f));
    }
    const out = path.join(root, 'out');
    const printed: string[] = [];
    const orig = console.log;
    const origErr = console.error;
    console.log = (...a: unknown[]) => { printed.push(a.join(' ')); };
    console.error = (...a: unknown[]) => { printed.push(a.join(' ')); };
    try {
      await evalCli(['--model', dirs[0], '--model', dirs[1], '--tasks', 'arc_easy,embedded', '--embedded-n', '8', '--data', dir, '--limit', '3', '--shots', '1', '--ppl', 'brown', '--ppl-limit', '2', '--max-length', '256', '--out', out]);
    } finally {
      console.log = orig;
      console.error = origErr;
    }
    const all = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as { model: string; task: string; metric: string; value: number; stderr: number | null; n: number; shots: number; backend: string; seconds: number }[];
    assert.deepEqual(all.map((r) => `${r.model}/${r.task}/${r.metric}`), ['base', 'tuned'].flatMap((m) => [`${m}/arc_easy/acc`, `${m}/arc_easy/acc_norm_nospace`, `${m}/embedded/acc`, `${m}/embedded/acc_norm_nospace`, `${m}/perplexity/ppl`, `${m}/perplexity/word_perplexity`, `${m}/perplexity/bits_per_byte`]));
    for (const r of all) for (const k of ['task', 'metric', 'value', 'stderr', 'n', 'shots', 'model', 'backend', 'seconds']) assert.ok(k in r, `${k} in a result row`);
    const per = JSON.parse(fs.readFileSync(path.join(out, 'results-tuned.json'), 'utf8')) as { model: string; results: unknown[] };
    assert.equal(per.model, 'tuned');
    assert.equal(per.results.length, 7);
    assert.equal(all.find((r) => r.task === 'embedded')!.n, 3, '--limit applies to the embedded benchmark too');
    const ppl = all.filter((r) => r.metric === 'ppl');
    assert.ok(ppl.every((r) => r.value > 50 && r.value < 2000), 'an untrained model has a perplexity near its vocabulary size');
    const html = fs.readFileSync(path.join(out, 'eval.html'), 'utf8');
    assert.match(html, /Plotly\.newPlot/);
    assert.match(printed.join('\n'), /arc_easy\s+acc\s+3\s+1\s+\d\.\d{4} ± \d\.\d{4}\s+\d\.\d{4} ± /);
    assert.ok(printed.some((l) => /requests\/s/.test(l)));
    await assert.rejects(evalCli(['--model', dirs[0], '--tasks', 'arc_easy,nope']), /unknown task 'nope'/);
    await assert.rejects(evalCli(['--model', dirs[0], '--tasks', 'arc_easy']), /need --data DIR or --hub/);
    await assert.rejects(evalCli(['--model', path.join(root, 'missing')]), /no config\.json in that folder/);
    await assert.rejects(evalCli(['--tasks', 'embedded']), /wm eval: --model DIR is required/);
    await assert.rejects(evalCli(['--model', 'x', '--embedded-families', 'copy,define']), /wm eval: --embedded-families: 'define' is not one of copy, bind, arith, antonym/);
    await assert.rejects(evalCli(['--model', dirs[0], '--limit', '0']), /--limit/);
    await assert.rejects(evalCli(['--model', dirs[0], '--shot', '2']), /unknown option --shot \(did you mean --shots\?\)/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
