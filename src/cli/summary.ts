/** The closing "what you got and what next" block of `wm pretrain`, `wm sft` and `wm dpo`. */

export interface RunSummary {
  /** 'pre-trained', 'fine-tuned (SFT)', ... */
  what: string;
  finalDir: string;
  /** Held-out loss before the first step and at the end (undefined when not measured). */
  before?: number;
  after?: number;
  /** A sample of the final model. */
  sample?: { prompt: string; reply: string };
  /** Commands to run next. */
  next: string[];
}

export function printSummary(s: RunSummary): void {
  const lines = [`\nwhat you got: a ${s.what} model in ${s.finalDir}`];
  if (s.before !== undefined && s.after !== undefined) {
    lines.push(`  held-out loss ${s.before.toFixed(4)} -> ${s.after.toFixed(4)} (${s.after < s.before ? 'better' : 'not better'} than before training)`);
  } else if (s.after !== undefined) {
    lines.push(`  held-out loss ${s.after.toFixed(4)}`);
  }
  if (s.sample) lines.push(`  sample: ${JSON.stringify(s.sample.prompt.slice(-120))} -> ${JSON.stringify(s.sample.reply.slice(0, 160))}`);
  lines.push('next:');
  for (const n of s.next) lines.push(`  ${n}`);
  console.error(lines.join('\n'));
}
