/**
 * The project's architecture diagrams (hand-written SVG in `assets/`, shipped with the package).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { showHtml } from './show';

export const DIAGRAMS = ['doge-layer', 'dmattn', 'cdmoe', 'cheems-pattern'] as const;
export type DiagramName = (typeof DIAGRAMS)[number];

/** Folder of the SVG files: `assets/` at the package root (this file is dist/viz/diagrams.js or src/viz/diagrams.ts). */
export function assetsDir(): string {
  return join(__dirname, '..', '..', 'assets');
}

/** The SVG source of one diagram. */
export function diagramSvg(name: DiagramName): string {
  if (!DIAGRAMS.includes(name)) throw new Error(`diagramSvg: unknown diagram '${name}'; choose one of ${DIAGRAMS.join(', ')}`);
  const file = join(assetsDir(), `${name}.svg`);
  if (!existsSync(file)) throw new Error(`diagramSvg: ${file} is missing (is 'assets' in the package files?)`);
  return readFileSync(file, 'utf8');
}

/** Show a diagram in tslab (inline SVG); outside tslab returns the file path instead. */
export function showDiagram(name: DiagramName): string | undefined {
  const svg = diagramSvg(name);
  // As HTML rather than image/svg+xml: front ends then keep the SVG's own size and text stays selectable.
  if (showHtml(`<div class="wm-diagram" style="max-width:900px">${svg.replace(/^<\?xml[^>]*>\s*/, '')}</div>`)) return undefined;
  return join(assetsDir(), `${name}.svg`);
}
