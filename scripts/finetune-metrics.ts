/**
 * The fine-tuning table of docs/finetune-defaults.md for base / SFT / DPO checkpoints (the embedded data's test
 * split, never trained on): held-out assistant loss (200 test chats, document-aware rows of the SFT recipe), the
 * share of greedy replies that stop at end-of-turn within 32 new tokens and their mean length (64 held-out
 * prompts), and DPO's held-out rewards/accuracies and margins (100 test pairs, the SFT model as the reference).
 * Usage: npx tsx scripts/finetune-metrics.ts [--base DIR] [--sft DIR] [--dpo DIR]
 *   (defaults: runs/doge-tiny/final, runs/doge-tiny-sft/final, runs/doge-tiny-dpo/final)
 */
import { parseArgs } from 'node:util';
import { loadBackend } from '../src/runtime/backend';
import { loadTokenizer } from '../src/data';
import { DogeForCausalLM } from '../src/models/doge/model';
import { buildDpoPairs, buildSftRows, defaultChats, dpoEvaluate, loadFinetuneConfig, readFinetuneRows, sftEvalLoss, stopRate } from '../src/finetune';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { base: { type: 'string' }, sft: { type: 'string' }, dpo: { type: 'string' } } });
  const dirs = {
    base: values.base ?? 'runs/doge-tiny/final',
    sft: values.sft ?? 'runs/doge-tiny-sft/final',
    dpo: values.dpo ?? 'runs/doge-tiny-dpo/final',
  };
  await loadBackend({ log: false });
  const tok = await loadTokenizer(dirs.sft);
  const sftConfig = loadFinetuneConfig('configs/doge-tiny-sft.yaml', 'sft', {});
  const dpoConfig = loadFinetuneConfig('configs/doge-tiny-dpo.yaml', 'dpo', {});
  const heldOut = buildSftRows(tok, await readFinetuneRows('embedded:chats', { split: 'test', n: 200 }), sftConfig, 'held-out').rows;
  const pairs = buildDpoPairs(tok, await readFinetuneRows('embedded:prefs', { split: 'test', n: 100 }), dpoConfig, 'held-out');
  // the prompts of 64 held-out chats: the turns before the first assistant answer
  const prompts = defaultChats({ seed: 0, n: 64, split: 'test' }).map((c) => c.messages.slice(0, c.messages.findIndex((m) => m.role === 'assistant')));
  const models = Object.fromEntries(Object.entries(dirs).map(([k, d]) => [k, DogeForCausalLM.fromPretrained(d)])) as Record<keyof typeof dirs, DogeForCausalLM>;
  console.log('model | held-out assistant loss | stop rate (32 tokens) | mean reply tokens | held-out rewards/accuracies, margins (SFT reference)');
  for (const [name, m] of Object.entries(models)) {
    const loss = sftEvalLoss(m, heldOut, { documentAware: true, evalBatchSize: 16 }).loss;
    const s = stopRate(m, tok, prompts, { maxNewTokens: 32 });
    let pref = name === 'sft' ? '(the reference)' : '-';
    if (name === 'dpo') {
      const ev = dpoEvaluate(m, models.sft, pairs, { beta: dpoConfig.dpo.beta, labelSmoothing: 0, padId: tok.padTokenId ?? 0, evalBatchSize: 16 });
      pref = `${ev['eval_rewards/accuracies']!.toFixed(3)}, ${ev['eval_rewards/margins']!.toFixed(3)}`;
    }
    console.log(`${name.padEnd(5)} | ${loss.toFixed(3).padStart(23)} | ${s.rate.toFixed(2).padStart(21)} | ${s.meanNewTokens.toFixed(1).padStart(17)} | ${pref}`);
  }
  for (const m of Object.values(models)) m.dispose();
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
