/**
 * The WebGPU backend: `@tensorflow/tfjs-backend-webgpu` on Dawn's Node build (the npm package `webgpu`, which ships
 * `dawn.node` inside the package, so nothing is downloaded at install time).
 *
 * Two adapters, one code path:
 *   - hardware: a GPU through Vulkan (Linux; needs the Vulkan loader `libvulkan.so.1` and the driver's ICD file,
 *     which the NVIDIA container toolkit mounts when NVIDIA_DRIVER_CAPABILITIES includes `graphics`);
 *   - software: Mesa's llvmpipe through OpenGL (EGL without a display, `EGL_PLATFORM=surfaceless`), requested in
 *     WebGPU's `compatibility` feature level because that is what Dawn offers on OpenGL. Never picked automatically;
 *     `WM_BACKEND=webgpu` forces it on a machine without a GPU (tests and CI run on it).
 *
 * What this file adds to tfjs-backend-webgpu, and why:
 *   1. The device is requested with the adapter's own limits. tfjs asks for the WebGPU defaults of most limits, so
 *      `maxStorageBuffersPerShaderStage` is 8 and e.g. `tf.addN` of 8 tensors fails validation and returns zeros.
 *   2. Every uncaptured device error and a lost device become a thrown error at the next read of a tensor's values
 *      (every value leaves the GPU through a read, so no zero from a failed kernel can reach the caller).
 *   3. Synchronous reads (`dataSync`, `arraySync`) work in Node. tfjs' readSync goes through OffscreenCanvas, which
 *      Node lacks; here it copies to a staging buffer and drives Dawn's event processing until the map completes.
 *      Dawn's Node binding processes events from a callback it hands to `setImmediate`; that callback is captured
 *      once while the device starts (see `captureDawnTick`) and called in a loop while a read waits.
 *   4. The process stays free to exit: nothing here holds the event loop (the test `webgpu exits` checks it).
 *
 * Models never import this file: `loadBackend()` (src/backend.ts / src/runtime/) starts it; the model code runs
 * unchanged on whatever backend tfjs has.
 */
/// <reference types="@webgpu/types" />
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfCore from '@tensorflow/tfjs-core';

type Tf = typeof tfCore;

/** What the log line and `wm bench` say about the adapter. */
export interface WebGpuAdapterSummary {
  vendor: string;
  architecture: string;
  /** The driver's description, e.g. 'OpenGL version 4.5 (Core Profile) Mesa 22.3.6' or an NVIDIA device name. */
  description: string;
  device: string;
  /** true for CPU implementations (Mesa llvmpipe / lavapipe, SwiftShader): correct, but slower than wasm. */
  software: boolean;
  /** Dawn's backend: 'vulkan', 'opengl', 'metal', 'd3d12' ... */
  dawnBackend: string;
  featureLevel: 'core' | 'compatibility';
  maxStorageBuffersPerShaderStage: number;
  maxBufferSize: number;
}

/** A device error (validation, out of memory, internal) or a lost device, raised at the next read. */
export class WebGpuDeviceError extends Error {
  constructor(message: string, readonly lost: boolean) {
    super(message);
    this.name = 'WebGpuDeviceError';
  }
}

/**
 * Limits the models' kernels need (tfjs' matmul and reduction programs use 256-thread workgroups with shared
 * memory; element-wise programs bind up to inputs + output storage buffers). WebGPU guarantees the first three;
 * the check names an adapter that offers less instead of failing inside a kernel.
 */
export const REQUIRED_LIMITS: Readonly<Record<string, number>> = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
};

const SOFTWARE_RE = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render/i;

const MESA_FIX = 'on Debian/Ubuntu: apt-get install libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri (scripts/install-system-deps.sh installs them)';
const VULKAN_FIX = 'on Debian/Ubuntu: apt-get install libvulkan1, plus the GPU driver (NVIDIA: its Vulkan ICD nvidia_icd.json; in Docker run with --gpus all and NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics)';

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/** Loads dawn.node through the `webgpu` package, or throws naming what is missing and the fix. */
export function loadDawn(): DawnModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const req = require;
  let dir: string;
  try {
    dir = path.dirname(req.resolve('webgpu/package.json'));
  } catch {
    throw new Error("Dawn cannot load: the npm package 'webgpu' (Dawn's Node build) is not installed; run `pnpm install` in wonderful-matrices (it is a dependency)");
  }
  const arch = process.platform === 'darwin' ? 'universal' : process.arch;
  const binary = path.join(dir, 'dist', `${process.platform}-${arch}`, 'dawn.node');
  if (!fs.existsSync(binary)) {
    throw new Error(`Dawn cannot load: ${binary} is missing (the 'webgpu' package ships dawn.node for linux-x64, linux-arm64, darwin and win32 only; this is ${process.platform}-${process.arch}); reinstall with \`pnpm install\``);
  }
  try {
    return req('webgpu') as DawnModule;
  } catch (e) {
    throw new Error(`Dawn cannot load: ${binary}: ${firstLine(e)} (dawn.node needs glibc >= 2.31 and libstdc++; a missing libvulkan.so.1 is fine for the software adapter: ${VULKAN_FIX})`);
  }
}

