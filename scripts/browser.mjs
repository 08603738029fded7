// Open an HTML file in headless Chromium (Debian's /usr/bin/chromium through playwright-core), with every
// non-file request blocked, and report what plotly drew. Used by the viz and notebook render tests.
//
//   node scripts/browser.mjs page.html [screenshot.png]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.WM_CHROMIUM ?? '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/**
 * Load `file` and wait until `expectedPlots` plotly plots have drawn (or `timeoutMs` passes).
 * Returns counts of what is in the page, the page errors and the blocked (network) requests.
 */
export async function inspectPlots(file, { expectedPlots = 1, timeoutMs = 60_000, screenshot } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'wm-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    const page = await ctx.newPage();
    const blocked = [];
    const errors = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:') || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
      blocked.push(url);
      return route.abort();
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(resolve(file)).href, { waitUntil: 'load', timeout: timeoutMs });
    await page
      .waitForFunction((n) => document.querySelectorAll('.js-plotly-plot svg.main-svg').length >= n, expectedPlots, { timeout: timeoutMs })
      .catch(() => undefined); // counted below; the caller asserts
    // A page with MathJax (notebooks rendered by scripts/notebooks.mjs) typesets after load; its startup promise
    // resolves when the first typeset is done.
    await page.evaluate(() => window.MathJax?.startup?.promise?.then(() => true));
    const counts = await page.evaluate(() => {
      const plots = [...document.querySelectorAll('.js-plotly-plot')];
      return {
        plots: plots.length,
        // Plots with at least one <svg class="main-svg"> that has drawn content (axes, bars, lines).
        drawnPlots: plots.filter((p) => p.querySelector('svg.main-svg') && p.querySelectorAll('svg.main-svg *').length > 20).length,
        mainSvgs: document.querySelectorAll('.js-plotly-plot svg.main-svg').length,
        heatmaps: document.querySelectorAll('.js-plotly-plot .hm image').length,
        bars: document.querySelectorAll('.js-plotly-plot .barlayer .point').length,
        lines: document.querySelectorAll('.js-plotly-plot .scatterlayer .js-line').length,
        notLoaded: [...document.querySelectorAll('.wm-plot')].filter((d) => /plotly\.js is not loaded/.test(d.textContent ?? '')).length,
        diagrams: document.querySelectorAll('.wm-diagram svg').length,
        // Typeset formulas, TeX errors, and markdown text that still shows a $...$ formula raw.
        math: document.querySelectorAll('mjx-container').length,
        mathErrors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
        rawMath: [...document.querySelectorAll('.jp-MarkdownOutput, .text_cell_render')]
          .flatMap((e) => (e.textContent ?? '').match(/\$[^$\s][^$]*\$/g) ?? []).slice(0, 5),
      };
    });
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    return { ...counts, errors, blocked };
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, shot] = process.argv.slice(2);
  // (no top-level await: tests load this file through tsx as CommonJS)
  inspectPlots(file, { screenshot: shot }).then((r) => console.log(r));
}
