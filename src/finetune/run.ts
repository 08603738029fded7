/**
 * SFT and DPO runs on top of the pre-training Trainer (what `wm sft` / `wm dpo` and notebook 7 call), one pipeline
 * for every fine-tuning method (src/finetune/method.ts; SFT in sft-method.ts, DPO in dpo-method.ts):
 *
 *   runFinetune(method, config)   rows -> method.buildItems -> the model (any registered causal LM) -> method.setup
 *                                 (the loss hook, the reference, ...) -> output folder -> Trainer -> final/ -> summary
 *   runSft(config) = runFinetune(SFT, config);  runDpo(config) = runFinetune(DPO, config)
 *
 * Everything that can be wrong with the input (columns, roles, chat template, long prompts, empty data after
 * filtering, vocabulary of tokenizer / policy / reference) fails before the first step, and nothing is written
 * before that; then the output folder is claimed (src/train/run-folder.ts: a folder no run created is refused, one
 * run per folder, an earlier run moves into previous-runs/). Checkpoints (each a complete model folder with tokenizer
 * and generation_config.json), exact resume (refused when settings changed), Ctrl-C / SIGTERM (the caller calls
 * trainer.requestStop()), progress lines and metrics.jsonl come from the Trainer; the final model goes to
 * `<output_dir>/final` atomically.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTokenizer, type WmTokenizer } from '../data/tokenizer';
import { downloadHubDataset } from '../data/hub';
import { permutation } from '../ops/random';
import type { CausalLMModel } from '../models/registry';
import { Trainer, type TrainResult } from '../train/trainer';
import { trainAndSave, type RunOptions } from '../train/pretrain';
import { claimRunFolder } from '../train/run-folder';
import { writeGenerationConfig } from '../generation/generation-config';
import { readFinetuneRows, type SourcedRow } from './rows';
import { endOfTurnId } from './chat';
import { IndexLoader, MethodLoader, loadCheckedModel, type FinetuneMethod } from './method';
import { SFT } from './sft-method';
import { DPO } from './dpo-method';
import type { FinetuneConfig } from './config';


/** runSft / runDpo take the pipeline's run options (src/train/pretrain.ts). */
export type FinetuneRunOptions = RunOptions;

export interface FinetuneRunResult extends TrainResult {
  finalDir?: string;
  model?: CausalLMModel;
  trainItems: number;
  evalItems: number;
  seconds: number;
  /** With `summary`: the held-out evaluation before the first step (fresh runs) and a greedy reply of the final model. */
  evalBefore?: Record<string, number>;
  sample?: { prompt: string; reply: string };
}

/** The rows of the train and eval inputs (a hub dataset is downloaded first; a missing eval split holds out 5 %). */
async function loadRows(config: FinetuneConfig, log: (l: string) => void): Promise<{ train: SourcedRow[]; eval: SourcedRow[] }> {
  const d = config.data;
  const seed = config.training.seed;
  const read = async (input: string | null, split: string): Promise<SourcedRow[] | null> => {
    if (d.dataset && (!input || input === d.dataset)) {
      const files = await downloadHubDataset({ dataset: d.dataset, split, subdir: d.subdir ?? undefined });
      if (!files.length) return null;
      return readFinetuneRows(d.dataset, { files });
    }
    if (!input) return null;
    return readFinetuneRows(input, { split, seed: input.startsWith('embedded:') ? 0 : seed });
  };
  let train = (await read(d.train, d.train_split))!;
  if (!train) throw new Error(`${config.source}: no training rows (data.train / data.dataset)`);
  let evalRows = d.eval ? await read(d.eval, d.eval_split) : d.dataset ? await read(null, d.eval_split).catch(() => null) : null;
  if (!d.eval && !d.dataset && d.train?.startsWith('embedded:')) evalRows = await read(d.train, 'test');
  if (!evalRows) {
    // hold out the last 5 % of a seeded shuffle
    const perm = permutation(train.length, seed, 7);
    const k = Math.max(1, Math.floor(train.length * 0.05));
    const held = new Set(Array.from(perm.slice(0, k)));
    evalRows = train.filter((_, i) => held.has(i));
    train = train.filter((_, i) => !held.has(i));
    log(`note: no eval split; holding out ${k} of the training rows`);
  }
  if (d.max_train_rows) train = train.slice(0, d.max_train_rows);
  if (d.max_eval_rows) evalRows = evalRows.slice(0, d.max_eval_rows);
  return { train, eval: evalRows };
}

/** Every checkpoint and final/ is a complete chat-model folder: weights, tokenizer, decoding defaults (stop at end-of-turn). */
function modelFolderExtras(tok: WmTokenizer): (dir: string) => void {
  const eot = safeEndOfTurn(tok);
  const eos = [...new Set([eot, tok.eosTokenId].filter((x): x is number => x !== undefined))];
  return (dir) => {
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      const src = path.join(tok.dir, f);
      if (fs.existsSync(src)) fs.copyFileSync(src, path.join(dir, f));
    }
    writeGenerationConfig(dir, { do_sample: false, max_new_tokens: 64, bos_token_id: tok.bosTokenId ?? null, eos_token_id: eos.length === 1 ? eos[0]! : eos, pad_token_id: tok.padTokenId ?? null });
  };
}

/** FNV-1a over every integer array of every item: the training data's identity, compared on --resume. */
export function itemsFingerprint(items: object[]): string {
  let h = 0x811c9dc5;
  const mix = (x: number): void => { h = Math.imul(h ^ (x & 0xffff), 0x01000193) >>> 0; h = Math.imul(h ^ (x >>> 16), 0x01000193) >>> 0; };
  for (const it of items) {
    for (const v of Object.values(it)) {
      if (Array.isArray(v) || ArrayBuffer.isView(v)) { mix((v as ArrayLike<number>).length); const a = v as ArrayLike<number>; for (let i = 0; i < a.length; i++) mix(a[i]!); }
    }
  }
  return `${items.length} items, fnv1a ${h.toString(16).padStart(8, '0')}`;
}

