/**
 * WGSL programs for the fused ops of src/ops/fused.ts, registered as tfjs kernels of the webgpu backend
 * (`registerWebGpuFusedKernels`, called by `loadBackend()` after the device started; `WM_FUSED_KERNELS=0` leaves
 * them unregistered and src/ops/fused.ts also checks it at each call, so every op runs its plain-tfjs fallback).
 *
 * Why: a training step of doge-tiny ran ~1,800 GPU programs, most of them element-wise ops of a few thousand
 * elements (AdamW: ~15 per parameter, RMSNorm: 6 forward and 8 backward, SwiGLU and the dynamic mask likewise);
 * on a GPU each costs a launch of a few µs whatever its size, so the step is dispatch-bound. Each program below does
 * the work of one fused op in one dispatch (two for some gradients), reading and writing each element once.
 *
 * tfjs' own program machinery (`runWebGPUProgram`) binds one output and read-only inputs; AdamW writes three
 * tensors (p, m, v) and the gradients two, so these programs are dispatched here with their own pipelines and
 * bind groups on the backend's command encoder (`dispatch` below), the way tfjs records its programs: buffers come
 * from the backend's allocator, are marked in use until the queue is submitted, and the batch is submitted at
 * tfjs' WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE. Every dispatch is counted with tfjs' own (`noteWebGpuDispatch`).
 * The grid-stride loops cap the workgroup count at 65,535 per dimension (WebGPU's limit) for any tensor size.
 */
/// <reference types="@webgpu/types" />
import type * as tfCore from '@tensorflow/tfjs-core';
import { FUSED_KERNEL_NAMES } from '../ops/fused';
import { noteWebGpuDispatch } from './webgpu';

type Tf = typeof tfCore;
type TensorInfo = tfCore.TensorInfo;

/** The parts of tfjs' WebGPUBackend (4.22) a custom dispatch uses. */
interface WebGpuBackendInternals {
  device: GPUDevice;
  queue: GPUQueue;
  makeTensorInfo(shape: number[], dtype: tfCore.DataType): TensorInfo;
  uploadToGPU(dataId: object): void;
  tensorToBinding(t: TensorInfo): GPUBindingResource;
  disposeData(dataId: object): boolean;
  commandQueueOwnedIds: WeakSet<object>;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  commandEncoder: GPUCommandEncoder;
  computePassEncoder: GPUComputePassEncoder | null;
  dispatchCountInPass: number;
  activeTimers: unknown[] | null;
  bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer };
  uniformPendingDisposal: GPUBuffer[];
}

const WG = 256; // threads per workgroup of the element-wise and reduction programs (WebGPU's guaranteed maximum)
const MAX_GROUPS = 65535;

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function pipelineFor(device: GPUDevice, key: string, code: () => string): GPUComputePipeline {
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, (cache = new Map()));
  let p = cache.get(key);
  if (!p) {
    const module = device.createShaderModule({ code: code(), label: key });
    p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
    cache.set(key, p);
  }
  return p;
}

type Uniform = ['u32' | 'f32', number];

/**
 * One dispatch of program `key`: `buffers` bound at 0..n-1 in order (outputs and inputs alike; the WGSL says which
 * it writes), then the uniforms (4-byte scalars in order) at binding n.
 */
