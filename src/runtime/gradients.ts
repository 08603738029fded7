/**
 * Gradients tfjs-core does not register, installed by `loadBackend()` (backend.ts), never as an import side
 * effect. The tfjs instance is a parameter, so this file imports nothing of the library.
 */
type TF = typeof import('@tensorflow/tfjs-core');
type Tensor = import('@tensorflow/tfjs-core').Tensor;

/**
 * TopK: DMAttn's top-keep_window_size selection runs topk on a tensor that is on the tape, so backprop reaches TopK
 * even though only a comparison with its values is used. This registers the exact gradient of the `values` output
 * (scatter dy back to the selected positions), only if no other gradient is registered.
 */
export function registerTopKGradient(tf: TF): void {
  if (tf.getGradient('TopK')) return;
  tf.registerGradient({
    kernelName: 'TopK',
    inputsToSave: ['x'],
    outputsToSave: [false, true],
    gradFunc: (dys: Tensor | Tensor[], saved: Tensor[]) => {
      const [x, indices] = saved;
      const dy = Array.isArray(dys) ? dys[0] : dys;
      return {
        x: () =>
          tf.tidy(() => {
            const S = x.shape[x.rank - 1];
            const k = indices.shape[indices.rank - 1];
            const rows = x.size / S;
            const rowStart = tf.tensor2d(Int32Array.from({ length: rows }, (_, r) => r * S), [rows, 1], 'int32');
            const flatIdx = tf.add(tf.reshape(indices, [rows, k]), rowStart); // [rows, k]
            const dx = tf.scatterND(tf.reshape(flatIdx, [-1, 1]), tf.reshape(dy, [-1]), [rows * S]);
            return tf.reshape(dx, x.shape);
          }),
      };
    },
  });
}
