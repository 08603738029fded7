/**
 * Autoregressive generation with the model's decoding cache (Doge: KV cache; Cheems: KV cache + SSD states), spec 5.
 *
 * Batches of different lengths are left-padded with `padTokenId`; the attention mask excludes the pads and
 * positions are cumsum(mask) - 1 (pads at 1), as HF `generate` does. Rows that produced `eosTokenId` continue with
 * pads and the loop stops when every row has finished. Returns prompt + new tokens per row (up to and incl. eos).
 */
import { tf } from '../tf';
import { Rng } from '../ops';
import { hostDecoderFor, type TokenStepper } from '../runtime/host-decoders';
import { pickToken, type SamplingOptions } from './sampling';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens?: number; // default 20
  eosTokenId?: number | number[] | null; // default config.eos_token_id
  padTokenId?: number | null; // default config.pad_token_id ?? eos ?? 0
  seed?: number; // sampling seed (default 0)
  /** Called after every step with the new token of each row. */
  onToken?: (tokens: number[], step: number) => void;
  /** Called with the last-position logits [B, V] of every step (before processing). */
  onLogits?: (logits: Float32Array, step: number) => void;
  /** false = recompute the whole sequence at every step (reference for testing the cache). */
  useCache?: boolean;
  /**
   * Let the runtime's host decoder for this model run the steps after the prompt when one is registered and it
   * applies (Doge: batch 1 on wasm with the native BLAS, src/runtime/doge-host-decoder.ts). Default: on unless
   * WM_FAST_DECODE=0; false = every step through `model.forward` (the reference path).
   */
  fastDecode?: boolean;
  /** Called once after the prompt when a host decoder was asked for: whether one runs the rest, else why not. */
  onHostDecoder?: (info: { used: boolean; reason: string | null }) => void;
}

export type { TokenStepper };

/** Whether `generate` may use a host decoder: the option, else WM_FAST_DECODE (0/false/off = no). */
export function fastDecodeEnabled(option: boolean | undefined, env = process.env.WM_FAST_DECODE): boolean {
  if (option !== undefined) return option;
  if (env === undefined || env === '' || env === '1' || env === 'true' || env === 'on' || env === 'auto') return true;
  if (env === '0' || env === 'false' || env === 'off') return false;
  throw new Error(`WM_FAST_DECODE must be 0 or 1, got '${env}'`);
}

/** A decoding cache: per-layer tensors plus the count of cached positions and their key mask. */
export interface DecodingCache {
  layers: object[];
  length: number;
  mask: Int32Array | null;
}

/** What `generate` needs of a model (DogeForCausalLM and CheemsForCausalLM have it). */
export interface GenerativeModel<C extends DecodingCache = DecodingCache> {
  /** model_type picks the runtime's host decoder (src/runtime/host-decoders.ts), if one is registered. */
  config: { vocab_size: number; eos_token_id: number | null; pad_token_id: number | null; model_type?: string };
  /** false: positions stay P + t under left padding (Cheems' seed rule); default true: HF generate's cumsum(mask) - 1. */
  readonly positionsFollowMask?: boolean;
  forward(input: {
    inputIds: number[][]; attentionMask?: number[][]; positionIds?: number[][];
    cache?: C; useCache?: boolean; logitsToKeep?: number;
  }): { logits: tf.Tensor; cache?: C };
}

/** Free every tensor of a decoding cache. */
export function disposeDecodingCache(cache: DecodingCache | null | undefined): void {
  if (cache) tf.dispose(cache.layers as unknown as tf.TensorContainer);
}

