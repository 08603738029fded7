/**
 * The unigram baseline: the loss of the best model that ignores context, which predicts every token with its
 * frequency in the training split. A language model's loss means something only next to it: a model at the
 * unigram loss has learned which tokens are common and nothing about order.
 */

/** Rows of token ids (a PackedDataset has this shape). */
export interface TokenRows {
  readonly numRows: number;
  row(i: number): ArrayLike<number>;
}

export interface UnigramBaseline {
  /** Cross-entropy (nats per token) of the training-split frequencies on the eval rows (add-one smoothed). */
  loss: number;
  /** exp(loss). */
  perplexity: number;
  /** The loss of guessing uniformly over the vocabulary: ln(vocabSize). */
  uniformLoss: number;
  trainTokens: number;
  evalTokens: number;
}

function asRows(x: TokenRows | ArrayLike<number>[]): TokenRows {
  return Array.isArray(x) ? { numRows: x.length, row: (i: number) => x[i]! } : (x as TokenRows);
}

/**
 * The loss of the unigram model on `evalRows`. Like the trainer's loss, the first token of each row is not
 * predicted (it has no context), so the numbers compare directly with `eval_loss`.
 */
export function unigramBaseline(train: TokenRows | ArrayLike<number>[], evalSet: TokenRows | ArrayLike<number>[], vocabSize: number): UnigramBaseline {
  const trainRows = asRows(train);
  const evalRows = asRows(evalSet);
  const counts = new Float64Array(vocabSize).fill(1); // add-one: a token never seen in training is not infinitely surprising
  let trainTokens = 0;
  for (let i = 0; i < trainRows.numRows; i++) {
    const row = trainRows.row(i);
    for (let j = 0; j < row.length; j++) {
      const id = row[j]!;
      if (id < 0 || id >= vocabSize) throw new Error(`unigramBaseline: training row ${i} position ${j} has token id ${id} outside the vocabulary (size ${vocabSize})`);
      counts[id]!++;
      trainTokens++;
    }
  }
  const total = trainTokens + vocabSize;
  let nll = 0;
  let evalTokens = 0;
  for (let i = 0; i < evalRows.numRows; i++) {
    const row = evalRows.row(i);
    for (let j = 1; j < row.length; j++) {
      const id = row[j]!;
      if (id < 0 || id >= vocabSize) throw new Error(`unigramBaseline: eval row ${i} position ${j} has token id ${id} outside the vocabulary (size ${vocabSize})`);
      nll -= Math.log(counts[id]! / total);
      evalTokens++;
    }
  }
  if (evalTokens === 0) throw new Error('unigramBaseline: the eval rows hold no predicted tokens');
  const loss = nll / evalTokens;
  return { loss, perplexity: Math.exp(loss), uniformLoss: Math.log(vocabSize), trainTokens, evalTokens };
}
