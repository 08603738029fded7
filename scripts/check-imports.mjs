// The import graph of src/: fails (exit 1) on an import cycle or on an edge the layering forbids.
//   node scripts/check-imports.mjs           one line per problem, then a summary line
//   node scripts/check-imports.mjs --json    { files, edges, cycles, forbidden, unresolved } (tests/import-graph.test.ts)
//   node scripts/check-imports.mjs --root D  the tree at D instead of this checkout (e.g. an older commit's `git archive`)
// Edges are the relative imports and re-exports of every src/**/*.ts file, type-only ones included (a cycle of types
// is still a cycle for a reader), plus require('./x') calls. Rules (docs/DEVELOPING.md, "Layout"):
//  - src/tf.ts, src/ops, src/modules, src/models never import src/runtime (everything that exists for speed attaches
//    to models from outside: backend bootstrap, kernel patches, host decoders);
//  - src/runtime imports models only as types (`import type`), never their code.
import { readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const rootArg = process.argv.indexOf('--root');
const root = rootArg > 0 ? resolve(process.argv[rootArg + 1]) : resolve(dirname(new URL(import.meta.url).pathname), '..');
const src = join(root, 'src');

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

/** The file a relative specifier names ('./x' -> x.ts or x/index.ts), or null. */
function resolveSpec(from, spec) {
  const base = resolve(dirname(from), spec);
  for (const c of [base, `${base}.ts`, join(base, 'index.ts')]) if (c.endsWith('.ts') && existsSync(c) && statSync(c).isFile()) return c;
  return null;
}

const rel = (p) => relative(root, p);
const unresolved = [];

/** Every relative import of a file: { to, typeOnly }. Comments are stripped first (a comment may quote an import). */
function importsOf(file) {
  const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out = [];
  const re = /(?:^|[;\n])\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"](\.[^'"]*)['"]|(?:^|[;\n])\s*import\s+['"](\.[^'"]*)['"]|require\(\s*['"](\.[^'"]*)['"]\s*\)|import\(\s*['"](\.[^'"]*)['"]\s*\)/g;
  for (let m; (m = re.exec(text)); ) {
    const spec = m[4] ?? m[5] ?? m[6] ?? m[7];
    const to = resolveSpec(file, spec);
    if (!to) {
      if (!/\.(node|json|cjs|js)$/.test(spec)) unresolved.push(`${rel(file)}: '${spec}'`); // a built addon or data file is fine
      continue;
    }
    // `import type {..}` / `export type {..}`, or every named binding marked `type`
    const clause = m[3] ?? '';
    const allTypes = !!m[2] || (/^\{[\s\S]*\}$/.test(clause.trim()) && clause.replace(/[{}\s]/g, '').split(',').filter(Boolean).every((b) => b.startsWith('type')));
    out.push({ to, typeOnly: m[4] !== undefined && allTypes });
  }
  return out;
}

const files = walk(src).sort();
const edges = [];
for (const f of files) for (const e of importsOf(f)) if (e.to !== f) edges.push({ from: rel(f), to: rel(e.to), typeOnly: e.typeOnly });

/** Strongly connected components of more than one node (Tarjan): the import cycles of a graph. */
function cyclesOf(adj) {
  const index = new Map(), low = new Map(), onStack = new Set(), stack = [], out = [];
  let counter = 0;
  function strong(v) {
    index.set(v, counter); low.set(v, counter); counter++;
    stack.push(v); onStack.add(v);
    for (const w of adj.get(v)) {
      if (!index.has(w)) { strong(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const comp = [];
      let w;
      do { w = stack.pop(); onStack.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  }
  for (const v of adj.keys()) if (!index.has(v)) strong(v);
  return out;
}

// file cycles (every edge), and cycles between layers (a folder of src/, or a top-level file) over the edges that load
// code: src/a/x -> src/b/y -> src/a/z is a cycle of a and b even when no file is on it twice. Type-only edges between
// layers are left out of the layer graph: src/runtime reads model and module types structurally (import type), which
// loads nothing, while generate (src/generation) asks src/runtime for a host decoder.
const layer = (p) => (p.split('/').length === 2 ? p.split('/')[1].replace(/\.ts$/, '') : p.split('/')[1]);
const fileAdj = new Map(files.map((f) => [rel(f), []]));
for (const e of edges) fileAdj.get(e.from).push(e.to);
const layerAdj = new Map(files.map((f) => [layer(rel(f)), new Set()]));
for (const e of edges) if (layer(e.from) !== layer(e.to) && !e.typeOnly) layerAdj.get(layer(e.from)).add(layer(e.to));
const cycles = [...cyclesOf(fileAdj), ...cyclesOf(new Map([...layerAdj].map(([k, v]) => [k, [...v]]))).map((c) => c.map((l) => `[${l}]`))];

const forbidden = [];
for (const e of edges) {
  const a = layer(e.from), b = layer(e.to);
  if (['tf', 'ops', 'modules', 'models'].includes(a) && b === 'runtime') forbidden.push({ ...e, rule: `src/${a} must not import src/runtime` });
  if (a === 'runtime' && b === 'models' && !e.typeOnly) forbidden.push({ ...e, rule: 'src/runtime imports models only as types (import type)' });
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ files: files.map(rel), edges, cycles, forbidden, unresolved }));
} else {
  for (const c of cycles) console.log(`cycle: ${c.join(' <-> ')}`);
  for (const f of forbidden) console.log(`forbidden: ${f.from} -> ${f.to} (${f.rule})`);
  for (const u of unresolved) console.log(`unresolved: ${u}`);
  const typeEdges = [...new Set(edges.filter((e) => e.typeOnly && layer(e.from) !== layer(e.to)).map((e) => `${layer(e.from)} -> ${layer(e.to)}`))];
  console.log(`type-only edges between layers (not in the layer graph): ${typeEdges.join(', ') || 'none'}`);
  const runtimeIn = edges.filter((e) => layer(e.to) === 'runtime' && layer(e.from) !== 'runtime');
  console.log(`${files.length} files, ${edges.length} imports (${edges.filter((e) => e.typeOnly).length} type-only); ${cycles.length} cycles, ${forbidden.length} forbidden edges; `
    + `src/runtime is imported by ${[...new Set(runtimeIn.map((e) => e.from))].join(', ') || 'nothing'}`);
}
process.exitCode = cycles.length || forbidden.length || unresolved.length ? 1 : 0;
