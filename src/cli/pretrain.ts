/**
 * `wm pretrain --config configs/<name>.yaml [--max-steps N --output-dir DIR ...] [--resume [DIR]] [--prepare-default]`
 *
 * Pre-trains a Doge model the way SmallDoge's `pt.py` does with HF Trainer: reads the YAML config, opens the
 * packed dataset, builds the model (or continues a dense checkpoint as MoE with `model.init_from`), runs the
 * trainer, saves the final model with its tokenizer and prints a few sampled continuations.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { backendLabel, loadBackend } from '../runtime/backend';
import { parseSafetensorsHeader } from '../io/safetensors';
import type { DogeConfig } from '../models/doge';
import type { CheemsConfig } from '../models/cheems';
import { buildModelConfig, createCausalLM, describeModelConfig, type CausalLMModel } from '../models/auto';
import { BatchLoader, openPackedDataset, prepareDefaultCorpus, loadTokenizer, checkVocabulary } from '../data';
import type { PackedDataset } from '../data';
import { configToJSON, loadPretrainConfig, PretrainConfig } from '../train/config';
import { acquireOutputLock, cleanStaleTemporaries, inheritParameters, startFreshRun, writeFolderAtomically, writeRunFile } from '../train/checkpoint';
import { generationOptionsFrom, PRETRAIN_SAMPLING_DEFAULTS, writeGenerationConfig } from '../generation/generation-config';
import type { WmTokenizer } from '../data';
import { Trainer, CausalLM } from '../train/trainer';
import { formatDuration } from '../train/progress';
import { defineCommand, flag, parseCommandArgs, str, UsageError } from './args';

const USAGE = `usage: wm pretrain --config FILE [options]

  --config FILE|NAME    YAML config (sections model, data, training) or a shipped recipe name:
                        doge-tiny, doge-tiny-moe, doge-20m, doge-60m, doge-160m, doge-320m
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

export const PRETRAIN_SPEC = defineCommand({
  name: 'wm pretrain',
  usage: USAGE,
  options: {
    config: { type: 'string' },
    resume: { type: 'string', optionalValue: true },
    'prepare-default': { type: 'boolean' },
  },
  // Any other --key VALUE overrides a config key; loadPretrainConfig checks the names ("did you mean").
  passThrough: true,
});

export function parseArgs(argv: string[]): Args {
  const a = parseCommandArgs(PRETRAIN_SPEC, argv);
  if (a.help) throw Object.assign(new Error(USAGE), { usage: true });
  const out: Args = { prepareDefault: flag(a, 'prepare-default'), overrides: a.rest };
  const config = str(a, 'config');
  if (config !== undefined) out.config = config;
  const resume = a.values.resume;
  if (resume !== undefined) out.resume = resume === true ? true : String(resume);
  return { config: out.config, resume: out.resume, prepareDefault: out.prepareDefault, overrides: out.overrides } as Args;
}

/** The folder of the recipes shipped with the package (configs/ next to dist/ and src/). */
export const SHIPPED_CONFIGS_DIR = path.join(__dirname, '..', '..', 'configs');

/**
 * `--config` accepts a file or the name of a shipped recipe (`doge-tiny`, `doge-tiny.yaml`,
 * `configs/doge-tiny.yaml` from any folder): a path that exists wins, then the package's configs/.
 */
export function resolveConfigPath(config: string): string {
  if (fs.existsSync(config)) return config;
  const base = path.basename(config).replace(/\.ya?ml$/, '');
  const shipped = path.join(SHIPPED_CONFIGS_DIR, `${base}.yaml`);
  if (/^[\w.-]+$/.test(base) && fs.existsSync(shipped)) return shipped;
  throw new UsageError(`wm pretrain: config file not found: ${config}; give a YAML file or ${shippedRecipes()}`);
}

