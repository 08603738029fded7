/**
 * The fine-tuning metrics of docs/finetune-defaults.md for base / SFT / DPO checkpoints, on the embedded data's
 * test split (never trained on): held-out assistant loss (test chats in the SFT recipe's document-aware rows), the
 * share of greedy replies that stop at end-of-turn within a budget and their mean length (held-out prompts), and
 * DPO's held-out rewards/accuracies and margins (test pairs, the SFT model as the reference).
 * Used by `wm speedrun` and scripts/finetune-metrics.ts.
 */
import { loadTokenizer } from '../data/tokenizer';
import { DogeForCausalLM } from '../models/doge/model';
import { defaultChats } from '../finetune/default-data';
import { readFinetuneRows } from '../finetune/rows';
import { buildSftRows, sftEvalLoss } from '../finetune/sft-method';
import { buildDpoPairs, dpoEvaluate } from '../finetune/dpo-method';
import { stopRate } from '../finetune/chat';
import type { FinetuneConfig } from '../finetune/config';

export interface ChatMetrics {
  heldOutAssistantLoss: number;
  stopRate: number;
  meanReplyTokens: number;
  /** DPO model only: held-out rewards/accuracies and margins against the SFT model. */
  rewardAccuracy?: number;
  rewardMargin?: number;
}

export interface ChatMetricsOptions {
  sftConfig: FinetuneConfig;
  dpoConfig: FinetuneConfig;
  /** Held-out chats for the assistant loss (default 200), prompts for the stop rate (64), pairs (100). */
  chats?: number;
  prompts?: number;
  pairs?: number;
  maxNewTokens?: number;
}

/** Metrics of each model folder in `dirs` (keys: base, sft, dpo; the dpo row needs sft as its reference). */
export async function chatMetrics(dirs: { base?: string; sft: string; dpo?: string }, o: ChatMetricsOptions): Promise<Record<string, ChatMetrics>> {
  const tok = await loadTokenizer(dirs.sft);
  const heldOut = buildSftRows(tok, await readFinetuneRows('embedded:chats', { split: 'test', n: o.chats ?? 200 }), o.sftConfig, 'held-out').rows;
  const pairs = buildDpoPairs(tok, await readFinetuneRows('embedded:prefs', { split: 'test', n: o.pairs ?? 100 }), o.dpoConfig, 'held-out');
  // the prompts of held-out chats: the turns before the first assistant answer
  const prompts = defaultChats({ seed: 0, n: o.prompts ?? 64, split: 'test' }).map((c) => c.messages.slice(0, c.messages.findIndex((m) => m.role === 'assistant')));
  const models: Record<string, DogeForCausalLM> = {};
  const out: Record<string, ChatMetrics> = {};
  try {
    for (const [k, d] of Object.entries(dirs)) if (d) models[k] = DogeForCausalLM.fromPretrained(d);
    for (const [name, m] of Object.entries(models)) {
      const s = stopRate(m, tok, prompts, { maxNewTokens: o.maxNewTokens ?? 32 });
      const row: ChatMetrics = { heldOutAssistantLoss: sftEvalLoss(m, heldOut, { documentAware: true, evalBatchSize: 16 }).loss, stopRate: s.rate, meanReplyTokens: s.meanNewTokens };
      if (name === 'dpo') {
        const ev = dpoEvaluate(m, models.sft!, pairs, { beta: o.dpoConfig.dpo.beta, labelSmoothing: 0, padId: tok.padTokenId ?? 0, evalBatchSize: 16 });
        row.rewardAccuracy = ev['eval_rewards/accuracies'];
        row.rewardMargin = ev['eval_rewards/margins'];
      }
      out[name] = row;
    }
  } finally {
    for (const m of Object.values(models)) m.dispose();
  }
  return out;
}
