/**
 * Generative tasks (spec 3.3, TriviaQA style): greedy decoding until a stop id or stop string, and lighteval's
 * quasi-exact match (`qem`) with its alias processing.
 *
 *   const r = greedyUntil(model, ids, { stopIds: [eos], stopStrings: ['\n', '.', ','], maxNewTokens: 20, decode });
 *   triviaqaExactMatch(r.text, triviaqaGolds(row.answer.aliases))   // 1 or 0
 */
import { tf } from '../tf';
import type { EvalModel } from './loglikelihood';

export interface GreedyUntilOptions {
  /** Token ids that end generation; the stop id itself is not returned. */
  stopIds?: number[];
  /** Strings that end generation; the text is cut at the first one (needs `decode`). */
  stopStrings?: string[];
  /** Default 20 (lighteval's generation_size for TriviaQA). */
  maxNewTokens?: number;
  /** Token ids -> text; required with stopStrings. */
  decode?: (ids: number[]) => string;
  /** Longest model input; longer prompts keep their last tokens (default max_position_embeddings). */
  maxLength?: number;
}

export interface GreedyUntilResult {
  /** New token ids (without the stop id; with stop strings, the tokens up to the one that completed it). */
  ids: number[];
  /** Decoded text cut at the first stop string (when `decode` is given). */
  text?: string;
  finish: 'stop' | 'length';
}

/** Everything before the first occurrence of any stop string (the whole text when none occurs). */
export function cutAtStop(text: string, stops: string[]): string {
  let end = text.length;
  for (const s of stops) {
    if (s === '') continue;
    const i = text.indexOf(s);
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end);
}

function argmaxRow(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/**
 * Greedy decoding of one prompt. Uses the model's KV cache when its forward returns one (Doge), otherwise
 * re-reads the whole sequence each step.
 */
export function greedyUntil(model: EvalModel, ids: number[], options: GreedyUntilOptions = {}): GreedyUntilResult {
  const stopIds = options.stopIds ?? [];
  const stopStrings = (options.stopStrings ?? []).filter((s) => s !== '');
  const maxNew = options.maxNewTokens ?? 20;
  const maxLength = options.maxLength ?? model.config.max_position_embeddings ?? 2048;
  if (!Array.isArray(ids) || ids.length === 0) throw new Error('greedyUntil: the prompt needs at least one token');
  if (stopStrings.length && !options.decode) throw new Error('greedyUntil: stopStrings need a decode function');
  const V = model.config.vocab_size;
  for (const [i, v] of ids.entries()) if (!Number.isInteger(v) || v < 0 || v >= V) throw new Error(`greedyUntil: prompt[${i}] = ${v} is not a token id in [0, ${V})`);
  const seq = ids.slice(-Math.max(1, maxLength - maxNew));
  const out: number[] = [];
  let cache: unknown;
  let finish: 'stop' | 'length' = 'length';
  try {
    for (let step = 0; step < maxNew; step++) {
      const input = cache ? [[seq[seq.length - 1]]] : [seq];
      const res = model.forward({ inputIds: input, cache: cache as never, useCache: true, logitsToKeep: 1 });
      const logits = res.logits.dataSync(); // [1, 1, V]
      res.logits.dispose();
      if (cache) tf.dispose(cache as tf.TensorContainer);
      cache = res.cache;
      const tok = argmaxRow(logits.subarray(logits.length - V));
      if (stopIds.includes(tok)) { finish = 'stop'; break; }
      out.push(tok);
      seq.push(tok);
      if (stopStrings.length && stopStrings.some((s) => options.decode!(out).includes(s))) { finish = 'stop'; break; }
    }
  } finally {
    if (cache) tf.dispose(cache as tf.TensorContainer);
  }
  const result: GreedyUntilResult = { ids: out, finish };
  if (options.decode) result.text = cutAtStop(options.decode(out), stopStrings);
  return result;
}

/** ASCII punctuation (Python's string.punctuation). */
const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;

/** lighteval's TriviaQA normaliser: strip, lower-case, delete ASCII punctuation. */
export function triviaqaNormalize(text: string): string {
  return text.trim().toLowerCase().replace(PUNCTUATION, '');
}

/**
 * Golds of a TriviaQA row from its aliases: sort (code-point order), drop every alias that starts with the
 * previously kept one, then lower-case and delete ASCII punctuation (no strip: that happens at match time).
 */
export function triviaqaGolds(aliases: string[]): string[] {
  const sorted = [...aliases].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const kept: string[] = [];
  for (const a of sorted) if (kept.length === 0 || !a.startsWith(kept[kept.length - 1])) kept.push(a);
  return kept.map((a) => a.toLowerCase().replace(PUNCTUATION, ''));
}

/** `qem`: 1 when the normalised prediction equals a stripped gold; an empty prediction scores 0. */
export function triviaqaExactMatch(prediction: string, golds: string[]): number {
  const p = triviaqaNormalize(prediction);
  if (p === '') return 0;
  return golds.some((g) => g.trim() === p) ? 1 : 0;
}
