// Executes every notebook in notebooks/ top to bottom with the real tslab kernel through Jupyter
// (`jupyter nbconvert --execute`), then renders one executed notebook to HTML and checks in headless
// Chromium that its plots drew. Needs `pnpm build` first (cells import the built package by name) and the
// Debian packages of scripts/install-system-deps.sh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
// @ts-expect-error plain ESM helpers without types
import { executeNotebook, listNotebooks, outputsOf, prepareKernel, renderHtml, ROOT } from '../scripts/notebooks.mjs';
// @ts-expect-error plain ESM helper without types
import { inspectPlots } from '../scripts/browser.mjs';
// @ts-expect-error plain ESM helper without types
import { checkProse } from '../scripts/notebook-prose.mjs';
// @ts-expect-error plain ESM helper without types
import { linkSelf } from '../scripts/link-self.mjs';

type Output = { cell: number; output_type: string; name?: string; text?: string | string[]; data?: Record<string, unknown> };
type Notebook = { cells: { cell_type: string; execution_count?: number | null; source: string | string[] }[] };

const PLOTLY = 'application/vnd.plotly.v1+json';
const text = (o: Output) => (Array.isArray(o.text) ? o.text.join('') : (o.text ?? ''));

/** What each notebook must show besides running cleanly: plot count and lines of printed output. */
const EXPECT: Record<string, { plots: number; stdout: RegExp[] }> = {
  '1-quickstart': { plots: 0, stdout: [/backend: /, /parameters/, /^doge-stories \([\d,]+ parameters\), greedy:\nOnce upon a time/m] },
  '2-data': { plots: 1, stdout: [/words \(split at spaces\)/, /<\|im_start\|>user/, /train rows/] },
  '3-dmattn-cdmoe': { plots: 6, stdout: [/experts/, /learned A: layer 0/, /from scratch vs DynamicMaskAttention.attentionProbs: max abs difference/, /the same experts in the same order/, /correlation of d and the change/, /A = 0:  dt_proj gradient RMS 0\.0e\+0 /, /A = -1: dt_proj gradient RMS [1-9]/] },
  '4-mqar': { plots: 5, stdout: [/accuracy/, /past 0.5 at step/, /layer 2: at \d of \d queries/, /d 64: here/] },
  '5-pretrain': { plots: 2, stdout: [/unigram loss/, /hand-written update vs the library's AdamW over \d+ weights: max abs difference/, /^done: 60 steps in .* \| held-out loss \d/m, /perplexity/, /saved/, /doge-stories on 64 held-out stories/] },
  '6-usage': { plots: 0, stdout: [/generated/, /words are not in the corpus/] },
  '7-finetune': { plots: 2, stdout: [/^done: \d+ steps in .* \| held-out loss \d/m, /SFT: \d+ steps/, /rewards\/accuracies/, /saved for notebook 8/] },
  '8-evaluate': { plots: 1, stdout: [/perplexity/, /embedded_chat: acc/, /embedded: acc/, /standard errors/, /requests\/s/, /saved runs\/notebooks\/eval/] },
  '9-cheems': { plots: 4, stdout: [/layers sssA/, /one step from scratch vs ssdRecurrentStep/, /max abs difference/, /slowest to forget: head/, /positions \+ 100/, /^cheems-tiny \(.*\): 24 steps/m, /^done: 24 steps in .* \| held-out loss \d/m, /generated/, /share of a row's absolute weight/, /SFT of cheems-tiny: \d+ steps/] },
  '10-state-space': { plots: 4, stdout: [/worst \|bounded - full\| = /, /holds positions 24, 25, 26/, /accuracy per seed .* steps \d+ \/ \d+ \/ \d+$/m] },
};

const OUT = join(ROOT, 'out', 'notebooks-test');
const notebooks: string[] = listNotebooks();
const executed = new Map<string, { file: string; notebook: Notebook; seconds: number }>();
let jupyterPath: string | undefined;

test('the built package loads by name under plain Node, as the tslab kernel runs it, with gradients', () => {
  // tslab runs cells in a plain Node process (no tsx): dist/ must load there, and training needs gradients.
  linkSelf(ROOT);
  const probe = [
    "const { tf, loadBackend } = require('wonderful-matrices');",
    "loadBackend({ backend: 'wasm', log: false }).then(() => {",
    '  const g = tf.grad((x) => tf.sum(tf.mul(x, x)))(tf.tensor1d([1, 2]));',
    "  console.log('grad', Array.from(g.dataSync()).join(','));",
    '}).catch((e) => { console.error(e.message); process.exit(1); });',
  ].join('\n');
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: join(ROOT, 'notebooks'), encoding: 'utf8', env: { ...process.env, WM_BACKEND: 'wasm' } });
  const why = r.stderr.split('\n').filter((l) => /Error|error:/.test(l) && !/already registered/.test(l)).slice(0, 2).join('\n');
  assert.equal(r.status, 0, `require('wonderful-matrices') from notebooks/ failed:\n${why}`);
  assert.match(r.stdout, /^grad 2,4$/m);
});

test('every notebook has expectations (and the other way round)', () => {
  assert.deepEqual(notebooks.map((f) => basename(f, '.ipynb')).sort(), Object.keys(EXPECT).sort());
});

for (const file of notebooks) {
  const name = basename(file, '.ipynb');
  test(`notebook ${name} runs top to bottom without errors`, { timeout: 420_000 }, () => {
    jupyterPath ??= prepareKernel(OUT);
    const r = executeNotebook(file, { outDir: OUT, jupyterPath, timeoutSec: 400 });
    executed.set(name, r);
    console.log(`# ${name}: ${r.seconds.toFixed(1)} s`);
    const outputs: Output[] = outputsOf(r.notebook);
    assert.deepEqual(outputs.filter((o) => o.output_type === 'error'), []);
    // nbconvert stops at the first failing cell, and the last code cell of every notebook prints, so output there
    // means every cell ran; the cells are then numbered In [1], In [2], ... in order (tslab itself leaves them null).
    const code = r.notebook.cells.filter((c: { cell_type: string }) => c.cell_type === 'code');
    assert.ok(code.length > 0);
    assert.deepEqual(code.map((c: { execution_count?: number | null }) => c.execution_count), code.map((_: unknown, i: number) => i + 1));
    const lastCell = r.notebook.cells.lastIndexOf(code[code.length - 1]);
    assert.ok(outputs.some((o) => o.cell === lastCell), `the last code cell of ${name} produced no output`);
    const exp = EXPECT[name];
    assert.ok(exp, `no expectations for ${name}`);
    assert.equal(outputs.filter((o) => o.data && PLOTLY in o.data).length, exp.plots, `plotly outputs of ${name}`);
    const printed = outputs.map(text).join('');
    for (const re of exp.stdout) assert.match(printed, re, `${name} printed output`);
    // numbers the prose marks with <!--out: LABEL--> agree with what was printed (scripts/notebook-prose.mjs)
    assert.deepEqual(checkProse(r.notebook), [], `${name}: prose vs output`);
  });
}

test('an executed notebook renders to HTML whose plots and diagrams draw in headless Chromium (offline)', { timeout: 180_000 }, async () => {
  const name = '3-dmattn-cdmoe';
  const r = executed.get(name);
  assert.ok(r, `${name} must have been executed by the test above`);
  const html = renderHtml(r.file, { jupyterPath });
  const plots = outputsOf(r.notebook).filter((o: Output) => o.data && PLOTLY in o.data).length;
  const page = await inspectPlots(html, { expectedPlots: plots });
  assert.deepEqual(page.errors, []);
  assert.deepEqual(page.blocked.filter((u: string) => !u.startsWith('file:')), [], 'the page needs no network');
  assert.equal(page.notLoaded, 0);
  assert.equal(page.plots, plots);
  assert.equal(page.drawnPlots, plots);
  assert.ok(page.heatmaps >= 4, `heatmap panels drawn: ${page.heatmaps}`);
  assert.ok(page.diagrams >= 2, `inline SVG diagrams: ${page.diagrams}`);
  assert.ok(page.math >= 20, `typeset formulas: ${page.math}`);
  assert.deepEqual(page.rawMath, [], 'no formula left as raw $...$ text');
});
