/**
 * The wasm backend's kernel patches, in one place. `installWasmKernelPatches(tf)` (called by `loadBackend()` in
 * backend.ts before the wasm backend starts, never as an import side effect) re-registers a few tfjs-backend-wasm 4.22 kernels with faster versions computing the same numbers; it touches no
 * other backend and is a no-op when the wasm backend is not registered. Each patch is tested against the kernel it
 * replaces (tests/ops-kernels.test.ts).
 *
 * Why these kernels (measured in docs/PERFORMANCE.md):
 *  - BatchMatMul. The wasm kernel sends a product to XNNPACK's fast GEMM only when neither operand is transposed and
 *    both batch sizes are 1; everything else (every matmul gradient, every `x W^T`, attention's batched products)
 *    runs a naive C loop at 1-3 GFLOP/s instead of ~45. The patch (a) transposes a transposed operand explicitly,
 *    (b) folds A's batch into its rows when B is shared (one [b*M, K] x [K, N] GEMM), (c) runs a real batch as one
 *    GEMM per batch entry on views of the heap, without any tfjs op per slice, (d) of C = op(A) op(B) and
 *    C^T = op(B)^T op(A)^T picks the one that moves fewer elements, (e) splits a long shared axis into chunks that
 *    stay in cache.
 *  - Slice: the wasm kernel copies the whole input out of the heap for every slice; the patch copies only the
 *    requested blocks.
 *  - SplitV (tf.split): the wasm kernel calls the plain slice of its own module, not the registered Slice kernel, so
 *    a split into k pieces copied the whole input out of the heap k times (plus the garbage collection of those
 *    copies): most of the MQAR SSD block's time, whose in_proj output [b, T, 2E + 2N + H] is split twice per layer.
 *    The patch runs the patched Slice per piece.
 *  - Identity (every tensor saved for backprop is cloned through it): share the data with a reference count, as the
 *    wasm Reshape kernel does, instead of copying (tfjs tensors are immutable).
 *  - BatchMatMul with a native BLAS (`setWasmNativeBlas`, native-blas.ts): every float32 product, any
 *    transposes, batch or broadcast batch, runs as cblas_sgemm (OpenBLAS, AVX2/FMA) on the wasm heap itself; no
 *    copies, no transposes (BLAS reads transposed operands in place), no chunking.
 *  - GatherV2 (row lookups: embeddings, CDMoE's expert rows and scores): the wasm kernel walks every element through
 *    generic 4-D strides (~60% of doge-tiny-moe's forward pass); the patch copies whole rows.
 *
 * This file imports nothing of the library: it receives the tfjs instance from backend.ts.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import type { NativeBlas } from './native-blas';

type Tf = typeof tfc;
type Info = tfc.TensorInfo;

/** The parts of tfjs-backend-wasm's BackendWasm the patches use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: string): Info;
  typedArrayFromHeap(t: Info): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object): void;
  incRef(dataId: object): void;
}

/** Time and work per BatchMatMul case, when enabled with `wasmKernelStats(true)` (for scripts/bench-profile.ts). */
export interface MatMulStat { calls: number; ms: number; /** of which copies and transposes in JS */ transposeMs: number; flops: number }
let stats: Map<string, MatMulStat> | null = null;

/** Turn BatchMatMul statistics on (fresh) or off; returns the statistics collected so far. */
export function wasmKernelStats(on: boolean): Map<string, MatMulStat> | null {
  const prev = stats;
  stats = on ? new Map() : null;
  return prev;
}

/** Process CPU time in ms (the stats clock: not inflated by other jobs on a shared machine). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Below this many multiply-adds per product, XNNPACK's setup costs more than the naive loop (decoding). */
const MIN_GEMM_WORK = 65536;
/**
 * Products with a long shared axis (weight gradients sum over every token) are split along it into chunks of KC:
 * a [K, N] right operand is packed by XNNPACK in one piece, and above a few MB it no longer stays in the L2 cache
 * while the GEMM streams over it (measured: lm_head's [256 x 2048] x [2048 x 4096] at 25 GFLOP/s whole, 44 in
 * chunks of 512). Partial products are summed in order (float rounding differs from one pass at the 1e-7 level).
 */
