/**
 * The choice of the backend the library's one TensorFlow.js engine (src/tf.ts) runs on, and its bootstrap: tfjs
 * gradients, kernel patches, wasm threads, the native BLAS and the host decoders that need it.
 *
 * Order of preference (first that loads wins):
 *   1. `tensorflow` from `@tensorflow/tfjs-node-gpu`  (CUDA, libtensorflow)
 *   2. `webgpu`     from `@tensorflow/tfjs-backend-webgpu` on Dawn (`webgpu` package), a hardware adapter only
 *                   (a GPU through Vulkan; see webgpu.ts)
 *   3. `tensorflow` from `@tensorflow/tfjs-node`      (native CPU, libtensorflow)
 *   4. `wasm`       from `@tensorflow/tfjs-backend-wasm` (XNNPACK, SIMD; the default on plain machines)
 *   5. `cpu`        from `@tensorflow/tfjs-backend-cpu`  (pure JS, slowest, always there)
 *
 * The native packages are optional dependencies: their install script downloads libtensorflow, which fails
 * without network. `WM_BACKEND=<name>` (or `loadBackend({ backend })`) forces one and fails loudly when it
 * cannot load. Names: `tensorflow-gpu`, `webgpu`, `tensorflow` (= tfjs-node), `wasm`, `cpu`. A forced `webgpu`
 * also accepts a software adapter (Mesa's llvmpipe on a machine without a GPU), which the automatic choice never takes.
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
import { registerWebGpuFusedKernels } from './webgpu-kernels';
import { describeAdapter, startWebGpu, webGpuAdapter, type WebGpuAdapterSummary } from './webgpu';
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

export type BackendName = 'tensorflow-gpu' | 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_NAMES: readonly BackendName[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendInfo {
  /** Our name for it (`tensorflow-gpu` and `tensorflow` both register tfjs backend `tensorflow`). */
  name: BackendName;
  /** The tfjs backend name in use (`tf.getBackend()`). */
  tfjsBackend: string;
  /** Why this one: forced, or which better ones failed and how, plus the thread and BLAS choices (the debug log line). */
  reason: string;
  /** XNNPACK threads of the wasm backend (absent for other backends). */
  threads?: number;
  /** The native BLAS running the wasm backend's products, as its build names itself (e.g. 'OpenBLAS 0.3.21'). */
  blas?: string;
  /**
   * What runs the wasm backend's matrix products: 'openblas'/'mkl' (native BLAS, src/runtime/native-blas.ts) or
   * 'xnnpack'. Absent for other backends. The log line names it as `wasm+openblas`.
   */
  matmul?: 'openblas' | 'mkl' | 'xnnpack';
  /** The WebGPU adapter (webgpu only): vendor, architecture, description, software or hardware. */
  adapter?: WebGpuAdapterSummary;
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

/** Notes for the debug log line (e.g. how many wasm threads run, or why threading was turned off). */
let backendNotes: string[] = [];
/** The short log line's remarks: only what a user should know without asking (a failed threaded start). */
let shortNotes: string[] = [];
/** The native BLAS's name when it runs the wasm backend's products. */
let blasName: string | undefined;

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
  blasName = blas.config.split(' ').slice(0, 2).join(' ');
  backendNotes.push(`matmuls on ${blasName} (${blas.lib}, ${threads} thread${threads > 1 ? 's' : ''}; WM_NATIVE_BLAS=0 turns it off)`);
  return kind;
}