/** Installs Dawn's WebGPU classes (GPUBuffer, GPUBufferUsage, ...) and `navigator.gpu` on globalThis, once. */
function installGlobals(dawn: DawnModule, gpu: GPU): void {
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(dawn.globals)) if (!(k in g)) g[k] = v;
  const nav = (g.navigator ??= {}) as Record<string, unknown>;
  // Node >= 21 has a read-only navigator with no `gpu`; define it (tfjs-backend-webgpu looks for navigator.gpu).
  Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true, enumerable: true });
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n').find((l) => l.trim() !== '')?.trim() ?? msg;
}

/** Is a Vulkan loader and at least one driver (ICD) present? Checked before asking Dawn, which logs loudly when not. */
export function vulkanProblem(): string | null {
  if (process.platform !== 'linux') return null;
  const libDirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/local/lib'];
  const extra = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  if (![...extra, ...libDirs].some((d) => fs.existsSync(path.join(d, 'libvulkan.so.1')))) return 'no Vulkan loader (libvulkan.so.1)';
  const env = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (env) return null;
  const icdDirs = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  const icds = icdDirs.flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.endsWith('.json')) : []));
  if (!icds.length) return `no Vulkan driver (no ICD file in ${icdDirs.join(', ')})`;
  return null;
}

/**
 * Dawn's Node binding runs its event processing (buffer maps, errors, device loss) from a native callback it passes
 * to `setImmediate` whenever work is pending. Capturing that callback lets a synchronous read drive it. Called only
 * while the device starts; `setImmediate` is restored at once.
 */
async function captureDawnTick(work: () => Promise<void>): Promise<(() => void) | null> {
  const original = globalThis.setImmediate;
  let tick: (() => void) | null = null;
  const spy = function (this: unknown, fn: (...a: unknown[]) => void, ...args: unknown[]) {
    if (!tick && typeof fn === 'function' && /\[native code\]/.test(Function.prototype.toString.call(fn))) tick = fn as () => void;
    return original(fn, ...args);
  } as typeof setImmediate;
  globalThis.setImmediate = Object.assign(spy, original);
  try {
    await work();
  } finally {
    globalThis.setImmediate = original;
  }
  return tick;
}

interface Started {
  device: GPUDevice;
  adapter: GPUAdapter;
  summary: WebGpuAdapterSummary;
}