const KC = 512;
const CHUNK_MIN_ELEMENTS = 512 * 1024;
/**
 * Even plain products (which XNNPACK gets directly otherwise) are chunked above this shared length: lm_head's input
 * gradient [512 x 32768] x [32768 x 256] runs at 22 GFLOP/s in one piece and 41-43 in chunks (measured).
 */
const PLAIN_CHUNK_K = 8192;

/** dst[dOff + c * dStride + r] = src[sOff + r * sStride + c] for r < rows, c < cols (blocked for the caches). */
function transposeInto(src: Float32Array, sOff: number, sStride: number, dst: Float32Array, dOff: number, dStride: number, rows: number, cols: number): void {
  const BS = 32;
  for (let r0 = 0; r0 < rows; r0 += BS) {
    const r1 = Math.min(rows, r0 + BS);
    for (let c0 = 0; c0 < cols; c0 += BS) {
      const c1 = Math.min(cols, c0 + BS);
      for (let r = r0; r < r1; r++) {
        const so = sOff + r * sStride;
        for (let c = c0; c < c1; c++) dst[dOff + c * dStride + r] = src[so + c];
      }
    }
  }
}

/**
 * Register `kernelFunc` in place of the wasm kernel `orig` (same name, same setup and dispose functions, so the
 * backend's own bookkeeping is untouched; `orig.kernelFunc` stays available as the fallback).
 */
function replaceWasmKernel(tf: Tf, orig: tfc.KernelConfig, kernelFunc: tfc.KernelFunc): void {
  tf.unregisterKernel(orig.kernelName, 'wasm');
  tf.registerKernel({ ...orig, kernelFunc });
}

/** The native BLAS used by BatchMatMul, when set (loadBackend sets it; null = XNNPACK path). */
let nativeBlas: NativeBlas | null = null;

/** Route the wasm backend's float32 matrix products to a native BLAS (null: back to XNNPACK). */
export function setWasmNativeBlas(blas: NativeBlas | null): void {
  nativeBlas = blas;
}

/** The native BLAS BatchMatMul uses now, or null. */
export function wasmNativeBlas(): NativeBlas | null {
  return nativeBlas;
}

/** A matrix inside a tensor: `rows x cols` row-major at element `off`, read transposed when `t`. */
interface Mat { x: Info; off: number; rows: number; cols: number; t: boolean }

