/**
 * Requests/s of `wm serve` with 1 and 8 concurrent clients (the model's queue runs one computation at a time, so
 * 8 clients measure the queue's overhead and latency, not parallel speed-up).
 * Usage: npx tsx scripts/bench-serve.ts --model DIR [--requests 16] [--max-tokens 32] [--endpoint chat|completions]
 * Prints one JSON line per concurrency: requests/s, completion tokens/s, mean and p50/max latency.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, requests: { type: 'string', default: '16' }, 'max-tokens': { type: 'string', default: '32' }, endpoint: { type: 'string', default: 'chat' } } });
  const chat = values.endpoint !== 'completions';
  if (!values.model) throw new Error('give --model DIR');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'src', 'cli', 'wm.ts'), 'serve', '--model', values.model, '--port', '0', '--max-queue', '64'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); const m = /at (http:\/\/[\d.:]+)\/v1/.exec(err); if (m) resolve(m[1]!); });
    child.on('exit', (c) => reject(new Error(`wm serve exited ${c}: ${err}`)));
  });
  try {
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    const model = models.data[0]!.id;
    const n = Number(values.requests);
    const ask = async (i: number) => {
      const t0 = performance.now();
      // chat: questions like the embedded chats (the reply ends at end-of-turn); completions: plain text, max_tokens long
      const body = chat
        ? { model, messages: [{ role: 'user', content: `Ann has a white block. Tom has a red piece ${i}. What colour is Tom's piece?` }], max_tokens: Number(values['max-tokens']), temperature: 0 }
        : { model, prompt: `The jury said ${i}`, max_tokens: Number(values['max-tokens']), temperature: 0 };
      const r = await fetch(`${url}/v1/${chat ? 'chat/' : ''}completions`, { method: 'POST', body: JSON.stringify(body) });
      const answer = (await r.json()) as { usage: { completion_tokens: number } };
      return { ms: performance.now() - t0, tokens: answer.usage.completion_tokens };
    };
    await ask(0); // warm-up
    for (const clients of [1, 8]) {
      const t0 = performance.now();
      const results: { ms: number; tokens: number }[] = [];
      let next = 0;
      await Promise.all(Array.from({ length: clients }, async () => { while (next < n) results.push(await ask(next++)); }));
      const s = (performance.now() - t0) / 1000;
      const ms = results.map((r) => r.ms).sort((a, b) => a - b);
      console.log(JSON.stringify({ endpoint: chat ? 'chat' : 'completions', clients, requests: n, seconds: +s.toFixed(2), requests_per_s: +(n / s).toFixed(2), completion_tokens_per_s: +(results.reduce((a, r) => a + r.tokens, 0) / s).toFixed(1), mean_latency_ms: Math.round(ms.reduce((a, b) => a + b, 0) / n), p50_ms: Math.round(ms[Math.floor(n / 2)]!), max_ms: Math.round(ms.at(-1)!) }));
    }
  } finally {
    child.kill('SIGTERM');
  }
}

main().catch((e) => { console.error(e instanceof Error ? e.message : e); process.exit(1); });