function dispatch(b: WebGpuBackendInternals, key: string, code: () => string, buffers: TensorInfo[], uniforms: Uniform[], groups: [number, number?]): void {
  const pipeline = pipelineFor(b.device, key, code);
  for (const t of buffers) b.uploadToGPU(t.dataId);
  const size = Math.max(16, Math.ceil((4 * uniforms.length) / 16) * 16);
  const data = new DataView(new ArrayBuffer(size));
  uniforms.forEach(([type, v], i) => (type === 'u32' ? data.setUint32(4 * i, v, true) : data.setFloat32(4 * i, v, true)));
  const ubuf = b.bufferManager.acquireBuffer(size, GPUBufferUsage.COPY_DST | GPUBufferUsage.UNIFORM);
  b.queue.writeBuffer(ubuf, 0, data.buffer, 0, size);
  b.uniformPendingDisposal.push(ubuf); // released by tfjs when the queue is submitted
  const entries: GPUBindGroupEntry[] = buffers.map((t, i) => ({ binding: i, resource: b.tensorToBinding(t) }));
  entries.push({ binding: buffers.length, resource: { buffer: ubuf } });
  for (const t of buffers) b.commandQueueOwnedIds.add(t.dataId); // not freed before the queue is submitted
  const bindGroup = b.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  b.ensureCommandEncoderReady();
  if (!b.computePassEncoder) b.computePassEncoder = b.commandEncoder.beginComputePass({});
  b.computePassEncoder.setPipeline(pipeline);
  b.computePassEncoder.setBindGroup(0, bindGroup);
  b.computePassEncoder.dispatchWorkgroups(groups[0], groups[1] ?? 1);
  b.dispatchCountInPass++;
  noteWebGpuDispatch(key);
  // tfjs' batching rule; under tf.time / tf.profile (activeTimers) it submits each program, so do the same
  if (b.activeTimers != null || b.dispatchCountInPass >= deferredBatch) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
}
/** tfjs' WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE, read when the kernels are registered. */
let deferredBatch = 15;

function output(b: WebGpuBackendInternals, shape: number[]): TensorInfo {
  const t = b.makeTensorInfo(shape, 'float32');
  b.uploadToGPU(t.dataId);
  return t;
}

const groupsFor = (n: number): [number] => [Math.max(1, Math.min(MAX_GROUPS, Math.ceil(n / WG)))];
/** One workgroup per row, rows laid out on a 2-D grid (WebGPU caps each dimension at 65,535 workgroups). */
const rowGrid = (rows: number): [number, number] => {
  const nx = Math.min(rows, MAX_GROUPS);
  return [nx, Math.ceil(rows / nx)];
};

const STORAGE = (i: number, name: string, write: boolean) => `@group(0) @binding(${i}) var<storage, ${write ? 'read_write' : 'read'}> ${name}: array<f32>;`;

/** A grid-stride loop over i in [0, n) (n a uniform field) inside `main`. */
const STRIDE_MAIN = (body: string, n = 'u.n') => `
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * ${WG}u;
  for (var i = gid.x; i < ${n}; i = i + stride) {
${body}
  }
}`;

/** tfjs' softplus (the same thresholds as its cpu and webgpu kernels): x when large, exp(x) when very negative. */
const SOFTPLUS = `
fn softplus(x: f32) -> f32 {
  let threshold = log(1.1920928955078125e-7) + 2.0;
  if (x > -threshold) { return x; }
  let e = exp(x);
  if (x < threshold) { return e; }
  return log(e + 1.0);
}
fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }`;

const ADAMW_WGSL = () => `
struct U { n: u32, b1: f32, b2: f32, c1: f32, c2: f32, scale: f32, decay: f32, step: f32, bc2: f32, eps: f32 }
${STORAGE(0, 'pOut', true)}
${STORAGE(1, 'mOut', true)}
${STORAGE(2, 'vOut', true)}
${STORAGE(3, 'p', false)}
${STORAGE(4, 'm', false)}
${STORAGE(5, 'v', false)}
${STORAGE(6, 'g', false)}
@group(0) @binding(7) var<uniform> u: U;
${STRIDE_MAIN(`
    let gi = g[i] * u.scale;
    let mi = m[i] * u.b1 + gi * u.c1;
    let vi = v[i] * u.b2 + (gi * gi) * u.c2;
    mOut[i] = mi;
    vOut[i] = vi;
    pOut[i] = p[i] * u.decay - (mi / (sqrt(vi) / u.bc2 + u.eps)) * u.step;`)}`;