/** "a shipped recipe name (doge-tiny, ...; in <dir>)", for messages. */
function shippedRecipes(): string {
  const names = fs.existsSync(SHIPPED_CONFIGS_DIR) ? fs.readdirSync(SHIPPED_CONFIGS_DIR).filter((f) => f.endsWith('.yaml')).map((f) => f.replace(/\.yaml$/, '')).filter((n) => !/-(sft|dpo)$/.test(n)).sort() : [];
  return `a shipped recipe name (${names.join(', ')}; in ${SHIPPED_CONFIGS_DIR})`;
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

async function printSamples(model: CausalLMModel, tok: WmTokenizer | undefined, config: PretrainConfig): Promise<void> {
  const t = config.training;
  if (!tok || t.sample_prompts.length === 0 || t.sample_new_tokens === 0) return;
  // The defaults also written to generation_config.json, so `wm generate` decodes the same way.
  const d = generationOptionsFrom(PRETRAIN_SAMPLING_DEFAULTS);
  console.log(`\nsamples (top-k ${d.topK}, temperature ${d.temperature}, repetition penalty ${d.repetitionPenalty}, ${t.sample_new_tokens} new tokens):`);
  for (const prompt of t.sample_prompts) {
    const ids = tok.encode(prompt);
    // seeded sampling (greedy decoding of a small, briefly trained model mostly repeats one token)
    const [row] = model.generate([ids], {
      ...d, maxNewTokens: t.sample_new_tokens, seed: t.seed,
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
  if (!args.config) throw new UsageError(`wm pretrain: --config is required: a YAML file or ${shippedRecipes()}\n\n${USAGE}`);
  const config = loadPretrainConfig(resolveConfigPath(args.config), args.overrides);
  const t = config.training;
  // One run per output folder: take its lock before anything is written there, then clear what killed runs left.
  const releaseLock = acquireOutputLock(t.output_dir);
  try {
    cleanStaleTemporaries(t.output_dir);
    await runLocked(args, config, t);
  } finally {
    releaseLock();
  }
}

/** Exit codes after a run stopped by a signal (128 + signal number), so `wm pretrain ... && next` stops too. */
const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

async function runLocked(args: Args, config: PretrainConfig, t: PretrainConfig['training']): Promise<void> {
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
  // The special token ids come from the tokenizer unless the config sets them (HF generate stops at eos_token_id).
  const tok = tokenizerDir ? await loadTokenizer(tokenizerDir) : undefined;
  if (tok) {
    const fields = config.model.fields as Record<string, unknown>;
    const ids = { bos_token_id: tok.bosTokenId, eos_token_id: tok.eosTokenId, pad_token_id: tok.padTokenId };
    for (const [k, v] of Object.entries(ids)) if (!(k in fields) && v !== undefined) fields[k] = v;
  }
  const modelConfig = modelConfigFrom(config);
  checkDataAgainstModel(config, modelConfig, train);
  if (evalSet) checkDataAgainstModel(config, modelConfig, evalSet);
  const model = createCausalLM(modelConfig, { seed: config.training.seed, routerLayout: config.model.router_layout as 'token' | 'hf' | undefined });
  let newTensors: string[] = [];
  if (config.model.init_from && !args.resume) {
    const r = inheritParameters(model, config.model.init_from);
    newTensors = r.initialised;
    console.error(`init_from ${config.model.init_from}: copied ${r.copied.length} tensors, initialised ${r.initialised.length} new ones` +
      (r.initialised.length ? ` (${r.initialised.slice(0, 4).join(', ')}${r.initialised.length > 4 ? ', ...' : ''})` : '') +
      (r.ignored.length ? `, ignored ${r.ignored.length} not in this model` : ''));
  }
  console.error(`model: ${config.model.preset ?? 'custom'} (${(model.numParameters() / 1e6).toFixed(2)}M parameters, ${describeModelConfig(modelConfig)}) on ${backendLabel(backend)}`);
  console.error(`data: ${train.numRows} training rows of ${train.seqLen} tokens${evalSet ? `, ${evalSet.numRows} eval rows` : ''}; ` +
    `${t.per_device_train_batch_size * t.gradient_accumulation_steps * train.seqLen} tokens per step, ${t.max_steps} steps`);

  // --- the run: a fresh one moves an earlier run in the folder aside; --resume continues this folder's run ---
  let runId: string | undefined;
  if (!args.resume) {
    const fresh = startFreshRun(t.output_dir);
    runId = fresh.runId;
    if (fresh.movedTo) {
      console.error(`note: ${t.output_dir} held an earlier run (${fresh.moved.length} entries: ${fresh.moved.slice(0, 4).join(', ')}${fresh.moved.length > 4 ? ', ...' : ''}); ` +
        `moved it to ${fresh.movedTo} and starting run ${runId} (to continue a run instead, pass --resume)`);
    }
  }
  // Every checkpoint (and final/) is a complete model folder: weights, tokenizer, and the decoding defaults.
  const generationConfig = { ...PRETRAIN_SAMPLING_DEFAULTS, bos_token_id: modelConfig.bos_token_id, eos_token_id: modelConfig.eos_token_id, pad_token_id: modelConfig.pad_token_id };
  const modelFolderExtras = (dir: string): void => {
    if (tokenizerDir) for (const f of fs.readdirSync(tokenizerDir)) if (fs.statSync(path.join(tokenizerDir, f)).isFile()) fs.copyFileSync(path.join(tokenizerDir, f), path.join(dir, f));
    writeGenerationConfig(dir, generationConfig);
  };

  // --- trainer ---
  const trainer = new Trainer({
    model: model as unknown as CausalLM,
    args: t,
    seqLen: train.seqLen,
    evalDataset: evalSet,
    config: configToJSON(config),
    runId,
    checkpointExtras: modelFolderExtras,
    warmupOnly: t.train_new_only_steps > 0 ? { names: newTensorNames(config, model, newTensors), steps: t.train_new_only_steps } : undefined,
    trainLoader: (position) => new BatchLoader(train, { batchSize: t.per_device_train_batch_size, seed: t.seed, position: (position as number | undefined) ?? 0 }),
  });
  if (args.resume) {
    trainer.resume(args.resume === true ? 'latest' : args.resume);
    writeRunFile(t.output_dir, trainer.runId);
  } else {
    trainer.metrics.truncateAfter(0);
  }

  // Ctrl-C and SIGTERM (docker stop, Slurm, Kubernetes, timeout): checkpoint after the current step, then exit
  // 130 / 143. A second signal quits at once.
  let stoppedBy: string | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stoppedBy === undefined) {
      stoppedBy = signal;
      console.error(`\n${signal === 'SIGINT' ? 'Ctrl-C' : signal}: saving a checkpoint after this step (${signal === 'SIGINT' ? 'press again' : 'signal again'} to quit without saving)`);
      trainer.requestStop();
    } else {
      process.exit(SIGNAL_EXIT[signal] ?? 1);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result;
  try {
    result = await trainer.train();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  // --- final model (HF folder + tokenizer + generation_config.json) and samples ---
  const finalDir = path.join(t.output_dir, 'final');
  if (!result.stopped) {
    await writeFolderAtomically(finalDir, async (tmp) => {
      await model.savePretrained(tmp);
      modelFolderExtras(tmp);
    });
  }
  const took = (performance.now() - t0) / 1000;
  const evalText = result.lastEval ? `, eval loss ${result.lastEval.eval_loss.toFixed(4)} (perplexity ${result.lastEval.eval_perplexity.toFixed(2)})` : '';
  const lossText = Number.isFinite(result.lastLoss) ? `train loss ${result.lastLoss.toFixed(4)}` : 'no training steps in this session';
  console.error(`${result.stopped ? 'stopped' : 'done'} at step ${result.steps}: ${lossText}${evalText}; ${formatDuration(took)} in total`);
  console.error(`checkpoint: ${result.checkpoint}${result.stopped ? '' : `; model: ${finalDir}`}; metrics: ${path.join(t.output_dir, 'metrics.jsonl')}, plot: ${path.join(t.output_dir, 'loss.html')}`);
  if (!result.stopped) await printSamples(model, tok, config);
  trainer.dispose();
  model.dispose();
  if (result.stopped && stoppedBy) process.exitCode = SIGNAL_EXIT[stoppedBy] ?? 1;
}
