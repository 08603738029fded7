/**
 * Speed fix for the tfjs wasm backend (4.22): BatchMatMul with transposeA or transposeB is ~10x slower than an
 * explicit Transpose followed by a plain matmul (measured on this machine: [4096,64]^T x [4096,192] 45 ms vs 3.6 ms).
 * Every matmul gradient and every `x W^T` linear layer hits that slow path. `installWasmMatMulFix()` re-registers
 * the wasm BatchMatMul kernel so that transposed operands are transposed first; results are identical.
 * Idempotent, no-op on other backends. (Belongs in src/backend.ts eventually; the MQAR runner installs it.)
 */
import { tf } from '../backend';

let installed = false;

export function installWasmMatMulFix(): boolean {
  if (installed) return true;
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
        inputs: { a: tf.TensorInfo; b: tf.TensorInfo };
        backend: { disposeData(id: object): void };
        attrs: { transposeA: boolean; transposeB: boolean };
      };
      if (!attrs.transposeA && !attrs.transposeB) return orig.kernelFunc(args);
      const swapLast = (x: tf.TensorInfo): tf.TensorInfo => {
        const r = x.shape.length;
        const perm = Array.from({ length: r }, (_, i) => i);
        perm[r - 2] = r - 1;
        perm[r - 1] = r - 2;
        return transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } } as never) as tf.TensorInfo;
      };
      const a = attrs.transposeA ? swapLast(inputs.a) : inputs.a;
      const b = attrs.transposeB ? swapLast(inputs.b) : inputs.b;
      const out = orig.kernelFunc({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } } as never);
      if (a !== inputs.a) backend.disposeData(a.dataId);
      if (b !== inputs.b) backend.disposeData(b.dataId);
      return out;
    },
  } as tf.KernelConfig);
  installed = true;
  return true;
}