/** Partial sums of x^2 over k inputs: workgroup w of the dispatch adds into partial[offset + w]. */
const SUMSQ_WGSL = (k: number) => () => `
struct U { ${Array.from({ length: k }, (_, i) => `n${i}: u32,`).join(' ')} offset: u32 }
${STORAGE(0, 'partial', true)}
${Array.from({ length: k }, (_, i) => STORAGE(i + 1, `x${i}`, false)).join('\n')}
@group(0) @binding(${k + 1}) var<uniform> u: U;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * ${WG}u;
  var s = 0.0;
${Array.from({ length: k }, (_, i) => `  for (var i = wid.x * ${WG}u + lid.x; i < u.n${i}; i = i + stride) { let a = x${i}[i]; s = s + a * a; }`).join('\n')}
  red[lid.x] = s;
  workgroupBarrier();
  for (var h = ${WG / 2}u; h > 0u; h = h >> 1u) {
    if (lid.x < h) { red[lid.x] = red[lid.x] + red[lid.x + h]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { partial[u.offset + wid.x] = red[0]; }
}`;

/** Sum of partial[0..n) into out[0] (one workgroup). */
const SUM_WGSL = () => `
struct U { n: u32 }
${STORAGE(0, 'out', true)}
${STORAGE(1, 'partial', false)}
@group(0) @binding(2) var<uniform> u: U;
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var s = 0.0;
  for (var i = lid.x; i < u.n; i = i + ${WG}u) { s = s + partial[i]; }
  red[lid.x] = s;
  workgroupBarrier();
  for (var h = ${WG / 2}u; h > 0u; h = h >> 1u) {
    if (lid.x < h) { red[lid.x] = red[lid.x] + red[lid.x + h]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { out[0] = red[0]; }
}`;

const ROW_WG = 64; // threads per row of the RMSNorm programs (head dims are 32..128, hidden sizes 256..1024)

/** The row of a row-per-workgroup program (uniform: from workgroup ids), and its early exit past the last row. */
const ROW_HEAD = `
  let row = wid.y * u.nx + wid.x;
  if (row >= u.rows) { return; }
  let base = row * u.D;
  let wb = (row % u.wr) * u.D;`;
const TREE = (arr: string) => `
  for (var h = ${ROW_WG / 2}u; h > 0u; h = h >> 1u) {
    if (lid.x < h) { ${arr}[lid.x] = ${arr}[lid.x] + ${arr}[lid.x + h]; }
    workgroupBarrier();
  }`;

/** y = x * rsqrt(mean(x^2) + eps) * w, x [rows, D], w [wr, D] (row r uses w row r mod wr). */
const RMSNORM_WGSL = () => `
struct U { rows: u32, D: u32, wr: u32, nx: u32, eps: f32 }
${STORAGE(0, 'y', true)}
${STORAGE(1, 'x', false)}
${STORAGE(2, 'w', false)}
@group(0) @binding(3) var<uniform> u: U;
var<workgroup> red: array<f32, ${ROW_WG}>;
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {${ROW_HEAD}
  var s = 0.0;
  for (var d = lid.x; d < u.D; d = d + ${ROW_WG}u) { let a = x[base + d]; s = s + a * a; }
  red[lid.x] = s;
  workgroupBarrier();${TREE('red')}
  let r = inverseSqrt(red[0] / f32(u.D) + u.eps);
  for (var d = lid.x; d < u.D; d = d + ${ROW_WG}u) { y[base + d] = (x[base + d] * r) * w[wb + d]; }
}`;

/**
 * dx of RMSNorm, and r = rsqrt(mean(x^2) + eps) per row for the dw program. With g = dy * w and xhat = x r:
 * dx = r (g - xhat mean(g xhat)) = r (g - x r^2 sum(g x) / D).
 */
const RMSNORM_DX_WGSL = () => `
struct U { rows: u32, D: u32, wr: u32, nx: u32, eps: f32 }
${STORAGE(0, 'dx', true)}
${STORAGE(1, 'rOut', true)}
${STORAGE(2, 'dy', false)}
${STORAGE(3, 'x', false)}
${STORAGE(4, 'w', false)}
@group(0) @binding(5) var<uniform> u: U;
var<workgroup> red: array<f32, ${ROW_WG}>;
var<workgroup> red2: array<f32, ${ROW_WG}>;
@compute @workgroup_size(${ROW_WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {${ROW_HEAD}
  var sxx = 0.0;
  var sgx = 0.0;
  for (var d = lid.x; d < u.D; d = d + ${ROW_WG}u) {
    let a = x[base + d];
    sxx = sxx + a * a;
    sgx = sgx + dy[base + d] * w[wb + d] * a;
  }
  red[lid.x] = sxx;
  red2[lid.x] = sgx;
  workgroupBarrier();
  for (var h = ${ROW_WG / 2}u; h > 0u; h = h >> 1u) {
    if (lid.x < h) { red[lid.x] = red[lid.x] + red[lid.x + h]; red2[lid.x] = red2[lid.x] + red2[lid.x + h]; }
    workgroupBarrier();
  }
  let r = inverseSqrt(red[0] / f32(u.D) + u.eps);
  let c = r * r * red2[0] / f32(u.D);
  for (var d = lid.x; d < u.D; d = d + ${ROW_WG}u) {
    let g = dy[base + d] * w[wb + d];
    dx[base + d] = r * (g - x[base + d] * c);
  }
  if (lid.x == 0u) { rOut[row] = r; }
}`;

