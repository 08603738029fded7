/**
 * Multi-threaded XNNPACK for the tfjs wasm backend under Node (default: one thread per core; WM_WASM_THREADS=N or
 * `loadBackend({ wasmThreads: N })` sets the count, 1 turns it off).
 *
 * tfjs-backend-wasm ships a threaded SIMD build but switches it off in Node (WASM_HAS_MULTITHREAD_SUPPORT is false
 * there, tfjs issue #3830) because its Emscripten pthread workers are started from Blob URLs, which Node's Worker
 * does not accept. Three small adaptations make it run:
 *  1. Blobs made of strings remember their text, and URL.createObjectURL writes them to a temporary file and
 *     returns its path (Node's Worker takes paths).
 *  2. Inside a worker the main script arrives as a Blob (not readable synchronously): the worker file starts with a
 *     line pointing URL.createObjectURL at the main script's file instead. The main script is a function's source
 *     text that refers to the bundle's `require$$N` and `commonjsGlobal` names, which are defined in front of it.
 *  3. The C++ side uses half the logical cores (`num_cores = logical / 2`, assuming hyper-threading) as the cap, so
 *     during initialisation os.cpus() reports twice the cores.
 * Numerics are unchanged (same kernels, split across threads).
 *
 * The two script files are content-addressed (`<sha256>.js` in one cache folder per user), each written once, into a
 * temporary name and renamed: a worker starting while another thread or process "writes" the same script always reads
 * a complete file (rewriting one file per thread let early workers read a truncated script, and a few percent of
 * process starts exited silently), and no temporary folder is left behind per process.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

// The module object itself (not an ES namespace view), so os.cpus can be swapped during initialisation.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const os = require('node:os') as typeof import('node:os');

const MAIN_SCRIPT_PREFIX = 'var WasmBackendModuleThreadedSimd';
const BUNDLE_REQUIRES = "var require$$0=require('fs'),require$$1=require('path'),require$$3=require('perf_hooks'),require$$4=require('os');var commonjsGlobal=globalThis;\n";

let installed = false;

/** The per-user cache folder of the worker scripts (created 0700; the scripts are the same for every process). */
export function wasmThreadsCacheDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  const dir = path.join(os.tmpdir(), `wm-wasm-threads-${uid}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Write `text` to `<dir>/<sha256 of text>.js` once and return the path: an existing file of that name already
 * has exactly this content (it only ever appears by an atomic rename of a complete file).
 */
export function writeContentAddressed(dir: string, text: string): string {
  const file = path.join(dir, `${crypto.createHash('sha256').update(text).digest('hex').slice(0, 32)}.js`);
  if (fs.existsSync(file)) return file;
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file); // atomic; a concurrent writer of the same content renames an identical file
  return file;
}

/** Patch Blob/URL so the threaded build can start its workers in Node. Idempotent. */
function installBlobFilePatch(): void {
  if (installed) return;
  installed = true;
  const dir = wasmThreadsCacheDir();
  const blobText = new WeakMap<Blob, string>();
  let mainScriptPath: string | undefined;
  const NativeBlob = globalThis.Blob;
  class RecordingBlob extends NativeBlob {
    constructor(...args: ConstructorParameters<typeof Blob>) {
      super(...args);
      const parts = args[0] ?? [];
      if (parts.every((p) => typeof p === 'string')) {
        const text = (parts as string[]).join('');
        blobText.set(this, text);
        if (text.startsWith(MAIN_SCRIPT_PREFIX)) mainScriptPath = writeContentAddressed(dir, BUNDLE_REQUIRES + text);
      }
    }
  }
  globalThis.Blob = RecordingBlob as typeof Blob;
  const nativeCreateObjectURL = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (blob: Blob): string => {
    const text = blobText.get(blob);
    if (text === undefined) return nativeCreateObjectURL(blob);
    const redirect = `URL.createObjectURL=function(){return ${JSON.stringify(mainScriptPath ?? '')}};URL.revokeObjectURL=function(){};\n`;
    return writeContentAddressed(dir, redirect + text);
  };
}

/**
 * Prepare the wasm backend to run XNNPACK on `threads` threads. Must run before the wasm backend initialises
 * (before the first `tf.setBackend('wasm')`). Returns a function to call right after initialisation.
 */
export function prepareWasmThreads(tf: { env(): { set(flag: string, value: unknown): void } }, threads: number): () => void {
  if (!Number.isInteger(threads) || threads < 1 || threads > 8) {
    throw new Error(`wasm threads must be an integer from 1 to 8 (the backend pre-creates 8 workers), got ${threads}`);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const wasm = require('@tensorflow/tfjs-backend-wasm') as { setThreadsCount(n: number): void };
  installBlobFilePatch();
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  const realCpus = os.cpus;
  const doubled = () => { const c = realCpus(); return [...c, ...c]; };
  os.cpus = doubled as typeof os.cpus;
  return () => {
    os.cpus = realCpus;
  };
}

/**
 * XNNPACK's pool threads run for the life of the process and Emscripten keeps their Node workers ref'ed, which
 * would keep the process alive after the program's work is done: unref them (they still run while it is busy).
 */
export function unrefWasmWorkers(backend: unknown): void {
  const pthreads = (backend as { wasm?: { PThread?: { runningWorkers?: { unref(): void }[]; unusedWorkers?: { unref(): void }[] } } })
    .wasm?.PThread;
  for (const w of [...(pthreads?.runningWorkers ?? []), ...(pthreads?.unusedWorkers ?? [])]) w.unref();
}

/** Undo `prepareWasmThreads` before retrying single-threaded (the threaded build could not start). */
export function disableWasmThreads(tf: { env(): { set(flag: string, value: unknown): void } }): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const wasm = require('@tensorflow/tfjs-backend-wasm') as { setThreadsCount(n: number): void };
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setThreadsCount(1);
}

/** The number of XNNPACK threads the wasm backend actually runs (1 when single-threaded). */
export function wasmThreadsCount(): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const wasm = require('@tensorflow/tfjs-backend-wasm') as { getThreadsCount(): number };
  return wasm.getThreadsCount();
}
