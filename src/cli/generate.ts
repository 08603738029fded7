/**
 * `wm generate --model DIR (--prompt "text" | --ids 1,2,3) [options]`: generate with a saved Doge or Cheems checkpoint.
 *
 * Decoding defaults come from the checkpoint's generation_config.json (HF format; `wm pretrain` writes the
 * settings its own samples use), else greedy; every option given on the command line overrides them.
 * The prompt is encoded with the tokenizer in the model folder (tokenizer.json, see src/data loadTokenizer); with
 * --ids no tokenizer is needed and the output is printed as ids. Streaming output is decoded on UTF-8 boundaries.
 */
import { loadBackend } from '../runtime/backend';
import { loadCausalLM } from '../models/auto';
import { resolveModelDir } from '../io/model-dir';
import type { RouterLayout } from '../modules/cdmoe';
import { generationOptionsFrom, readGenerationConfig } from '../generation/generation-config';
import type { GenerateOptions } from '../generation/generate';
import { IncrementalDecoder, loadTokenizer, WmTokenizer } from '../data/tokenizer';
import { defineCommand, flag, num, parseCommandArgs, parseIntList, str, UsageError } from './args';

export const USAGE = `usage: wm generate --model DIR (--prompt "text" | --ids 1,2,3) [options]

  --model DIR               checkpoint folder (config.json, model.safetensors, tokenizer.json for --prompt)
  --prompt TEXT             text prompt (encoded with the folder's tokenizer)
  --ids 1,2,3               prompt token ids (no tokenizer needed; output printed as ids)
  --max-new-tokens N        tokens to generate (default: generation_config.json, else 50)
  --greedy                  argmax decoding (ignores the sampling defaults of generation_config.json)
  --temperature T           sampling temperature > 0 (sets sampling on)
  --top-k K                 keep the K most likely tokens (0 = all)
  --top-p P                 nucleus sampling, 0 < P <= 1
  --repetition-penalty R    > 0; 1 = none
  --seed S                  sampling seed (default 0)
  --router-layout token|hf  CDMoE routing layout (default token)
  --no-stream               print the result at the end instead of token by token

Defaults come from the model folder's generation_config.json when it has one (wm pretrain writes the settings of
its own samples: top-k 40, temperature 0.8, repetition penalty 1.2), else greedy.`;

export const GENERATE_SPEC = defineCommand({
  name: 'wm generate',
  usage: USAGE,
  options: {
    model: { type: 'string', required: true },
    prompt: { type: 'string' },
    ids: { type: 'string' },
    'max-new-tokens': { type: 'int', min: 0 },
    greedy: { type: 'boolean' },
    temperature: { type: 'number', min: 0, minExclusive: true },
    'top-k': { type: 'int', min: 0 },
    'top-p': { type: 'number', min: 0, max: 1, minExclusive: true },
    'repetition-penalty': { type: 'number', min: 0, minExclusive: true },
    seed: { type: 'int', min: 0 },
    'router-layout': { type: 'string', choices: ['token', 'hf'] },
    'no-stream': { type: 'boolean' },
  },
});

/** The decoding options: generation_config.json defaults, then the command line. */
export function generateOptionsFromArgs(args: ReturnType<typeof parseCommandArgs>, defaults: GenerateOptions): GenerateOptions {
  const o: GenerateOptions = { maxNewTokens: 50, ...defaults };
  if (flag(args, 'greedy')) o.doSample = false;
  const set = <K extends keyof GenerateOptions>(k: K, v: GenerateOptions[K] | undefined) => { if (v !== undefined) o[k] = v; };
  set('maxNewTokens', num(args, 'max-new-tokens'));
  set('temperature', num(args, 'temperature'));
  if (num(args, 'temperature') !== undefined) o.doSample = !flag(args, 'greedy');
  set('topK', num(args, 'top-k'));
  set('topP', num(args, 'top-p'));
  set('repetitionPenalty', num(args, 'repetition-penalty'));
  set('seed', num(args, 'seed'));
  return o;
}

