import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateStory, storyCorpusDocuments, storyVocabulary, storyWords } from '../src/data/stories';
import { readRecords } from '../src/data/sources';
import { dataRng } from '../src/ops/random';

test('the story corpus is deterministic, seeded, and small-vocabulary', () => {
  const a = [...storyCorpusDocuments(50)];
  assert.deepEqual([...storyCorpusDocuments(50)], a, 'same seed, same stories');
  assert.notDeepEqual([...storyCorpusDocuments(50, 1)], a, 'another seed, other stories');
  assert.equal(a.length, 50);
  assert.match(a[0]!, /^(Once upon a time|One day), there was an? \w+ \w+ named [A-Z]\w+\./);
  const vocab = storyVocabulary();
  assert.ok(vocab.size > 200 && vocab.size < 300, `distinct words: ${vocab.size}`);
  assert.ok(a.every((s) => storyWords(s).every((w) => vocab.has(w))));
  assert.deepEqual(storyWords("Tom's hat, a RED kite."), ["tom's", 'hat', 'a', 'red', 'kite']);
});

test('a story keeps its hero: the name of the opening recurs and the pronoun matches', () => {
  const r = dataRng(3, 0);
  for (let i = 0; i < 200; i++) {
    const s = generateStory(r);
    const m = /named (\w+)\. (She|He) /.exec(s);
    assert.ok(m, s);
    const name = m[1]!;
    assert.ok(s.split(name).length > 2, `the name recurs: ${s}`);
    const other = m[2] === 'She' ? /\bHe\b/ : /\bShe\b/;
    assert.doesNotMatch(s, other, `pronoun agreement: ${s}`);
  }
});

test("'stories' is an input name like 'brown' (tokenizer training and data prepare read it)", async () => {
  const first: string[] = [];
  for await (const rec of readRecords('stories')) {
    first.push((rec as { text: string }).text);
    if (first.length === 3) break;
  }
  assert.deepEqual(first, [...storyCorpusDocuments(3)]);
});