/** dw[j] = sum over rows n with n mod wr == j / D of dy x r (one thread per element of w). */
const RMSNORM_DW_WGSL = () => `
struct U { n: u32, rows: u32, D: u32, wr: u32 }
${STORAGE(0, 'dw', true)}
${STORAGE(1, 'dy', false)}
${STORAGE(2, 'x', false)}
${STORAGE(3, 'r', false)}
@group(0) @binding(4) var<uniform> u: U;
${STRIDE_MAIN(`
    let wrow = i / u.D;
    let d = i % u.D;
    var s = 0.0;
    for (var row = wrow; row < u.rows; row = row + u.wr) { let k = row * u.D + d; s = s + dy[k] * x[k] * r[row]; }
    dw[i] = s;`)}`;

/** silu(g) * u of gu [rows, 2I] -> [rows, I]. */
const SWIGLU_WGSL = () => `
struct U { n: u32, I: u32 }
${STORAGE(0, 'y', true)}
${STORAGE(1, 'gu', false)}
@group(0) @binding(2) var<uniform> u: U;
${SOFTPLUS}
${STRIDE_MAIN(`
    let row = i / u.I;
    let j = i % u.I;
    let g = gu[row * 2u * u.I + j];
    y[i] = (g * sigmoid(g)) * gu[row * 2u * u.I + u.I + j];`)}`;

/** d gu [rows, 2I] from dy [rows, I]: dg = dy u (s + g s (1 - s)), du = dy g s, s = sigmoid(g). */
const SWIGLU_GRAD_WGSL = () => `
struct U { n: u32, I: u32 }
${STORAGE(0, 'dgu', true)}
${STORAGE(1, 'dy', false)}
${STORAGE(2, 'gu', false)}
@group(0) @binding(3) var<uniform> u: U;
${SOFTPLUS}
${STRIDE_MAIN(`
    let row = i / u.I;
    let j = i % u.I;
    let gi = row * 2u * u.I + j;
    let g = gu[gi];
    let up = gu[gi + u.I];
    let s = sigmoid(g);
    let sg = g * s;
    dgu[gi] = dy[i] * up * (s + sg * (1.0 - s));
    dgu[gi + u.I] = dy[i] * sg;`)}`;

/** d[b, c, t] = exp(A[c] softplus(dt[b, t, c])) (isExp) or A[c] softplus(dt[b, t, c]); dt [B, T, nm] -> [B, nm, T]. */
const DYNMASK_WGSL = () => `
struct U { n: u32, T: u32, nm: u32, isExp: u32 }
${STORAGE(0, 'd', true)}
${STORAGE(1, 'dt', false)}
${STORAGE(2, 'A', false)}
@group(0) @binding(3) var<uniform> u: U;
${SOFTPLUS}
${STRIDE_MAIN(`
    let b = i / (u.nm * u.T);
    let c = (i / u.T) % u.nm;
    let t = i % u.T;
    let a = A[c] * softplus(dt[(b * u.T + t) * u.nm + c]);
    if (u.isExp == 1u) { d[i] = exp(a); } else { d[i] = a; }`)}`;

