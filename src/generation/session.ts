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
 *
 * The cache is bounded by default (options.cache 'bounded': at most keep_window_size keys per kv head and attention
 * layer, see src/modules/dmattn-cache.ts); `cachedKeys(layer)` says which sequence positions sit in it, `cacheBytes()`
 * what it holds. `{ cache: 'full' }` keeps every key.
 */
import { tf } from '../tf';
import { disposeDecodingCache, type DecodingCache, type GenerativeModel } from './generate';

export interface DecodingSessionOptions {
  /** 'bounded' (default) or 'full' (every key). */
  cache?: 'bounded' | 'full';
}

export class DecodingSession<C extends DecodingCache = DecodingCache> {
  private current: C | undefined;
  private readonly cacheMode: 'bounded' | 'full';

  constructor(private readonly model: GenerativeModel<C>, options: DecodingSessionOptions = {}) {
    if (options.cache !== undefined && options.cache !== 'bounded' && options.cache !== 'full') {
      throw new Error(`DecodingSession: cache must be 'bounded' or 'full', got '${options.cache}'`);
    }
    this.cacheMode = options.cache ?? 'bounded';
  }

  /** Positions cached so far. */
  get length(): number {
    return this.current?.length ?? 0;
  }

  /** Feed `inputIds` [batch, new tokens] after the cached ones; returns their logits [batch, new tokens, vocab], flat. */
  step(inputIds: number[][]): Float32Array {
    const out = this.model.forward({ inputIds, cache: this.current, useCache: true, cacheMode: this.cacheMode });
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

  /**
   * Sequence positions held by attention layer `layer`'s cache, row-major [B, nkv, slots] (-1: an empty slot), or
   * null for a layer without keys (an SSD layer).
   */
  cachedKeys(layer: number): { keys: Int32Array; shape: number[] } | null {
    const l = this.current?.layers[layer] as { k?: tf.Tensor; keys?: Int32Array } | undefined;
    if (!l || !l.k) return null;
    const [B, nkv, S] = l.k.shape;
    const keys = l.keys ? Int32Array.from(l.keys) : Int32Array.from({ length: B * nkv * S }, (_, i) => i % S);
    return { keys, shape: [B, nkv, S] };
  }

  /** Bytes of every tensor of the cache (KV caches, dynamic masks, SSD states). */
  cacheBytes(): number {
    if (!this.current) return 0;
    let n = 0;
    for (const l of this.current.layers) for (const t of Object.values(l)) if (t instanceof tf.Tensor) n += t.size * 4;
    return n;
  }

  /** Free the cache. */
  dispose(): void {
    disposeDecodingCache(this.current);
    this.current = undefined;
  }
}
