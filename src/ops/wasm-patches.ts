/**
 * Kernel patches for the tfjs wasm backend (4.22), installed by `loadBackend()` (src/backend.ts) before the wasm
 * backend starts, never as an import side effect. Each re-registers one wasm kernel with a faster implementation of
 * the same function (identical results) and is idempotent (a global flag, shared with any other copy of the code).
 * The tfjs instance is a parameter so this file imports nothing (backend.ts imports it without a cycle).
 */
// eslint-disable-next-line @typescript-eslint/consistent-type-imports
type TF = typeof import('@tensorflow/tfjs-core');
type TensorInfo = import('@tensorflow/tfjs-core').TensorInfo;
type KernelConfig = import('@tensorflow/tfjs-core').KernelConfig;
type Tensor = import('@tensorflow/tfjs-core').Tensor;

/** All three patches; returns the names of the kernels patched (empty when the wasm backend is not registered). */
export function installWasmKernelPatches(tf: TF): string[] {
  const done: string[] = [];
  if (installWasmBatchMatMulFix(tf)) done.push('BatchMatMul');
  if (installWasmSliceFix(tf)) done.push('Slice');
  if (installWasmIdentityFix(tf)) done.push('Identity');
  return done;
}

/**
 * Speed fix for the tfjs wasm backend (4.22): BatchMatMul with transposeA/transposeB runs a slow generic loop
 * (~10x slower than transposing first; every `x W^T` and every matmul gradient hits it). This re-registers the wasm
 * kernel so transposed operands are transposed explicitly first; results are identical. Idempotent (a global flag,
 * shared with any other copy of this fix), no-op when the wasm backend is not registered.
 */
export function installWasmBatchMatMulFix(tf: TF): boolean {
  const g = globalThis as unknown as { __wmWasmMatMulFixOps?: boolean };
  if (g.__wmWasmMatMulFixOps) return true;
  const orig = tf.getKernel('BatchMatMul', 'wasm');
  const transpose = tf.getKernel('Transpose', 'wasm');
  if (!orig || !transpose) return false;
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    setupFunc: orig.setupFunc,
    disposeFunc: orig.disposeFunc,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as {
        inputs: { a: TensorInfo; b: TensorInfo };
        backend: { disposeData(id: object): void };
        attrs: { transposeA: boolean; transposeB: boolean };
      };
      if (!attrs.transposeA && !attrs.transposeB) return orig.kernelFunc(args);
      const swapLast = (x: TensorInfo): TensorInfo => {
        const r = x.shape.length;
        const perm = Array.from({ length: r }, (_, i) => i);
        perm[r - 2] = r - 1;
        perm[r - 1] = r - 2;
        return transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } } as never) as TensorInfo;
      };
      const a = attrs.transposeA ? swapLast(inputs.a) : inputs.a;
      const b = attrs.transposeB ? swapLast(inputs.b) : inputs.b;
      const out = orig.kernelFunc({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } } as never);
      if (a !== inputs.a) backend.disposeData(a.dataId);
      if (b !== inputs.b) backend.disposeData(b.dataId);
      return out;
    },
  } as KernelConfig);
  g.__wmWasmMatMulFixOps = true;
  return true;
}

/**
 * Speed fix for the tfjs wasm backend (4.22): its Slice kernel (also behind split/unstack/SplitV) first copies the
 * WHOLE input out of the wasm heap (`readSync`) for every slice, so splitting a tensor into n parts costs n full
 * copies. This kernel copies only the requested blocks, reading the heap through a view. Same results.
 */
export function installWasmSliceFix(tf: TF): boolean {
  const g = globalThis as unknown as { __wmWasmSliceFix?: boolean };
  if (g.__wmWasmSliceFix) return true;
  const orig = tf.getKernel('Slice', 'wasm');
  if (!orig) return false;
  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({
    kernelName: 'Slice',
    backendName: 'wasm',
    setupFunc: orig.setupFunc,
    disposeFunc: orig.disposeFunc,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as {
        inputs: { x: TensorInfo };
        backend: { makeOutput(shape: number[], dtype: string): TensorInfo; typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array };
        attrs: { begin: number | number[]; size: number | number[] };
      };
      const x = inputs.x;
      if (x.dtype === 'string') return orig.kernelFunc(args);
      const [begin, size] = tf.slice_util.parseSliceParams(x as unknown as Tensor, attrs.begin, attrs.size);
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
    },
  } as KernelConfig);
  g.__wmWasmSliceFix = true;
  return true;
}

/**
 * Speed fix for the tfjs wasm backend (4.22): tfjs clones every tensor it saves for the backward pass with the
 * Identity kernel, which on wasm copies the data. tfjs tensors are immutable (Variable.assign swaps the data id), so
 * Identity can share the data with a reference count, exactly as the wasm Reshape kernel does.
 */
export function installWasmIdentityFix(tf: TF): boolean {
  const g = globalThis as unknown as { __wmWasmIdentityFix?: boolean };
  if (g.__wmWasmIdentityFix) return true;
  const orig = tf.getKernel('Identity', 'wasm');
  if (!orig) return false;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    setupFunc: orig.setupFunc,
    disposeFunc: orig.disposeFunc,
    kernelFunc: (args) => {
      const { inputs, backend } = args as unknown as { inputs: { x: TensorInfo }; backend: { incRef(id: object): void } };
      const x = inputs.x;
      if (x.dtype === 'string') return orig.kernelFunc(args);
      backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
    },
  } as KernelConfig);
  g.__wmWasmIdentityFix = true;
  return true;
}
