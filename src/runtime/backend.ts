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
import { tf } from '../tf';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { disableWasmThreads, prepareWasmThreads, unrefWasmWorkers, wasmThreadsCount } from './wasm-threads';
import { installWasmKernelPatches, setWasmNativeBlas } from './wasm-patches';
import { loadNativeBlas, nativeBlasSetting, nativeBlasUnavailableReason } from './native-blas';
import { registerTopKGradient } from './gradients';
import { registerHostDecoder, unregisterHostDecoder } from './host-decoders';
import { createDogeHostDecoder, type HostDecodable } from './doge-host-decoder';
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
    req(path.join(__dirname, '..', '..', 'vendor', 'tfjs-gradients.cjs'));
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
  /**
   * What runs the wasm backend's matrix products: 'openblas'/'mkl' (native BLAS, src/runtime/native-blas.ts) or
   * 'xnnpack'. Absent for other backends. The log line names it as `wasm+openblas`.
   */
  matmul?: 'openblas' | 'mkl' | 'xnnpack';
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

/**
 * Emscripten's runtime (inside the wasm backend) installs process-wide `uncaughtException` / `unhandledRejection`
 * handlers that rethrow: any later uncaught error in the user's program then exits with code 7 ("internal exception
 * handler failure") and skips the program's `exit` handlers. Those handlers only matter for Emscripten's own
 * `exit()`, which tfjs never calls, so the ones added while a backend starts are removed again.
 */
const PROCESS_EVENTS = ['uncaughtException', 'unhandledRejection'] as const;

async function setBackendOrThrow(tfjsName: string): Promise<void> {
  const before = new Map(PROCESS_EVENTS.map((ev) => [ev, new Set(process.listeners(ev as 'uncaughtException'))]));
  try {
    const ok = await tf.setBackend(tfjsName);
    if (!ok) throw new Error(`tf.setBackend('${tfjsName}') returned false`);
    await tf.ready();
  } finally {
    for (const ev of PROCESS_EVENTS) {
      for (const l of process.listeners(ev as 'uncaughtException')) if (!before.get(ev)!.has(l)) process.off(ev as 'uncaughtException', l);
    }
  }
}

/**
 * Using tensors before `loadBackend()` would otherwise fail with tfjs's "backend 'wasm' has not yet been initialized
 * ... await tf.ready()" message; this names the library's call instead. The engine's `backend` getter is wrapped once
 * (a message rewrite only; every other error passes through unchanged).
 */
function nameLoadBackendInEngineErrors(): void {
  const engine = tf.engine() as unknown as Record<string, unknown>;
  const proto = Object.getPrototypeOf(engine) as object;
  const desc = Object.getOwnPropertyDescriptor(proto, 'backend');
  if (!desc?.get || Object.getOwnPropertyDescriptor(engine, 'backend')) return;
  const get = desc.get;
  Object.defineProperty(engine, 'backend', {
    configurable: true,
    get(this: unknown) {
      try {
        return get.call(this);
      } catch (e) {
        if (!current && e instanceof Error && /has not yet been initialized/.test(e.message)) {
          throw new Error(`wonderful-matrices: no tfjs backend is ready yet; call \`await loadBackend()\` (from 'wonderful-matrices') once before using models or tensors (tfjs: ${e.message})`);
        }
        throw e;
      }
    },
  });
}
nameLoadBackendInEngineErrors();

/** Notes for the log line (e.g. how many wasm threads run, or why threading was turned off). */
let backendNotes: string[] = [];

/** The native BLAS choice for the wasm backend's products, made once the backend runs (see native-blas.ts). */
function selectNativeBlas(setting: 'auto' | 'on' | 'off', threads: number): 'openblas' | 'mkl' | 'xnnpack' {
  unregisterHostDecoder('doge');
  if (setting === 'off') {
    setWasmNativeBlas(null);
    backendNotes.push('matmuls on XNNPACK (native BLAS off: WM_NATIVE_BLAS=0/option)');
    return 'xnnpack';
  }
  const blas = loadNativeBlas();
  if (!blas) {
    if (setting === 'on') throw new Error(`native BLAS was required (WM_NATIVE_BLAS=1/option) but is unavailable: ${nativeBlasUnavailableReason()}`);
    setWasmNativeBlas(null);
    backendNotes.push(`matmuls on XNNPACK (native BLAS unavailable: ${nativeBlasUnavailableReason()})`);
    return 'xnnpack';
  }
  // Same thread count as XNNPACK's for this workload (training: idle cores; decoding: 1).
  blas.setThreads(threads);
  setWasmNativeBlas(blas);
  // the host decoders run their products on it (generate asks for one after the prompt)
  registerHostDecoder('doge', (model, cache, maxLength) => createDogeHostDecoder(model as HostDecodable, cache, maxLength));
  const kind = /openblas/i.test(blas.config) ? 'openblas' : 'mkl';
  backendNotes.push(`matmuls on ${blas.config.split(' ').slice(0, 2).join(' ')} (${blas.lib}, ${threads} thread${threads > 1 ? 's' : ''}; WM_NATIVE_BLAS=0 turns it off)`);
  return kind;
}

