/**
 * `wm generate --model DIR (--prompt "text" | --ids 1,2,3) [options]`: generate with a saved Doge or Cheems checkpoint.
 *
 * Options: --max-new-tokens N (50), --temperature T (sampling when given and > 0; default greedy), --top-k K (50),
 * --top-p P (1), --repetition-penalty R (1), --seed S (0), --router-layout token|hf, --no-stream.
 * The prompt is encoded with the tokenizer in the model folder (tokenizer.json, see src/data loadTokenizer); with
 * --ids no tokenizer is needed and the output is printed as ids.
 */
import { loadBackend } from '../backend';
import { loadCausalLM } from '../models/auto';
import type { RouterLayout } from '../modules/cdmoe';

interface Args { [k: string]: string | boolean }

function parseArgs(argv: string[]): Args {
  const out: Args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`generate: unexpected argument '${a}'`);
    const key = a.slice(2);
    if (key === 'no-stream' || key === 'help') { out[key] = true; continue; }
    if (i + 1 >= argv.length) throw new Error(`generate: --${key} needs a value`);
    out[key] = argv[++i];
  }
  return out;
}

function num(args: Args, key: string, def: number): number {
  if (args[key] === undefined) return def;
  const v = Number(args[key]);
  if (!Number.isFinite(v)) throw new Error(`generate: --${key} must be a number, got '${args[key]}'`);
  return v;
}

export const USAGE = 'usage: wm generate --model DIR (--prompt "text" | --ids 1,2,3) [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S] [--router-layout token|hf] [--no-stream]';

export async function run(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (args.help) { console.log(USAGE); return; }
  if (typeof args.model !== 'string') throw new Error(`generate: --model DIR is required\n${USAGE}`);
  if (args.prompt === undefined && args.ids === undefined) throw new Error(`generate: give --prompt "text" or --ids 1,2,3\n${USAGE}`);
  await loadBackend();
  const model = loadCausalLM(args.model, { routerLayout: (args['router-layout'] as RouterLayout | undefined) ?? 'token' });
  type Tok = { encode(t: string): number[]; decode(ids: number[]): string; eosTokenId?: number };
  let tok: Tok | null = null;
  let prompt: number[];
  if (typeof args.ids === 'string') {
    prompt = args.ids.split(',').map((s) => {
      const v = Number(s.trim());
      if (!Number.isInteger(v)) throw new Error(`generate: --ids must be comma-separated integers, got '${s}'`);
      return v;
    });
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const data = require('../data') as { loadTokenizer?: (dir: string) => Promise<Tok> };
    if (!data.loadTokenizer) throw new Error('generate: no tokenizer support in this build; use --ids');
    tok = await data.loadTokenizer(args.model);
    prompt = tok.encode(String(args.prompt));
    if (prompt.length === 0) throw new Error('generate: the prompt encodes to no tokens');
  }
  const temperature = num(args, 'temperature', 0);
  const stream = !args['no-stream'];
  const newTokens: number[] = [];
  let printed = '';
  const t0 = Date.now();
  const out = model.generate([prompt], {
    maxNewTokens: num(args, 'max-new-tokens', 50),
    doSample: temperature > 0,
    temperature: temperature > 0 ? temperature : 1,
    topK: num(args, 'top-k', 50),
    topP: num(args, 'top-p', 1),
    repetitionPenalty: num(args, 'repetition-penalty', 1),
    seed: num(args, 'seed', 0),
    eosTokenId: model.config.eos_token_id ?? tok?.eosTokenId ?? null,
    onToken: (t) => {
      newTokens.push(t[0]);
      if (!stream) return;
      if (tok) {
        const text = tok.decode(newTokens);
        process.stdout.write(text.slice(printed.length));
        printed = text;
      } else process.stdout.write(`${t[0]} `);
    },
  });
  const gen = out[0].slice(prompt.length);
  if (stream) process.stdout.write('\n');
  else console.log(tok ? tok.decode(gen) : gen.join(','));
  const sec = (Date.now() - t0) / 1000;
  console.error(`[generate] ${gen.length} tokens in ${sec.toFixed(2)} s (${(gen.length / sec).toFixed(1)} tokens/s)`);
  model.dispose();
}
