// Kernels per training step and per decoded token, with and without the fused kernels (issue 21), per preset, with a
// breakdown by kernel name. Counts are machine-independent (the same on Mesa's software adapter as on a GPU); the
// timings that go with them come from `wm bench` (µs per kernel).
//
//   WM_BACKEND=webgpu node --import tsx scripts/bench-kernels.ts [--presets doge-tiny,doge-20m,cheems-tiny]
//       [--batch 2] [--seq-len 64] [--new-tokens 8] [--top 12] [--rounds 0] [--json FILE]
//
// One process runs both sides: the step and the generation once with the fused kernels (src/runtime/webgpu-kernels.ts)
// and once with WM_FUSED_KERNELS=0 (every fused op runs its plain-tfjs fallback, the ops the models ran before), after
// a warm-up of each. On webgpu `dispatches` are GPU programs (what a GPU pays a launch for); `kernels` are tfjs kernel
// calls (on wasm the only count). The training step is `wm bench`'s (forward, backward, clip, AdamW).
// `--rounds N` also times both sides, alternating unfused and fused steps (and generations) N times so both see the
// same machine load: median wall and process-CPU ms per step / per token, and wall µs per dispatch (per kernel on wasm).
import * as fs from 'node:fs';
import { loadBackend, tf } from '../src/runtime/backend';
import { buildModelConfig, createCausalLM } from '../src/models/auto';
import { AdamW } from '../src/train/adamw';
import { countKernels, randomIds, trainStep, type BenchModel } from '../src/cli/bench';

interface Counts { kernels: number; dispatches: number; byKernel: Record<string, { kernels: number; dispatches: number }> }

function parseArgs(argv: string[]) {
  const o = { presets: ['doge-tiny', 'doge-20m', 'cheems-tiny'], batch: 2, seqLen: 64, newTokens: 8, top: 12, rounds: 0, json: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = argv[i + 1];
    if (a === '--presets') o.presets = v.split(',');
    else if (a === '--json') o.json = v;
    else if (a === '--batch' || a === '--seq-len' || a === '--new-tokens' || a === '--top' || a === '--rounds') {
      const n = Number(v);
      if (!(Number.isInteger(n) && n >= (a === '--rounds' ? 0 : 1))) throw new Error(`${a} must be a ${a === '--rounds' ? 'non-negative' : 'positive'} integer, got '${v}'`);
      if (a === '--batch') o.batch = n; else if (a === '--seq-len') o.seqLen = n; else if (a === '--new-tokens') o.newTokens = n;
      else if (a === '--top') o.top = n; else o.rounds = n;
    } else throw new Error(`bench-kernels: unknown argument '${a}' (see the header of scripts/bench-kernels.ts)`);
    i++;
  }
  return o;
}

function withFused<T>(on: boolean, f: () => T): T {
  const saved = process.env.WM_FUSED_KERNELS;
  process.env.WM_FUSED_KERNELS = on ? '1' : '0';
  try {
    return f();
  } finally {
    if (saved === undefined) delete process.env.WM_FUSED_KERNELS;
    else process.env.WM_FUSED_KERNELS = saved;
  }
}

function counted(f: () => unknown, per = 1): Counts {
  const c = countKernels(f);
  const byKernel: Counts['byKernel'] = {};
  for (const [k, v] of c.byKernel) byKernel[k] = { kernels: +(v.kernels / per).toFixed(2), dispatches: +(v.dispatches / per).toFixed(2) };
  return { kernels: +(c.kernels / per).toFixed(1), dispatches: +(c.dispatches / per).toFixed(1), byKernel };
}

