#!/usr/bin/env node
/**
 * `wm`: the command line of wonderful-matrices. Each subcommand lives in its own file under src/cli/ and
 * exports `run(argv)`; they are loaded lazily so `wm --help` stays fast.
 */
const COMMANDS: Record<string, { file: string; help: string }> = {
  pretrain: { file: './pretrain', help: 'pre-train a Doge model from a YAML config (wm pretrain --config configs/doge-tiny.yaml)' },
  data: { file: './data', help: 'prepare training data (wm data prepare --input ... --tokenizer DIR --seq-len N --out DIR)' },
  tokenizer: { file: './tokenizer', help: 'train a byte-level BPE tokenizer (wm tokenizer train --input ... --vocab-size N --out DIR)' },
  sft: { file: './sft', help: 'supervised fine-tuning of a checkpoint from a YAML recipe (wm sft --config configs/doge-tiny-sft.yaml)' },
  dpo: { file: './dpo', help: 'DPO preference tuning of a checkpoint from a YAML recipe (wm dpo --config configs/doge-tiny-dpo.yaml)' },
  generate: { file: './generate', help: 'generate text with a checkpoint (wm generate --model DIR --prompt "...")' },
  chat: { file: './chat', help: 'talk to a chat model in the terminal (wm chat --model runs/doge-tiny-sft)' },
  serve: { file: './serve', help: 'OpenAI-compatible HTTP server with a chat page (wm serve --model DIR [--port 8000])' },
  speedrun: { file: './speedrun', help: 'tokenizer -> pre-training -> SFT -> DPO -> eval in one command, with a report (wm speedrun --preset smoke)' },
  eval: { file: './eval', help: 'evaluate checkpoints: benchmarks and perplexity (wm eval --model DIR --tasks embedded,arc_easy)' },
  mqar: { file: './mqar', help: 'run the MQAR synthetic recall comparison (wm mqar --preset cpu --out DIR)' },
  bench: { file: './bench', help: 'print training and decoding throughput as JSON lines' },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.help}`);
  return `usage: wm <command> [options]      (wm <command> --help for its options; wm --version)\n\ncommands:\n${lines.join('\n')}\n\nEnvironment: WM_BACKEND=tensorflow-gpu|webgpu|tensorflow|wasm|cpu forces a tfjs backend (webgpu: also a software adapter where there is no GPU); WM_LOG=debug (or --verbose) says why.`;
}

/** The package version (package.json two folders up from dist/cli/ and from src/cli/). */
function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('../../package.json') as { version: string }).version;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-V' || command === 'version') {
    console.log(`wonderful-matrices ${version()}`);
    return;
  }
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(usage());
    return;
  }
  // --verbose (any command): the backend's reasons and other debug lines (WM_LOG=debug)
  const verbose = rest.indexOf('--verbose');
  if (verbose >= 0) { rest.splice(verbose, 1); process.env.WM_LOG = 'debug'; }
  const entry = COMMANDS[command];
  if (!entry) {
    console.error(`wm: unknown command '${command}'\n\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(entry.file) as { run(argv: string[]): Promise<void> };
  await mod.run(rest);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const msg = e instanceof Error ? e.message : String(e);
  console.error(msg.startsWith('wm ') || msg.startsWith('wm:') ? msg : `wm: ${msg}`);
  if (process.env.WM_DEBUG) console.error(e);
  // Usage mistakes (src/cli/args.ts UsageError) exit 2, like other command-line tools; failures exit 1.
  process.exitCode = (e as { exitCode?: number }).exitCode ?? 1;
});