async function tryBackend(name: BackendName, forced: boolean): Promise<void> {
  if (name === 'tensorflow-gpu') requireNative('@tensorflow/tfjs-node-gpu');
  if (name === 'tensorflow') requireNative('@tensorflow/tfjs-node');
  // a GPU adapter (automatic choice) or any adapter, software included (forced); names its adapter in the log line
  if (name === 'webgpu') {
    const a = await startWebGpu(tf, { allowSoftware: forced });
    backendNotes.push(`${describeAdapter(a)}; maxStorageBuffersPerShaderStage ${a.maxStorageBuffersPerShaderStage}`);
    // fused WGSL programs for AdamW, the clip norm, RMSNorm, SwiGLU and the dynamic mask (webgpu-kernels.ts)
    if (!registerWebGpuFusedKernels(tf)) backendNotes.push('fused kernels off (WM_FUSED_KERNELS=0)');
  }
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
    shortNotes.push('threaded XNNPACK failed to start');
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
   * Also print why this backend, thread count and BLAS (which better backends failed and how, the load behind the
   * thread count). Default: `WM_LOG=debug` (the `wm` commands' `--verbose` sets it).
   */
  verbose?: boolean;
  /**
   * Threads for the wasm backend's XNNPACK kernels: a number (1 = single-threaded) or 'auto' (see `workload`).
   * Default: `WM_WASM_THREADS`, else 'auto'. See src/runtime/wasm-threads.ts.
   */
  wasmThreads?: number | 'auto';
  /**
   * What the process will mostly do, for 'auto' threads (the count is fixed when the backend starts):
   * - `inference` (decoding: many small ops, where thread hand-offs cost more than they save): 1 thread.
   * - `training` (default; large matmuls): one thread per core free now (cores minus the cores other processes
   *   kept busy over a 100 ms /proc/stat sample, at most 8), so a machine busy with other jobs runs single-threaded
   *   instead of oversubscribed, and one whose last job just ended gets every core (the 1-minute load average would
   *   still count that job: right after one, a load average of 0.7 gave doge-tiny 1 thread, 2,346 tokens/s, where 2
   *   threads give 3,174).
   *   Without /proc/stat: cores minus the 1-minute load average.
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

/** How busy the machine is: cores other processes keep busy now (/proc/stat), or the 1-minute load average. */
export interface CpuBusy {
  /** Busy cores (0..cores). */
  busy: number;
  source: 'now' | 'load average';
}

/**
 * The 'auto' thread count for a workload, and why: inference 1; training one per free core (rounded to nearest, at
 * least 1, at most 8 and the core count).
 */
export function autoWasmThreads(workload: 'training' | 'inference', cores: number, load: CpuBusy): { threads: number; why: string } {
  if (workload === 'inference') return { threads: 1, why: 'inference: single-threaded by default' };
  const free = Math.max(0, cores - load.busy);
  const threads = Math.max(1, Math.min(8, cores, Math.floor(free + 0.5)));
  const what = load.source === 'now' ? `${load.busy.toFixed(1)} of ${cores} cores busy now` : `load average ${load.busy.toFixed(1)} on ${cores} cores`;
  return { threads, why: `training: ${threads === 1 && cores > 1 ? 'machine busy, ' : ''}${what}` };
}

/** The aggregate `cpu` line of /proc/stat: busy and total clock ticks, and the number of cpuN lines. */
export function parseProcStat(text: string): { busy: number; total: number; cpus: number } {
  const m = /^cpu\s+(\d+(?:\s+\d+)*)/m.exec(text);
  if (!m) throw new Error(`/proc/stat: no aggregate 'cpu' line in '${text.slice(0, 80).trim()}'`);
  // user nice system idle iowait irq softirq steal (guest time is already inside user and nice)
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = m[1].split(/\s+/).map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait, cpus: (text.match(/^cpu\d+\s/gm) ?? []).length || 1 };
}

/** This process's CPU time and the wall clock, in ms; a parameter of cpuBusyNow so that a test can fix both. */
export interface BusyClock { ownCpuMs(): number; wallMs(): number }
const processClock: BusyClock = {
  ownCpuMs: () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; },
  wallMs: () => performance.now(),
};

/**
 * Cores that other processes keep busy now: two /proc/stat samples about `windowMs` apart, minus this process's own
 * CPU time over the same interval. The interval is measured, not assumed: on a loaded machine the timer fires late,
 * and dividing our CPU time by the requested window would overstate what we used. Where /proc/stat cannot be read:
 * the 1-minute load average.
 */
export async function cpuBusyNow(
  windowMs = 100,
  read = (): string => fs.readFileSync('/proc/stat', 'utf8'),
  clock: BusyClock = processClock,
): Promise<CpuBusy> {
  let a: ReturnType<typeof parseProcStat>;
  try { a = parseProcStat(read()); } catch { return { busy: os.loadavg()[0], source: 'load average' }; }
  const own0 = clock.ownCpuMs();
  const wall0 = clock.wallMs();
  await new Promise((r) => setTimeout(r, windowMs));
  const b = parseProcStat(read());
  const ownMs = clock.ownCpuMs() - own0;
  const wallMs = clock.wallMs() - wall0;
  const ticks = b.total - a.total;
  if (ticks <= 0 || wallMs <= 0) return { busy: 0, source: 'now' };
  const busyCores = ((b.busy - a.busy) / ticks) * b.cpus; // all processes, in cores
  const ownCores = ownMs / wallMs;
  return { busy: Math.min(b.cpus, Math.max(0, busyCores - ownCores)), source: 'now' };
}

