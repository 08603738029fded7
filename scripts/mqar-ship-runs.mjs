// Turns the results.jsonl files of `wm mqar --preset cpu` runs into the rows shipped in assets/mqar-cpu-runs.jsonl
// (the ones notebook 4 reads with readMqarRuns), and prints old vs new per mixer, width and seed.
//
//   node scripts/mqar-ship-runs.mjs runs/mqar-a/results.jsonl [runs/mqar-b/results.jsonl ...]          # compare only
//   node scripts/mqar-ship-runs.mjs --write runs/mqar-a/results.jsonl [...]                           # and replace
//
// Rows of the shipped file whose `grid` is not `cpu` (the `full-window` DMAttn runs) are kept as they are; the `cpu`
// rows are replaced by the new runs. A run's curve keeps step and accuracy (3 decimals), as before.
import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const write = args.includes('--write');
const inputs = args.filter((a) => a !== '--write');
if (inputs.length === 0) {
  console.error('usage: node scripts/mqar-ship-runs.mjs [--write] RESULTS.jsonl [...]');
  process.exit(2);
}
const shipped = 'assets/mqar-cpu-runs.jsonl';
const r3 = (x) => Math.round(x * 1000) / 1000;
const readJsonl = (file) =>
  readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l, i) => {
    try {
      return JSON.parse(l);
    } catch (e) {
      throw new Error(`${file} line ${i + 1} is not JSON (${e.message})`);
    }
  });

const old = readJsonl(shipped);
const fresh = inputs.flatMap(readJsonl).map((r, i) => {
  const best = r.sweep?.find((s) => s.lr === r.lr) ?? r.sweep?.[0];
  if (!best?.stopped) throw new Error(`${inputs.join(', ')} row ${i + 1}: no sweep entry with 'stopped' (not a wm mqar results.jsonl?)`);
  return {
    grid: 'cpu', mixer: r.mixer, seq_len: r.seq_len, kv_pairs: r.kv_pairs, vocab_size: r.vocab_size, d_model: r.d_model,
    seed: r.seed, accuracy: r3(r.accuracy), steps: r.steps, seconds: Math.round(r.seconds), stopped: best.stopped,
    curve: r.curve.map((p) => ({ step: p.step, accuracy: r3(p.accuracy) })),
  };
});
const key = (r) => `${r.mixer} d${r.d_model} s${r.seed}`;
const order = ['attention', 'dmattn', 'ssd', 'linear'];
fresh.sort((a, b) => a.seed - b.seed || order.indexOf(a.mixer) - order.indexOf(b.mixer) || a.d_model - b.d_model);
const dup = fresh.map(key).find((k, i, all) => all.indexOf(k) !== i);
if (dup) throw new Error(`two new runs for ${dup}`);

const oldCpu = new Map(old.filter((r) => r.grid === 'cpu').map((r) => [key(r), r]));
const pass = (r, a) => r?.curve.find((p) => p.accuracy >= a)?.step ?? '-';
console.log('| mixer | d | seed | old: accuracy, steps, stopped | new: accuracy, steps, stopped | step past 0.5 old / new |');
console.log('|---|---|---|---|---|---|');
for (const n of fresh) {
  const o = oldCpu.get(key(n));
  const cell = (r) => (r ? `${r.accuracy.toFixed(3)}, ${r.steps}, ${r.stopped}` : 'not run');
  console.log(`| ${n.mixer} | ${n.d_model} | ${n.seed} | ${cell(o)} | ${cell(n)} | ${pass(o, 0.5)} / ${pass(n, 0.5)} |`);
}
const missing = [...oldCpu.keys()].filter((k) => !fresh.some((n) => key(n) === k));
if (missing.length) console.log(`\nnot in the new runs (${missing.length}): ${missing.join(', ')}`);

if (write) {
  if (missing.length) throw new Error(`--write: the new runs lack ${missing.length} cpu cells (${missing.join(', ')}); run them first`);
  const rows = [...fresh, ...old.filter((r) => r.grid !== 'cpu')];
  writeFileSync(shipped, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  console.log(`\n${shipped}: ${fresh.length} cpu rows replaced, ${rows.length - fresh.length} other rows kept`);
}
