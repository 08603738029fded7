/**
 * Showing figures: in a tslab notebook as a MIME bundle, on the command line as a standalone HTML file.
 *
 * The bundle carries two representations of the same figure:
 *   - `application/vnd.plotly.v1+json`: JupyterLab with the plotly renderer extension (the Python `plotly`
 *     package) draws it natively;
 *   - `text/html`: a <div> plus a script calling `Plotly.newPlot`, for every other front end (JupyterLab
 *     without the extension, `jupyter nbconvert --to html`, VS Code). It needs `window.Plotly`, so the first
 *     figure shown in a kernel session is preceded by one output that inlines plotly.js (about 4.8 MB, from
 *     the `plotly.js-dist-min` dependency): pages render offline, with no CDN.
 *
 * tslab's public `display.raw()` sends one MIME type per output; to send both we call the kernel's own
 * `writeDisplayData`, found in the module cache of this process (the kernel runs cells in-process).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../io/atomic';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Figure } from './figure';

/** The MIME type JupyterLab's plotly extension renders. */
export const PLOTLY_MIME = 'application/vnd.plotly.v1+json';

type DisplayData = { data: Record<string, unknown>; metadata: Record<string, unknown>; transient: Record<string, unknown> };
type WriteDisplayData = (data: DisplayData, update: boolean) => void;