export async function run(argv: string[]): Promise<void> {
  const args = parseCommandArgs(GENERATE_SPEC, argv);
  if (args.help) { console.log(USAGE); return; }
  const modelDir = resolveModelDir(str(args, 'model')!); // a run folder stands for its final/ model
  const promptText = str(args, 'prompt');
  const idsText = str(args, 'ids');
  if (promptText === undefined && idsText === undefined) throw new UsageError(`wm generate: give --prompt "text" or --ids 1,2,3\n\n${USAGE}`);
  if (promptText !== undefined && idsText !== undefined) throw new UsageError('wm generate: give either --prompt or --ids, not both');
  if (promptText === '') throw new UsageError('wm generate: --prompt is empty');
  // Ids are checked before the backend loads (fast errors); the vocabulary range after the model is read.
  const idList = idsText !== undefined ? parseIntList(idsText, 'ids', { min: 0 }) : undefined;
  // Decoding is many small ops: single-threaded wasm unless WM_WASM_THREADS says otherwise.
  await loadBackend({ workload: 'inference' });
  const model = loadCausalLM(modelDir, { routerLayout: (str(args, 'router-layout') as RouterLayout | undefined) ?? 'token' });
  try {
    let tok: WmTokenizer | undefined;
    let prompt: number[];
    if (idList) {
      const bad = idList.findIndex((v) => v >= model.config.vocab_size);
      if (bad >= 0) throw new UsageError(`wm generate: --ids item ${bad + 1} (${idList[bad]}) is not a token id of this model (vocab_size ${model.config.vocab_size})`);
      prompt = idList;
    } else {
      tok = await loadTokenizer(modelDir);
      prompt = tok.encode(promptText!);
      if (prompt.length === 0) throw new UsageError('wm generate: the prompt encodes to no tokens');
    }
    const gen = readGenerationConfig(modelDir);
    const opts = generateOptionsFromArgs(args, gen ? generationOptionsFrom(gen) : {});
    const total = prompt.length + (opts.maxNewTokens ?? 0);
    if (total > model.config.max_position_embeddings) {
      console.error(`warning: prompt (${prompt.length} tokens) + max-new-tokens (${opts.maxNewTokens}) = ${total} exceeds the model's max_position_embeddings ${model.config.max_position_embeddings}; ` +
        'positions past it were never trained and the output will degrade');
    }
    const stream = !flag(args, 'no-stream');
    const decoder = tok ? new IncrementalDecoder(tok, { skipSpecialTokens: true }) : undefined;
    const t0 = Date.now();
    const out = model.generate([prompt], {
      ...opts,
      eosTokenId: opts.eosTokenId !== undefined ? opts.eosTokenId : model.config.eos_token_id ?? tok?.eosTokenId ?? null,
      onToken: (t) => {
        if (!stream) return;
        process.stdout.write(decoder ? decoder.push(t[0]) : `${t[0]} `);
      },
    });
    const newIds = out[0].slice(prompt.length);
    if (stream) process.stdout.write((decoder ? decoder.flush() : '') + '\n');
    else console.log(tok ? tok.decode(newIds, { skipSpecialTokens: true }) : newIds.join(','));
    const sec = Math.max(1e-3, (Date.now() - t0) / 1000);
    const how = opts.doSample ? `sampled: temperature ${opts.temperature ?? 1}, top-k ${opts.topK ?? 50}, top-p ${opts.topP ?? 1}` : 'greedy';
    console.error(`[generate] ${newIds.length} tokens in ${sec.toFixed(2)} s (${(newIds.length / sec).toFixed(1)} tokens/s; ${how}, repetition penalty ${opts.repetitionPenalty ?? 1}${gen ? '; defaults from generation_config.json' : ''})`);
  } finally {
    model.dispose();
  }
}
