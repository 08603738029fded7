// The embedded offline fine-tuning data: seeded, the right mix, answers consistent with the questions, the
// benchmark in ARC's layout with one gold among four distinct choices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultBenchmark, defaultChats, defaultPreferences, WORDNET_MINI } from '../src/finetune';

test('defaultBenchmark: ARC layout + answer_prefix, 100 per family, gold among four distinct choices, deterministic', () => {
  const rows = defaultBenchmark({ seed: 0, n: 400, families: ['copy', 'bind', 'arith', 'antonym'] });
  assert.equal(rows.length, 400);
  const perFamily = new Map<string, number>();
  const goldAt = [0, 0, 0, 0];
  for (const r of rows) {
    assert.deepEqual(Object.keys(r).sort(), ['answerKey', 'answer_prefix', 'choices', 'id', 'question']);
    assert.deepEqual(r.choices.label, ['A', 'B', 'C', 'D']);
    assert.equal(r.choices.text.length, 4);
    assert.equal(new Set(r.choices.text).size, 4, `${r.id}: choices repeat: ${r.choices.text}`);
    const gold = r.choices.text[r.choices.label.indexOf(r.answerKey)]!;
    goldAt[r.choices.label.indexOf(r.answerKey)]! += 1;
    const fam = r.id.split('-')[2]!;
    perFamily.set(fam, (perFamily.get(fam) ?? 0) + 1);
    if (fam === 'arith') {
      const [, a, b] = /What is (\d) plus (\d)\?/.exec(r.question)!;
      assert.equal(Number(gold), Number(a) + Number(b));
      assert.equal(r.answer_prefix, `${a} plus ${b} is`);
    } else if (fam === 'copy' || fam === 'bind') {
      const [, who, obj] = /What colour is (\w+)'s (\w+)\?/.exec(r.question)!;
      assert.match(r.question, new RegExp(`${who} has a ${gold} ${obj}\\.`));
      // copy: the gold is the only colour of the context; bind: every fact has one
      const colours = r.choices.text.filter((c) => r.question.includes(` ${c} `));
      assert.equal(r.answer_prefix, `${who}'s ${obj} is`);
      if (fam === 'copy') assert.deepEqual(colours, [gold]);
      else assert.ok(colours.length >= 2, `${r.id}: a bind question needs a context distractor`);
    } else {
      const [, w] = /opposite of (\w+)\?/.exec(r.question)!;
      assert.ok(WORDNET_MINI.antonyms.some(([a, b]) => (a === w && b === gold) || (b === w && a === gold)), `${w} / ${gold}`);
      assert.equal(r.answer_prefix, `The opposite of ${w} is`);
    }
  }
  assert.deepEqual(Object.fromEntries(perFamily), { copy: 100, bind: 100, arith: 100, antonym: 100 });
  assert.ok(goldAt.every((c) => c > 60), `gold positions are spread: ${goldAt}`);
  assert.deepEqual(defaultBenchmark({ seed: 0, n: 400, families: ['copy', 'bind', 'arith', 'antonym'] }), rows);
  assert.notDeepEqual(defaultBenchmark({ seed: 1, n: 400, families: ['copy', 'bind', 'arith', 'antonym'] }), rows);
  // the default: the two in-context families, half each
  const def = defaultBenchmark({ seed: 0, n: 400 });
  assert.deepEqual([def.filter((r) => r.id.includes('-copy-')).length, def.filter((r) => r.id.includes('-bind-')).length], [200, 200]);
  assert.throws(() => defaultBenchmark({ n: 0 }), /n must be a positive integer/);
  assert.throws(() => defaultBenchmark({ families: ['define'] }), /no four-choice form/);
});

