/**
 * One TensorFlow.js engine for the whole library, and the choice of the backend it runs on.
 *
 * Order of preference (first that loads wins):
 *   1. `tensorflow` from `@tensorflow/tfjs-node-gpu`  (CUDA, libtensorflow)
 *   2. `tensorflow` from `@tensorflow/tfjs-node`      (native CPU, libtensorflow)
 *   3. `wasm`       from `@tensorflow/tfjs-backend-wasm` (XNNPACK, SIMD; the default on plain machines)
 *   4. `cpu`        from `@tensorflow/tfjs-backend-cpu`  (pure JS, slowest, always there)
 *
 * The native packages are optional dependencies: their install script downloads libtensorflow, which fails
 * without network. `WM_BACKEND=<name>` (or `loadBackend({ backend })`) forces one and fails loudly when it
 * cannot load. Names: `tensorflow-gpu`, `tensorflow` (= tfjs-node), `wasm`, `cpu`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernelPatches } from './ops/wasm-kernels';
import { disableWasmThreads, prepareWasmThreads, unrefWasmWorkers, wasmThreadsCount } from './wasm-threads';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export { tf };

/**
 * tfjs-core's CommonJS build registers no gradients (the union package @tensorflow/tfjs bundles them), and its
 * side-effect module `register_all_gradients` is an ES module with extension-less imports that plain Node cannot
 * load. `pnpm build` bundles it into vendor/tfjs-gradients.cjs (scripts/bundle-gradients.mjs); under tsx (tests,
 * scripts run from src/) the ES module itself loads too. Registration goes into tfjs' global registries.
 */
function registerGradients(): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const req = require;
  try {
    req(path.join(__dirname, '..', 'vendor', 'tfjs-gradients.cjs'));
    return true;
  } catch {
    try {
      req('@tensorflow/tfjs-core/dist/register_all_gradients');
      req('@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops');
      return true;
    } catch {
      return false;
    }
  }
}
const gradientsRegistered = registerGradients();
// Faster wasm kernels with the same results (src/ops/wasm-kernels.ts); no-op for the other backends.
installWasmKernelPatches(tf);

/** Throws unless tfjs gradients are registered (training needs them; inference does not). */
export function assertGradientsAvailable(): void {
  if (!gradientsRegistered) {
    throw new Error('tfjs gradients are not registered: vendor/tfjs-gradients.cjs is missing; run `pnpm build` (it runs scripts/bundle-gradients.mjs)');
  }
}

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  /** Our name for it (`tensorflow-gpu` and `tensorflow` both register tfjs backend `tensorflow`). */
  name: BackendName;
  /** The tfjs backend name in use (`tf.getBackend()`). */
  tfjsBackend: string;
  /** Why this one: forced, or which better ones failed and how. */
  reason: string;
}

let current: BackendInfo | undefined;

/**
 * The native packages register a backend named `tensorflow` as a side effect of being required. Their JS half
 * registers kernels before it loads the binary, so check for the binary first: a failed require would leave
 * half-registered kernels behind (and the next attempt would warn about each one).
 */
function requireNative(pkg: string): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const req = require;
  let dir: string;
  try {
    dir = path.dirname(req.resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(`${pkg} is not installed (optional dependency)`);
  }
  const lib = path.join(dir, 'lib');
  const built = fs.existsSync(lib) && fs.readdirSync(lib).some((d) => fs.existsSync(path.join(lib, d, 'tfjs_binding.node')));
  if (!built) throw new Error(`${pkg} is installed but its native binding was not built (its install script downloads libtensorflow)`);
  req(pkg);
}

async function setBackendOrThrow(tfjsName: string): Promise<void> {
  const ok = await tf.setBackend(tfjsName);
  if (!ok) throw new Error(`tf.setBackend('${tfjsName}') returned false`);
  await tf.ready();
}

/** Notes for the log line (e.g. how many wasm threads run, or why threading was turned off). */
let backendNotes: string[] = [];

