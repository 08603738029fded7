/**
 * A fine-tuning method is one object implementing `FinetuneMethod` (src/finetune/sft-method.ts, dpo-method.ts): how
 * rows become training items, how a micro-batch of items becomes a loss (the Trainer's `LossHook`), and what the
 * held-out evaluation reports. `runFinetune` (run.ts) does everything else the same way for every method: data,
 * tokenizer, the model (any registered causal LM), the output folder, the Trainer, checkpoints, resume, final/, and
 * the summary; the way TRL's trainers override only the loss.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WmTokenizer } from '../data/tokenizer';
import { loadCausalLM } from '../models/auto';
import type { CausalLMModel } from '../models/registry';
import { permutation } from '../ops/random';
import type { BatchSource, LossHook } from '../train/trainer';
import type { FinetuneConfig } from './config';
import type { SourcedRow } from './rows';

export interface FinetuneMethod<I, B> {
  readonly kind: 'sft' | 'dpo';
  /** Rows -> items (SFT: packed rows, DPO: token-id pairs). Errors name the row; `examples` = rows that made items. */
  buildItems(tok: WmTokenizer, rows: SourcedRow[], config: FinetuneConfig, what: 'training' | 'eval'): { items: I[]; examples: number };
  /** The longest sequence the method feeds the model (checked against max_position_embeddings), or null. */
  maxLength(config: FinetuneConfig): number | null;
  /** Everything the run needs beyond the policy (DPO: the reference); the one place a method allocates. */
  setup(ctx: MethodContext<I>): MethodRun<I, B>;
}

export interface MethodContext<I> {
  config: FinetuneConfig;
  tok: WmTokenizer;
  policy: CausalLMModel;
  train: I[];
  eval: I[];
  log: (line: string) => void;
}

export interface MethodRun<I, B> {
  /** A micro-batch from indices into the training items (built once, on the host); `position`: the loader's, before it. */
  batch(indices: number[], position: number): B;
  /** Loss, token and item counts, step metrics and the held-out evaluation. */
  hook: LossHook<B>;
  /** One line about the run, logged before training. */
  describe(): string;
  /**
   * Called before the first step with the loader that will feed the run and the position where it will stop. Long
   * work polls `stopping()` and yields to the event loop (so Ctrl-C reaches it), and returns early once it is true.
   */
  beforeTraining?(loader: IndexLoader, end: number, stopping: () => boolean): void | Promise<void>;
  /** Token ids of a prompt from the held-out items, for the summary's sample. */
  samplePrompt?(): number[] | undefined;
  dispose(): void;
}

/** Endless shuffled batches of item indices; `position` = items consumed (resumable, JSON). */
export class IndexLoader implements BatchSource<number[]> {
  position: number;
  private epoch = -1;
  private perm: Uint32Array = new Uint32Array(0);
  constructor(readonly n: number, readonly batchSize: number, readonly seed: number, position = 0) {
    if (n < 1) throw new Error('IndexLoader: no items');
    this.position = position;
  }
  next(): number[] {
    const out: number[] = [];
    for (let b = 0; b < this.batchSize; b++, this.position++) out.push(this.at(this.position));
    return out;
  }
  /** The item at a position (the permutation of its epoch). */
  private at(position: number): number {
    const e = Math.floor(position / this.n);
    if (e !== this.epoch) { this.perm = permutation(this.n, this.seed, e); this.epoch = e; }
    return this.perm[position % this.n]!;
  }
  /** The micro-batches of positions [position, end) as `{ position, items }`, without moving the loader (what the run will use). */
  batchesUntil(end: number): { position: number; items: number[] }[] {
    const probe = new IndexLoader(this.n, this.batchSize, this.seed, this.position);
    const out: { position: number; items: number[] }[] = [];
    while (probe.position < end) out.push({ position: probe.position, items: probe.next() });
    return out;
  }
}

/** The batches of a method over an IndexLoader: positions and resume are the index loader's. */
export class MethodLoader<B> implements BatchSource<B> {
  constructor(readonly indices: IndexLoader, private readonly make: (indices: number[], position: number) => B) {}
  get position(): number { return this.indices.position; }
  next(): B {
    const position = this.indices.position;
    return this.make(this.indices.next(), position);
  }
}

/** Any registered causal LM from a checkpoint folder, checked against the tokenizer (errors name the folder). */
export function loadCheckedModel(dir: string, what: string, routerLayout: 'token' | 'hf', tok: WmTokenizer): CausalLMModel {
  if (!fs.existsSync(path.join(dir, 'model.safetensors')) && !fs.existsSync(path.join(dir, 'model.safetensors.index.json'))) {
    throw new Error(`${what} ${dir} has no model.safetensors (give a checkpoint folder written by savePretrained / wm pretrain)`);
  }
  const m = loadCausalLM(dir, { routerLayout });
  if (tok.vocabSize > m.config.vocab_size) {
    m.dispose();
    throw new Error(`${what} ${dir} has vocab_size ${m.config.vocab_size} but the tokenizer ${tok.dir} has ${tok.vocabSize} tokens`);
  }
  return m;
}
