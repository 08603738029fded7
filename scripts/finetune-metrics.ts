/**
 * The fine-tuning table of docs/finetune-defaults.md for base / SFT / DPO checkpoints (src/speedrun/chat-metrics.ts:
 * the embedded data's test split, never trained on): held-out assistant loss (200 test chats, document-aware rows
 * of the SFT recipe), the share of greedy replies that stop at end-of-turn within 32 new tokens and their mean
 * length (64 held-out prompts), and DPO's held-out rewards/accuracies and margins (100 test pairs, the SFT model as
 * the reference). `wm speedrun` reports the same numbers.
 * Usage: npx tsx scripts/finetune-metrics.ts [--base DIR] [--sft DIR] [--dpo DIR]
 *   (defaults: runs/doge-tiny/final, runs/doge-tiny-sft/final, runs/doge-tiny-dpo/final)
 */
import { parseArgs } from 'node:util';
import { loadBackend } from '../src/runtime/backend';
import { loadFinetuneConfig } from '../src/finetune';
import { chatMetrics } from '../src/speedrun/chat-metrics';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { base: { type: 'string' }, sft: { type: 'string' }, dpo: { type: 'string' } } });
  const dirs = {
    base: values.base ?? 'runs/doge-tiny/final',
    sft: values.sft ?? 'runs/doge-tiny-sft/final',
    dpo: values.dpo ?? 'runs/doge-tiny-dpo/final',
  };
  await loadBackend({ log: false });
  const rows = await chatMetrics(dirs, {
    sftConfig: loadFinetuneConfig('configs/doge-tiny-sft.yaml', 'sft', {}),
    dpoConfig: loadFinetuneConfig('configs/doge-tiny-dpo.yaml', 'dpo', {}),
  });
  console.log('model | held-out assistant loss | stop rate (32 tokens) | mean reply tokens | held-out rewards/accuracies, margins (SFT reference)');
  for (const [name, r] of Object.entries(rows)) {
    const pref = name === 'sft' ? '(the reference)' : r.rewardAccuracy !== undefined ? `${r.rewardAccuracy.toFixed(3)}, ${r.rewardMargin!.toFixed(3)}` : '-';
    console.log(`${name.padEnd(5)} | ${r.heldOutAssistantLoss.toFixed(3).padStart(23)} | ${r.stopRate.toFixed(2).padStart(21)} | ${r.meanReplyTokens.toFixed(1).padStart(17)} | ${pref}`);
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
