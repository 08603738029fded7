/**
 * The report card of `wm speedrun`: a stage x metric table (wall clock, tokens, losses, perplexity, held-out
 * assistant loss, stop rate, DPO reward accuracy, embedded benchmark accuracy), the machine, a sentence saying what a
 * model of this size is expected to do checked against the numbers, and the loss / reward plots. Written as
 * report.md and report.html (plotly.js inlined: one offline file).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lossFigure, readMetrics, type MetricsRow } from '../train/metrics';
import { figureHtml, plotlyScriptTag } from '../viz/show';
import type { ChatMetrics } from './chat-metrics';
import type { SpeedrunPreset } from './presets';

export const STAGES = ['tokenizer', 'pretrain', 'sft', 'dpo', 'eval'] as const;
export type StageName = (typeof STAGES)[number];

export interface StageRecord {
  status: 'done' | 'running' | 'stopped';
  /** Wall clock of every attempt, summed (a resumed stage adds the attempts). */
  seconds: number;
  tokens?: number;
  attempts: number;
}

export interface SpeedrunState {
  preset: string;
  /** When and at which commit the first stage started (a resumed run may end at another commit). */
  started?: { date: string; commit: string };
  stages: Partial<Record<StageName, StageRecord>>;
}

export interface MachineInfo {
  backend: string;
  cpu: string;
  cores: number;
  version: string;
  commit: string;
  node: string;
  load: string;
}

export interface BenchmarkRow { value: number; stderr: number | null; n: number }

export interface ReportInput {
  outDir: string;
  preset: SpeedrunPreset;
  state: SpeedrunState;
  machine: MachineInfo;
  /** Per model (base, sft, dpo). */
  chat: Record<string, ChatMetrics>;
  benchmark: Record<string, BenchmarkRow>;
  vocabSize?: number;
}

const MODEL_OF: Partial<Record<StageName, string>> = { pretrain: 'base', sft: 'sft', dpo: 'dpo' };

function lastOf(rows: MetricsRow[], key: string): number | undefined {
  for (let i = rows.length - 1; i >= 0; i--) {
    const v = (rows[i] as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') return v;
  }
  return undefined;
}

export function formatSeconds(s: number | undefined): string {
  if (s === undefined) return '-';
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;
}

const f = (v: number | undefined, digits = 3) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits));
const pct = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? '-' : `${(100 * v).toFixed(1)} %`);
const count = (v: number | undefined) => (v === undefined ? '-' : v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} k` : String(v));

export interface Check { text: string; ok: boolean }

/** The sentence of what to expect at this scale, and its checks against the numbers. */
export function expectations(input: ReportInput, metrics: Record<string, MetricsRow[]>): { sentence: string; checks: Check[] } {
  const { chat, benchmark } = input;
  const base = chat.base, sft = chat.sft, dpo = chat.dpo;
  const checks: Check[] = [];
  const uniform = input.vocabSize ? Math.log(input.vocabSize) : undefined;
  const preEval = lastOf(metrics.pretrain ?? [], 'eval_loss');
  if (uniform !== undefined && preEval !== undefined) checks.push({ text: `pre-training eval loss ${f(preEval)} is below the uniform guess ln(${input.vocabSize}) = ${f(uniform)}`, ok: preEval < uniform });
  if (base && sft) checks.push({ text: `SFT lowers the held-out assistant loss (${f(base.heldOutAssistantLoss)} -> ${f(sft.heldOutAssistantLoss)})`, ok: sft.heldOutAssistantLoss < base.heldOutAssistantLoss });
  const b = benchmark.dpo ?? benchmark.sft;
  if (input.preset.expectation === 'smoke') {
    if (base && sft) checks.push({ text: `SFT replies stop at end-of-turn more often than the base model's (${pct(base.stopRate)} -> ${pct(sft.stopRate)})`, ok: sft.stopRate > base.stopRate });
    if (b) checks.push({ text: `the embedded benchmark is still at chance: ${pct(b.value)} ± ${pct(b.stderr ?? 0)} is within 3 standard errors of 25 %`, ok: Math.abs(b.value - 0.25) <= 3 * (b.stderr ?? 0) });
    return { sentence: 'A smoke run proves the path, not the model: a few steps per stage lower the losses and SFT already teaches the reply format (replies stop at end-of-turn), but the answers are not right yet: the embedded benchmark stays at chance (25 %).', checks };
  }
  if (base && sft) checks.push({ text: `after SFT most replies stop at end-of-turn (stop rate ${pct(sft.stopRate)}, base ${pct(base.stopRate)})`, ok: sft.stopRate >= 0.8 && sft.stopRate > base.stopRate });
  if (dpo?.rewardAccuracy !== undefined) checks.push({ text: `DPO prefers the chosen answers of held-out pairs (reward accuracy ${pct(dpo.rewardAccuracy)} > 50 %)`, ok: dpo.rewardAccuracy > 0.5 });
  if (b) checks.push({ text: `the tuned model answers the embedded questions above chance (${pct(b.value)} ± ${pct(b.stderr ?? 0)} vs 25 %)`, ok: b.value - 2 * (b.stderr ?? 0) > 0.25 });
  const sentence = input.preset.expectation === 'cpu'
    ? 'At this scale (doge-tiny, about 4 M parameters, minutes of CPU) the model learns the reply format and to stop: SFT replies end at end-of-turn, held-out assistant loss falls far below the base model\'s, DPO prefers the chosen answers, and the embedded questions come out above chance mostly from copying from the context; other questions stay near chance.'
    : 'At this scale (doge-20m) the model follows the chat format and stops; knowledge benchmarks stay close to chance.';
  return { sentence, checks };
}

