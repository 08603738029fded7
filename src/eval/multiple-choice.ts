/**
 * Multiple-choice decisions from summed log-probs (lighteval v0.7 `LoglikelihoodAcc`, spec 3.2 step 4).
 *
 *   acc               argmax of sum
 *   acc_norm          argmax of sum / len(choice) in characters            (LogProbCharNorm)
 *   acc_norm_nospace  argmax of sum / (len - 1) when the choice starts with a space, else sum / len
 *   acc_token_norm    argmax of sum / number of continuation tokens       (LogProbTokenNorm)
 *
 * The first index wins ties (as np.argmax); an item with several gold indices is correct when the pick is any of them.
 */

export const MC_METRICS = ['acc', 'acc_norm', 'acc_norm_nospace', 'acc_token_norm'] as const;
export type McMetric = (typeof MC_METRICS)[number];

/** A choice as its text, or only its character length and whether it starts with a space. */
export type ChoiceText = string | { chars: number; leadingSpace?: boolean };

export interface McDecision {
  /** The picked choice index per metric. */
  predictions: Record<McMetric, number>;
  /** 1 when the pick is a gold index, else 0. */
  correct: Record<McMetric, number>;
  /** Best minus second-best normalised score (Infinity with one choice): how close the decision was. */
  margins: Record<McMetric, number>;
}

/** First index of the maximum (np.argmax), and the gap to the runner-up. */
export function argmaxFirst(values: number[]): { index: number; margin: number } {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  let second = -Infinity;
  for (let i = 0; i < values.length; i++) if (i !== best && values[i] > second) second = values[i];
  return { index: best, margin: values[best] - second };
}

function charInfo(c: ChoiceText, i: number): { chars: number; leadingSpace: boolean } {
  if (typeof c === 'string') return { chars: c.length, leadingSpace: c.startsWith(' ') };
  if (!c || !Number.isFinite(c.chars) || c.chars < 0) throw new Error(`mcDecisions: choice ${i} needs a string or { chars >= 0 }`);
  return { chars: c.chars, leadingSpace: !!c.leadingSpace };
}

/**
 * Decisions of one question. `sums[i]` is choice i's summed log-prob, `choiceTexts[i]` its string (or char
 * count), `nTokens[i]` its continuation token count, `gold` the gold index or indices.
 */
export function mcDecisions(sums: number[], choiceTexts: ChoiceText[], nTokens: number[], gold: number | number[]): McDecision {
  const n = sums.length;
  if (n === 0) throw new Error('mcDecisions: no choices');
  if (choiceTexts.length !== n) throw new Error(`mcDecisions: ${n} sums but ${choiceTexts.length} choice texts`);
  if (nTokens.length !== n) throw new Error(`mcDecisions: ${n} sums but ${nTokens.length} token counts`);
  const golds = Array.isArray(gold) ? gold : [gold];
  if (golds.length === 0) throw new Error('mcDecisions: no gold index');
  for (const g of golds) if (!Number.isInteger(g) || g < 0 || g >= n) throw new Error(`mcDecisions: gold index ${g} is not one of the ${n} choices`);
  const info = choiceTexts.map(charInfo);
  // an empty choice (0 characters or tokens) keeps its raw sum rather than turning into NaN or -Infinity
  const div = (s: number, d: number) => (d > 0 ? s / d : s);
  const scores: Record<McMetric, number[]> = {
    acc: sums.slice(),
    acc_norm: sums.map((s, i) => div(s, info[i].chars)),
    acc_norm_nospace: sums.map((s, i) => div(s, info[i].leadingSpace ? info[i].chars - 1 : info[i].chars)),
    acc_token_norm: sums.map((s, i) => div(s, nTokens[i])),
  };
  const predictions = {} as Record<McMetric, number>;
  const correct = {} as Record<McMetric, number>;
  const margins = {} as Record<McMetric, number>;
  for (const m of MC_METRICS) {
    const { index, margin } = argmaxFirst(scores[m]);
    predictions[m] = index;
    correct[m] = golds.includes(index) ? 1 : 0;
    margins[m] = margin;
  }
  return { predictions, correct, margins };
}

/** Single-token decision (MMLU "original"): argmax of the per-choice log-probs. */
export function singleTokenDecision(logprobs: number[], gold: number | number[]): { prediction: number; correct: number; margin: number } {
  const golds = Array.isArray(gold) ? gold : [gold];
  const { index, margin } = argmaxFirst(logprobs);
  return { prediction: index, correct: golds.includes(index) ? 1 : 0, margin };
}
