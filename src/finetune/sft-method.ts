/**
 * Supervised fine-tuning as a `FinetuneMethod`: rows -> chat examples with loss masks (assistant-only by default)
 * -> packed rows of sft.seq_len; a micro-batch is an SftHostBatch (labels built once on the host); the loss is the
 * token mean over the step's targets; the held-out metric is the assistant (target) loss.
 */
import type { WmTokenizer } from '../data/tokenizer';
import type { LossHook } from '../train/trainer';
import { sftExample, type ChatExample } from './chat-data';
import { countTargets, packDocuments, type PackedRow } from './packing';
import { rowsToSftHostBatch, sftHostLoss, type SftHostBatch, type SftModel } from './sft';
import type { FinetuneConfig } from './config';
import type { SourcedRow } from './rows';
import type { FinetuneMethod } from './method';

/** Tokenize and pack SFT rows; errors name the row. */
export function buildSftRows(tok: WmTokenizer, rows: SourcedRow[], config: Pick<FinetuneConfig, 'sft' | 'source'>, what: string): { rows: PackedRow[]; examples: number } {
  const examples: ChatExample[] = rows.map((r) => sftExample(tok, r.row, { lossOn: config.sft.loss_on, where: r.where }));
  const kept = examples.filter((e) => e.inputIds.length >= 2);
  const pad = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const packed = packDocuments(kept, config.sft.seq_len, config.sft.packing, { padId: pad }).filter((r) => countTargets([r]) > 0);
  if (!packed.length) throw new Error(`${config.source}: the ${what} data is empty after tokenizing and packing (${rows.length} rows, ${kept.length} usable examples, seq_len ${config.sft.seq_len}, packing ${config.sft.packing})`);
  return { rows: packed, examples: kept.length };
}

/** Mean assistant (target) loss over held-out rows, pooled over tokens. */
export function sftEvalLoss(model: SftModel, rows: PackedRow[], o: { documentAware: boolean; evalBatchSize: number; evalBatches?: number }): { loss: number; targets: number } {
  let nll = 0;
  let n = 0;
  const maxB = o.evalBatches && o.evalBatches > 0 ? o.evalBatches : Infinity;
  for (let b = 0; b < maxB && b * o.evalBatchSize < rows.length; b++) {
    const batch = rowsToSftHostBatch(rows.slice(b * o.evalBatchSize, (b + 1) * o.evalBatchSize), { documentAware: o.documentAware });
    if (!batch.numTargets) continue;
    const v = sftHostLoss(model, batch, 1);
    nll += v.dataSync()[0]!;
    v.dispose();
    n += batch.numTargets;
  }
  return { loss: n ? nll / n : NaN, targets: n };
}

/** The SFT loss hook of the Trainer: micro-batches are host batches of packed rows. */
export function sftLossHook(model: SftModel, evalRows: PackedRow[], o: { documentAware: boolean; evalBatchSize: number; evalBatches: number }): LossHook<SftHostBatch> {
  return {
    items: (b) => b.numTargets,
    tokens: (b) => b.tokens,
    // summed NLL of the micro-batch / targets of the whole step (a micro-batch without targets adds 0)
    loss: (b, numItems, seed) => sftHostLoss(model, b, numItems, { training: true, dropoutSeed: seed }),
    evaluate: () => {
      const { loss } = sftEvalLoss(model, evalRows, o);
      return { eval_loss: loss, eval_perplexity: Math.exp(loss) };
    },
  };
}

export const SFT: FinetuneMethod<PackedRow, SftHostBatch> = {
  kind: 'sft',
  buildItems: (tok, rows, config, what) => {
    const r = buildSftRows(tok, rows, config, what);
    return { items: r.rows, examples: r.examples };
  },
  maxLength: (config) => config.sft.seq_len,
  setup: ({ config, policy, train, eval: evalRows }) => {
    const t = config.training;
    const documentAware = config.sft.packing === 'document';
    return {
      batch: (idx) => rowsToSftHostBatch(idx.map((i) => train[i]!), { documentAware }),
      hook: sftLossHook(policy, evalRows, { documentAware, evalBatchSize: t.per_device_eval_batch_size, evalBatches: t.eval_batches }),
      describe: () => `sft: ${train.length} rows of ${config.sft.seq_len} tokens (${config.sft.packing} packing, loss on ${config.sft.loss_on}: ${countTargets(train)} targets); ` +
        `${t.max_steps} steps of ${t.per_device_train_batch_size} x ${t.gradient_accumulation_steps} rows`,
      samplePrompt: () => {
        // the first held-out row up to its first target: a prompt the model was not trained on
        const r = evalRows[0];
        if (!r) return undefined;
        const t0 = r.lossMask.findIndex((m, i) => i > 0 && m === 1);
        return t0 > 0 ? Array.from(r.inputIds.subarray(0, t0)) : undefined;
      },
      dispose: () => {},
    };
  },
};