/** Adapter + device with the adapter's own limits; throws naming what is missing and the fix. */
async function requestDevice(dawn: DawnModule, allowSoftware: boolean, limits: 'adapter' | 'default'): Promise<Started & { gpu: GPU }> {
  const tried: string[] = [];
  let gpu: GPU | null = null;
  let adapter: GPUAdapter | null = null;
  let dawnBackend = '';
  let featureLevel: 'core' | 'compatibility' = 'core';
  const hw = vulkanProblem();
  if (hw) tried.push(`GPU: ${hw}`);
  else {
    dawnBackend = process.platform === 'linux' ? 'vulkan' : 'default';
    gpu = dawn.create(process.platform === 'linux' ? ['backend=vulkan'] : []);
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) tried.push(`GPU: Dawn found no ${dawnBackend} adapter`);
    else if (isSoftware(adapter.info) && !allowSoftware) {
      tried.push(`GPU: only a software Vulkan adapter (${adapter.info.description || adapter.info.device})`);
      adapter = null;
    }
  }
  if (!adapter) {
    if (!allowSoftware) {
      throw new Error(`no hardware WebGPU adapter (${tried.join('; ')}; fix: ${VULKAN_FIX}); a software adapter is never picked automatically: WM_BACKEND=webgpu forces it`);
    }
    // Mesa without a display: the project sets what EGL needs itself (a user sets nothing but WM_BACKEND=webgpu).
    process.env.EGL_PLATFORM ??= 'surfaceless';
    dawnBackend = 'opengl';
    featureLevel = 'compatibility';
    gpu = dawn.create(['backend=opengl']);
    adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
    if (!adapter) {
      tried.push("software: Dawn found no OpenGL adapter through EGL (Mesa's llvmpipe)");
      throw new Error(`no WebGPU adapter: ${tried.join('; ')}; fix: for a GPU, ${VULKAN_FIX}; for the software adapter, ${MESA_FIX}`);
    }
  }
  const info = adapter.info;
  const missing = Object.entries(REQUIRED_LIMITS)
    .filter(([k, need]) => ((adapter!.limits as unknown as Record<string, number>)[k] ?? 0) < need)
    .map(([k, need]) => `${k} ${(adapter!.limits as unknown as Record<string, number>)[k]} < ${need}`);
  if (missing.length) {
    throw new Error(`WebGPU adapter '${info.description || info.device}' lacks limits the models need: ${missing.join(', ')}; use another GPU or driver, or WM_BACKEND=wasm`);
  }
  const requiredLimits: Record<string, number> = {};
  if (limits === 'adapter') {
    for (const k in adapter.limits) {
      const v = (adapter.limits as unknown as Record<string, unknown>)[k];
      if (typeof v === 'number') requiredLimits[k] = v;
    }
  }
  const requiredFeatures: GPUFeatureName[] = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'wonderful-matrices' });
  } catch (e) {
    throw new Error(`WebGPU adapter '${info.description || info.device}' refused a device with its own limits: ${firstLine(e)}`);
  }
  const summary: WebGpuAdapterSummary = {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description,
    device: info.device,
    software: isSoftware(info),
    dawnBackend,
    featureLevel,
    maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
    maxBufferSize: device.limits.maxBufferSize,
  };
  return { gpu: gpu!, adapter, device, summary };
}

function isSoftware(info: GPUAdapterInfo): boolean {
  return Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter) || SOFTWARE_RE.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
}

/** The adapter as the backend log line shows it. */
export function describeAdapter(s: WebGpuAdapterSummary): string {
  const name = [s.vendor, s.architecture, s.device, s.description].filter((x, i, a) => x && a.indexOf(x) === i).join(', ');
  const kind = s.software ? `software adapter (CPU, slower than wasm; ${s.dawnBackend}, ${s.featureLevel} mode)` : `hardware adapter via ${s.dawnBackend}`;
  return `${name || 'unnamed adapter'}: ${kind}`;
}

/** The running device and its guard (one per process). */
interface WebGpuState extends Started {
  tick: (() => void) | null;
  problem: WebGpuDeviceError | null;
}
let state: WebGpuState | null = null;

/** The adapter in use, once `startWebGpu` succeeded. */
export function webGpuAdapter(): WebGpuAdapterSummary | undefined {
  return state?.summary;
}

/** The GPU device in use (tests use it to simulate a lost device). */
export function webGpuDevice(): GPUDevice | undefined {
  return state?.device;
}

/** Throws the recorded device error or loss, if any. */
export function assertWebGpuHealthy(): void {
  if (state?.problem) throw state.problem;
}

export interface StartWebGpuOptions {
  /** Accept a software adapter (WM_BACKEND=webgpu); the automatic choice passes false. */
  allowSoftware: boolean;
  /**
   * 'adapter' (always, outside tests): request the adapter's own limits. 'default' reproduces what tfjs does on its
   * own (WebGPU's default limits, AddN not split), for the test that proves the guard turns the resulting validation error into a
   * thrown error instead of zeros.
   */
  limits?: 'adapter' | 'default';
}

/**
 * Starts Dawn, picks the adapter, requests the device and registers it as tfjs backend `webgpu` (not yet selected:
 * the caller runs `tf.setBackend('webgpu')`). Throws a message naming what is missing and the fix.
 */
