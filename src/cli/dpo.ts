/**
 * `wm dpo --config configs/doge-tiny-dpo.yaml [--resume [DIR]] [--<key> VALUE ...]`
 *
 * Direct Preference Optimization (loss_type sigmoid, hinge or ipo; --loss-type) from a YAML recipe: (prompt, chosen, rejected) rows as strings or
 * message lists, the seed's truncation, a frozen reference (a copy of the start checkpoint, or log-probs
 * precomputed once), TRL's metric names in the progress line, metrics.jsonl and loss.html. Arguments as `wm sft`.
 */
import { runFinetuneCli } from './sft';

export async function run(argv: string[]): Promise<void> {
  await runFinetuneCli('dpo', argv);
}