/** The rows of the stage x metric table. */
function tableRows(input: ReportInput, metrics: Record<string, MetricsRow[]>): string[][] {
  const header = ['stage', 'wall clock', 'tokens', 'train loss', 'eval loss', 'eval perplexity', 'held-out assistant loss', 'stops at end-of-turn', 'DPO reward accuracy', 'embedded benchmark (± stderr)'];
  const rows: string[][] = [header];
  for (const stage of STAGES) {
    const rec = input.state.stages[stage];
    const m = metrics[stage] ?? [];
    const model = MODEL_OF[stage];
    const c = model ? input.chat[model] : undefined;
    const b = model ? input.benchmark[model] : undefined;
    const evalLoss = lastOf(m, 'eval_loss');
    const rewardAcc = stage === 'dpo' ? (c?.rewardAccuracy ?? lastOf(m, 'eval_rewards/accuracies')) : undefined;
    rows.push([
      stage + (rec && rec.status !== 'done' ? ` (${rec.status})` : ''),
      formatSeconds(rec?.seconds),
      count(rec?.tokens),
      f(lastOf(m, 'loss')),
      f(evalLoss),
      stage === 'pretrain' ? f(lastOf(m, 'eval_perplexity'), 1) : stage === 'sft' && evalLoss !== undefined ? f(Math.exp(evalLoss), 1) : '-', // DPO's loss is no likelihood
      f(c?.heldOutAssistantLoss),
      c ? `${pct(c.stopRate)} (${c.meanReplyTokens.toFixed(1)} tokens)` : '-',
      pct(rewardAcc),
      b ? `${pct(b.value)} ± ${pct(b.stderr ?? 0)} (n ${b.n})` : '-',
    ]);
  }
  const total = STAGES.reduce((s, k) => s + (input.state.stages[k]?.seconds ?? 0), 0);
  rows.push(['total', formatSeconds(total), '', '', '', '', '', '', '', '']);
  return rows;
}

