// Renders a committed notebook (outputs included, nothing executed) to HTML the way scripts/notebooks.mjs does and
// checks in headless Chromium, with the network blocked, that its LaTeX is typeset: nbconvert's own page loads
// MathJax from a URL, so offline every $...$ showed raw. Needs Debian's Jupyter (nbconvert) and chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error plain ESM helpers without types
import { renderHtml, ROOT, typesetOffline } from '../scripts/notebooks.mjs';
// @ts-expect-error plain ESM helper without types
import { inspectPlots } from '../scripts/browser.mjs';

type Cell = { cell_type: string; source: string | string[] };

test('a rendered notebook typesets its equations offline (MathJax inlined, nothing fetched)', { timeout: 180_000 }, async () => {
  const file = join(ROOT, 'notebooks', '3-dmattn-cdmoe.ipynb');
  const nb = JSON.parse(readFileSync(file, 'utf8')) as { cells: Cell[] };
  const markdown = nb.cells.filter((c) => c.cell_type === 'markdown').map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source));
  // formulas written in the notebook: $$...$$ blocks and inline $...$ (a $$ block is one formula)
  const written = markdown.map((m) => m.replace(/\$\$[\s\S]+?\$\$/g, ' DISPLAY ')).reduce((n, m) => n + (m.match(/\$[^$]+\$/g)?.length ?? 0) + (m.match(/ DISPLAY /g)?.length ?? 0), 0);
  assert.ok(written >= 20, `3-dmattn-cdmoe should typeset the paper's equations (found ${written} formulas in its markdown)`);

  const html = renderHtml(file, { outDir: mkdtempSync(join(tmpdir(), 'wm-render-')) });
  const text = readFileSync(html, 'utf8');
  assert.ok(!/<script[^>]+src="(https?:|file:)[^"]*mathjax/i.test(text), 'MathJax must not be loaded from a URL');
  const page = await inspectPlots(html, { expectedPlots: 0 });
  assert.deepEqual(page.errors, []);
  assert.deepEqual(page.blocked, [], 'the page fetches nothing');
  assert.equal(page.math, written, 'every formula of the markdown is typeset');
  assert.equal(page.mathErrors, 0, 'no TeX errors');
  assert.deepEqual(page.rawMath, [], 'no formula left as raw $...$ text');
});

test('typesetOffline refuses HTML without nbconvert\'s MathJax block instead of silently leaving math raw', () => {
  assert.throws(() => typesetOffline('<html><head></head><body>$x$</body></html>'), /MathJax block/);
  const out = typesetOffline('<head><!-- Load mathjax --><script src="https://cdn/MathJax.js"></script><!-- End of mathjax configuration --></head>');
  // (plain booleans: a failing match would print the whole 2 MB of MathJax)
  assert.ok(!out.includes('src="https://cdn/MathJax.js"'), 'the URL loader is gone');
  assert.ok(out.startsWith('<head><script>window.MathJax = {"tex":{"inlineMath":[["$","$"]'), 'configured for $...$ before MathJax loads');
});
