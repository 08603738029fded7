/**
 * `wm speedrun [--preset smoke|cpu|gpu] [--output-dir DIR]`: tokenizer -> pre-training -> SFT -> DPO -> evaluation
 * in one command, ending in a report card (report.md, report.html).
 *
 * Each stage runs the normal command with the shipped recipe (`wm pretrain --config doge-tiny`, `wm sft --config
 * doge-tiny-sft --init-from <pretrain>`, ...) into its own folder of DIR, so any stage can be taken further by hand.
 * Resumable: speedrun.json records the finished stages; a rerun skips them and continues an interrupted training
 * stage from its newest checkpoint (`--resume`). Ctrl-C checkpoints the running stage and stops.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { backendLabel, loadBackend } from '../runtime/backend';
import { prepareDataset, prepareDefaultCorpus, readRecords, trainTokenizer, loadTokenizer } from '../data';
import { loadFinetuneConfig } from '../finetune/config';
import { runCheckpoints } from '../io/model-dir';
import { readMetrics } from '../train/metrics';
import { chatMetrics, type ChatMetrics } from '../speedrun/chat-metrics';
import { SPEEDRUN_PRESETS, type SpeedrunPreset } from '../speedrun/presets';
import { formatSeconds, writeReport, type BenchmarkRow, type MachineInfo, type SpeedrunState, type StageName } from '../speedrun/report';
import { defineCommand, parseCommandArgs, str } from './args';

export const USAGE = `usage: wm speedrun [--preset smoke|cpu|gpu] [--output-dir DIR]

  --preset NAME      smoke: a few steps of every stage (about 1 minute on 2 idle cores: proves the path)
                     cpu:   the shipped doge-tiny recipes as they are (about 5 minutes on 2 idle cores)
                     gpu:   the doge-20m recipes (a GPU and the hub datasets of configs/doge-20m-*.yaml)
                     micro: seconds, a 1-layer model on a few documents (what the tests run)
                     (default smoke)
  --output-dir DIR   where the stages and the report go (default runs/speedrun-<preset>)

Stages: tokenizer (+ packed dataset) -> pretrain -> sft -> dpo -> eval, each in its own folder of DIR (data/,
pretrain/, sft/, dpo/, eval/: the normal output of wm pretrain / sft / dpo / eval). Then report.md and report.html.
Rerun the same command to continue after an interruption: finished stages are skipped, an interrupted one resumes
from its newest checkpoint.`;

export const SPEEDRUN_SPEC = defineCommand({
  name: 'wm speedrun',
  usage: USAGE,
  options: {
    preset: { type: 'string', choices: Object.keys(SPEEDRUN_PRESETS), default: 'smoke' },
    'output-dir': { type: 'string' },
  },
});

/**
 * The stage commands. A thin layer on purpose: the commands' own entry points (argv in, folders out), so a stage
 * runs exactly what a user would type; loaded lazily.
 */
const COMMANDS = {
  pretrain: async (argv: string[]) => (await import('./pretrain')).run(argv),
  sft: async (argv: string[]) => (await import('./sft')).runFinetuneCli('sft', argv),
  dpo: async (argv: string[]) => (await import('./sft')).runFinetuneCli('dpo', argv),
  eval: async (argv: string[]) => (await import('./eval')).run(argv),
};

const overrideArgs = (o: Record<string, string>) => Object.entries(o).flatMap(([k, v]) => [`--${k}`, v]);

function packageRoot(): string {
  return path.join(__dirname, '..', '..');
}

function gitCommit(): string {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: packageRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: packageRoot(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dirty) commit += ' (with uncommitted changes)';
  } catch {
    // not a git checkout (installed package)
  }
  return commit;
}

function machineInfo(backend: string): MachineInfo {
  const commit = gitCommit();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const version = (require(path.join(packageRoot(), 'package.json')) as { version: string }).version;
  return { backend, cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, version, commit, node: process.version, load: os.loadavg().map((l) => l.toFixed(2)).join(' ') };
}

