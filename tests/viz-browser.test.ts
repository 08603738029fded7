// Every figure builder, written as one standalone page, drawn by headless Chromium with the network blocked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  attentionMapsFigure,
  dynamicMaskFigure,
  expertUsageFigure,
  heatmapFigure,
  histogramFigure,
  lossCurveFigure,
  mqarFigure,
  productKeyFigure,
  productKeyRetrieval,
  writeFigureHtml,
} from '../src/viz';
// @ts-expect-error plain ESM helper without types
import { inspectPlots } from '../scripts/browser.mjs';

test('all figure kinds draw SVG in headless Chromium, offline, without page errors', { timeout: 120_000 }, async () => {
  const figures = [
    heatmapFigure([[1, 2], [3, -Infinity]], { title: 'heatmap' }),
    dynamicMaskFigure([[0.5, 2, 1, 3], [1, 1, 4, 0]], { keepWindowSize: 2 }),
    attentionMapsFigure([[[1, 0], [0.5, 0.5]], [[1, 0], [0, 1]]], ['without mask', 'with mask']),
    productKeyFigure(productKeyRetrieval([0.1, 0.5, 0.2, 0.9, 0.3, 0.1, 0.8, 0.2], 4, 2)),
    expertUsageFigure([3, 0, 1, 5]),
    histogramFigure([1, 2, 2, 3, 3, 3]),
    lossCurveFigure([{ name: 'train', x: [0, 1, 2], y: [3, 2, 1.5] }]),
    mqarFigure([
      { mixer: 'attention', seqLen: 64, dModel: 16, accuracy: 0.3 },
      { mixer: 'attention', seqLen: 64, dModel: 32, accuracy: 0.9 },
      { mixer: 'ssd', seqLen: 64, dModel: 16, accuracy: 0.1 },
    ]),
  ];
  const file = writeFigureHtml(figures, join(mkdtempSync(join(tmpdir(), 'wm-viz-')), 'all.html'));
  const r = await inspectPlots(file, { expectedPlots: figures.length });
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.blocked, []); // nothing fetched from the network: plotly.js is inlined
  assert.equal(r.plots, figures.length);
  assert.equal(r.drawnPlots, figures.length);
  assert.equal(r.notLoaded, 0);
  // heatmap panels: 1 + 2 (mask) + 2 (attention) + 1 (candidate grid) = 6 rendered heatmap images
  assert.equal(r.heatmaps, 6);
  // bars: 4 + 4 (the two router halves) + 4 (expert usage) + histogram bins (3)
  assert.equal(r.bars, 15);
  // lines: expert usage (2) + loss (1) + MQAR (2)
  assert.equal(r.lines, 5);
});
