// The prose-vs-output check (scripts/notebook-prose.mjs): a number a Markdown cell marks with <!--out: LABEL--> must
// agree with what the code cells above printed after LABEL. Checked here on small notebooks (that it fails when it
// must) and on every committed notebook that carries outputs (pnpm notebooks:commit); tests/notebooks.test.ts
// checks the freshly executed notebooks the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
// @ts-expect-error plain ESM helper without types
import { checkProse, countMarks } from '../scripts/notebook-prose.mjs';
// @ts-expect-error plain ESM helper without types
import { listNotebooks } from '../scripts/notebooks.mjs';

const code = (text: string) => ({ cell_type: 'code', source: '', outputs: [{ output_type: 'stream', name: 'stdout', text }] });
const md = (source: string) => ({ cell_type: 'markdown', source });

test('agreeing numbers pass: rounding to the prose decimals, thousands separators, percent, ranges', () => {
  const nb = { cells: [
    code('step 10 | loss 3.1\neval loss 1.2345 | perplexity 3.437\nacc 27.66 %\nBrown ppl 4,155.2\n'),
    md('Loss 1.23<!--out: eval loss-->, perplexity 3.4<!--out: perplexity-->, 27.7 %<!--out: acc--> and 4,155<!--out: Brown ppl-->; between 3 and 4: 3-4<!--out: perplexity-->.'),
  ] };
  assert.deepEqual(checkProse(nb), []);
  assert.equal(countMarks(nb), 5);
});

test('a stale number, a range that misses, a label nothing printed and a marker without a number all fail', () => {
  const nb = { cells: [
    code('SFT acc 28.7 ± 1.4\nDPO acc 35.9 ± 1.5\n'),
    md('SFT 27.7<!--out: SFT acc--> and DPO 38-42<!--out: DPO acc-->; about 6<!--out: standard errors--> SE; <!--out: SFT acc-->'),
  ] };
  assert.deepEqual(checkProse(nb), [
    'cell 1: 1 <!--out: ...--> marker(s) without a number right before them',
    'cell 1: prose says 27.7 for "SFT acc", the output of cell 0 says 28.7 ("SFT acc 28.7 ± 1.4")',
    'cell 1: prose says 38-42 for "DPO acc", the output of cell 0 says 35.9 ("DPO acc 35.9 ± 1.5")',
    'cell 1: prose says 6 for "standard errors", but no output above prints "standard errors" followed by a number',
  ]);
});

test('the nearest output above wins; outputs below the prose do not count', () => {
  const nb = { cells: [code('loss 5.0\n'), code('loss 2.0\n'), md('now 2.0<!--out: loss-->'), code('loss 9.0\n')] };
  assert.deepEqual(checkProse(nb), []);
  const later = { cells: [md('soon 9.0<!--out: loss-->'), code('loss 9.0\n')] };
  assert.equal(checkProse(later).length, 1);
});

for (const file of listNotebooks() as string[]) {
  const nb = JSON.parse(readFileSync(file, 'utf8'));
  const hasOutputs = nb.cells.some((c: { outputs?: unknown[] }) => (c.outputs ?? []).length > 0);
  test(`committed ${basename(file)}: marked numbers agree with its committed outputs`, { skip: hasOutputs ? false : 'committed without outputs' }, () => {
    assert.deepEqual(checkProse(nb), []);
    // it ran top to bottom: In [1], In [2], ... (not `In [ ]:` above outputs, which reads as never run)
    const counts = nb.cells.filter((c: { cell_type: string }) => c.cell_type === 'code').map((c: { execution_count: number | null }) => c.execution_count);
    assert.deepEqual(counts, counts.map((_: unknown, i: number) => i + 1));
  });
}
