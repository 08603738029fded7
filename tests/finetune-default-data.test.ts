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
  const rows = defaultBenchmark({ seed: 1234, n: 400 });
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
  assert.deepEqual([...kinds].sort(), ['off_by_one', 'rambling', 'same_word', 'wrong_colour']);
  for (const p of prefs) {
    assert.equal(p.prompt.at(-1)!.role, 'user');
    assert.notEqual(p.chosen[0]!.content, p.rejected[0]!.content);
    if (p.rejectedKind === 'rambling') assert.ok(p.rejected[0]!.content.startsWith(p.chosen[0]!.content + ' '));
    if (p.family === 'arith') {
      const [, a, b] = /(\d) plus (\d)/.exec(p.prompt[0]!.content)!;
      assert.equal(p.chosen[0]!.content, `${a} plus ${b} is ${Number(a) + Number(b)}.`);
    }
  }
});