function installBatchMatMul(tf: Tf): void {
  const orig = tf.getKernel('BatchMatMul', 'wasm')!;
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

  replaceWasmKernel(tf, orig, (args) => {
    const { inputs, backend: be, attrs } = args as unknown as {
      inputs: { a: Info; b: Info }; backend: WasmBackend; attrs: { transposeA: boolean; transposeB: boolean };
    };
    const { transposeA: tA, transposeB: tB } = attrs;
    const { a, b } = inputs;
    const ra = a.shape.length, rb = b.shape.length;
    const M = tA ? a.shape[ra - 1] : a.shape[ra - 2];
    const K = tA ? a.shape[ra - 2] : a.shape[ra - 1];
    const N = tB ? b.shape[rb - 2] : b.shape[rb - 1];
    const batchA = size(a.shape.slice(0, -2)), batchB = size(b.shape.slice(0, -2));
    const batch = Math.max(batchA, batchB);
    if (nativeBlas && a.dtype === 'float32' && b.dtype === 'float32' && M * N * K > 0
      && (batchA === batchB || batchA === 1 || batchB === 1)) {
      return nativeBatchMatMul(nativeBlas, be, a, b, tA, tB, M, N, K, batchA, batchB);
    }
    const plain = !tA && !tB && batchA === 1 && batchB === 1 && K <= PLAIN_CHUNK_K;
    // left to the plain kernel: what it does well (XNNPACK), tiny products, other dtypes, broadcasts it rejects
    if (plain || M * N * K < MIN_GEMM_WORK || a.dtype !== 'float32' || b.dtype !== 'float32'
      || (batchA !== batchB && batchA !== 1 && batchB !== 1)) {
      return orig.kernelFunc(args);
    }
    const t0 = stats ? cpuMs() : 0;
    let tCopy = 0;
    const f32 = (x: Info) => be.typedArrayFromHeap(x) as Float32Array; // fresh view: allocating may move the heap

    /** The block rows [r0, r0 + nr) x cols [c0, c0 + nc) of op(m) as a new [nr, nc] tensor. */
    const extract = (m: Mat, r0: number, nr: number, c0: number, nc: number): Info => {
      const t1 = stats ? cpuMs() : 0;
      const y = be.makeOutput([1, nr, nc], 'float32');
      const src = f32(m.x), dst = f32(y);
      if (!m.t) {
        if (nc === m.cols) dst.set(src.subarray(m.off + r0 * m.cols, m.off + (r0 + nr) * m.cols));
        else for (let r = 0; r < nr; r++) dst.set(src.subarray(m.off + (r0 + r) * m.cols + c0, m.off + (r0 + r) * m.cols + c0 + nc), r * nc);
      } else {
        // op(m) = m^T: op rows are m's columns
        transposeInto(src, m.off + c0 * m.cols + r0, m.cols, dst, 0, nc, nc, nr);
      }
      if (stats) tCopy += cpuMs() - t1;
      return y;
    };
    /** op(m) as a tensor usable by XNNPACK: the tensor itself when it already is one, else a copy. */
    const whole = (m: Mat, nr: number, nc: number): { x: Info; temp: boolean } => (!m.t && m.off === 0 && size(m.x.shape) === nr * nc
      ? { x: m.x, temp: false } : { x: extract(m, 0, nr, 0, nc), temp: true });
    const gemm = (x: Info, y: Info, rows: number, k: number, cols: number): Info => orig.kernelFunc({
      inputs: { a: { dataId: x.dataId, shape: [1, rows, k], dtype: 'float32' }, b: { dataId: y.dataId, shape: [1, k, cols], dtype: 'float32' } },
      backend: be, attrs: { transposeA: false, transposeB: false },
    } as never) as Info;

    /**
     * C [R, Cc] = L [R, K] W [K, Cc] for matrices given as (possibly transposed) blocks. XNNPACK packs W, so W is
     * always passed as a fresh tensor unless it is a whole input tensor (its packed operator is cached by tensor id).
     */
    const product = (L: Mat, W: Mat, R: number, Cc: number): Info => {
      const chunked = K > PLAIN_CHUNK_K || (K > 2 * KC && K * Cc >= CHUNK_MIN_ELEMENTS);
      const kcs = Math.max(KC, Math.ceil(K / 16)); // at most 16 chunks
      if (!chunked) {
        const l = whole(L, R, K), w = whole(W, K, Cc);
        const c = gemm(l.x, w.x, R, K, Cc);
        if (l.temp) be.disposeData(l.x.dataId);
        if (w.temp) be.disposeData(w.x.dataId);
        return c;
      }
      let acc: Info | null = null;
      for (let k0 = 0; k0 < K; k0 += kcs) {
        const kc = Math.min(kcs, K - k0);
        const l = extract(L, 0, R, k0, kc), w = extract(W, k0, kc, 0, Cc);
        const c = gemm(l, w, R, kc, Cc);
        be.disposeData(l.dataId); be.disposeData(w.dataId);
        if (!acc) { acc = c; continue; }
        const av = f32(acc), cv = f32(c);
        for (let i = 0; i < av.length; i++) av[i] += cv[i];
        be.disposeData(c.dataId);
      }
      return acc!;
    };

    /** C [M, N] = op(A) op(B) for one batch entry, into out at element outOff (or returned when out is null). */
    const entry = (aOff: number, bOff: number, rowsM: number, out: Info | null, outOff: number): Info | null => {
      // op(A) [rowsM, K]: A stored [rowsM, K] (plain) or [K, rowsM] (transposed); op(B) [K, N] likewise
      const opA: Mat = tA ? { x: a, off: aOff, rows: K, cols: rowsM, t: true } : { x: a, off: aOff, rows: rowsM, cols: K, t: false };
      const opB: Mat = tB ? { x: b, off: bOff, rows: N, cols: K, t: true } : { x: b, off: bOff, rows: K, cols: N, t: false };
      // Either C = op(A) op(B), or C^T = op(B)^T op(A)^T and one transpose of the result: pick the one that moves
      // fewer elements (e.g. dK = dS^T q in attention's backward: transposing q and dK beats transposing dS).
      const moveDirect = (tA ? K * rowsM : 0) + (tB ? K * N : 0);
      const moveSwapped = (tA ? 0 : K * rowsM) + (tB ? 0 : K * N) + rowsM * N;
      if (moveDirect <= moveSwapped) {
        const c = product(opA, opB, rowsM, N);
        if (!out) return c;
        f32(out).set(f32(c), outOff);
        be.disposeData(c.dataId);
        return null;
      }
      const flip = (m: Mat): Mat => ({ ...m, t: !m.t });
      const ct = product(flip(opB), flip(opA), N, rowsM); // [N, rowsM]
      const t1 = stats ? cpuMs() : 0;
      let res: Info | null = null;
      if (!out) { res = be.makeOutput([1, rowsM, N], 'float32'); out = res; outOff = 0; }
      transposeInto(f32(ct), 0, rowsM, f32(out), outOff, N, N, rowsM);
      if (stats) tCopy += cpuMs() - t1;
      be.disposeData(ct.dataId);
      return res;
    };

    const outShape = [...(batchA >= batchB ? a.shape : b.shape).slice(0, -2), M, N];
    let out: Info;
    if (batchB === 1 && !tA) {
      // B shared by every batch entry: one product with A's batch folded into its rows
      out = entry(0, 0, batchA * M, null, 0)!;
    } else {
      out = be.makeOutput([batch, M, N], 'float32');
      for (let i = 0; i < batch; i++) entry(batchA === 1 ? 0 : i * M * K, batchB === 1 ? 0 : i * K * N, M, out, i * M * N);
    }
    if (stats) {
      const key = `${tA ? 'T' : 'N'}${tB ? 'T' : 'N'} batch=${batchA}/${batchB}` + (process.env.WM_MM_SHAPES ? ` ${M}x${K}x${N}` : '');
      const s = stats.get(key) ?? { calls: 0, ms: 0, transposeMs: 0, flops: 0 };
      s.calls++; s.ms += cpuMs() - t0; s.transposeMs += tCopy; s.flops += 2 * batch * M * N * K;
      stats.set(key, s);
    }
    return { dataId: out.dataId, shape: outShape, dtype: 'float32' };
  });
}