export function generate<C extends DecodingCache>(model: GenerativeModel<C>, inputIds: number[][] | tf.Tensor, opts: GenerateOptions = {}): number[][] {
  const steps = generateSteps(model, inputIds, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * `generate` one step at a time: yields each step's new tokens (one per row) and returns what `generate` returns.
 * For callers that must stay responsive between tokens (a server streaming to clients, a chat stopped by Ctrl-C):
 * they await between `next()` calls, and `return()` stops early and frees the cache.
 */
export function* generateSteps<C extends DecodingCache>(model: GenerativeModel<C>, inputIds: number[][] | tf.Tensor, opts: GenerateOptions = {}): Generator<number[], number[][], void> {
  const c = model.config;
  const prompts: number[][] = inputIds instanceof tf.Tensor ? (inputIds.arraySync() as number[][]) : inputIds.map((r) => [...r]);
  if (prompts.length === 0 || prompts.some((r) => r.length === 0)) throw new Error('generate: every prompt needs at least one token');
  const maxNew = opts.maxNewTokens ?? 20;
  const eosList = opts.eosTokenId === undefined ? (c.eos_token_id === null ? [] : [c.eos_token_id]) : opts.eosTokenId === null ? [] : ([] as number[]).concat(opts.eosTokenId);
  const pad = opts.padTokenId ?? c.pad_token_id ?? eosList[0] ?? 0;
  const rng = new Rng(opts.seed ?? 0);
  const useCache = opts.useCache ?? true;
  const B = prompts.length;
  const L0 = Math.max(...prompts.map((r) => r.length));
  const padded = prompts.length > 1 && prompts.some((r) => r.length !== L0);

  // rows as they grow (left-padded), the key mask and the last position of each row
  const seqs = prompts.map((r) => [...new Array(L0 - r.length).fill(pad), ...r]);
  const mask = prompts.map((r) => [...new Array(L0 - r.length).fill(0), ...new Array(r.length).fill(1)]);
  const positionsOf = (m: number[]): number[] => {
    let cum = 0;
    return m.map((v) => { cum += v; return v === 0 ? 1 : cum - 1; });
  };
  const generated: number[][] = prompts.map(() => []);
  const finished = new Array(B).fill(false);
  const V = c.vocab_size;

  let cache: C | undefined;
  let stepper = null as TokenStepper | null; // set after the prompt when a host decoder applies
  const dispose = disposeDecodingCache;
  const maskPositions = padded && model.positionsFollowMask !== false;
  const fast = useCache && B === 1 && maxNew > 1 && fastDecodeEnabled(opts.fastDecode);
  /** One step through model.forward: the whole sequence first (or always without the cache), then the last token. */
  const forwardStep = (step: number): Float32Array => {
    const first = step === 0 || !useCache;
    const ids = first ? seqs : seqs.map((r) => [r[r.length - 1]]);
    const pos = first ? mask.map(positionsOf) : mask.map((m) => [positionsOf(m)[m.length - 1]]);
    const out = model.forward({
      inputIds: ids,
      attentionMask: padded ? mask : undefined,
      positionIds: maskPositions ? pos : undefined,
      cache: useCache && !first ? cache : undefined,
      useCache,
      logitsToKeep: 1,
    });
    const logits = Float32Array.from(out.logits.dataSync() as Float32Array); // [B, 1, V]
    out.logits.dispose();
    if (useCache) { dispose(cache); cache = out.cache; } else dispose(out.cache);
    // after the prompt: the runtime's host decoder takes over from the cache, which is then no longer needed
    if (fast && step === 0 && cache) {
      const choice = hostDecoderFor(model, cache, L0 + maxNew);
      stepper = choice.stepper;
      opts.onHostDecoder?.({ used: !!stepper, reason: choice.reason });
      if (stepper) { dispose(cache); cache = undefined; }
    }
    return logits;
  };
  try {
    for (let step = 0; step < maxNew; step++) {
      const logits = stepper ? stepper.step(seqs[0][seqs[0].length - 1]) : forwardStep(step); // [B * V]
      opts.onLogits?.(logits, step);

      const next: number[] = [];
      for (let b = 0; b < B; b++) {
        if (finished[b]) { next.push(pad); continue; }
        const row = logits.subarray(b * V, (b + 1) * V);
        // only the repetition penalty reads the history and changes the row (in place: copy what onLogits was given)
        const penalized = (opts.repetitionPenalty ?? 1) !== 1;
        const history = penalized ? seqs[b].filter((_, j) => mask[b][j] === 1) : [];
        const tok = pickToken(penalized && opts.onLogits ? Float32Array.from(row) : row, history, opts, rng);
        next.push(tok);
        generated[b].push(tok);
        if (eosList.includes(tok)) finished[b] = true;
      }
      for (let b = 0; b < B; b++) { seqs[b].push(next[b]); mask[b].push(1); }
      opts.onToken?.(next, step);
      yield next;
      if (finished.every(Boolean)) break;
    }
  } finally {
    dispose(cache);
    stepper?.dispose();
  }
  return prompts.map((r, b) => [...r, ...generated[b]]);
}