test('defaultBenchmark: held out, its in-context questions are not training chats, and the answer sentence is the chats\' form', () => {
  const rows = defaultBenchmark({ seed: 1234, n: 2000 });
  const chats = defaultChats({ seed: 0, n: 4000 });
  const trainQuestions = new Set(chats.flatMap((c) => c.messages.filter((m) => m.role === 'user').map((m) => m.content)));
  assert.equal(rows.filter((r) => trainQuestions.has(r.question)).length, 0, 'no benchmark question is a training question');
  // the chats answer "<prefix> <gold>." for the same kind of question: the chat task's cloze is the trained form
  const copyChat = chats.find((c) => c.family === 'copy')!.messages.find((m) => m.role === 'assistant')!.content;
  assert.match(copyChat, /^\w+'s \w+ is \w+\.$/);
  for (const r of rows.slice(0, 20)) assert.match(`${r.answer_prefix} ${r.choices.text[0]}.`, /^\w+'s \w+ is \w+\.$/);
});

test('defaultChats: the default mix, system turns and two rounds, train and test differ', () => {
  const chats = defaultChats({ seed: 0, n: 1000 });
  const count = (f: string): number => chats.filter((c) => c.family === f).length;
  assert.deepEqual([count('copy'), count('bind'), count('arith'), count('antonym'), count('define')], [700, 100, 100, 50, 50]);
  const sys = chats.filter((c) => c.messages[0]!.role === 'system').length;
  const two = chats.filter((c) => c.messages.filter((m) => m.role === 'assistant').length === 2).length;
  assert.ok(sys > 60 && sys < 140, `system share ${sys}`);
  assert.ok(two > 60 && two < 140, `two-round share ${two}`);
  for (const c of chats) {
    const roles = c.messages.filter((m) => m.role !== 'system').map((m) => m.role);
    assert.deepEqual(roles, roles.map((_, i) => (i % 2 ? 'assistant' : 'user')));
  }
  const test = defaultChats({ seed: 0, n: 200, split: 'test' });
  const trainText = new Set(chats.map((c) => JSON.stringify(c.messages)));
  const overlap = test.filter((c) => trainText.has(JSON.stringify(c.messages))).length;
  assert.ok(overlap < 40, `test chats mostly new (arith facts repeat by design): ${overlap} of 200`);
});

test('defaultPreferences: chosen is right, rejected differs, rambling kind is longer', () => {
  const prefs = defaultPreferences({ seed: 0, n: 400 });
  assert.equal(prefs.length, 400);
  const kinds = new Set(prefs.map((p) => p.rejectedKind));
  assert.deepEqual([...kinds].sort(), ['context_colour', 'off_by_one', 'other_antonym', 'rambling', 'same_word', 'wrong_colour']);
  const rambling = prefs.filter((p) => p.rejectedKind === 'rambling').length;
  assert.ok(rambling > 20 && rambling < 60, `about DEFAULT_RAMBLING_SHARE (10 %) rambling: ${rambling} of 400`);
  for (const p of prefs) {
    assert.equal(p.prompt.at(-1)!.role, 'user');
    assert.notEqual(p.chosen[0]!.content, p.rejected[0]!.content);
    if (p.rejectedKind === 'rambling') assert.ok(p.rejected[0]!.content.startsWith(p.chosen[0]!.content + ' '));
    if (p.family === 'arith') {
      const [, a, b] = /(\d) plus (\d)/.exec(p.prompt[0]!.content)!;
      assert.equal(p.chosen[0]!.content, `${a} plus ${b} is ${Number(a) + Number(b)}.`);
    }
  }
  assert.equal(defaultPreferences({ seed: 0, n: 400, ramblingShare: 0 }).filter((p) => p.rejectedKind === 'rambling').length, 0);
  assert.throws(() => defaultPreferences({ ramblingShare: 1.5 }), /ramblingShare must be in \[0, 1\]/);
});

/** The one word where two answer sentences differ (they must have the same words otherwise). */
function differingWord(a: string, b: string): [string, string] {
  const wa = a.split(' ');
  const wb = b.split(' ');
  assert.equal(wa.length, wb.length, `'${a}' / '${b}': same sentence shape`);
  const at = wa.map((w, i) => (w === wb[i] ? -1 : i)).filter((i) => i >= 0);
  assert.equal(at.length, 1, `'${a}' / '${b}' differ in exactly one word`);
  return [wa[at[0]!]!, wb[at[0]!]!];
}

test('defaultPreferences: hard negatives differ from chosen only in the answer word, of the kind the family names', () => {
  const prefs = defaultPreferences({ seed: 3, n: 600 });
  const hard = prefs.filter((p) => p.rejectedKind !== 'rambling');
  assert.ok(hard.length > 500, `most pairs are hard negatives: ${hard.length} of 600`);
  const byKind = new Map<string, number>();
  for (const p of hard) {
    byKind.set(p.rejectedKind, (byKind.get(p.rejectedKind) ?? 0) + 1);
    const q = p.prompt[0]!.content;
    const [good, bad] = differingWord(p.chosen[0]!.content, p.rejected[0]!.content).map((w) => w.replace(/\.$/, ''));
    if (p.family === 'copy' || p.family === 'bind') {
      assert.ok(q.includes(` ${good} `), `${q}: the chosen colour is in the context`);
      if (p.rejectedKind === 'context_colour') assert.ok(q.includes(` ${bad} `), `${q}: '${bad}' is another fact's colour`);
      else assert.equal(p.rejectedKind, 'wrong_colour');
      if (p.rejectedKind === 'wrong_colour') assert.ok(!q.includes(` ${bad} `), `${q}: '${bad}' is not mentioned`);
      if (p.family === 'copy') assert.equal(p.rejectedKind, 'wrong_colour');
    } else if (p.family === 'arith') {
      assert.equal(p.rejectedKind, 'off_by_one');
      // the benchmark's three nearest wrong sums: s + 1, s - 1, s + 2 (for s < 2 the negative ones drop out: s + 10)
      const s = Number(good);
      const near = [s + 1, s - 1, s + 2, s - 2, s + 10].filter((x) => x >= 0).slice(0, 3);
      assert.ok(near.includes(Number(bad)), `${q}: ${bad} is one of ${near}`);
    } else {
      const [, w] = /opposite of (\w+)\?/.exec(q)!;
      if (p.rejectedKind === 'same_word') assert.equal(bad, w);
      else {
        assert.equal(p.rejectedKind, 'other_antonym');
        assert.ok(bad !== w && bad !== good && WORDNET_MINI.antonyms.some(([a, b]) => a === bad || b === bad), `${q}: '${bad}' is another word's opposite`);
      }
    }
  }
  // bind pairs mostly reject a colour of the context (the distractor a half-binding model picks)
  const bind = hard.filter((p) => p.family === 'bind');
  const ctx = bind.filter((p) => p.rejectedKind === 'context_colour').length;
  assert.ok(ctx / bind.length > 0.6 && ctx / bind.length < 0.9, `bind: ${ctx} of ${bind.length} reject a context colour`);
  assert.ok((byKind.get('same_word') ?? 0) > 20 && (byKind.get('other_antonym') ?? 0) > 20, `antonym kinds: ${JSON.stringify(Object.fromEntries(byKind))}`);
});

test('defaultPreferences: deterministic per seed, seeds and splits differ, no in-context benchmark question is a prompt', () => {
  const a = defaultPreferences({ seed: 5, n: 300 });
  assert.deepEqual(defaultPreferences({ seed: 5, n: 300 }), a);
  const key = (p: { prompt: { content: string }[]; rejected: { content: string }[] }): string => `${p.prompt[0]!.content} | ${p.rejected[0]!.content}`;
  const same = (x: ReturnType<typeof defaultPreferences>, y: ReturnType<typeof defaultPreferences>): number => {
    const ks = new Set(x.map(key));
    return y.filter((p) => ks.has(key(p))).length;
  };
  assert.ok(same(a, defaultPreferences({ seed: 6, n: 300 })) < 60, 'another seed gives other pairs (closed-book arith/antonym facts repeat)');
  assert.ok(same(defaultPreferences({ seed: 0, n: 300 }), defaultPreferences({ seed: 0, n: 300, split: 'test' })) < 60, 'the test split is another stream');
  // the benchmark's stream (seed 1234, as wm eval uses by default, and seed 0) never yields a training prompt
  const prompts = new Set([...defaultPreferences({ seed: 0, n: 1000 }), ...defaultPreferences({ seed: 0, n: 100, split: 'test' })].map((p) => p.prompt[0]!.content));
  for (const seed of [0, 1234]) {
    const rows = defaultBenchmark({ seed, n: 2000 });
    assert.equal(rows.filter((r) => prompts.has(r.question)).length, 0, `benchmark seed ${seed}: no in-context question is a preference prompt`);
  }
});