/**
 * op(A) op(B) with the native BLAS, directly on the heap: BLAS reads transposed operands in place (lda/ldb), a
 * batch is one sgemm per entry inside the addon (stride 0 broadcasts a shared operand), and when B is shared and A
 * is not transposed the batch folds into A's rows (one [batch*M, K] x [K, N] product).
 */
function nativeBatchMatMul(blas: NativeBlas, be: WasmBackend, a: Info, b: Info, tA: boolean, tB: boolean,
  M: number, N: number, K: number, batchA: number, batchB: number): Info {
  const t0 = stats ? cpuMs() : 0;
  const batch = Math.max(batchA, batchB);
  const outShape = [...(batchA >= batchB ? a.shape : b.shape).slice(0, -2), M, N];
  const out = be.makeOutput(outShape, 'float32');
  // views after makeOutput (allocating may grow the heap); the addon reads their pointers during the call only
  const av = be.typedArrayFromHeap(a) as Float32Array, bv = be.typedArrayFromHeap(b) as Float32Array;
  const cv = be.typedArrayFromHeap(out) as Float32Array;
  const sA = batchA === 1 ? 0 : M * K, sB = batchB === 1 ? 0 : K * N;
  if (M === 1 && !(batchB === 1 && batchA > 1 && !tA)) {
    // one row per entry (decoding): C_i[1, N] = a_i op(B_i) as a matrix-vector product with op(B)^T; sgemv is 3-5x
    // faster than sgemm with M = 1 (doge-20m's lm_head [1x256]x[32768x256]^T: 1.1 vs 3.0 ms)
    blas.sgemv(bv, av, cv, batch, N, K, tB ? 0 : 1, sB, sA);
  } else if (N === 1 && !(batchB === 1 && batchA > 1 && !tA) && batchA === batch) {
    // one column: C_i[M, 1] = op(A_i) b_i
    blas.sgemv(av, bv, cv, batch, M, K, tA ? 1 : 0, sA, sB);
  } else if (batchB === 1 && !tA) blas.sgemm(av, bv, cv, 1, batchA * M, N, K, 0, tB ? 1 : 0, 0, 0);
  else blas.sgemm(av, bv, cv, batch, M, N, K, tA ? 1 : 0, tB ? 1 : 0, sA, sB);
  if (stats) {
    const key = `native ${tA ? 'T' : 'N'}${tB ? 'T' : 'N'} batch=${batchA}/${batchB}` + (process.env.WM_MM_SHAPES ? ` ${M}x${K}x${N}` : '');
    const s = stats.get(key) ?? { calls: 0, ms: 0, transposeMs: 0, flops: 0 };
    s.calls++; s.ms += cpuMs() - t0; s.flops += 2 * batch * M * N * K;
    stats.set(key, s);
  }
  return out;
}

