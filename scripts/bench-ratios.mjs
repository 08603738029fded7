// Ratio table of `wm bench --json` (ours) against the PyTorch reference's JSON lines (scripts/bench-vs-torch.sh).
// Usage: node scripts/bench-ratios.mjs out/bench/ours.json out/bench/torch.jsonl   -> a markdown table on stdout
import { readFileSync } from 'node:fs';

const [oursFile, torchFile] = process.argv.slice(2);
if (!oursFile || !torchFile) {
  console.error('usage: node scripts/bench-ratios.mjs OURS.json TORCH.jsonl');
  process.exit(2);
}
const ours = JSON.parse(readFileSync(oursFile, 'utf8'));
const torch = readFileSync(torchFile, 'utf8').split('\n').filter((l) => l.trim()).map((l, i) => {
  try { return JSON.parse(l); } catch { throw new Error(`${torchFile} line ${i + 1} is not JSON: ${l.slice(0, 80)}`); }
});

const fmt = (x) => (x === undefined ? 'n/a' : Math.round(x).toLocaleString('en-US'));
const lines = [
  `| bench | ours (${ours.backend}; threads) | PyTorch (${torch[0]?.threads ?? '?'} threads) | ratio |`,
  '|---|---|---|---|',
];
for (const r of ours.records) {
  const t = torch.find((x) => x.bench === r.bench && x.ours === r.preset);
  const theirs = t ? (r.bench === 'train' ? t.tokens_per_s : t.decode_tokens_per_s) : undefined;
  const shape = r.bench === 'train' ? ` ${r.batch}×${r.seq_len}` : '';
  const ratio = theirs ? `${(r.tokens_per_s / theirs).toFixed(2)}×` : 'n/a';
  lines.push(`| ${r.bench} ${r.preset}${shape} | ${fmt(r.tokens_per_s)} tok/s (${r.threads ?? ours.threads}${r.lm_head_threads ? `, lm_head ${r.lm_head_threads}` : ''}) | ${theirs ? `${fmt(theirs)} tok/s` : 'n/a'} | ${ratio} |`);
}
console.log(lines.join('\n'));
