// Builds the optional native BLAS addon native/build/wm_blas.node (native/wm_blas.c) with the system C compiler and
// Node's own headers; no node-gyp, no BLAS headers (the addon dlopens OpenBLAS at run time). Runs from `pnpm install`
// (the `prepare` script) and before `pnpm test`. Fails soft: one line saying why, exit code 0, and the library keeps
// using XNNPACK. `--strict` exits 1 on failure instead (for callers that need the addon).
// Skips the compile when the .node file is newer than the source. CC overrides the compiler.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { homedir } from 'node:os';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'native', 'wm_blas.c');
const out = join(root, 'native', 'build', 'wm_blas.node');
const strict = process.argv.includes('--strict');

function fail(why) {
  console.error(`build-native: not built (${why}); matmuls use XNNPACK`);
  process.exit(strict ? 1 : 0);
}

/** A folder holding node_api.h for this Node: next to the binary (official builds, Debian), or node-gyp's cache. */
function nodeHeaders() {
  const v = process.version.slice(1);
  const candidates = [
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
    join(homedir(), '.cache', 'node-gyp', v, 'include', 'node'),
    join(homedir(), '.node-gyp', v, 'include', 'node'),
  ];
  return candidates.find((d) => existsSync(join(d, 'node_api.h')));
}

if (process.platform !== 'linux' && process.platform !== 'darwin') fail(`platform ${process.platform} not supported`);
if (existsSync(out) && statSync(out).mtimeMs > statSync(src).mtimeMs && !process.argv.includes('--force')) {
  console.log(`build-native: ${out} is up to date`);
  process.exit(0);
}
const inc = nodeHeaders();
if (!inc) fail(`node_api.h not found next to ${process.execPath} nor in node-gyp's cache (Debian: apt-get install nodejs or libnode-dev)`);
const cc = process.env.CC || 'cc';
mkdirSync(dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const args = ['-O2', '-Wall', '-shared', '-fPIC', '-DNODE_GYP_MODULE_NAME=wm_blas', `-I${inc}`, src, '-o', tmp];
if (process.platform === 'darwin') args.push('-undefined', 'dynamic_lookup');
else args.push('-ldl');
try {
  execFileSync(cc, args, { stdio: ['ignore', 'ignore', 'pipe'] });
} catch (e) {
  const msg = e.code === 'ENOENT' ? `no C compiler '${cc}' (Debian: apt-get install gcc)` : String(e.stderr || e.message).trim().split('\n')[0];
  fail(msg);
}
renameSync(tmp, out); // atomic: a process loading the addon never sees a half-written file
console.log(`build-native: built ${out}`);