export async function startWebGpu(tf: Tf, options: StartWebGpuOptions): Promise<WebGpuAdapterSummary> {
  if (state) {
    if (!options.allowSoftware && state.summary.software) throw new Error('only a software WebGPU adapter is running; a software adapter is never picked automatically');
    return state.summary;
  }
  const dawn = loadDawn();
  let started!: Started & { gpu: GPU };
  const tick = await captureDawnTick(async () => {
    started = await requestDevice(dawn, options.allowSoftware, options.limits ?? 'adapter');
    // One round trip, so Dawn hands its event callback to setImmediate while the spy listens.
    await started.device.queue.onSubmittedWorkDone();
  });
  installGlobals(dawn, started.gpu);
  const st: WebGpuState = { ...started, tick, problem: null };
  const record = (msg: string, lost: boolean) => {
    st.problem ??= new WebGpuDeviceError(msg, lost);
  };
  st.device.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    const kind = err.constructor?.name ?? 'GPUError';
    record(`WebGPU ${kind}: ${err.message.trim().split('\n').slice(0, 6).join(' | ')} (a kernel failed on the device; its result would have been zeros, so the computation stopped)`, false);
  });
  st.device.lost.then((info) => {
    if (info.reason === 'destroyed' && state !== st) return; // our own shutdown
    record(`WebGPU device lost (${info.reason}: ${info.message.trim() || 'no message'}): the GPU was reset, its driver crashed or it ran out of memory; restart the process (a training run resumes from its last checkpoint with --resume)`, true);
  });
  // tfjs-backend-webgpu registers kernels on import; its own backend factory only if navigator.gpu existed then.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const webgpuPkg = require('@tensorflow/tfjs-backend-webgpu') as { WebGPUBackend: new (device: GPUDevice, info?: GPUAdapterInfo) => tfCore.KernelBackend };
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => guardBackend(new webgpuPkg.WebGPUBackend(st.device, st.adapter.info), st, tf), 1);
  // Wide sums in chunks; the 'default' test mode keeps tfjs' own AddN so the guard test sees its validation error.
  if (options.limits !== 'default') splitWideAddN(tf, st.device.limits.maxStorageBuffersPerShaderStage - 1);
  state = st;
  return st.summary;
}

/**
 * tfjs' webgpu AddN binds every input as a storage buffer in one program, so `tf.addN` of more tensors than the
 * device's maxStorageBuffersPerShaderStage - 1 (15 on llvmpipe; the trainer sums one squared norm per parameter) is
 * a validation error. Sum in chunks of at most `maxInputs` instead (Concat already splits this way in tfjs).
 */
function splitWideAddN(tf: Tf, maxInputs: number): void {
  const original = tf.getKernel('AddN', 'webgpu');
  if (!original || (original.kernelFunc as { wmSplit?: boolean }).wmSplit) return;
  const base = original.kernelFunc;
  const kernelFunc = ((args: { inputs: tfCore.NamedTensorInfoMap; backend: tfCore.KernelBackend; attrs?: tfCore.NamedAttrMap }) => {
    let xs = Object.values(args.inputs) as tfCore.TensorInfo[]; // AddN's inputs are an array
    if (xs.length <= maxInputs) return base(args);
    const temps: tfCore.TensorInfo[] = [];
    while (xs.length > maxInputs) {
      const next: tfCore.TensorInfo[] = [];
      for (let i = 0; i < xs.length; i += maxInputs) {
        const chunk = xs.slice(i, i + maxInputs);
        if (chunk.length === 1) { next.push(chunk[0]); continue; }
        const part = base({ ...args, inputs: chunk as unknown as tfCore.NamedTensorInfoMap }) as tfCore.TensorInfo;
        temps.push(part);
        next.push(part);
      }
      xs = next;
    }
    const out = base({ ...args, inputs: xs as unknown as tfCore.NamedTensorInfoMap }) as tfCore.TensorInfo;
    for (const t of temps) args.backend.disposeData(t.dataId);
    return out;
  }) as tfCore.KernelFunc;
  (kernelFunc as { wmSplit?: boolean }).wmSplit = true;
  tf.unregisterKernel('AddN', 'webgpu');
  tf.registerKernel({ ...original, kernelFunc });
}

/** Seconds a synchronous read waits for the GPU before it reports a hang. */
const READ_TIMEOUT_S = Number(process.env.WM_WEBGPU_READ_TIMEOUT_S ?? 600);

type BackendInternals = tfCore.KernelBackend & {
  tensorMap: { get(id: object): { values: unknown; dtype: string; resource: GPUBuffer | null; shape: number[] } ; has(id: object): boolean };
  bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer; releaseBuffer(b: GPUBuffer): void };
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  commandEncoder: GPUCommandEncoder;
  convertAndCacheOnCPU(id: object, v: unknown): unknown;
};

/** GPU programs dispatched so far (every tfjs webgpu kernel that ran on the device; `wm bench` reports per step). */
let dispatches = 0;
export function webGpuDispatches(): number {
  return dispatches;
}
let dispatchObserver: ((program: string) => void) | null = null;
/** Counts one GPU program (tfjs' own, or a fused kernel's from webgpu-kernels.ts) named by its shader key. */
export function noteWebGpuDispatch(program: string): void {
  dispatches++;
  dispatchObserver?.(program);
}
/** Calls `f` with each dispatched program's name until called with null (`scripts/bench-kernels.ts` breaks counts down). */
export function observeWebGpuDispatches(f: ((program: string) => void) | null): void {
  dispatchObserver = f;
}

