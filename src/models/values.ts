/**
 * Model outputs as plain JS values, for notebooks and scripts that look at numbers rather than tensors: the forward
 * pass runs inside one `tf.tidy`, every returned tensor (logits, loss, dynamic masks, attention maps, expert ids,
 * hidden states, ...) is read into nested arrays (the loss into a number), and nothing is left to dispose (a decoding
 * cache the forward returned is freed too).
 *
 *   const out = forwardValues(model, { inputIds: [[1, 2, 3]], labels: [[1, 2, 3]] });
 *   out.loss            // number
 *   out.shapes.logits   // [1, 3, vocab]
 */
import { tf } from '../tf';

/** What `Tensor.arraySync()` returns for a tensor of rank >= 1. */
export type NestedNumbers = number[] | NestedNumbers[];

/** An output object with its tensors read: loss -> number, a tensor -> nested arrays, a list of tensors -> a list. */
export type OutputValues<O> = {
  [K in keyof O]?: K extends 'loss' ? number : NonNullable<O[K]> extends tf.Tensor ? NestedNumbers : NonNullable<O[K]> extends tf.Tensor[] ? NestedNumbers[] : never;
};

export interface ForwardValuesOptions<O> {
  /** Read only these outputs (default: every tensor output except `cache`); large logits are slow to read. */
  only?: Array<keyof O & string>;
}

/** Run `model.forward(input)` and return its outputs as plain numbers/arrays plus their shapes (see the file header). */
export function forwardValues<I, O extends object>(
  model: { forward(input: I): O },
  input: I,
  opts: ForwardValuesOptions<O> = {},
): OutputValues<O> & { shapes: Partial<Record<keyof O, number[] | number[][]>> } {
  return tf.tidy(() => {
    const out = model.forward(input) as Record<string, unknown>;
    const values: Record<string, unknown> = {};
    const shapes: Record<string, number[] | number[][]> = {};
    for (const [k, v] of Object.entries(out)) {
      if (k === 'cache' || (opts.only && !opts.only.includes(k as keyof O & string))) continue;
      if (v instanceof tf.Tensor) {
        values[k] = v.arraySync();
        shapes[k] = v.shape;
      } else if (Array.isArray(v) && v.length > 0 && v.every((t) => t instanceof tf.Tensor)) {
        values[k] = (v as tf.Tensor[]).map((t) => t.arraySync());
        shapes[k] = (v as tf.Tensor[]).map((t) => t.shape);
      }
    }
    // Plain values only: tf.tidy frees every tensor of the forward pass, the cache included.
    return { ...values, shapes } as unknown as tf.TensorContainer;
  }) as unknown as OutputValues<O> & { shapes: Partial<Record<keyof O, number[] | number[][]>> };
}