function markdownTable(rows: string[][]): string {
  const [h, ...body] = rows;
  return [`| ${h!.join(' | ')} |`, `|${h!.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Write report.md and report.html into the output folder; returns their paths. */
export function writeReport(input: ReportInput): { md: string; html: string } {
  const metrics: Record<string, MetricsRow[]> = {};
  for (const s of ['pretrain', 'sft', 'dpo']) metrics[s] = readMetrics(path.join(input.outDir, s, 'metrics.jsonl'));
  const rows = tableRows(input, metrics);
  const { sentence, checks } = expectations(input, metrics);
  const mc = input.machine;
  const machineLines = [
    `backend ${mc.backend}`,
    `CPU ${mc.cpu}, ${mc.cores} cores (load average ${mc.load} at the end)`,
    `wonderful-matrices ${mc.version}, git commit ${mc.commit}${input.state.started && input.state.started.commit !== mc.commit ? ` (the run started at ${input.state.started.commit})` : ''}, Node ${mc.node}` +
      (input.state.started ? `; started ${input.state.started.date}` : ''),
  ];
  const stageFolders = ['data', 'pretrain', 'sft', 'dpo', 'eval'].map((d) => `\`${d}/\``).join(', ');
  const md = [
    `# Speedrun report: preset ${input.preset.name}`,
    '',
    `${input.preset.summary}.`,
    '',
    markdownTable(rows),
    '',
    'Models: pretrain = the base model, sft and dpo the tuned ones; the held-out metrics use the embedded data\'s test split (never trained on); the benchmark is `wm eval --tasks embedded_chat`.',
    '',
    '## What to expect at this scale',
    '',
    sentence,
    '',
    ...checks.map((c) => `- ${c.ok ? '✓' : '✗'} ${c.text}`),
    '',
    '## Machine',
    '',
    ...machineLines.map((l) => `- ${l}`),
    '',
    `Stage folders (each the normal output of its command): ${stageFolders}. Plots: report.html, and each stage's loss.html.`,
    '',
  ].join('\n');
  const mdFile = path.join(input.outDir, 'report.md');
  fs.writeFileSync(mdFile, md);

  const figures = (['pretrain', 'sft', 'dpo'] as const).filter((s) => metrics[s]!.length).map((s) => {
    const fig = lossFigure(metrics[s]!);
    (fig.layout as Record<string, unknown>).title = { text: s === 'dpo' ? 'DPO: loss and rewards' : `${s}: loss (nats/token)` };
    return fig;
  });
  const [h, ...body] = rows;
  const table = `<table><thead><tr>${h!.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${body.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Speedrun report: ${esc(input.preset.name)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1d2330}
table{border-collapse:collapse;font-size:13px;display:block;overflow-x:auto}th,td{border:1px solid #d0d5dd;padding:4px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}li.ok::marker{content:'✓ ';color:#067647}li.bad::marker{content:'✗ ';color:#b42318}</style>
${plotlyScriptTag()}</head><body>
<h1>Speedrun report: preset ${esc(input.preset.name)}</h1>
<p>${esc(input.preset.summary)}.</p>
${table}
<p>Models: pretrain = the base model, sft and dpo the tuned ones; the held-out metrics use the embedded data's test split (never trained on); the benchmark is <code>wm eval --tasks embedded_chat</code>.</p>
<h2>What to expect at this scale</h2>
<p>${esc(sentence)}</p>
<ul>${checks.map((c) => `<li class="${c.ok ? 'ok' : 'bad'}">${esc(c.text)}</li>`).join('')}</ul>
<h2>Loss and reward curves</h2>
${figures.map((fig) => figureHtml(fig)).join('\n')}
<h2>Machine</h2>
<ul>${machineLines.map((l) => `<li>${esc(l)}</li>`).join('')}</ul>
</body></html>
`;
  const htmlFile = path.join(input.outDir, 'report.html');
  fs.writeFileSync(htmlFile, html);
  return { md: mdFile, html: htmlFile };
}