/**
 * tfjs' webgpu Softmax starts each row's running max at -3.402823e+38, which is larger than float32's lowest value
 * (-3.4028235e+38). A row whose entries are all float32-min (a padding query, masked everywhere with the float32
 * min bias like torch's masked_fill) then gets max -3.402823e+38, every exp() underflows to 0, and 0 / 0 = NaN where
 * torch and wasm give a uniform row. Start the max at the row's first entry instead (same program otherwise; a
 * separate shader key so the pipeline cache keeps them apart). Refuses to run if the shader text changed.
 */
const SOFTMAX_MAX_INIT = 'var threadMax = -3.402823e+38f;';
function fixSoftmaxOfMaskedRows(b: tfCore.KernelBackend): void {
  type Program = { shaderKey: string; getUserCode(): string };
  const target = b as unknown as { runWebGPUProgram(p: Program, ...rest: unknown[]): unknown };
  const run = target.runWebGPUProgram.bind(target);
  target.runWebGPUProgram = (program: Program, ...rest: unknown[]) => {
    noteWebGpuDispatch(program.shaderKey);
    if (program.shaderKey === 'softmax') {
      const code = program.getUserCode();
      if (!code.includes(SOFTMAX_MAX_INIT)) throw new Error(`webgpu: tfjs' softmax shader changed (no '${SOFTMAX_MAX_INIT}'); src/runtime/webgpu.ts fixSoftmaxOfMaskedRows needs updating`);
      program.shaderKey = 'softmax-wm';
      program.getUserCode = () => code.replace(SOFTMAX_MAX_INIT, 'var threadMax = getLogits(row, 0);');
    }
    return run(program, ...rest);
  };
}

/** Adds the device-error guard to reads, and a synchronous read that works in Node (see the file comment). */
function guardBackend(backend: tfCore.KernelBackend, st: WebGpuState, tf: Tf): tfCore.KernelBackend {
  const b = backend as BackendInternals;
  fixSoftmaxOfMaskedRows(b);
  const read = b.read.bind(b);
  const check = () => {
    if (st.problem) throw st.problem;
  };
  b.read = async (dataId: object) => {
    check();
    const v = await read(dataId);
    st.tick?.(); // deliver errors raised by the work this read waited for
    check();
    return v;
  };
  b.readSync = (dataId: object) => {
    check();
    const d = b.tensorMap.get(dataId);
    if (d.values != null || d.dtype === 'string') return d.values as tfCore.BackendValues;
    if (!d.resource) throw new Error(`webgpu: tensor data ${JSON.stringify(dataId)} has neither values nor a GPU buffer`);
    if (!st.tick) throw new Error("webgpu: synchronous reads need Dawn's event callback, which was not captured at start; use `await tensor.data()`");
    const size = d.resource.size;
    const staging = b.bufferManager.acquireBuffer(size, GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ);
    b.ensureCommandEncoderReady();
    b.endComputePassEncoder();
    b.commandEncoder.copyBufferToBuffer(d.resource, 0, staging, 0, size);
    b.submitQueue();
    staging.mapAsync(GPUMapMode.READ).catch(() => { /* a lost device rejects; the guard below reports it */ });
    const deadline = performance.now() + READ_TIMEOUT_S * 1000;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    let spins = 0;
    while (staging.mapState !== 'mapped') {
      st.tick!();
      if (st.problem) break;
      if (++spins > 64) Atomics.wait(nap, 0, 0, 0.05); // the GPU is busy: poll every 50 µs instead of spinning
      if (performance.now() > deadline) {
        throw new WebGpuDeviceError(`webgpu: a read waited ${READ_TIMEOUT_S} s for the GPU (WM_WEBGPU_READ_TIMEOUT_S); the device is hung`, true);
      }
    }
    st.tick!();
    check();
    const raw = staging.getMappedRange().slice(0);
    staging.unmap();
    b.bufferManager.releaseBuffer(staging);
    const vals = tf.util.convertBackendValuesAndArrayBuffer(raw, d.dtype as tfCore.DataType);
    b.convertAndCacheOnCPU(dataId, vals);
    return vals as tfCore.BackendValues;
  };
  return b;
}