async function tryBackend(name: BackendName): Promise<void> {
  if (name === 'tensorflow-gpu') requireNative('@tensorflow/tfjs-node-gpu');
  if (name === 'tensorflow') requireNative('@tensorflow/tfjs-node');
  registerTopKGradient(tf); // a gradient tfjs-core lacks (gradients.ts)
  if (name === 'wasm') installWasmKernelPatches(tf); // faster wasm kernels, same results (wasm-patches.ts)
  if (name !== 'wasm' || wasmThreads <= 1) {
    await setBackendOrThrow(name === 'tensorflow-gpu' ? 'tensorflow' : name);
    if (name === 'wasm') backendNotes.push(`1 XNNPACK thread (${wasmThreadsWhy}; WM_WASM_THREADS=N sets it)`);
    return;
  }
  // Threaded XNNPACK (wasm-threads.ts); if it cannot start, the single-threaded build still can.
  const restore = prepareWasmThreads(tf, wasmThreads);
  try {
    await setBackendOrThrow('wasm');
    unrefWasmWorkers(tf.backend());
    backendNotes.push(`${wasmThreadsCount()} XNNPACK threads (${wasmThreadsWhy})`);
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
   * Threads for the wasm backend's XNNPACK kernels: a number (1 = single-threaded) or 'auto' (see `workload`).
   * Default: `WM_WASM_THREADS`, else 'auto'. See src/runtime/wasm-threads.ts.
   */
  wasmThreads?: number | 'auto';
  /**
   * What the process will mostly do, for 'auto' threads (the count is fixed when the backend starts):
   * - `inference` (decoding: many small ops, where thread hand-offs cost more than they save): 1 thread.
   * - `training` (default; large matmuls): one thread per idle core (cores minus the 1-minute load average,
   *   at most 8), so a machine busy with other jobs runs single-threaded instead of oversubscribed.
   * Measured on the shared 2-core development machine at load ~12 (other jobs running), doge-tiny (wm bench):
   * decoding 172-178 tokens/s with 1 thread vs 28-45 with 2; training 164-180 vs 139-237. On an idle 2-core
   * machine 2 threads trained ~1.6x faster (644 -> 1064 tokens/s) and decoded ~20% slower.
   */
  workload?: 'training' | 'inference';
  /**
   * Run the wasm backend's matrix products on a native BLAS (OpenBLAS/MKL via native/wm_blas.c): true requires it,
   * false never uses it, 'auto' (default) uses it when it loads. Default: `WM_NATIVE_BLAS` (1 / 0 / auto).
   */
  nativeBlas?: boolean | 'auto';
}

let wasmThreads = 1;
/** Why this many threads (for the log line). */
let wasmThreadsWhy = '';

/** The 'auto' thread count for a workload, and why. */
export function autoWasmThreads(workload: 'training' | 'inference', cores = os.availableParallelism(), load = os.loadavg()[0]): { threads: number; why: string } {
  if (workload === 'inference') return { threads: 1, why: 'inference: single-threaded by default' };
  const idle = Math.max(0, cores - load);
  const threads = Math.max(1, Math.min(8, cores, Math.floor(idle + 0.5)));
  return { threads, why: `training: ${threads === 1 && cores > 1 ? 'machine busy, ' : ''}load ${load.toFixed(1)} on ${cores} cores` };
}

function resolveWasmThreads(setting: number | string | undefined, workload: 'training' | 'inference'): { threads: number; why: string } {
  if (setting === undefined || setting === '' || setting === 'auto') return autoWasmThreads(workload);
  const n = Number(setting);
  if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`WM_WASM_THREADS/wasmThreads must be 'auto' or an integer from 1 to 8, got '${setting}'`);
  return { threads: n, why: 'WM_WASM_THREADS/option' };
}

/**
 * Select the best backend that loads (or the forced one) and print one line saying which and why.
 * Safe to call many times: after the first success it returns the same answer.
 */
export async function loadBackend(options: LoadBackendOptions = {}): Promise<BackendInfo> {
  const forced = options.backend ?? process.env.WM_BACKEND;
  const { threads, why } = resolveWasmThreads(options.wasmThreads ?? process.env.WM_WASM_THREADS, options.workload ?? 'training');
  const nativeSetting = nativeBlasSetting(options.nativeBlas);
  if (current && (!forced || forced === current.name)) return current;
  const log = options.log ?? true;
  wasmThreads = threads;
  wasmThreadsWhy = why;
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
  if (current.name === 'wasm') {
    try {
      current.matmul = selectNativeBlas(nativeSetting, wasmThreadsCount());
    } catch (e) {
      current = undefined;
      throw e;
    }
  }
  if (current.name === 'wasm' && backendNotes.length) current.reason += `; ${backendNotes.join('; ')}`;
  if (log) console.error(`[wonderful-matrices] backend: ${backendLabel(current)} (${current.reason})`);
  return current;
}

/** The backend chosen by `loadBackend`, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

/** The backend as logs show it: `wasm+openblas` when the native BLAS runs the wasm backend's products, else its name. */
export function backendLabel(info: BackendInfo): string {
  return info.matmul && info.matmul !== 'xnnpack' ? `${info.name}+${info.matmul}` : info.name;
}
