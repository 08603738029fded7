/**
 * Decoding step by step by hand (what `generate` does inside), for looking at the cache between tokens: `step` feeds
 * tokens with the current cache, frees the previous cache, keeps the new one and returns the step's logits as
 * numbers; `readCache` reads something computed from the cache; `dispose()` frees the cache. No tensor is left to
 * the caller.
 *
 *   const session = new DecodingSession(model);
 *   for (const t of prompt) {
 *     const logits = session.step([[t]]);                                        // Float32Array [vocab]
 *     const norms = session.readCache((c) => tf.norm((c.layers[0] as { state: tf.Tensor }).state));
 *   }
 *   session.dispose();
 */
import { tf } from '../tf';
import { disposeDecodingCache, type DecodingCache, type GenerativeModel } from './generate';

export class DecodingSession<C extends DecodingCache = DecodingCache> {
  private current: C | undefined;

  constructor(private readonly model: GenerativeModel<C>) {}

  /** Positions cached so far. */
  get length(): number {
    return this.current?.length ?? 0;
  }

  /** Feed `inputIds` [batch, new tokens] after the cached ones; returns their logits [batch, new tokens, vocab], flat. */
  step(inputIds: number[][]): Float32Array {
    const out = this.model.forward({ inputIds, cache: this.current, useCache: true });
    const logits = out.logits.dataSync() as Float32Array;
    out.logits.dispose();
    // The new cache holds everything the next step needs; the previous one is ours to free.
    disposeDecodingCache(this.current);
    this.current = out.cache;
    return logits;
  }

  /** Values of a tensor computed from the current cache (run in tf.tidy; the cache itself is not changed). */
  readCache(fn: (cache: C) => tf.Tensor): { values: Float32Array; shape: number[] } {
    const cache = this.current;
    if (!cache) throw new Error('DecodingSession.readCache: no cache yet (call step first)');
    return tf.tidy(() => {
      const t = fn(cache);
      return { values: Float32Array.from(t.dataSync()), shape: [...t.shape] };
    }) as unknown as { values: Float32Array; shape: number[] };
  }

  /** Free the cache. */
  dispose(): void {
    disposeDecodingCache(this.current);
    this.current = undefined;
  }
}