async function tryBackend(name: BackendName): Promise<void> {
  if (name === 'tensorflow-gpu') requireNative('@tensorflow/tfjs-node-gpu');
  if (name === 'tensorflow') requireNative('@tensorflow/tfjs-node');
  if (name !== 'wasm' || wasmThreads <= 1) {
    await setBackendOrThrow(name === 'tensorflow-gpu' ? 'tensorflow' : name);
    return;
  }
  // Threaded XNNPACK (src/wasm-threads.ts); if it cannot start, the single-threaded build still can.
  const restore = prepareWasmThreads(tf, wasmThreads);
  try {
    await setBackendOrThrow('wasm');
    unrefWasmWorkers(tf.backend());
    backendNotes.push(`${wasmThreadsCount()} XNNPACK threads`);
  } catch (e) {
    disableWasmThreads(tf);
    await setBackendOrThrow('wasm');
    backendNotes.push(`threaded XNNPACK failed to start (${firstLine(e).slice(0, 100)}), running single-threaded`);
  } finally {
    restore();
  }
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n').find((l) => l.trim() !== '')?.trim() ?? msg;
}

export interface LoadBackendOptions {
  /** Force a backend; defaults to the `WM_BACKEND` environment variable, else automatic. */
  backend?: BackendName | string;
  /** Print the one-line "backend: ..." message (default true). */
  log?: boolean;
  /**
   * Threads for the wasm backend's XNNPACK kernels: a number (1 = single-threaded) or 'auto' (one per core, at most
   * 8). Default: `WM_WASM_THREADS`, else 'auto'. See src/wasm-threads.ts: on an idle 2-core machine 2 threads train
   * ~1.8x faster; decoding (many small ops) is ~20% slower; on an overloaded machine threads can be slower.
   */
  wasmThreads?: number | 'auto';
}

let wasmThreads = 1;

function resolveWasmThreads(setting: number | string | undefined): number {
  if (setting === undefined || setting === '' || setting === 'auto') return Math.min(os.availableParallelism(), 8);
  const n = Number(setting);
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`WM_WASM_THREADS/wasmThreads must be 'auto' or an integer from 1 to 8, got '${setting}'`);
  return n;
}

/**
 * Select the best backend that loads (or the forced one) and print one line saying which and why.
 * Safe to call many times: after the first success it returns the same answer.
 */
export async function loadBackend(options: LoadBackendOptions = {}): Promise<BackendInfo> {
  const forced = options.backend ?? process.env.WM_BACKEND;
  const threads = resolveWasmThreads(options.wasmThreads ?? process.env.WM_WASM_THREADS);
  if (current && (!forced || forced === current.name)) return current;
  const log = options.log ?? true;
  wasmThreads = threads;
  backendNotes = [];

  if (forced) {
    if (!BACKEND_NAMES.includes(forced as BackendName)) {
      throw new Error(`WM_BACKEND/backend '${forced}' is not a backend; choose one of ${BACKEND_NAMES.join(', ')}`);
    }
    try {
      await tryBackend(forced as BackendName);
    } catch (e) {
      throw new Error(`backend '${forced}' was forced but cannot load: ${firstLine(e)}`);
    }
    current = { name: forced as BackendName, tfjsBackend: tf.getBackend(), reason: 'forced by WM_BACKEND/option' };
  } else {
    const failures: string[] = [];
    for (const name of BACKEND_NAMES) {
      try {
        await tryBackend(name);
        const why = failures.length ? `best that loaded; ${failures.join('; ')}` : 'best available';
        current = { name, tfjsBackend: tf.getBackend(), reason: why };
        break;
      } catch (e) {
        failures.push(`${name} unavailable (${firstLine(e).slice(0, 120)})`);
      }
    }
    if (!current) throw new Error(`no tfjs backend could load: ${failures.join('; ')}`);
  }
  if (current.name === 'wasm' && backendNotes.length) current.reason += `; ${backendNotes.join('; ')}`;
  if (log) console.error(`[wonderful-matrices] backend: ${current.name} (${current.reason})`);
  return current;
}

/** The backend chosen by `loadBackend`, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}
