// Execute notebooks and write them back into notebooks/ WITH their outputs, so the repository shows every printed
// line and figure without running anything (GitHub, JupyterLab, nbconvert).
//
//   pnpm notebooks:commit 5-pretrain 6-usage        (name substrings; no argument: every notebook)
//
// Each plotly figure output keeps its plotly JSON (interactive in JupyterLab with the plotly extension) and gets a
// static PNG next to it, drawn by plotly.js itself in headless Chromium; its `text/html` (a script that needs
// plotly.js in the page) and the 4.8 MB plotly.js loader output are dropped, so a notebook carries the library
// zero times instead of once. Re-running a notebook in Jupyter brings the interactive HTML back.
// Refuses to write a notebook whose marked prose numbers disagree with its outputs (scripts/notebook-prose.mjs).
// Needs `pnpm build`, Jupyter (scripts/install-system-deps.sh) and Debian's chromium.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { executeNotebook, listNotebooks, prepareKernel, ROOT } from './notebooks.mjs';
import { checkProse } from './notebook-prose.mjs';
import { CHROMIUM } from './browser.mjs';

const PLOTLY_MIME = 'application/vnd.plotly.v1+json';
const WIDTH = 960;

/** A Chromium page with plotly.js loaded, that turns figure JSON into PNG bytes (base64). */
export async function pngRenderer() {
  const profile = mkdtempSync(join(tmpdir(), 'wm-png-'));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const page = await ctx.newPage();
  await page.route('**/*', (r) => (/^(file|data|blob|about):/.test(r.request().url()) ? r.continue() : r.abort()));
  const plotly = createRequire(join(ROOT, 'package.json')).resolve('plotly.js-dist-min');
  await page.setContent('<html><body></body></html>');
  await page.addScriptTag({ path: plotly });
  return {
    async png(fig) {
      const height = typeof fig.layout?.height === 'number' ? fig.layout.height : 360;
      const url = await page.evaluate(async ({ fig, width, height }) => {
        const div = document.createElement('div');
        document.body.appendChild(div);
        const layout = { ...fig.layout, width, height };
        const gd = await window.Plotly.newPlot(div, fig.data, layout, { staticPlot: true });
        const out = await window.Plotly.toImage(gd, { format: 'png', width, height, scale: 1 });
        window.Plotly.purge(div);
        div.remove();
        return out;
      }, { fig, width: WIDTH, height });
      return url.replace(/^data:image\/png;base64,/, '');
    },
    async close() {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

const isNoise = (o) => o.output_type === 'stream' && o.name === 'stderr' && joined(o.text).split('\n').every((l) => !l.trim() || /already registered|Platform node has already been set/.test(l));
const joined = (s) => (Array.isArray(s) ? s.join('') : (s ?? ''));

/** The executed notebook, made fit to commit: PNGs beside plotly JSON, no plotly.js loader, no kernel noise. */
export async function prepareForCommit(notebook, renderer) {
  let figures = 0;
  for (const cell of notebook.cells) {
    if (cell.cell_type !== 'code') continue;
    const outputs = [];
    for (const o of cell.outputs ?? []) {
      if (isNoise(o)) continue;
      const data = o.data ?? {};
      if (o.output_type === 'display_data' && /plotly\.js loaded/.test(joined(data['text/plain']))) continue; // the loader
      if (data[PLOTLY_MIME]) {
        const fig = data[PLOTLY_MIME];
        o.data = { [PLOTLY_MIME]: fig, 'image/png': await renderer.png(fig), 'text/plain': data['text/plain'] };
        o.metadata = { 'image/png': { width: WIDTH } };
        delete o.transient;
        figures++;
      }
      outputs.push(o);
    }
    cell.outputs = outputs;
    if (cell.metadata?.execution) delete cell.metadata.execution;
  }
  return figures;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const filters = process.argv.slice(2);
  const files = listNotebooks().filter((f) => filters.length === 0 || filters.some((s) => basename(f).includes(s)));
  if (files.length === 0) throw new Error(`no notebook matches ${filters.join(', ')}`);
  const jupyterPath = prepareKernel();
  const renderer = await pngRenderer();
  let failed = 0;
  try {
    for (const f of files) {
      const r = executeNotebook(f, { outDir: join(ROOT, 'out', 'notebooks-commit'), jupyterPath, timeoutSec: Number(process.env.WM_NOTEBOOK_TIMEOUT ?? 900) });
      const problems = checkProse(r.notebook);
      if (problems.length) {
        failed++;
        console.error(`FAIL ${basename(f)}: prose and outputs disagree, not written:\n  ${problems.join('\n  ')}`);
        continue;
      }
      const figures = await prepareForCommit(r.notebook, renderer);
      const text = JSON.stringify(r.notebook, null, 1) + '\n';
      writeFileSync(f, text);
      console.log(`ok   ${basename(f)}  ${r.seconds.toFixed(1)} s, ${figures} figure(s) as PNG, ${(text.length / 1024).toFixed(0)} KB -> ${f}`);
    }
  } finally {
    await renderer.close();
  }
  process.exit(failed ? 1 : 0);
}