function installSlice(tf: Tf): void {
  const orig = tf.getKernel('Slice', 'wasm')!;
  replaceWasmKernel(tf, orig, (args) => {
    const { inputs, backend, attrs } = args as unknown as {
      inputs: { x: Info }; backend: WasmBackend; attrs: { begin: number | number[]; size: number | number[] };
    };
    const x = inputs.x;
    if (x.dtype === 'string') return orig.kernelFunc(args);
    const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as tfc.Tensor, attrs.begin, attrs.size);
    const out = backend.makeOutput(size, x.dtype);
    const total = size.reduce((a, b) => a * b, 1);
    if (total === 0) return out;
    // views taken after makeOutput: allocating may grow (and move) the wasm heap
    const xv = backend.typedArrayFromHeap(x);
    const ov = backend.typedArrayFromHeap(out);
    const shape = x.shape;
    const r = shape.length;
    const strides = new Array<number>(r);
    let s = 1;
    for (let d = r - 1; d >= 0; d--) { strides[d] = s; s *= shape[d]; }
    // merge trailing dimensions taken whole into one contiguous block
    let k = r - 1;
    while (k > 0 && size[k] === shape[k]) k--;
    const block = size[k] * strides[k];
    const idx = new Array<number>(k).fill(0);
    let o = 0;
    for (;;) {
      let off = begin[k] * strides[k];
      for (let d = 0; d < k; d++) off += (begin[d] + idx[d]) * strides[d];
      ov.set(xv.subarray(off, off + block), o);
      o += block;
      let d = k - 1;
      while (d >= 0) { idx[d]++; if (idx[d] < size[d]) break; idx[d] = 0; d--; }
      if (d < 0) break;
    }
    return out;
  });
}

function installSplitV(tf: Tf): void {
  const orig = tf.getKernel('SplitV', 'wasm')!;
  replaceWasmKernel(tf, orig, (args) => {
    const { inputs, backend, attrs } = args as unknown as {
      inputs: { x: Info }; backend: WasmBackend; attrs: { numOrSizeSplits: number | number[]; axis: number | number[] };
    };
    const x = inputs.x;
    if (x.dtype === 'string') return orig.kernelFunc(args);
    // the registered Slice, i.e. the patched one (installed before this patch, see PATCHES)
    const slice = tf.getKernel('Slice', 'wasm')!.kernelFunc;
    const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tfc.Tensor, attrs.numOrSizeSplits, axis);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((piece) => {
      const size = [...x.shape];
      size[axis] = piece;
      const out = slice({ inputs: { x }, backend: backend as unknown as tfc.KernelBackend, attrs: { begin: [...begin], size } }) as Info;
      begin[axis] += piece;
      return out;
    });
  });
}

