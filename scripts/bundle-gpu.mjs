// `pnpm bundle:gpu`: everything scripts/gpu-check.sh needs on a GPU machine without network, in one archive well
// under 64 MiB (the whole node_modules is 444 MB): out/gpu-bundle.tar.gz, unpacked as gpu-bundle/:
//   dist/cli/wm.js, dist/cli/gpu-probe.js   the CLI and the adapter/matmul probe, esbuild-bundled with every JS
//                                           dependency (tfjs-core, the cpu, wasm and webgpu backends, ...)
//   dist/cli/*.wasm, vendor/...             tfjs' wasm binaries and the gradient registrations the bundle loads by path
//   node_modules/webgpu/                    Dawn's Node build: index.js, package.json and dist/linux-x64/dawn.node only
//   debs/libvulkan1_*.deb                   the Vulkan loader, unpacked by gpu-check.sh when the machine lacks it
//   node/bin/node                           this machine's Node (the GPU machine may have none; --no-node leaves it out)
//   torch-ref/                              the PyTorch reference (BENCH_REF, default ../shared/bench) when present
//   gpu-check.sh, gpu-torch-bench.py        the check itself
// Run after `pnpm build` (the npm script does). Prints the archive's size and refuses to exceed 64 MiB.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const args = process.argv.slice(2);
const withNode = !args.includes('--no-node');
const outDir = path.join(ROOT, 'out');
const B = path.join(outDir, 'gpu-bundle');
const LIMIT = 64 * 1024 * 1024;

fs.rmSync(B, { recursive: true, force: true });
fs.mkdirSync(path.join(B, 'dist', 'cli'), { recursive: true });
const copy = (from, to) => { fs.mkdirSync(path.dirname(to), { recursive: true }); fs.copyFileSync(from, to); };

// 1. the CLI and the probe, with their JS dependencies inlined; Dawn's binding stays a real package
for (const [entry, out] of [['dist/cli/wm.js', 'dist/cli/wm.js'], ['scripts/gpu-probe.ts', 'dist/cli/gpu-probe.js']]) {
  await build({
    entryPoints: [path.join(ROOT, entry)], outfile: path.join(B, out), bundle: true, platform: 'node', target: 'node20',
    format: 'cjs', external: ['webgpu', '*.node'], logLevel: 'error', legalComments: 'none', minifyWhitespace: true,
    banner: { js: '// wonderful-matrices GPU bundle (scripts/bundle-gpu.mjs); licenses: see the packages on npm.' },
  });
}
// tfjs-backend-wasm loads its .wasm files from the bundle's folder (__dirname)
const wasmDist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
for (const f of fs.readdirSync(wasmDist).filter((f) => f.endsWith('.wasm'))) copy(path.join(wasmDist, f), path.join(B, 'dist', 'cli', f));
// the gradient registrations, where the backend looks for them relative to its own file (dist/<dir>/ -> ../../vendor)
for (const dir of ['vendor', 'dist/vendor']) copy(path.join(ROOT, 'vendor', 'tfjs-gradients.cjs'), path.join(B, dir, 'tfjs-gradients.cjs'));
fs.cpSync(path.join(ROOT, 'configs'), path.join(B, 'configs'), { recursive: true });
fs.writeFileSync(path.join(B, 'package.json'), JSON.stringify({ name: 'wonderful-matrices-gpu-bundle', private: true, version: JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version }, null, 1) + '\n');

// 2. Dawn: the package's entry and the linux-x64 binary only (the package holds five platforms, 132 MB)
const webgpuDir = path.dirname(require.resolve('webgpu/package.json'));
for (const f of ['package.json', 'index.js', 'LICENSE.md', `dist/linux-x64/dawn.node`]) copy(path.join(webgpuDir, f), path.join(B, 'node_modules', 'webgpu', f));

// 3. the Vulkan loader .deb (apt-get download needs no root; else the apt cache)
const debs = path.join(B, 'debs');
fs.mkdirSync(debs);
try {
  execFileSync('apt-get', ['download', 'libvulkan1'], { cwd: debs, stdio: 'pipe' });
} catch (e) {
  const cache = '/var/cache/apt/archives';
  const cached = fs.existsSync(cache) ? fs.readdirSync(cache).filter((f) => /^libvulkan1_.*\.deb$/.test(f)) : [];
  if (cached.length) copy(path.join(cache, cached[0]), path.join(debs, cached[0]));
  else console.error(`bundle:gpu: could not get libvulkan1 (.deb): ${String(e).split('\n')[0]}; gpu-check.sh will need the machine's own libvulkan.so.1`);
}

// 4. Node itself, the PyTorch reference, the check
if (withNode) copy(process.execPath, path.join(B, 'node', 'bin', 'node'));
const ref = process.env.BENCH_REF || path.resolve(ROOT, '..', 'shared', 'bench');
if (fs.existsSync(path.join(ref, 'doge_ref.py'))) {
  for (const f of fs.readdirSync(ref).filter((f) => f.endsWith('.py'))) copy(path.join(ref, f), path.join(B, 'torch-ref', f));
} else console.error(`bundle:gpu: no PyTorch reference at ${ref} (BENCH_REF): gpu-check.sh will skip the PyTorch rows`);
copy(path.join(ROOT, 'scripts', 'gpu-check.sh'), path.join(B, 'gpu-check.sh'));
copy(path.join(ROOT, 'scripts', 'gpu-torch-bench.py'), path.join(B, 'gpu-torch-bench.py'));
fs.chmodSync(path.join(B, 'gpu-check.sh'), 0o755);

const tar = path.join(outDir, 'gpu-bundle.tar.gz');
execFileSync('tar', ['czf', tar, '-C', outDir, 'gpu-bundle']);
const size = fs.statSync(tar).size;
const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const unpacked = Number(execFileSync('du', ['-sb', B], { encoding: 'utf8' }).split('\t')[0]);
console.log(`bundle:gpu: ${path.relative(ROOT, tar)} ${mib(size)} (unpacked ${mib(unpacked)}${withNode ? ', with node' : ''})`);
if (size > LIMIT) {
  console.error(`bundle:gpu: ${mib(size)} exceeds the 64 MiB a GPU machine receives; try --no-node`);
  process.exit(1);
}
