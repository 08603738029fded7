// `wm speedrun` end to end with the micro preset (a 1-layer model on a few documents: seconds): every stage folder
// is the normal output of its command, the report card holds the stage x metric table, the machine and the plots,
// a rerun skips the finished stages, and an interrupted stage continues from its checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runSpeedrun } from '../src/cli/speedrun';
import { SPEEDRUN_PRESETS } from '../src/speedrun/presets';
import type { SpeedrunState } from '../src/speedrun/report';

test('speedrun micro: stages, report card, rerun skips, an interrupted stage resumes', { timeout: 180_000 }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-speedrun-'));
  const lines: string[] = [];
  const origErr = console.error;
  const origWrite = process.stderr.write.bind(process.stderr);
  console.error = () => {};
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    const report = await runSpeedrun(SPEEDRUN_PRESETS.micro!, out, (l) => lines.push(l));
    assert.ok(report);
    for (const s of ['pretrain', 'sft', 'dpo']) {
      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) assert.ok(fs.existsSync(path.join(out, s, 'final', f)), `${s}/final/${f}`);
      assert.ok(fs.existsSync(path.join(out, s, 'metrics.jsonl')), `${s}/metrics.jsonl`);
    }
    for (const f of ['results.json', 'eval.html', 'chat-metrics.json']) assert.ok(fs.existsSync(path.join(out, 'eval', f)), `eval/${f}`);
    const md = fs.readFileSync(report.md, 'utf8');
    assert.match(md, /^# Speedrun report: preset micro/);
    assert.match(md, /\| stage \| wall clock \| tokens \| train loss \| eval loss \| eval perplexity \| held-out assistant loss \| stops at end-of-turn \| DPO reward accuracy \| embedded benchmark \(± stderr\) \|/);
    for (const s of ['tokenizer', 'pretrain', 'sft', 'dpo', 'eval', 'total']) assert.match(md, new RegExp(`^\\| ${s} \\| [\\d.]+ s \\|`, 'm'));
    // each model row: losses, stop rate, benchmark accuracy with stderr and n
    assert.match(md, /^\| pretrain \| [\d.]+ s \| 128 \| \d\.\d{3} \| \d\.\d{3} \| [\d.]+ \| \d\.\d{3} \| [\d.]+ % \([\d.]+ tokens\) \| - \| [\d.]+ % ± [\d.]+ % \(n 8\) \|$/m);
    assert.match(md, /^\| dpo \| .* \| [\d.]+ % \| [\d.]+ % ± [\d.]+ % \(n 8\) \|$/m);
    assert.match(md, /A smoke run proves the path, not the model/);
    assert.match(md, /- [✓✗] SFT lowers the held-out assistant loss \(\d\.\d{3} -> \d\.\d{3}\)/);
    assert.match(md, /- backend wasm/);
    assert.match(md, /- CPU .+, \d+ cores/);
    assert.match(md, /- wonderful-matrices 0\.1\.0, git commit [0-9a-f]{7}.*, Node v[\d.]+; started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/);
    const html = fs.readFileSync(report.html, 'utf8');
    assert.equal((html.match(/class="wm-plot"/g) ?? []).length, 3, 'pretrain, sft and dpo curves');
    assert.match(html, /DPO: loss and rewards/);

    // a rerun skips everything
    lines.length = 0;
    await runSpeedrun(SPEEDRUN_PRESETS.micro!, out, (l) => lines.push(l));
    assert.deepEqual(lines.filter((l) => /^\[\w+\]/.test(l)).map((l) => l.replace(/ \(.*\)/, '')), ['tokenizer', 'pretrain', 'sft', 'dpo', 'eval'].map((s) => `[${s}] done earlier: skipped`));

    // an interrupted DPO stage (a checkpoint, no final/) continues from its checkpoint; eval runs again
    const stateFile = path.join(out, 'speedrun.json');
    const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as SpeedrunState;
    const dpoSeconds = state.stages.dpo!.seconds;
    state.stages.dpo!.status = 'stopped';
    delete state.stages.eval;
    fs.writeFileSync(stateFile, JSON.stringify(state));
    fs.rmSync(path.join(out, 'dpo', 'final'), { recursive: true });
    lines.length = 0;
    await runSpeedrun(SPEEDRUN_PRESETS.micro!, out, (l) => lines.push(l));
    assert.ok(lines.includes('[dpo] continuing'), lines.join('\n'));
    assert.ok(lines.includes('[dpo] resuming from checkpoint-2'), lines.join('\n'));
    assert.ok(lines.includes('[eval] starting'));
    assert.ok(fs.existsSync(path.join(out, 'dpo', 'final', 'model.safetensors')));
    const after = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as SpeedrunState;
    assert.equal(after.stages.dpo!.attempts, 2);
    assert.ok(after.stages.dpo!.seconds > dpoSeconds, 'the attempts add up');
    // another preset in the same folder is refused
    await assert.rejects(runSpeedrun(SPEEDRUN_PRESETS.smoke!, out, () => {}), { message: `wm speedrun: ${out} holds a 'micro' speedrun; give --preset micro to continue it, or another --output-dir` });
  } finally {
    console.error = origErr;
    process.stderr.write = origWrite;
  }
});
