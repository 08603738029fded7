// Hostile tokenizer folders (issue #20 items 7, 8): a broken tokenizer.json is refused on load naming the field;
// a chat template is rendered within bounds and every template error names tokenizer_config.json.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadTokenizer, trainTokenizer } from '../src/data';

let root: string;
let good: Record<string, unknown>;
let goodConfig: Record<string, unknown>;

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-hostile-tok-'));
  await trainTokenizer({ texts: ['the cat sat on the mat', 'a dog and a cat'], vocabSize: 275, outDir: path.join(root, 'good'), log: false });
  good = JSON.parse(fs.readFileSync(path.join(root, 'good', 'tokenizer.json'), 'utf8'));
  goodConfig = JSON.parse(fs.readFileSync(path.join(root, 'good', 'tokenizer_config.json'), 'utf8'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A tokenizer folder with a changed copy of the good tokenizer.json (and optionally tokenizer_config.json). */
function folder(change: (j: any) => void, config?: (c: any) => void): string {
  const d = path.join(root, `t${n++}`);
  fs.mkdirSync(d);
  const j = structuredClone(good);
  change(j);
  fs.writeFileSync(path.join(d, 'tokenizer.json'), JSON.stringify(j));
  const c = structuredClone(goodConfig);
  config?.(c);
  fs.writeFileSync(path.join(d, 'tokenizer_config.json'), JSON.stringify(c));
  return d;
}

test('a broken tokenizer.json is refused on load, naming the file and the field (item 8)', async () => {
  const ok = await loadTokenizer(folder(() => {}));
  assert.ok(ok.vocabSize > 256);
  const cases: [(j: any) => void, RegExp][] = [
    [(j) => { j.model.vocab = 'abc'; }, /tokenizer\.json: model\.vocab of a BPE model must be an object of token -> id, got string "abc"/],
    [(j) => { j.model.vocab = ['a']; }, /model\.vocab of a BPE model must be an object of token -> id, got an array/],
    [(j) => { j.model.type = 'Magic'; }, /tokenizer\.json: model\.type "Magic" is not a model type this library reads \(BPE, WordPiece, WordLevel, Unigram\)/],
    [(j) => { delete j.model.type; }, /model\.type undefined is not a model type/],
    [(j) => { j.model = null; }, /tokenizer\.json: model must be an object, got null/],
    [(j) => { j.model.vocab.the = -3; }, /tokenizer\.json: model\.vocab\["the"\] must be a non-negative integer id, got -3/],
    [(j) => { j.model.vocab.the = 1.5; }, /model\.vocab\["the"\] must be a non-negative integer id, got 1\.5/],
    [(j) => { j.model.vocab.the = '7'; }, /model\.vocab\["the"\] must be a non-negative integer id, got "7"/],
    [(j) => { j.model.merges.push('zzq xxw'); }, /tokenizer\.json: model\.merges\[\d+\] "zzq xxw" uses "zzq", which is not in model\.vocab/],
    [(j) => { j.model.merges[0] = 7; }, /model\.merges\[0\] must be "a b" or \["a", "b"\], got 7/],
    [(j) => { j.model.merges = {}; }, /model\.merges must be an array, got an object/],
    [(j) => { j.added_tokens[0].id = 1e9; }, /tokenizer\.json: added_tokens\[0\]\.id = 1000000000 is far beyond the \d+ vocabulary entries \(ids must stay below \d+\); the file is corrupt/],
    [(j) => { j.added_tokens[0].id = -1; }, /added_tokens\[0\]\.id must be a non-negative integer id, got -1/],
    [(j) => { j.added_tokens = { a: 1 }; }, /added_tokens must be an array, got an object/],
    [(j) => { j.added_tokens[1] = { id: 3 }; }, /added_tokens\[1\] must be an object with a non-empty string content/],
    [(j) => { j.model = { type: 'Unigram', vocab: [['a', 0], ['b']] }; }, /model\.vocab\[1\] must be a \[piece, score\] pair, got \["b"\]/],
  ];
  for (const [change, re] of cases) {
    const t0 = Date.now();
    await assert.rejects(loadTokenizer(folder(change)), re, String(change));
    assert.ok(Date.now() - t0 < 5000, `${change} is refused at once`);
  }
});

test('chat templates render within bounds; every template error names tokenizer_config.json (item 7)', async () => {
  const withTemplate = (t: string) => folder(() => {}, (c) => { c.chat_template = t; });
  const msgs = [{ role: 'user', content: 'hi' }];
  const where = /applyChatTemplate: .*tokenizer_config\.json chat_template/;
  const bombs: [string, RegExp][] = [
    ['{% for a in range(1000000000) %}x{% endfor %}', /failed to render: range\(0, 1000000000, 1\) has 1000000000 elements, over the limit of 100000/],
    ['{% for a in range(3000) %}{% for b in range(3000) %}{% for c in range(3000) %}x{% endfor %}{% endfor %}{% endfor %}', /failed to render: rendering took more than 200000 steps/],
    ["{% set ns = namespace(s='abcd') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}", /failed to render: the template built a string of \d+ characters, over the limit of 1000\d+/],
    ['{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}', /failed to render: /],
    ['{{ "x" | indent(2000000000) }}', /failed to render: /],
    ['{% for m in messages %}{{ m.content', /does not parse: /],
    ["{{ raise_exception('roles must alternate') }}", /failed to render: roles must alternate/],
  ];
  for (const [t, re] of bombs) {
    const tok = await loadTokenizer(withTemplate(t));
    const t0 = Date.now();
    assert.throws(() => tok.applyChatTemplate(msgs), (e: Error) => where.test(e.message) && re.test(e.message), t);
    assert.ok(Date.now() - t0 < 20000, `${t} stops in time (${Date.now() - t0} ms)`);
  }
  // a normal template renders as the library renders it, with its globals (strftime_now, namespace, loop)
  const { Template } = await import('@huggingface/jinja');
  const normal = "{{ bos_token }}{% for m in messages %}{{ loop.index }}<{{ m.role }}>{{ m.content | trim }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}{{ strftime_now('%Y') }}{{ range(3) | join(',') }}";
  const tok = await loadTokenizer(withTemplate(normal));
  const items = { messages: [...msgs, { role: 'assistant', content: ' yo ' }], add_generation_prompt: true, bos_token: tok.bosToken ?? '', eos_token: tok.eosToken ?? '', pad_token: tok.padToken ?? '' };
  assert.equal(tok.applyChatTemplate(items.messages, { addGenerationPrompt: true }), new Template(normal).render(items));
});
