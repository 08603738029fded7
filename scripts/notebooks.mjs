// Execute the tslab notebooks headlessly through Jupyter, and render executed notebooks to HTML.
//
//   node scripts/notebooks.mjs [--html] [--out DIR] [name-substring ...]
//   node scripts/notebooks.mjs --render [--out DIR] [name-substring ...]   # HTML of the committed notebooks as they are
//
// Needs: `pnpm build` (cells import the built package), Debian's Jupyter (scripts/install-system-deps.sh).
// The tslab kernel is registered into a private folder (out/jupyter) from node_modules/.bin/tslab, so the
// user's own Jupyter setup is neither needed nor touched. Used by tests/notebooks.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { linkSelf } from './link-self.mjs';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const NOTEBOOKS_DIR = join(ROOT, 'notebooks');
export const PYTHON = process.env.WM_JUPYTER_PYTHON ?? '/usr/bin/python3';

/** The notebooks in order (file names start with their number). */
export function listNotebooks() {
  return readdirSync(NOTEBOOKS_DIR)
    .filter((f) => /^\d.*\.ipynb$/.test(f))
    .sort()
    .map((f) => join(NOTEBOOKS_DIR, f));
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return r;
}

/** Register tslab (this repo's copy) as a Jupyter kernel in a private prefix; returns the JUPYTER_PATH entry. */
export function prepareKernel(outDir = join(ROOT, 'out')) {
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) throw new Error('dist/index.js is missing: run `pnpm build` first');
  const check = run(PYTHON, ['-c', 'import nbclient, nbconvert, ipykernel, jupyter_client']);
  if (check.status !== 0) {
    throw new Error(`Jupyter is not installed for ${PYTHON} (run scripts/install-system-deps.sh as root): ${check.stderr.trim().split('\n').pop()}`);
  }
  linkSelf(ROOT);
  const prefix = join(outDir, 'jupyter');
  const tslab = join(ROOT, 'node_modules', '.bin', 'tslab');
  const r = run(tslab, ['install', `--python=${PYTHON}`, `--binary=${tslab}`, `--prefix=${prefix}`]);
  if (r.status !== 0) throw new Error(`tslab install failed:\n${r.stdout}\n${r.stderr}`);
  return join(prefix, 'share', 'jupyter');
}

function jupyterEnv(jupyterPath) {
  return {
    ...process.env,
    JUPYTER_PATH: jupyterPath,
    // Keep runtime files (connection files) away from the user's home.
    JUPYTER_RUNTIME_DIR: join(dirname(jupyterPath), 'runtime'),
    PYDEVD_DISABLE_FILE_VALIDATION: '1',
  };
}

/**
 * Execute one notebook top to bottom with the tslab kernel (cwd = notebooks/, like JupyterLab).
 * Fails (throws) on the first cell error or when it runs longer than `timeoutSec`.
 * Returns { file, seconds, notebook } where `notebook` is the executed JSON.
 */
export function executeNotebook(file, { outDir = join(ROOT, 'out', 'notebooks'), timeoutSec = 300, cellTimeoutSec, jupyterPath } = {}) {
  mkdirSync(outDir, { recursive: true });
  jupyterPath ??= prepareKernel();
  const started = Date.now();
  const r = run(
    PYTHON,
    [
      '-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute',
      '--ExecutePreprocessor.kernel_name=tslab',
      `--ExecutePreprocessor.timeout=${cellTimeoutSec ?? timeoutSec}`,
      '--ExecutePreprocessor.startup_timeout=120',
      '--output-dir', outDir,
      file,
    ],
    { cwd: dirname(file), env: jupyterEnv(jupyterPath), timeout: timeoutSec * 1000, killSignal: 'SIGKILL' },
  );
  const seconds = (Date.now() - started) / 1000;
  if (r.signal) throw new Error(`${basename(file)}: killed after ${seconds.toFixed(0)} s (timeout ${timeoutSec} s)`);
  if (r.status !== 0) {
    // nbclient names the failing cell, but tslab reports the error text (TypeScript diagnostics, exceptions) on
    // the cell's stderr, which nbclient does not repeat: run once more keeping errors to show that text.
    const tail = r.stderr.split('\n').filter((l) => !/MissingIDFieldWarning|validate\(nb\)/.test(l)).slice(-25).join('\n');
    throw new Error(`${basename(file)} failed after ${seconds.toFixed(0)} s:\n${tail}\n${diagnose(file, outDir, jupyterPath, timeoutSec)}`);
  }
  const executed = join(outDir, basename(file));
  const notebook = numberCells(JSON.parse(readFileSync(executed, 'utf8')));
  writeFileSync(executed, JSON.stringify(notebook, null, 1) + '\n');
  return { file: executed, seconds, notebook };
}

/**
 * Give every code cell of a notebook that ran top to bottom its execution count, 1, 2, 3, ... in order. tslab sends
 * no execute_input, so Jupyter leaves them null and a rendered page shows `In [ ]:` above every output, as if
 * nothing had run. Top to bottom, once each, is exactly how these notebooks are executed, so the numbers are true.
 */
export function numberCells(notebook) {
  let n = 0;
  for (const c of notebook.cells) if (c.cell_type === 'code') c.execution_count = ++n;
  return notebook;
}

