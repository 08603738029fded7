// The published package as another project sees it: its .d.ts files type-check under `moduleResolution: node16`
// with `skipLibCheck: false`, the LICENSE is there, notebooks do not read files the package does not ship.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

test('a CommonJS consumer with moduleResolution node16 and skipLibCheck false type-checks against dist/*.d.ts', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-consumer-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'wonderful-matrices'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'commonjs' }));
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'node16', moduleResolution: 'node16', strict: true, skipLibCheck: false, noEmit: true, target: 'es2022' },
    files: ['index.ts'],
  }));
  fs.writeFileSync(path.join(dir, 'index.ts'), `import { loadBackend, DogeConfig, DogeForCausalLM, loadTokenizer, Trainer, IncrementalDecoder } from 'wonderful-matrices';
export async function main(): Promise<number> {
  await loadBackend();
  const tok = await loadTokenizer('tok');
  const stream = new IncrementalDecoder(tok);
  const m = new DogeForCausalLM(DogeConfig.preset('doge-tiny'), { seed: 0 });
  void Trainer; void stream;
  return m.numParameters() + tok.vocabSize;
}
`);
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8', cwd: ROOT });
  const lines = (r.stdout + r.stderr).split('\n').filter((l) => /error TS\d+/.test(l));
  // Our declarations and the consumer's file must be clean. (Errors inside third-party declarations, e.g. two
  // @types/node versions of this development install meeting, are not the package's to fix.)
  const ours = lines.filter((l) => l.startsWith(`dist${path.sep}`) || l.includes(path.basename(dir)) || /TS1479/.test(l));
  assert.deepEqual(ours, [], ours.join('\n'));
  assert.ok(fs.readdirSync(path.join(ROOT, 'dist')).length > 0, 'dist is built');
});

test('LICENSE is the full Apache-2.0 text package.json names, and npm ships it', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { license: string };
  assert.equal(pkg.license, 'Apache-2.0');
  const text = fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8');
  assert.match(text, /Apache License\s+Version 2\.0, January 2004/);
  assert.match(text, /TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION/);
  assert.match(text, /END OF TERMS AND CONDITIONS/);
  assert.ok(text.split('\n').length > 190, 'the full text, not a summary');
});

test('notebooks read nothing outside what the package ships (no ../tests/fixtures)', () => {
  for (const f of fs.readdirSync(path.join(ROOT, 'notebooks')).filter((n) => n.endsWith('.ipynb'))) {
    const nb = JSON.parse(fs.readFileSync(path.join(ROOT, 'notebooks', f), 'utf8')) as { cells: { cell_type: string; source: string[] | string }[] };
    for (const c of nb.cells.filter((x) => x.cell_type === 'code')) {
      const src = Array.isArray(c.source) ? c.source.join('') : c.source;
      assert.ok(!/tests\/fixtures|\.\.\/tests/.test(src), `${f}: a cell reads the test fixtures:\n${src}`);
    }
  }
});