export async function run(argv: string[]): Promise<void> {
  const args = parseCommandArgs(SPEEDRUN_SPEC, argv);
  if (args.help) { console.log(USAGE); return; }
  const preset = SPEEDRUN_PRESETS[str(args, 'preset')!]!;
  const out = path.resolve(str(args, 'output-dir') ?? path.join('runs', `speedrun-${preset.name}`));
  await runSpeedrun(preset, out);
}

/** Run (or continue) the stages of `preset` in `out`, then write the report. Returns the report paths. */
export async function runSpeedrun(preset: SpeedrunPreset, out: string, log: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<{ md: string; html: string } | undefined> {
  fs.mkdirSync(out, { recursive: true });
  const stateFile = path.join(out, 'speedrun.json');
  let state: SpeedrunState = { preset: preset.name, stages: {} };
  if (fs.existsSync(stateFile)) {
    state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as SpeedrunState;
    if (state.preset !== preset.name) throw new Error(`wm speedrun: ${out} holds a '${state.preset}' speedrun; give --preset ${state.preset} to continue it, or another --output-dir`);
  }
  state.started ??= { date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), commit: gitCommit() };
  const save = () => fs.writeFileSync(stateFile, JSON.stringify(state, null, 2) + '\n');
  const backend = await loadBackend({ log: false });
  const dir = (s: string) => path.join(out, s);
  const tokDir = path.join(dir('data'), 'tokenizer');
  const dataDir = path.join(dir('data'), 'dataset');
  log(`speedrun ${preset.name} -> ${out} (${preset.summary}) on ${backendLabel(backend)}`);

  /** Run one stage unless finished; `body` returns the stage's token count, or false when it stopped early. */
  const stage = async (name: StageName, body: (resume: boolean) => Promise<number | undefined | false>): Promise<boolean> => {
    const rec = state.stages[name];
    if (rec?.status === 'done') { log(`[${name}] done earlier (${formatSeconds(rec.seconds)}): skipped`); return true; }
    const resume = rec !== undefined;
    state.stages[name] = { status: 'running', seconds: rec?.seconds ?? 0, tokens: rec?.tokens, attempts: (rec?.attempts ?? 0) + 1 };
    save();
    log(`[${name}] ${resume ? 'continuing' : 'starting'}`);
    const t0 = performance.now();
    const r = await body(resume);
    const s = state.stages[name]!;
    s.seconds += (performance.now() - t0) / 1000;
    if (r === false) {
      s.status = 'stopped';
      save();
      log(`[${name}] stopped at a checkpoint after ${formatSeconds(s.seconds)}; run the same wm speedrun command again to continue`);
      return false;
    }
    s.status = 'done';
    if (r !== undefined) s.tokens = r;
    save();
    log(`[${name}] done in ${formatSeconds(s.seconds)}`);
    return true;
  };

  /** A training stage: the command with --resume when its folder holds checkpoints; false when it did not finish. */
  const train = async (name: 'pretrain' | 'sft' | 'dpo', argv: string[]): Promise<number | false> => {
    const folder = dir(name);
    const resume = !fs.existsSync(path.join(folder, 'final')) && runCheckpoints(folder).length > 0;
    if (resume) log(`[${name}] resuming from ${runCheckpoints(folder).at(-1)}`);
    await COMMANDS[name]([...argv, '--output-dir', folder, ...(resume ? ['--resume'] : [])]);
    if (!fs.existsSync(path.join(folder, 'final', 'model.safetensors'))) return false;
    const rows = readMetrics(path.join(folder, 'metrics.jsonl'));
    const tokens = [...rows].reverse().find((r) => 'tokens' in r) as { tokens?: number } | undefined;
    return tokens?.tokens ?? 0;
  };

  const steps: [StageName, (resume: boolean) => Promise<number | undefined | false>][] = [
    ['tokenizer', async () => {
      const c = preset.corpus;
      if (c.kind === 'brown') {
        const r = await prepareDefaultCorpus({ outDir: dir('data'), vocabSize: c.vocabSize, seqLen: c.seqLen, seed: 233 });
        return r.stats.tokens;
      }
      const texts: string[] = [];
      for (const input of c.inputs) for await (const r of readRecords(input)) if (r.text) texts.push(r.text);
      await trainTokenizer({ texts, vocabSize: c.vocabSize, outDir: tokDir, log: false, overwrite: true });
      const stats = await prepareDataset({ inputs: c.inputs, tokenizer: tokDir, seqLen: c.seqLen, outDir: dataDir, testExamples: 2, log: false, overwrite: true });
      return stats.tokens;
    }],
    ['pretrain', async () => {
      const tok = await loadTokenizer(tokDir);
      return train('pretrain', ['--config', preset.pretrain.config, ...overrideArgs(preset.pretrain.overrides),
        '--dataset-dir', dataDir, '--tokenizer-dir', tokDir, '--vocab-size', String(tok.vocabSize), '--seq-len', String(preset.corpus.seqLen)]);
    }],
    ['sft', async () => train('sft', ['--config', preset.sft.config, ...overrideArgs(preset.sft.overrides), '--init-from', dir('pretrain')])],
    ['dpo', async () => train('dpo', ['--config', preset.dpo.config, ...overrideArgs(preset.dpo.overrides), '--init-from', dir('sft')])],
    ['eval', async () => {
      const finals = { base: path.join(dir('pretrain'), 'final'), sft: path.join(dir('sft'), 'final'), dpo: path.join(dir('dpo'), 'final') };
      await COMMANDS.eval([...Object.entries(finals).flatMap(([k, d]) => ['--model', d, '--name', k]), '--tasks', 'embedded_chat', '--embedded-n', String(preset.eval.embeddedN), '--out', dir('eval')]);
      const metrics = await chatMetrics(finals, {
        sftConfig: loadFinetuneConfig(resolveRecipe(preset.sft.config), 'sft', { ...preset.sft.overrides, 'init-from': finals.sft }),
        dpoConfig: loadFinetuneConfig(resolveRecipe(preset.dpo.config), 'dpo', { ...preset.dpo.overrides, 'init-from': finals.sft }),
        chats: preset.eval.chats, prompts: preset.eval.prompts, pairs: preset.eval.pairs, maxNewTokens: preset.eval.maxNewTokens,
      });
      fs.writeFileSync(path.join(dir('eval'), 'chat-metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
      return undefined;
    }],
  ];
  for (const [name, body] of steps) {
    if (!(await stage(name, body))) return undefined;
  }

  const results = JSON.parse(fs.readFileSync(path.join(dir('eval'), 'results.json'), 'utf8')) as { task: string; metric: string; value: number; stderr: number | null; n: number; model: string }[];
  const benchmark: Record<string, BenchmarkRow> = {};
  for (const r of results) if (r.task === 'embedded_chat' && r.metric === 'acc') benchmark[r.model] = { value: r.value, stderr: r.stderr, n: r.n };
  const chat = JSON.parse(fs.readFileSync(path.join(dir('eval'), 'chat-metrics.json'), 'utf8')) as Record<string, ChatMetrics>;
  const report = writeReport({ outDir: out, preset, state, machine: machineInfo(`${backendLabel(backend)} (${backend.reason})`), chat, benchmark, vocabSize: (await loadTokenizer(tokDir)).vocabSize });
  log(`\n${fs.readFileSync(report.md, 'utf8').split('\n## What')[0]!.trim()}\n`);
  log(`report: ${report.md}, ${report.html}`);
  return report;
}

/** A shipped recipe name -> its file (the commands do the same for --config). */
function resolveRecipe(config: string): string {
  if (fs.existsSync(config)) return config;
  return path.join(packageRoot(), 'configs', `${config.replace(/\.ya?ml$/, '')}.yaml`);
}