/**
 * One fine-tuning run of any method on any registered causal LM (see the file header). The model is disposed unless
 * `opts.keepModel` (and always when something fails).
 */
export async function runFinetune<I extends object, B>(method: FinetuneMethod<I, B>, config: FinetuneConfig, opts: FinetuneRunOptions = {}): Promise<FinetuneRunResult> {
  const t0 = performance.now();
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'));
  // the run's description goes on the summary start line in 'summary' mode; notes and warnings always go to log
  const summary = opts.logLevel === 'summary';
  const info = summary ? () => {} : log;
  const t = config.training;
  const tok = await loadTokenizer(config.data.tokenizer_dir ?? config.model.init_from);
  const rows = await loadRows(config, log);
  const train = method.buildItems(tok, rows.train, config, 'training');
  const evalSet = method.buildItems(tok, rows.eval, config, 'eval');
  const model = loadCheckedModel(config.model.init_from, 'model.init_from', config.model.router_layout, tok);
  let keep = false;
  let run: ReturnType<typeof method.setup> | undefined;
  let claim: ReturnType<typeof claimRunFolder> | undefined;
  try {
    const maxLen = method.maxLength(config);
    if (maxLen !== null && maxLen > model.config.max_position_embeddings) {
      throw new Error(`${config.source}: ${method.kind}.${method.kind === 'sft' ? 'seq_len' : 'max_length'} ${maxLen} exceeds the model's max_position_embeddings ${model.config.max_position_embeddings}`);
    }
    run = method.setup({ config, tok, policy: model, train: train.items, eval: evalSet.items, log: info });
    const description = `${run.describe()} (${train.examples} training examples, ${evalSet.examples} eval examples)`;
    info(description);
    claim = claimRunFolder(t.output_dir, { command: `wm ${method.kind}`, resume: !!opts.resume, overwrite: opts.overwriteOutputDir, keepPreviousRuns: t.keep_previous_runs, log });
    const extras = modelFolderExtras(tok);
    const section = method.kind === 'sft' ? { sft: config.sft } : { dpo: config.dpo };
    let loader: MethodLoader<B> | undefined;
    const trainer = new Trainer<B>({
      model,
      args: t,
      seqLen: maxLen ?? 0,
      config: { kind: method.kind, model: config.model, data: config.data, ...section, training: t, data_fingerprint: itemsFingerprint(train.items) },
      log,
      onStep: opts.onStep,
      onEval: opts.onEval,
      logLevel: opts.logLevel,
      summaryPercent: opts.summaryPercent,
      describe: description,
      trainLoader: (position) => {
        loader = new MethodLoader(new IndexLoader(train.items.length, t.per_device_train_batch_size, t.seed, (position as number | undefined) ?? 0), run!.batch);
        return loader;
      },
      lossHook: run.hook,
      runId: claim.runId,
      checkpointExtras: extras,
    });
    let evalBefore: Record<string, number> | undefined;
    const { result, finalDir } = await trainAndSave(trainer, {
      resume: opts.resume, model, extras, onTrainer: opts.onTrainer,
      beforeTraining: async (stopping) => {
        // the loader this session trains from (after a resume: at the saved position) and where max_steps ends it
        await run!.beforeTraining?.(loader!.indices, t.max_steps * t.per_device_train_batch_size * t.gradient_accumulation_steps, stopping);
        if (opts.summary && !opts.resume && !stopping()) evalBefore = run!.hook.evaluate?.();
      },
    });
    const out: FinetuneRunResult = { ...result, finalDir, trainItems: train.examples, evalItems: evalSet.examples, seconds: (performance.now() - t0) / 1000, evalBefore };
    if (opts.summary && !result.stopped) out.sample = sampleReply(model, tok, run.samplePrompt?.());
    if (opts.keepModel) { out.model = model; keep = true; }
    return out;
  } finally {
    run?.dispose();
    claim?.release();
    if (!keep) model.dispose();
  }
}

/** A greedy reply of the model to a prompt (token ids), stopping at the end of the turn, for the summary. */
function sampleReply(model: CausalLMModel, tok: WmTokenizer, prompt: number[] | undefined): { prompt: string; reply: string } | undefined {
  if (!prompt?.length) return undefined;
  const stop = [...new Set([safeEndOfTurn(tok), tok.eosTokenId].filter((x): x is number => x !== undefined))];
  const [row] = model.generate([prompt], { maxNewTokens: 40, eosTokenId: stop.length ? stop : null });
  return { prompt: tok.decode(prompt, { skipSpecialTokens: true }), reply: tok.decode(row!.slice(prompt.length), { skipSpecialTokens: true }) };
}

function safeEndOfTurn(tok: WmTokenizer): number | undefined {
  try {
    return tok.chatTemplate ? endOfTurnId(tok) : undefined;
  } catch {
    return undefined;
  }
}

/** Supervised fine-tuning (src/finetune/sft-method.ts) of any registered causal LM. */
export function runSft(config: FinetuneConfig, opts: FinetuneRunOptions = {}): Promise<FinetuneRunResult> {
  return runFinetune(SFT, config, opts);
}

/** Direct Preference Optimization (src/finetune/dpo-method.ts) of any registered causal LM. */
export function runDpo(config: FinetuneConfig, opts: FinetuneRunOptions = {}): Promise<FinetuneRunResult> {
  return runFinetune(DPO, config, opts);
}
