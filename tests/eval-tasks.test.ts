// lighteval v0.7 prompt functions, few-shot contexts and the trailing-space move against the string vectors of
// tests/fixtures/finetune/text-vectors.json, plus the TriviaQA normaliser, exact match and stop-sequence cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  arcDoc, cutAtStop, fewshotContext, hellaswagDoc, hellaswagPreprocess, mmluOriginalDoc, openbookqaDoc, piqaDoc,
  pythonCapitalize, requestTexts, triviaqaDoc, triviaqaExactMatch, triviaqaNormalize, winograndeDoc, type TaskDoc,
} from '../src/eval';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const TV: any = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'finetune', 'text-vectors.json'), 'utf8'));
type Row = Record<string, unknown>;

const DOC: Record<string, (row: Row, where: string, fewshot: boolean) => TaskDoc> = {
  arc: (r, w) => arcDoc(r, w),
  piqa: (r, w) => piqaDoc(r, w),
  openbookqa: (r, w) => openbookqaDoc(r, w),
  hellaswag: (r, w) => hellaswagDoc(r, w),
  winogrande: (r, w) => winograndeDoc(r, w),
  mmlu_original: (r, w, fewshot) => mmluOriginalDoc(r, 'high_school_geography', w, { fewshot }),
  triviaqa: (r, w) => triviaqaDoc(r, w),
};

test('every task in the vectors has a prompt function (and the other way round)', () => {
  assert.deepEqual(Object.keys(TV.tasks).sort(), Object.keys(DOC).sort());
  assert.deepEqual(Object.keys(TV.fewshot).sort(), Object.keys(DOC).sort());
});

for (const name of Object.keys(DOC)) {
  test(`${name}: prompt function on every row`, () => {
    const { rows, docs } = TV.tasks[name] as { rows: Row[]; docs: TaskDoc[] };
    assert.ok(rows.length > 0);
    rows.forEach((row, i) => assert.deepEqual(DOC[name](row, `${name} row ${i}`, false), docs[i], `${name} row ${i}`));
  });

  test(`${name}: few-shot context (last row is the question, the others the shots) and request texts`, () => {
    const { rows } = TV.tasks[name] as { rows: Row[] };
    const fs = TV.fewshot[name] as { num_fewshot: number; context: string; request_texts: { context: string; continuation: string }[] };
    assert.equal(fs.num_fewshot, rows.length - 1);
    const shots = rows.slice(0, -1).map((r, i) => DOC[name](r, `shot ${i}`, true));
    const doc = DOC[name](rows[rows.length - 1], 'question', false);
    const context = fewshotContext(doc, shots);
    assert.equal(context, fs.context);
    // generative tasks make no log-likelihood requests
    if (fs.request_texts.length) assert.deepEqual(requestTexts(doc, context), fs.request_texts);
  });
}

test('TriviaQA normaliser, exact match and stop-sequence cut', () => {
  for (const c of TV.triviaqa_normalize) assert.equal(triviaqaNormalize(c.input), c.normalized, JSON.stringify(c.input));
  for (const c of TV.triviaqa_em) assert.equal(triviaqaExactMatch(c.prediction, c.golds), c.em, JSON.stringify(c));
  for (const c of TV.stop_cut) assert.equal(cutAtStop(c.text, c.stops), c.cut, JSON.stringify(c.text));
});

test("HellaSwag clean-up and Python's capitalize", () => {
  for (const c of TV.hellaswag_clean) assert.equal(hellaswagPreprocess(c.input), c.cleaned, JSON.stringify(c.input));
  for (const c of TV.capitalize) assert.equal(pythonCapitalize(c.input), c.capitalized, JSON.stringify(c.input));
});

test('rows in the wrong layout are errors naming the row and field', () => {
  const where = 'data/test.parquet: row 3';
  assert.throws(() => arcDoc({ question: 'q', choices: { text: ['a'], label: ['A'] } }, where), /data\/test\.parquet: row 3: field 'answerKey' is missing/);
  assert.throws(() => arcDoc({ question: 'q', choices: { text: 'a', label: ['A'] }, answerKey: 'A' }, where), /row 3: field 'choices\.text' must be a list of strings/);
  assert.throws(() => arcDoc({ question: 'q', choices: { text: ['a'], label: ['A'] }, answerKey: 'B' }, where), /answerKey 'B' is not one of the labels \["A"\]/);
  assert.throws(() => winograndeDoc({ sentence: 'no blank here', option1: 'a', option2: 'b', answer: '1' }, where), /field 'sentence' must contain exactly one '_', found 0/);
  assert.throws(() => winograndeDoc({ sentence: 'a _ b _', option1: 'a', option2: 'b', answer: '1' }, where), /exactly one '_', found 2/);
  assert.throws(() => piqaDoc({ goal: 'g', sol1: 'a', sol2: 'b', label: 'x' }, where), /field 'label' must be an integer, got "x"/);
  assert.throws(() => mmluOriginalDoc({ question: 'q', choices: ['a', 'b'], answer: 5 }, 'x', where), /answer 5 is not one of the 2 choices/);
  assert.throws(() => triviaqaDoc({ question: 'q', answer: { aliases: [] } }, where), /field 'answer\.aliases' is empty/);
  assert.throws(() => hellaswagDoc({ activity_label: 'a', ctx_a: 'b', ctx_b: 'c', endings: ['x'], label: '3' }, where), /label 3 but only 1 endings/);
  // unlabeled test rows: gold -1, and they cannot be shots
  const test = hellaswagDoc({ activity_label: 'a', ctx_a: 'b', ctx_b: 'c', endings: ['x', 'y'], label: '' }, where);
  assert.equal(test.gold, -1);
  assert.throws(() => fewshotContext(test, [test]), /has no gold answer/);
  // Parquet INT64 (bigint) and ClassLabel ints are read as numbers
  assert.equal(mmluOriginalDoc({ question: 'q', choices: ['a', 'b', 'c', 'd'], answer: 2n }, 'x').gold, 2);
});