/** d dt [B, T, nm] = dy[b, c, t] e A[c] sigmoid(dt), e = d for 'exp' (1 for 'linear'). */
const DYNMASK_DDT_WGSL = () => `
struct U { n: u32, T: u32, nm: u32, isExp: u32 }
${STORAGE(0, 'ddt', true)}
${STORAGE(1, 'dy', false)}
${STORAGE(2, 'dt', false)}
${STORAGE(3, 'A', false)}
@group(0) @binding(4) var<uniform> u: U;
${SOFTPLUS}
${STRIDE_MAIN(`
    let c = i % u.nm;
    let t = (i / u.nm) % u.T;
    let b = i / (u.nm * u.T);
    let x = dt[i];
    var e = 1.0;
    if (u.isExp == 1u) { e = exp(A[c] * softplus(x)); }
    ddt[i] = dy[(b * u.nm + c) * u.T + t] * e * A[c] * sigmoid(x);`)}`;

/** dA[c] = sum over b, t of dy[b, c, t] e softplus(dt[b, t, c]) (one workgroup per head c). */
const DYNMASK_DA_WGSL = () => `
struct U { BT: u32, T: u32, nm: u32, isExp: u32 }
${STORAGE(0, 'dA', true)}
${STORAGE(1, 'dy', false)}
${STORAGE(2, 'dt', false)}
${STORAGE(3, 'A', false)}
@group(0) @binding(4) var<uniform> u: U;
${SOFTPLUS}
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x;
  var s = 0.0;
  for (var k = lid.x; k < u.BT; k = k + ${WG}u) {
    let b = k / u.T;
    let t = k % u.T;
    let sp = softplus(dt[k * u.nm + c]);
    var e = 1.0;
    if (u.isExp == 1u) { e = exp(A[c] * sp); }
    s = s + dy[(b * u.nm + c) * u.T + t] * e * sp;
  }
  red[lid.x] = s;
  workgroupBarrier();
  for (var h = ${WG / 2}u; h > 0u; h = h >> 1u) {
    if (lid.x < h) { red[lid.x] = red[lid.x] + red[lid.x + h]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { dA[c] = red[0]; }
}`;

/**
 * RoPE of x [B, T, H, hd] with tables [tb, T, 1, hd] (tb = 1 or B): y[i] = x[i] cos[i] + x[sw(i)] sin[i], sw swapping
 * the halves. With grad = 1 the gradient instead (x = dy): dx[j] = dy[j] cos[j] + dy[sw(j)] sin[sw(j)].
 */
const ROPE_WGSL = () => `
struct U { n: u32, T: u32, H: u32, hd: u32, tb: u32, grad: u32 }
${STORAGE(0, 'y', true)}
${STORAGE(1, 'x', false)}
${STORAGE(2, 'cosT', false)}
${STORAGE(3, 'sinT', false)}
@group(0) @binding(4) var<uniform> u: U;
${STRIDE_MAIN(`
    let half = u.hd / 2u;
    let k = i % u.hd;
    let bt = i / (u.hd * u.H);
    var row = bt % u.T;
    if (u.tb > 1u) { row = bt; }
    let sw = select(k - half, k + half, k < half);
    let tab = row * u.hd;
    if (u.grad == 1u) {
      y[i] = x[i] * cosT[tab + k] + x[i - k + sw] * sinT[tab + sw];
    } else {
      y[i] = x[i] * cosT[tab + k] + x[i - k + sw] * sinT[tab + k];
    }`)}`;

type KernelArgs = { inputs: tfCore.NamedTensorInfoMap; backend: tfCore.KernelBackend; attrs?: tfCore.NamedAttrMap };
const num = (attrs: tfCore.NamedAttrMap | undefined, k: string): number => Number((attrs as Record<string, unknown>)[k]);

function adamwKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WebGpuBackendInternals;
  const { p, m, v, g } = inputs as Record<'p' | 'm' | 'v' | 'g', TensorInfo>;
  const n = p.shape.reduce((a, s) => a * s, 1);
  const outs = [output(b, p.shape), output(b, p.shape), output(b, p.shape)];
  const b1 = num(attrs, 'beta1'), b2 = num(attrs, 'beta2');
  dispatch(b, 'wm-adamw', ADAMW_WGSL, [...outs, p, m, v, g], [
    ['u32', n], ['f32', b1], ['f32', b2], ['f32', 1 - b1], ['f32', 1 - b2], ['f32', num(attrs, 'gradScale')],
    ['f32', num(attrs, 'decay')], ['f32', num(attrs, 'stepSize')], ['f32', num(attrs, 'bc2Sqrt')], ['f32', num(attrs, 'eps')],
  ], groupsFor(n));
  return outs;
}