/** Re-run with errors allowed and return the stderr text of each cell that wrote any (best effort). */
function diagnose(file, outDir, jupyterPath, timeoutSec) {
  const debugDir = join(outDir, 'failed');
  const r = run(
    PYTHON,
    ['-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--allow-errors',
      '--ExecutePreprocessor.kernel_name=tslab', `--ExecutePreprocessor.timeout=${timeoutSec}`, '--output-dir', debugDir, file],
    { cwd: dirname(file), env: jupyterEnv(jupyterPath), timeout: timeoutSec * 1000, killSignal: 'SIGKILL' },
  );
  const debugFile = join(debugDir, basename(file));
  if (r.status !== 0 || !existsSync(debugFile)) return '(no diagnostics: the re-run did not finish)';
  const nb = JSON.parse(readFileSync(debugFile, 'utf8'));
  const lines = [];
  nb.cells.forEach((c, i) => {
    for (const o of c.outputs ?? []) {
      if (o.output_type !== 'stream' || o.name !== 'stderr') continue;
      const text = (Array.isArray(o.text) ? o.text.join('') : o.text).split('\n').filter((l) => !/is already registered/.test(l)).join('\n').trim();
      if (text) lines.push(`cell ${i} stderr:\n${text.slice(0, 2000)}`);
    }
  });
  return `${lines.join('\n') || '(no stderr output)'}\n(re-run kept errors: ${debugFile})`;
}

/**
 * Render a notebook (executed, or committed with its outputs) to a standalone HTML page with nbconvert; returns the
 * HTML path. The page typesets the notebooks' LaTeX offline: see `typesetOffline`.
 */
export function renderHtml(file, { outDir = dirname(file), jupyterPath } = {}) {
  // Rendering runs no kernel: the private kernel folder is only passed on when the caller already has it.
  const env = jupyterPath ? jupyterEnv(jupyterPath) : process.env;
  const r = run(PYTHON, ['-m', 'jupyter', 'nbconvert', '--to', 'html', '--output-dir', outDir, file], { env, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`nbconvert --to html ${basename(file)} failed:\n${r.stderr.slice(-2000)}`);
  const out = join(outDir, basename(file).replace(/\.ipynb$/, '.html'));
  writeFileSync(out, typesetOffline(readFileSync(out, 'utf8')));
  return out;
}

// nbconvert's template loads MathJax 2 from a URL (a CDN upstream; Debian's build points at its libjs-mathjax
// package, which is usually not installed): offline, or on any machine without that file, every $...$ stays raw.
// The page gets MathJax 3 (npm package `mathjax`, SVG output, all TeX extensions and the glyphs built in, so it
// fetches nothing) inlined instead, configured as nbconvert configures MathJax 2. The page grows by ~2.2 MB.
const MATHJAX_BLOCK = /<!-- Load mathjax -->[\s\S]*?<!-- End of mathjax configuration -->/;
const MATHJAX_CONFIG = {
  tex: {
    inlineMath: [['$', '$'], ['\\(', '\\)']],
    displayMath: [['$$', '$$'], ['\\[', '\\]']],
    processEscapes: true,
    processEnvironments: true,
    tags: 'ams',
  },
  svg: { fontCache: 'global' },
  // The menu's speech and explorer options would load more components on demand (from a URL): keep them off.
  options: { enableMenu: false },
};

/** nbconvert's HTML with its MathJax loader replaced by an inlined, offline MathJax 3. */
export function typesetOffline(html) {
  if (!MATHJAX_BLOCK.test(html)) throw new Error('nbconvert HTML without its MathJax block: the template changed, update typesetOffline');
  const mathjax = readFileSync(createRequire(join(ROOT, 'package.json')).resolve('mathjax/es5/tex-svg-full.js'), 'utf8');
  if (/<\/script/i.test(mathjax)) throw new Error('mathjax/es5/tex-svg-full.js contains </script> and cannot be inlined');
  const tags = `<script>window.MathJax = ${JSON.stringify(MATHJAX_CONFIG)};</script>\n<script>${mathjax}</script>`;
  return html.replace(MATHJAX_BLOCK, () => tags);
}

/** Every output of every code cell, flattened, with its cell index. */
export function outputsOf(notebook) {
  return notebook.cells.flatMap((c, i) => (c.cell_type === 'code' ? (c.outputs ?? []).map((o) => ({ cell: i, ...o })) : []));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const html = args.includes('--html');
  const outIdx = args.indexOf('--out');
  const outDir = outIdx >= 0 ? resolve(args[outIdx + 1]) : join(ROOT, 'out', 'notebooks');
  const filters = args.filter((a, i) => !a.startsWith('--') && (outIdx < 0 || i !== outIdx + 1));
  const files = listNotebooks().filter((f) => filters.length === 0 || filters.some((s) => basename(f).includes(s)));
  if (files.length === 0) throw new Error(`no notebook matches ${filters.join(', ')}`);
  if (args.includes('--render')) {
    // The committed notebooks carry their outputs: render them without running anything.
    mkdirSync(outDir, { recursive: true });
    for (const f of files) console.log(`html -> ${renderHtml(f, { outDir })}`);
    process.exit(0);
  }
  const jupyterPath = prepareKernel();
  let failed = 0;
  for (const f of files) {
    try {
      const r = executeNotebook(f, { outDir, jupyterPath, timeoutSec: Number(process.env.WM_NOTEBOOK_TIMEOUT ?? 600) });
      console.log(`ok   ${basename(f)}  ${r.seconds.toFixed(1)} s  -> ${r.file}`);
      if (html) console.log(`     html -> ${renderHtml(r.file, { jupyterPath })}`);
    } catch (e) {
      failed++;
      console.error(`FAIL ${e.message}`);
    }
  }
  process.exit(failed ? 1 : 0);
}
