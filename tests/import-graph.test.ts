// The import graph of src/ (scripts/check-imports.mjs): no cycle, src/models and src/modules (and ops, tf) never import
// src/runtime, src/runtime imports models only as types; and the checker itself finds each kind of problem.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCRIPT = path.join(__dirname, '..', 'scripts', 'check-imports.mjs');

interface Graph {
  files: string[];
  edges: { from: string; to: string; typeOnly: boolean }[];
  cycles: string[][];
  forbidden: { from: string; to: string; rule: string }[];
  unresolved: string[];
}

function check(root?: string): { status: number | null; graph: Graph } {
  const r = spawnSync(process.execPath, [SCRIPT, '--json', ...(root ? ['--root', root] : [])], { encoding: 'utf8' });
  return { status: r.status, graph: JSON.parse(r.stdout) as Graph };
}

test('src/: no import cycle, no models/modules -> runtime edge, runtime reads models as types only', () => {
  const { status, graph } = check();
  assert.deepEqual(graph.cycles, []);
  assert.deepEqual(graph.forbidden, []);
  assert.deepEqual(graph.unresolved, []);
  assert.equal(status, 0);
  // the graph is the real one: the runtime is there, generate asks it for host decoders, the models do not
  assert.ok(graph.files.includes('src/runtime/doge-host-decoder.ts') && graph.files.includes('src/tf.ts'));
  assert.ok(graph.edges.some((e) => e.from === 'src/generation/generate.ts' && e.to === 'src/runtime/host-decoders.ts'));
  assert.ok(graph.edges.some((e) => e.from === 'src/runtime/doge-host-decoder.ts' && e.to === 'src/models/doge/config.ts' && e.typeOnly));
  assert.ok(graph.edges.some((e) => e.from === 'src/modules/dmattn.ts' && e.to === 'src/tf.ts'));
});

test('the checker reports a forbidden edge, a value import of a model into the runtime, a cycle and an unresolved import', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-imports-'));
  const write = (file: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), text);
  };
  write('src/tf.ts', "export const tf = 1;\n");
  write('src/runtime/fast.ts', "import { Model } from '../models/model';\nimport type { Cfg } from '../models/model';\nexport const fast = 1;\n");
  write('src/models/model.ts', "import { fast } from '../runtime/fast';\n// import { x } from '../runtime/commented-out';\nexport class Model {}\nexport type Cfg = number;\n");
  write('src/ops/a.ts', "import { b } from '../data/b';\nexport const a = 1;\n");
  write('src/data/b.ts', "import { a } from '../ops/a';\nimport { gone } from './missing';\nexport const b = 2;\n");
  try {
    const { status, graph } = check(root);
    assert.equal(status, 1);
    assert.deepEqual(graph.forbidden.map((f) => `${f.from} -> ${f.to}: ${f.rule}`).sort(), [
      'src/models/model.ts -> src/runtime/fast.ts: src/models must not import src/runtime',
      'src/runtime/fast.ts -> src/models/model.ts: src/runtime imports models only as types (import type)',
    ]);
    assert.deepEqual(graph.cycles.map((c) => c.join(' <-> ')).sort(), [
      '[data] <-> [ops]', '[models] <-> [runtime]', 'src/data/b.ts <-> src/ops/a.ts', 'src/models/model.ts <-> src/runtime/fast.ts',
    ]);
    assert.deepEqual(graph.unresolved, ["src/data/b.ts: './missing'"]);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