const SUMSQ_GROUPS = 64; // partial sums per dispatch: enough workgroups to fill a GPU, few enough to add up in one

function sumOfSquaresKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as unknown as WebGpuBackendInternals;
  const xs = Object.values(inputs) as TensorInfo[];
  // inputs per dispatch: the device's storage-buffer limit minus the partials buffer (at most 7: one WGSL per count)
  const k = Math.max(1, Math.min(7, b.device.limits.maxStorageBuffersPerShaderStage - 1));
  const chunks = Math.ceil(xs.length / k);
  const partial = output(b, [chunks * SUMSQ_GROUPS]);
  for (let c = 0; c < chunks; c++) {
    const part = xs.slice(c * k, (c + 1) * k);
    const sizes = part.map((x) => x.shape.reduce((a, s) => a * s, 1));
    dispatch(b, `wm-sumsq-${part.length}`, SUMSQ_WGSL(part.length), [partial, ...part],
      [...sizes.map((s): Uniform => ['u32', s]), ['u32', c * SUMSQ_GROUPS]], [SUMSQ_GROUPS]);
  }
  const out = output(b, []);
  dispatch(b, 'wm-sum', SUM_WGSL, [out, partial], [['u32', chunks * SUMSQ_GROUPS]], [1]);
  b.disposeData(partial.dataId);
  return out;
}

function rmsShape(x: TensorInfo, w: TensorInfo): { rows: number; D: number; wr: number } {
  const D = x.shape[x.shape.length - 1];
  const size = (s: number[]) => s.reduce((a, v) => a * v, 1);
  return { rows: size(x.shape) / D, D, wr: size(w.shape) / D };
}

function rmsNormKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as unknown as WebGpuBackendInternals;
  const { x, w } = inputs as Record<'x' | 'w', TensorInfo>;
  const { rows, D, wr } = rmsShape(x, w);
  const y = output(b, x.shape);
  const grid = rowGrid(rows);
  dispatch(b, 'wm-rmsnorm', RMSNORM_WGSL, [y, x, w], [['u32', rows], ['u32', D], ['u32', wr], ['u32', grid[0]], ['f32', num(attrs, 'eps')]], grid);
  return y;
}

function rmsNormGradKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WebGpuBackendInternals;
  const { dy, x, w } = inputs as Record<'dy' | 'x' | 'w', TensorInfo>;
  const { rows, D, wr } = rmsShape(x, w);
  const dx = output(b, x.shape);
  const r = output(b, [rows]);
  const grid = rowGrid(rows);
  dispatch(b, 'wm-rmsnorm-dx', RMSNORM_DX_WGSL, [dx, r, dy, x, w], [['u32', rows], ['u32', D], ['u32', wr], ['u32', grid[0]], ['f32', num(attrs, 'eps')]], grid);
  const dw = output(b, w.shape);
  dispatch(b, 'wm-rmsnorm-dw', RMSNORM_DW_WGSL, [dw, dy, x, r], [['u32', wr * D], ['u32', rows], ['u32', D], ['u32', wr]], groupsFor(wr * D));
  b.disposeData(r.dataId);
  return [dx, dw];
}

function swigluKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as unknown as WebGpuBackendInternals;
  const { gu } = inputs as Record<'gu', TensorInfo>;
  const I = gu.shape[gu.shape.length - 1] / 2;
  const y = output(b, [...gu.shape.slice(0, -1), I]);
  const n = y.shape.reduce((a, s) => a * s, 1);
  dispatch(b, 'wm-swiglu', SWIGLU_WGSL, [y, gu], [['u32', n], ['u32', I]], groupsFor(n));
  return y;
}

function swigluGradKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const b = backend as unknown as WebGpuBackendInternals;
  const { dy, gu } = inputs as Record<'dy' | 'gu', TensorInfo>;
  const I = gu.shape[gu.shape.length - 1] / 2;
  const dgu = output(b, gu.shape);
  const n = dy.shape.reduce((a, s) => a * s, 1);
  dispatch(b, 'wm-swiglu-grad', SWIGLU_GRAD_WGSL, [dgu, dy, gu], [['u32', n], ['u32', I]], groupsFor(n));
  return dgu;
}

function dynamicMaskKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const b = backend as unknown as WebGpuBackendInternals;
  const { dt, A } = inputs as Record<'dt' | 'A', TensorInfo>;
  const [B, T, nm] = dt.shape;
  const d = output(b, [B, nm, T]);
  const n = B * T * nm;
  dispatch(b, 'wm-dynmask', DYNMASK_WGSL, [d, dt, A], [['u32', n], ['u32', T], ['u32', nm], ['u32', (attrs as { isExp?: boolean }).isExp ? 1 : 0]], groupsFor(n));
  return d;
}

function dynamicMaskGradKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const b = backend as unknown as WebGpuBackendInternals;
  const { dy, dt, A } = inputs as Record<'dy' | 'dt' | 'A', TensorInfo>;
  const [B, T, nm] = dt.shape;
  const isExp = (attrs as { isExp?: boolean }).isExp ? 1 : 0;
  const ddt = output(b, dt.shape);
  const n = B * T * nm;
  dispatch(b, 'wm-dynmask-ddt', DYNMASK_DDT_WGSL, [ddt, dy, dt, A], [['u32', n], ['u32', T], ['u32', nm], ['u32', isExp]], groupsFor(n));
  const dA = output(b, A.shape);
  dispatch(b, 'wm-dynmask-da', DYNMASK_DA_WGSL, [dA, dy, dt, A], [['u32', B * T], ['u32', T], ['u32', nm], ['u32', isExp]], [nm]);
  return [ddt, dA];
}

function ropeKernel(grad: boolean) {
  return ({ inputs, backend }: KernelArgs): TensorInfo => {
    const b = backend as unknown as WebGpuBackendInternals;
    const { x, cos, sin } = inputs as Record<'x' | 'cos' | 'sin', TensorInfo>;
    const [B, T, H, hd] = x.shape;
    const y = output(b, x.shape);
    const n = B * T * H * hd;
    dispatch(b, grad ? 'wm-rope-grad' : 'wm-rope', ROPE_WGSL, [y, x, cos, sin], [['u32', n], ['u32', T], ['u32', H], ['u32', hd], ['u32', cos.shape[0]], ['u32', grad ? 1 : 0]], groupsFor(n));
    return y;
  };
}

const KERNELS: [string, (args: KernelArgs) => TensorInfo | TensorInfo[]][] = [
  [FUSED_KERNEL_NAMES.adamwStep, adamwKernel],
  [FUSED_KERNEL_NAMES.sumOfSquares, sumOfSquaresKernel],
  [FUSED_KERNEL_NAMES.rmsNorm, rmsNormKernel],
  [FUSED_KERNEL_NAMES.rmsNormGrad, rmsNormGradKernel],
  [FUSED_KERNEL_NAMES.swiglu, swigluKernel],
  [FUSED_KERNEL_NAMES.swigluGrad, swigluGradKernel],
  [FUSED_KERNEL_NAMES.dynamicMask, dynamicMaskKernel],
  [FUSED_KERNEL_NAMES.dynamicMaskGrad, dynamicMaskGradKernel],
  [FUSED_KERNEL_NAMES.rope, ropeKernel(false)],
  [FUSED_KERNEL_NAMES.ropeGrad, ropeKernel(true)],
];

/**
 * Registers the fused kernels for the webgpu backend (idempotent). Returns false, registering nothing, when
 * `WM_FUSED_KERNELS=0`.
 */
export function registerWebGpuFusedKernels(tf: Tf): boolean {
  if (process.env.WM_FUSED_KERNELS === '0') return false;
  deferredBatch = Number(tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE')) || 15;
  for (const [kernelName, kernelFunc] of KERNELS) {
    if (tf.getKernel(kernelName, 'webgpu')) continue;
    tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: kernelFunc as unknown as tfCore.KernelFunc });
  }
  return true;
}
