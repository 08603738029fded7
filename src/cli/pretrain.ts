/**
 * `wm pretrain --config configs/<name>.yaml [--max-steps N --output-dir DIR ...] [--resume [DIR]] [--prepare-default]`
 *
 * Pre-trains a Doge model the way SmallDoge's `pt.py` does with HF Trainer: reads the YAML config, opens the
 * packed dataset, builds the model (or continues a dense checkpoint as MoE with `model.init_from`), runs the
 * trainer, saves the final model with its tokenizer and prints a few sampled continuations.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBackend } from '../backend';
import { parseSafetensorsHeader } from '../io/safetensors';
import type { DogeConfig } from '../models/doge';
import type { CheemsConfig } from '../models/cheems';
import { buildModelConfig, createCausalLM, describeModelConfig, type CausalLMModel } from '../models/auto';
import { BatchLoader, openPackedDataset, prepareDefaultCorpus, loadTokenizer, checkVocabulary } from '../data';
import type { PackedDataset } from '../data';
import { configToJSON, loadPretrainConfig, PretrainConfig } from '../train/config';
import { inheritParameters, latestCheckpoint, listCheckpoints, writeFolderAtomically } from '../train/checkpoint';
import { Trainer, CausalLM } from '../train/trainer';
import { formatDuration } from '../train/progress';

const USAGE = `usage: wm pretrain --config FILE [options]

  --config FILE         YAML config (sections model, data, training; see configs/)
  --resume [DIR]        continue from DIR or from the newest checkpoint in the output folder
  --prepare-default     first prepare the embedded Brown corpus (tokenizer + packed dataset) and train on it
  --<key> VALUE         override any config key, e.g. --max-steps 200 --output-dir runs/x --learning-rate 1e-3
                        (qualified keys work too: --model.hidden-size 128)
`;

interface Args {
  config?: string;
  resume?: string | true;
  prepareDefault: boolean;
  overrides: Record<string, string>;
}

export function parseArgs(argv: string[]): Args {
  const out: Args = { prepareDefault: false, overrides: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') throw Object.assign(new Error(USAGE), { usage: true });
    else if (flag === '--config') out.config = value();
    else if (flag === '--prepare-default') out.prepareDefault = true;
    else if (flag === '--resume') {
      if (inline !== undefined) out.resume = inline;
      else if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) out.resume = argv[++i];
      else out.resume = true;
    } else if (flag.startsWith('--')) out.overrides[flag.slice(2)] = value();
    else throw new Error(`unexpected argument '${a}'\n\n${USAGE}`);
  }
  return out;
}

/** Open a split folder with a clear message when it is missing. */
async function openSplit(datasetDir: string, split: string, required: boolean): Promise<PackedDataset | undefined> {
  const dir = path.join(datasetDir, split);
  if (!fs.existsSync(dir)) {
    if (!required) return undefined;
    throw new Error(`dataset split folder not found: ${dir} (prepare one with 'wm data prepare ... --out ${datasetDir}', or pass --prepare-default)`);
  }
  return openPackedDataset(dir);
}

/** The model config: a preset with overrides, or the HF fields alone. */
export function modelConfigFrom(config: PretrainConfig): DogeConfig | CheemsConfig {
  const fields = config.model.fields as Record<string, unknown>;
  try {
    return buildModelConfig(config.model.preset, fields);
  } catch (e) {
    throw new Error(`${config.source}: model: ${(e as Error).message}`);
  }
}

/** Checks that need both the data and the model: sequence length and vocabulary. */
export function checkDataAgainstModel(config: PretrainConfig, model: DogeConfig | CheemsConfig, train: PackedDataset): void {
  const want = config.data.seq_len;
  if (want !== null && want !== train.seqLen) {
    throw new Error(`data.seq_len is ${want} but the rows of ${train.dir} have ${train.seqLen} tokens (re-pack the data or change data.seq_len)`);
  }
  if (train.seqLen > model.max_position_embeddings) {
    throw new Error(`the sequence length ${train.seqLen} of ${train.dir} exceeds the model's max_position_embeddings ${model.max_position_embeddings}`);
  }
  checkVocabulary(train, model.vocab_size);
}

async function printSamples(model: CausalLMModel, tokenizerDir: string | undefined, config: PretrainConfig): Promise<void> {
  const t = config.training;
  if (!tokenizerDir || t.sample_prompts.length === 0 || t.sample_new_tokens === 0) return;
  const tok = await loadTokenizer(tokenizerDir);
  console.log(`\nsamples (top-k 40, temperature 0.8, repetition penalty 1.2, ${t.sample_new_tokens} new tokens):`);
  for (const prompt of t.sample_prompts) {
    const ids = tok.encode(prompt);
    // seeded sampling (greedy decoding of a small, briefly trained model mostly repeats one token)
    const [row] = model.generate([ids], {
      maxNewTokens: t.sample_new_tokens, doSample: true, topK: 40, temperature: 0.8, repetitionPenalty: 1.2, seed: t.seed,
      eosTokenId: tok.eosTokenId ?? null,
    });
    console.log(`  ${JSON.stringify(prompt)} -> ${JSON.stringify(tok.decode(row.slice(ids.length), { skipSpecialTokens: true }))}`);
  }
}

/**
 * The tensors `train_new_only_steps` trains alone: those init_from did not provide. On --resume they are
 * recomputed by comparing with the init_from folder's tensor names (the restriction depends only on the step).
 */
function newTensorNames(config: PretrainConfig, model: CausalLMModel, initialised: string[]): string[] {
  if (!config.model.init_from) throw new Error(`${config.source}: training.train_new_only_steps needs model.init_from`);
  if (initialised.length) return initialised;
  const file = path.join(config.model.init_from, 'model.safetensors');
  const have = new Set(parseSafetensorsHeader(new Uint8Array(fs.readFileSync(file)), file).tensors.keys());
  return [...model.parameters().keys()].filter((n) => !have.has(n));
}

