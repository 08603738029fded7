/**
 * Host decoders: one-token decoders that continue generation from a prefilled cache outside tfjs (plain loops over
 * Float32Arrays plus native BLAS products), attached to models by registration so that src/models never imports the
 * runtime. `loadBackend()` registers a factory per `config.model_type` when the native BLAS loads (doge:
 * doge-host-decoder.ts); `generate` asks `hostDecoderFor(model, cache, maxLength)` after the prompt and falls back to
 * `model.forward` whenever no decoder is registered or the registered one refuses (it says why).
 */

/** A decoder that continues from a prefilled cache one token at a time (no tensors). */
export interface TokenStepper {
  /** Feed the next token; returns its logits [vocab] (a new array). */
  step(token: number): Float32Array;
  /** Positions held so far (prompt + fed tokens). */
  readonly length: number;
  dispose(): void;
}

/** What a host decoder receives of a decoding cache (per-layer tensors, cached positions, key mask). */
export interface HostDecodingCache {
  layers: object[];
  length: number;
  mask: Int32Array | null;
}

/** A decoder for the model and cache, or null with the reason it does not apply (then `model.forward` runs). */
export interface HostDecoderChoice {
  stepper: TokenStepper | null;
  reason: string | null;
}

/**
 * Builds a host decoder continuing from `cache` (copied; the caller still owns it) for up to `maxLength` positions.
 * `model` is whatever model reported this factory's model_type: the factory checks what it needs structurally.
 */
export type HostDecoderFactory = (model: unknown, cache: HostDecodingCache, maxLength: number) => HostDecoderChoice;

const factories = new Map<string, HostDecoderFactory>();

/** Register (or replace) the host decoder of a model_type. */
export function registerHostDecoder(modelType: string, factory: HostDecoderFactory): void {
  factories.set(modelType, factory);
}

/** Remove the host decoder of a model_type (tests; a backend without native BLAS never registers one). */
export function unregisterHostDecoder(modelType: string): void {
  factories.delete(modelType);
}

/** The model_types that have a host decoder registered now. */
export function registeredHostDecoders(): string[] {
  return [...factories.keys()];
}

/** The host decoder for `model` continuing from `cache`, or null with the reason (no decoder, or it refused). */
export function hostDecoderFor(model: { config: { model_type?: string } }, cache: HostDecodingCache, maxLength: number): HostDecoderChoice {
  const type = model.config.model_type;
  const factory = type === undefined ? undefined : factories.get(type);
  if (!factory) {
    const why = type === undefined ? 'the model has no config.model_type' : `no host decoder registered for model_type '${type}'`;
    return { stepper: null, reason: factories.size ? why : `${why} (none is: the wasm backend with the native BLAS registers them)` };
  }
  return factory(model, cache, maxLength);
}