/** The kernel's display writer if this code runs inside a tslab kernel, else undefined. */
function tslabWriter(): WriteDisplayData | undefined {
  // `require.cache` holds the tslab that started this kernel (global or local install alike).
  for (const [file, mod] of Object.entries(require.cache)) {
    if (!mod || !/[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(file)) continue;
    const w = (mod.exports as { lastWriteDisplayData?: WriteDisplayData | null }).lastWriteDisplayData;
    if (typeof w === 'function') return w;
  }
  return undefined;
}

/** True when running inside a tslab (Jupyter) kernel. */
export function inTslab(): boolean {
  return tslabWriter() !== undefined;
}

let plotlySource: string | undefined;
/** The plotly.js bundle source (minified), read once from the `plotly.js-dist-min` package. */
export function plotlyJsSource(): string {
  if (plotlySource === undefined) {
    const file = require.resolve('plotly.js-dist-min');
    plotlySource = readFileSync(file, 'utf8');
  }
  return plotlySource;
}

/** JSON that is safe inside a <script> element (no `</script>`, no line separators that break JS strings). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A <script> element holding plotly.js (sets `window.Plotly`). */
export function plotlyScriptTag(): string {
  // `</script` cannot occur in the minified bundle's code, but guard anyway: it would end the element early.
  return `<script type="text/javascript">${plotlyJsSource().replace(/<\/script/gi, '<\\/script')}</script>`;
}

function figureHeight(figure: Figure): number {
  const h = figure.layout?.height;
  return typeof h === 'number' && h > 0 ? h : 360;
}

/**
 * The HTML fragment for one figure: a sized <div> and a script that draws into it once plotly.js is there.
 * `includePlotlyJs` prepends the library itself (for a page of its own).
 */
export function figureHtml(figure: Figure, options: { includePlotlyJs?: boolean; id?: string } = {}): string {
  const id = options.id ?? `wm-plot-${randomBytes(6).toString('hex')}`;
  const config = { responsive: true, displaylogo: false, ...(figure.config ?? {}) };
  const lib = options.includePlotlyJs ? plotlyScriptTag() : '';
  return (
    `${lib}<div id="${id}" class="wm-plot" style="width:100%;min-height:${figureHeight(figure)}px;"></div>` +
    `<script type="text/javascript">(function(){` +
    `var el=document.getElementById(${scriptJson(id)});` +
    `var fig=${scriptJson({ data: figure.data, layout: figure.layout })};` +
    `if(window.Plotly){window.Plotly.newPlot(el,fig.data,fig.layout,${scriptJson(config)});}` +
    `else{el.textContent='plotly.js is not loaded in this page: re-run the notebook from the top (the first figure output loads it).';}` +
    `})();</script>`
  );
}

/** A complete standalone HTML page (plotly.js inlined) for one or more figures. */
export function figurePageHtml(figures: Figure | Figure[], pageTitle = 'wonderful-matrices figure'): string {
  const list = Array.isArray(figures) ? figures : [figures];
  const esc = pageTitle.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return (
    `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${esc}</title></head>\n<body>\n` +
    `${plotlyScriptTag()}\n${list.map((f) => figureHtml(f)).join('\n')}\n</body></html>\n`
  );
}

/** Write a standalone offline HTML page for the figure(s); returns the absolute path. */
export function writeFigureHtml(figures: Figure | Figure[], file: string, pageTitle?: string): string {
  const abs = resolve(file);
  mkdirSync(dirname(abs), { recursive: true });
  writeFileAtomic(abs, figurePageHtml(figures, pageTitle)); // temp + rename: never through a symlink at `file`
  return abs;
}

/** The MIME bundle for one figure (without the plotly.js loader). */
export function mimeBundle(figure: Figure): Record<string, unknown> {
  return {
    [PLOTLY_MIME]: { data: figure.data, layout: figure.layout, config: figure.config ?? {} },
    'text/html': figureHtml(figure),
    'text/plain': `<plotly figure: ${figure.data.length} trace(s)${titleText(figure)}>`,
  };
}

function titleText(figure: Figure): string {
  const t = figure.layout?.title as { text?: string } | string | undefined;
  const text = typeof t === 'string' ? t : t?.text;
  return text ? `, "${text}"` : '';
}

// One loader output per kernel session: later figures reuse `window.Plotly` of the same page.
let loaderSent = false;

function sendLoader(write: WriteDisplayData): void {
  if (loaderSent) return;
  write(
    {
      data: { 'text/html': plotlyScriptTag(), 'text/plain': '(plotly.js loaded for offline HTML rendering)' },
      metadata: {},
      transient: {},
    },
    false,
  );
  loaderSent = true;
}

export interface ShowOptions {
  /** Outside tslab: where to write the HTML page (default: a new file in the OS temp folder). */
  file?: string;
  /** Outside tslab: also print the path (default true). */
  log?: boolean;
}

/**
 * Display a figure. Inside tslab: a MIME bundle in the cell output; returns undefined.
 * Elsewhere (a script, the REPL): writes a standalone HTML file and returns its path.
 */
export function show(figure: Figure, options: ShowOptions = {}): string | undefined {
  const write = tslabWriter();
  if (write) {
    sendLoader(write);
    write({ data: mimeBundle(figure), metadata: {}, transient: {} }, false);
    return undefined;
  }
  const file = options.file ?? join(tmpdir(), `wm-figure-${Date.now()}-${randomBytes(3).toString('hex')}.html`);
  const abs = writeFigureHtml(figure, file);
  if (options.log ?? true) console.log(`figure written to ${abs}`);
  return abs;
}

/** Display raw HTML in tslab (no-op elsewhere; returns whether it displayed). */
export function showHtml(html: string): boolean {
  const write = tslabWriter();
  if (!write) return false;
  write({ data: { 'text/html': html, 'text/plain': '(html)' }, metadata: {}, transient: {} }, false);
  return true;
}

/**
 * A figure output that can be redrawn in place (live loss curves): `update(fig)` replaces the same cell output
 * through Jupyter's `update_display_data`. Outside tslab, `update` only remembers the figure and `close()`
 * writes the last one to a file (like `show`).
 */
export interface LiveFigure {
  update(figure: Figure): void;
  /** The last figure given to `update`. */
  readonly last: Figure | undefined;
  /** Outside tslab: write the last figure to an HTML file and return its path. Inside: returns undefined. */
  close(options?: ShowOptions): string | undefined;
}

export function liveFigure(): LiveFigure {
  const displayId = `wm-live-${randomBytes(8).toString('hex')}`;
  let started = false;
  let last: Figure | undefined;
  return {
    update(figure: Figure) {
      last = figure;
      const write = tslabWriter();
      if (!write) return;
      sendLoader(write);
      write({ data: mimeBundle(figure), metadata: {}, transient: { display_id: displayId } }, started);
      started = true;
    },
    get last() {
      return last;
    },
    close(options: ShowOptions = {}) {
      if (tslabWriter() || !last) return undefined;
      return show(last, options);
    },
  };
}