export async function run(argv: string[]): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if ((e as { usage?: boolean }).usage) {
      console.log((e as Error).message);
      return;
    }
    throw e;
  }
  if (!args.config) throw new Error(`--config is required\n\n${USAGE}`);
  const config = loadPretrainConfig(args.config, args.overrides);
  const backend = await loadBackend();
  const t0 = performance.now();

  // --- data ---
  let tokenizerDir = config.data.tokenizer_dir ?? undefined;
  if (args.prepareDefault) {
    const prepared = await prepareDefaultCorpus({
      outDir: config.data.default_corpus_dir,
      vocabSize: config.data.prepare_default_vocab_size,
      seqLen: config.data.seq_len ?? 256,
      seed: config.training.seed,
    });
    config.data.dataset_dir = prepared.datasetDir;
    tokenizerDir = prepared.tokenizerDir;
  }
  if (!fs.existsSync(config.data.dataset_dir)) {
    throw new Error(`dataset folder not found: ${config.data.dataset_dir} (set data.dataset_dir, run 'wm data prepare', or pass --prepare-default)`);
  }
  if (!tokenizerDir) {
    const guess = path.join(path.dirname(path.resolve(config.data.dataset_dir)), 'tokenizer');
    if (fs.existsSync(path.join(guess, 'tokenizer.json'))) tokenizerDir = guess;
  }
  const train = (await openSplit(config.data.dataset_dir, config.data.train_split, true))!;
  const evalSet = await openSplit(config.data.dataset_dir, config.data.eval_split, false);
  if (!evalSet) console.error(`note: no '${config.data.eval_split}' split in ${config.data.dataset_dir}; training without evaluation`);

  // --- model ---
  const modelConfig = modelConfigFrom(config);
  checkDataAgainstModel(config, modelConfig, train);
  if (evalSet) checkDataAgainstModel(config, modelConfig, evalSet);
  const model = createCausalLM(modelConfig, { seed: config.training.seed, routerLayout: config.model.router_layout as 'token' | 'hf' | undefined });
  let newTensors: string[] = [];
  if (config.model.init_from && !args.resume) {
    const r = inheritParameters(model.parameters(), config.model.init_from);
    newTensors = r.initialised;
    console.error(`init_from ${config.model.init_from}: copied ${r.copied.length} tensors, initialised ${r.initialised.length} new ones` +
      (r.initialised.length ? ` (${r.initialised.slice(0, 4).join(', ')}${r.initialised.length > 4 ? ', ...' : ''})` : '') +
      (r.ignored.length ? `, ignored ${r.ignored.length} not in this model` : ''));
  }
  const t = config.training;
  console.error(`model: ${config.model.preset ?? 'custom'} (${(model.numParameters() / 1e6).toFixed(2)}M parameters, ${describeModelConfig(modelConfig)}) on ${backend.name}`);
  console.error(`data: ${train.numRows} training rows of ${train.seqLen} tokens${evalSet ? `, ${evalSet.numRows} eval rows` : ''}; ` +
    `${t.per_device_train_batch_size * t.gradient_accumulation_steps * train.seqLen} tokens per step, ${t.max_steps} steps`);

  // --- trainer ---
  const trainer = new Trainer({
    model: model as unknown as CausalLM,
    args: t,
    seqLen: train.seqLen,
    evalDataset: evalSet,
    config: configToJSON(config),
    warmupOnly: t.train_new_only_steps > 0 ? { names: newTensorNames(config, model, newTensors), steps: t.train_new_only_steps } : undefined,
    trainLoader: (position) => new BatchLoader(train, { batchSize: t.per_device_train_batch_size, seed: t.seed, position: (position as number | undefined) ?? 0 }),
  });
  if (args.resume) {
    trainer.resume(args.resume === true ? 'latest' : args.resume);
  } else {
    if (listCheckpoints(t.output_dir).length) {
      console.error(`note: ${t.output_dir} has checkpoints from an earlier run (newest ${latestCheckpoint(t.output_dir)}); starting fresh (use --resume to continue)`);
    }
    trainer.metrics.truncateAfter(0);
  }

  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      console.error('\nCtrl-C: saving a checkpoint after this step (press again to quit without saving)');
      trainer.requestStop();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  let result;
  try {
    result = await trainer.train();
  } finally {
    process.off('SIGINT', onSigint);
  }

  // --- final model (HF folder + tokenizer) and samples ---
  const finalDir = path.join(t.output_dir, 'final');
  if (!result.stopped) {
    await writeFolderAtomically(finalDir, async (tmp) => {
      await model.savePretrained(tmp);
      if (tokenizerDir) for (const f of fs.readdirSync(tokenizerDir)) fs.copyFileSync(path.join(tokenizerDir, f), path.join(tmp, f));
    });
  }
  const took = (performance.now() - t0) / 1000;
  const evalText = result.lastEval ? `, eval loss ${result.lastEval.eval_loss.toFixed(4)} (perplexity ${result.lastEval.eval_perplexity.toFixed(2)})` : '';
  console.error(`${result.stopped ? 'stopped' : 'done'} at step ${result.steps}: train loss ${result.lastLoss.toFixed(4)}${evalText}; ${formatDuration(took)} in total`);
  console.error(`checkpoint: ${result.checkpoint}${result.stopped ? '' : `; model: ${finalDir}`}; metrics: ${path.join(t.output_dir, 'metrics.jsonl')}, plot: ${path.join(t.output_dir, 'loss.html')}`);
  if (!result.stopped) await printSamples(model, tokenizerDir, config);
  trainer.dispose();
  model.dispose();
}
