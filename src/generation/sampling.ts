/**
 * Host-side logits processing for generation, in Hugging Face's order:
 * repetition penalty -> temperature -> top-k -> top-p -> sample (or argmax for greedy).
 * Works on one row of float32 logits; deterministic for a given Rng.
 */
import { Rng } from '../ops';

export interface SamplingOptions {
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
}

/** HF RepetitionPenaltyLogitsProcessor: seen tokens' logits divided (positive) or multiplied (negative) by p. */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const t of new Set(seen)) {
    const v = logits[t];
    logits[t] = v < 0 ? v * penalty : v / penalty;
  }
}

export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Pick the next token from one row of logits (modified in place). */
export function pickToken(logits: Float32Array, history: number[], opts: SamplingOptions, rng: Rng): number {
  applyRepetitionPenalty(logits, history, opts.repetitionPenalty ?? 1);
  if (!opts.doSample) return argmax(logits);
  const temperature = opts.temperature ?? 1;
  if (!(temperature > 0)) throw new Error(`temperature must be > 0 when sampling, got ${temperature}`);
  const V = logits.length;
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  let n = V;
  const topK = opts.topK ?? 50;
  if (topK > 0 && topK < n) n = topK;
  // softmax over the kept candidates
  const mx = logits[order[0]] / temperature;
  const probs = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) { probs[i] = Math.exp(logits[order[i]] / temperature - mx); sum += probs[i]; }
  for (let i = 0; i < n; i++) probs[i] /= sum;
  const topP = opts.topP ?? 1;
  if (topP < 1) {
    // keep the smallest prefix whose mass reaches topP (at least one token)
    let cum = 0;
    let keep = n;
    for (let i = 0; i < n; i++) { cum += probs[i]; if (cum >= topP) { keep = i + 1; break; } }
    n = keep;
    let s = 0;
    for (let i = 0; i < n; i++) s += probs[i];
    for (let i = 0; i < n; i++) probs[i] /= s;
  }
  const u = rng.next();
  let cum = 0;
  for (let i = 0; i < n; i++) { cum += probs[i]; if (u < cum) return order[i]; }
  return order[n - 1];
}