/** An explicit thread count, or null for 'auto' (which needs a measurement); throws on a bad value. */
function explicitWasmThreads(setting: number | string | undefined): number | null {
  if (setting === undefined || setting === '' || setting === 'auto') return null;
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
  const explicit = explicitWasmThreads(options.wasmThreads ?? process.env.WM_WASM_THREADS);
  const nativeSetting = nativeBlasSetting(options.nativeBlas);
  if (current && (!forced || forced === current.name)) return current;
  const log = options.log ?? true;
  const workload = options.workload ?? 'training';
  // the free cores are measured only where they decide something (auto threads for training)
  const auto = explicit === null ? autoWasmThreads(workload, os.availableParallelism(), workload === 'training' ? await cpuBusyNow() : { busy: 0, source: 'now' }) : null;
  wasmThreads = auto ? auto.threads : explicit!;
  wasmThreadsWhy = auto ? auto.why : 'WM_WASM_THREADS/option';
  backendNotes = [];
  shortNotes = [];
  blasName = undefined;

  if (forced) {
    if (!BACKEND_NAMES.includes(forced as BackendName)) {
      throw new Error(`WM_BACKEND/backend '${forced}' is not a backend; choose one of ${BACKEND_NAMES.join(', ')}`);
    }
    try {
      await tryBackend(forced as BackendName, true);
    } catch (e) {
      throw new Error(`backend '${forced}' was forced but cannot load: ${firstLine(e)}`);
    }
    current = { name: forced as BackendName, tfjsBackend: tf.getBackend(), reason: 'forced by WM_BACKEND/option' };
  } else {
    const failures: string[] = [];
    for (const name of BACKEND_NAMES) {
      try {
        await tryBackend(name, false);
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
  if (current.name === 'wasm') {
    current.threads = wasmThreadsCount();
    if (blasName) current.blas = blasName;
  }
  if (current.name === 'wasm' && backendNotes.length) current.reason += `; ${backendNotes.join('; ')}`;
  if (current.name === 'webgpu') {
    current.adapter = webGpuAdapter();
    if (backendNotes.length) current.reason = `${backendNotes.join('; ')}; ${current.reason}`;
  }
  if (log) {
    console.error(`[wonderful-matrices] backend: ${backendSummary(current, shortNotes)}`);
    if (options.verbose ?? process.env.WM_LOG === 'debug') console.error(`[wonderful-matrices] backend details: ${current.reason}`);
  }
  return current;
}

/**
 * The short log line: backend, threads, BLAS, e.g. `wasm, 2 threads, BLAS OpenBLAS 0.3.21`. The reasons (which better
 * backends failed and how, the load behind the thread count) are in `info.reason`, printed with WM_LOG=debug /
 * --verbose. Falling back past wasm, or a failed threaded start, is said here too: it costs the user speed.
 */
export function backendSummary(info: BackendInfo, notes: string[] = []): string {
  const parts: string[] = [info.name];
  if (info.threads !== undefined) parts.push(`${info.threads} thread${info.threads === 1 ? '' : 's'}`);
  if (info.name === 'wasm') parts.push(`BLAS ${info.blas ?? 'none (XNNPACK matmuls)'}`);
  if (info.name === 'webgpu' && info.adapter) parts.push(describeAdapter(info.adapter)); // which GPU, or the software one
  const fellBack = info.name === 'cpu' && !info.reason.startsWith('forced') ? ['wasm did not load'] : [];
  const remarks = [...fellBack, ...notes];
  const more = process.env.WM_LOG === 'debug' ? '' : '; WM_LOG=debug says why';
  return `${parts.join(', ')}${remarks.length ? ` (${remarks.join('; ')}${more})` : ''}`;
}

/** The backend chosen by `loadBackend`, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

/** The backend as logs show it: `wasm+openblas` when the native BLAS runs the wasm backend's products, else its name. */
export function backendLabel(info: BackendInfo): string {
  return info.matmul && info.matmul !== 'xnnpack' ? `${info.name}+${info.matmul}` : info.name;
}