function measurePreset(preset: string, o: ReturnType<typeof parseArgs>): Record<string, unknown> {
  const config = buildModelConfig(preset, {});
  const model = createCausalLM(config, { seed: 0 }) as unknown as BenchModel;
  const params = model.parameters();
  const opt = new AdamW(params, { beta1: 0.9, beta2: 0.95, weightDecay: 0.01 });
  const micro = [randomIds(o.batch, o.seqLen, config.vocab_size, 1)];
  const step = trainStep(model, params, opt, micro, o.batch * (o.seqLen - 1));
  const prompt = randomIds(1, 32, config.vocab_size, 2);
  const gen = () => model.generate(prompt, { maxNewTokens: o.newTokens, doSample: false, eosTokenId: null });
  const out: Record<string, unknown> = { preset, batch: o.batch, seq_len: o.seqLen, prompt: 32, new_tokens: o.newTokens };
  const sides = [['unfused', false], ['fused', true]] as const;
  for (const [side, on] of sides) {
    withFused(on, step); // warm-up: pipelines compiled
    out[`train_${side}`] = withFused(on, () => counted(step));
  }
  // decoding after the training steps (which re-assign every weight): warm-ups first, so the transposed weights
  // are cached as in a fresh model's generation (`wm bench`)
  for (const [, on] of sides) withFused(on, gen);
  for (const [side, on] of sides) out[`decode_${side}`] = withFused(on, () => counted(gen, o.newTokens));
  if (o.rounds > 0) {
    const times: Record<string, { wall: number[]; cpu: number[] }> = {};
    const time = (key: string, f: () => unknown, per: number) => {
      const w0 = performance.now(), c0 = process.cpuUsage();
      f();
      const c = process.cpuUsage(c0);
      (times[key] ??= { wall: [], cpu: [] }).wall.push((performance.now() - w0) / per);
      times[key].cpu.push((c.user + c.system) / 1000 / per);
    };
    for (let i = 0; i < o.rounds; i++) for (const [side, on] of sides) withFused(on, () => time(`train_${side}`, step, 1));
    for (const [, on] of sides) withFused(on, gen);
    for (let i = 0; i < o.rounds; i++) for (const [side, on] of sides) withFused(on, () => time(`decode_${side}`, gen, o.newTokens));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const [key, t] of Object.entries(times)) {
      const c = out[key] as Counts;
      const wall = median(t.wall);
      out[`${key}_ms`] = { wall: +wall.toFixed(2), cpu: +median(t.cpu).toFixed(2), us_per_kernel: +((wall * 1000) / (c.dispatches || c.kernels)).toFixed(1), rounds: o.rounds };
    }
  }
  for (const t of [...micro, prompt]) t.dispose();
  opt.dispose();
  model.dispose();
  return out;
}

function table(r: Record<string, unknown>, what: 'train' | 'decode', top: number, unit: string): string {
  const before = r[`${what}_unfused`] as Counts, after = r[`${what}_fused`] as Counts;
  const key = before.dispatches ? 'dispatches' : 'kernels';
  const lines = [`${r.preset} ${what}: ${key} per ${unit} ${before[key]} -> ${after[key]} (tfjs kernels ${before.kernels} -> ${after.kernels})`];
  const tb = r[`${what}_unfused_ms`] as { wall: number; cpu: number; us_per_kernel: number } | undefined;
  const ta = r[`${what}_fused_ms`] as typeof tb;
  if (tb && ta) lines.push(`  ms per ${unit} wall ${tb.wall} -> ${ta.wall}, CPU ${tb.cpu} -> ${ta.cpu}; µs per ${key === 'dispatches' ? 'dispatch' : 'kernel'} ${tb.us_per_kernel} -> ${ta.us_per_kernel} (median of ${(r[`${what}_fused_ms`] as { rounds: number }).rounds}, load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})`);
  const names = new Set([...Object.keys(before.byKernel), ...Object.keys(after.byKernel)]);
  const rows = [...names].map((n) => [n, before.byKernel[n]?.[key] ?? 0, after.byKernel[n]?.[key] ?? 0] as [string, number, number])
    .filter(([, b, a]) => b || a)
    .sort((x, y) => Math.max(y[1], y[2]) - Math.max(x[1], x[2]));
  for (const [n, b, a] of rows.slice(0, top)) lines.push(`  ${n.padEnd(24)} ${String(b).padStart(8)} -> ${String(a).padStart(8)}`);
  if (rows.length > top) lines.push(`  (${rows.length - top} more kernel names)`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const info = await loadBackend();
  const records = o.presets.map((p) => {
    const r = { backend: info.name, ...measurePreset(p, o) };
    console.log(JSON.stringify({ ...r, ...Object.fromEntries(['train_unfused', 'train_fused', 'decode_unfused', 'decode_fused'].map((k) => [k, { ...(r as unknown as Record<string, Counts>)[k], byKernel: undefined }])) }));
    return r;
  });
  for (const r of records) console.error(`${table(r, 'train', o.top, 'step')}\n${table(r, 'decode', o.top, 'token')}\n`);
  if (o.json) fs.writeFileSync(o.json, JSON.stringify({ date: new Date().toISOString(), backend: info.name, records }, null, 1) + '\n');
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