function installGather(tf: Tf): void {
  const orig = tf.getKernel('GatherV2', 'wasm')!;
  replaceWasmKernel(tf, orig, (args) => {
    const { inputs, backend, attrs } = args as unknown as {
      inputs: { x: Info; indices: Info }; backend: WasmBackend; attrs: { axis: number | number[]; batchDims: number };
    };
    const { x, indices } = inputs;
    if (attrs.batchDims !== 0 || x.dtype === 'string' || x.dtype === 'complex64') return orig.kernelFunc(args);
    const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0];
    const dim = x.shape[axis];
    const outer = x.shape.slice(0, axis).reduce((p, q) => p * q, 1);
    const inner = x.shape.slice(axis + 1).reduce((p, q) => p * q, 1);
    const n = indices.shape.reduce((p, q) => p * q, 1);
    const outShape = [...x.shape.slice(0, axis), ...indices.shape, ...x.shape.slice(axis + 1)];
    const idx = backend.typedArrayFromHeap(indices) as Int32Array;
    for (let i = 0; i < n; i++) {
      const v = idx[i];
      if (!(v >= 0 && v < dim)) throw new Error(`GatherV2: the index value ${v} is not in [0, ${dim - 1}]`);
    }
    const out = backend.makeOutput(outShape, x.dtype);
    if (n === 0 || outer * inner === 0) return out;
    // views after makeOutput (allocating may move the heap)
    const iv = backend.typedArrayFromHeap(indices) as Int32Array;
    const xv = backend.typedArrayFromHeap(x), ov = backend.typedArrayFromHeap(out);
    let o = 0;
    for (let b = 0; b < outer; b++) {
      const base = b * dim * inner;
      if (inner === 1) {
        for (let i = 0; i < n; i++) ov[o++] = xv[base + iv[i]];
      } else {
        for (let i = 0; i < n; i++, o += inner) {
          const s = base + iv[i] * inner;
          ov.set(xv.subarray(s, s + inner), o);
        }
      }
    }
    return out;
  });
}

function installIdentity(tf: Tf): void {
  const orig = tf.getKernel('Identity', 'wasm')!;
  replaceWasmKernel(tf, orig, (args) => {
    const { inputs, backend } = args as unknown as { inputs: { x: Info }; backend: WasmBackend };
    const x = inputs.x;
    if (x.dtype === 'string') return orig.kernelFunc(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  });
}

/** The plain tfjs-backend-wasm kernels, before patching (for tests comparing against them). */
export const originalWasmKernels = new Map<string, tfc.KernelConfig>();

const PATCHES: [string, (tf: Tf) => void][] = [
  ['BatchMatMul', installBatchMatMul],
  ['Slice', installSlice],
  ['SplitV', installSplitV],
  ['Identity', installIdentity],
  ['GatherV2', installGather],
];

/**
 * Install every wasm kernel patch (idempotent: a process-wide flag, also shared with other copies of this file).
 * Returns the names of the patched kernels ([] when the wasm backend is not registered).
 */
export function installWasmKernelPatches(tf: Tf): string[] {
  const g = globalThis as unknown as { __wmWasmKernelPatches?: string[] };
  if (g.__wmWasmKernelPatches) return g.__wmWasmKernelPatches;
  if (!PATCHES.every(([name]) => tf.getKernel(name, 'wasm'))) return [];
  for (const [name, install] of PATCHES) {
    originalWasmKernels.set(name, tf.getKernel(name, 'wasm')!);
    install(tf);
  }
  g.__wmWasmKernelPatches = PATCHES.map(([name]) => name);
  return g.__wmWasmKernelPatches;
}
