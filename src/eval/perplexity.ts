/**
 * Perplexity of token documents (spec 3.1): exp(sum of NLL / number of predicted tokens), pooled over every
 * token of every document (not a mean of per-document perplexities).
 *
 *   perplexity(model, docs)                 // the first token of each document is context only (held-out blocks)
 *   perplexity(model, docs, { prefixId: eos })  // EOS goes in front, so every token is predicted (lighteval)
 *
 * A document longer than `maxLength` (default the model's max_position_embeddings) is scored in consecutive
 * windows: each window after the first starts with the previous window's last token as its only context, so every
 * token is predicted exactly once (with less history at the window starts; lighteval has no window at all).
 */
import { scoreContinuations, type ContinuationRequest, type EvalModel, type ScoreOptions } from './loglikelihood';

export interface PerplexityOptions extends ScoreOptions {
  /** Token put in front of every document so its first token is predicted too (lighteval uses EOS). */
  prefixId?: number;
}

export interface PerplexityResult {
  /** exp(nllSum / nTokens). */
  ppl: number;
  /** Sum of -log p over every predicted token. */
  nllSum: number;
  /** Number of predicted tokens. */
  nTokens: number;
  /** Per document: summed NLL and predicted tokens. */
  perDocument: { nll: number; tokens: number }[];
}

export function perplexity(model: EvalModel, documents: number[][], options: PerplexityOptions = {}): PerplexityResult {
  const maxLength = options.maxLength ?? model.config.max_position_embeddings ?? 2048;
  if (!Array.isArray(documents) || documents.length === 0) throw new Error('perplexity: no documents');
  const requests: ContinuationRequest[] = [];
  const owner: number[] = [];
  documents.forEach((doc, d) => {
    if (!Array.isArray(doc)) throw new Error(`perplexity: document ${d} is not an array of token ids`);
    const ids = options.prefixId === undefined ? doc : [options.prefixId, ...doc];
    if (ids.length < 2) throw new Error(`perplexity: document ${d} has ${doc.length} token(s): nothing to predict${options.prefixId === undefined ? ' (the first token is context only)' : ''}`);
    // windows of maxLength + 1 tokens sharing one token: the model reads maxLength of them
    for (let s = 0; s < ids.length - 1; s += maxLength) {
      const w = ids.slice(s, s + maxLength + 1);
      requests.push({ context: [w[0]], continuation: w.slice(1) });
      owner.push(d);
    }
  });
  const scores = scoreContinuations(model, requests, { ...options, maxLength });
  const perDocument = documents.map(() => ({ nll: 0, tokens: 0 }));
  scores.forEach((s, i) => {
    perDocument[owner[i]].nll -= s.sum;
    perDocument[owner[i]].tokens += s.tokenLogprobs.length;
  });
  const nllSum = perDocument.reduce((a, d) => a + d.nll, 0);
  const nTokens = perDocument.reduce((a, d) => a + d.tokens, 0);
  return { ppl: Math.exp(nllSum / nTokens), nllSum, nTokens, perDocument };
}
