/**
 * The presets of `wm speedrun`: which recipes each stage runs and what it overrides. Every stage runs the normal
 * command (`wm pretrain`, `wm sft`, `wm dpo`, `wm eval`) with its shipped recipe, so a stage folder is exactly
 * what that command writes and can be taken further by hand.
 */

export type CorpusSpec =
  /** The embedded Brown corpus (what `pnpm run pretrain` prepares): a byte-level BPE of vocabSize, blocks of seqLen. */
  | { kind: 'brown'; vocabSize: number; seqLen: number }
  /** Text files (txt / JSONL): for the micro preset of the tests. */
  | { kind: 'files'; inputs: string[]; vocabSize: number; seqLen: number };

export interface StageSpec {
  /** A recipe file or shipped recipe name. */
  config: string;
  /** `--key value` overrides of the recipe. */
  overrides: Record<string, string>;
}

export interface SpeedrunPreset {
  name: string;
  summary: string;
  corpus: CorpusSpec;
  pretrain: StageSpec;
  sft: StageSpec;
  dpo: StageSpec;
  eval: { embeddedN: number; chats: number; prompts: number; pairs: number; maxNewTokens: number };
  /** What a model of this size and training is expected to do (checked against the numbers in the report). */
  expectation: 'smoke' | 'cpu' | 'gpu';
}

export const SPEEDRUN_PRESETS: Record<string, SpeedrunPreset> = {
  smoke: {
    name: 'smoke',
    summary: 'a few steps of each stage on doge-tiny: proves the path',
    corpus: { kind: 'brown', vocabSize: 4096, seqLen: 128 },
    pretrain: { config: 'doge-tiny', overrides: { 'max-steps': '30', 'eval-steps': '15', 'eval-batches': '2', 'save-steps': '15', 'logging-steps': '5', 'sample-new-tokens': '16' } },
    sft: { config: 'doge-tiny-sft', overrides: { 'max-steps': '30', 'eval-steps': '15', 'save-steps': '15', 'logging-steps': '5', 'max-train-rows': '600', 'max-eval-rows': '50' } },
    dpo: { config: 'doge-tiny-dpo', overrides: { 'max-steps': '15', 'eval-steps': '15', 'save-steps': '15', 'logging-steps': '5', 'max-train-rows': '120', 'max-eval-rows': '32' } },
    eval: { embeddedN: 100, chats: 50, prompts: 32, pairs: 50, maxNewTokens: 32 },
    expectation: 'smoke',
  },
  cpu: {
    name: 'cpu',
    summary: 'the shipped doge-tiny recipes as they are (pretrain 150, SFT 200, DPO 125 steps): notebook 7/8\'s numbers',
    corpus: { kind: 'brown', vocabSize: 4096, seqLen: 128 },
    pretrain: { config: 'doge-tiny', overrides: {} },
    sft: { config: 'doge-tiny-sft', overrides: {} },
    dpo: { config: 'doge-tiny-dpo', overrides: {} },
    eval: { embeddedN: 400, chats: 200, prompts: 64, pairs: 100, maxNewTokens: 32 },
    expectation: 'cpu',
  },
  gpu: {
    name: 'gpu',
    summary: 'the doge-20m recipes (pre-training data prepared as configs/doge-20m.yaml says; SFT smoltalk, DPO ultrafeedback from the hub)',
    corpus: { kind: 'brown', vocabSize: 32768, seqLen: 2048 },
    pretrain: { config: 'doge-20m', overrides: {} },
    sft: { config: 'doge-20m-sft', overrides: {} },
    dpo: { config: 'doge-20m-dpo', overrides: {} },
    eval: { embeddedN: 400, chats: 200, prompts: 64, pairs: 100, maxNewTokens: 32 },
    expectation: 'gpu',
  },
  micro: {
    name: 'micro',
    summary: 'seconds: a 1-layer model on a few documents (for tests)',
    corpus: { kind: 'files', inputs: ['tests/fixtures/data/docs.jsonl'], vocabSize: 300, seqLen: 32 },
    pretrain: { config: 'doge-tiny', overrides: { 'max-steps': '2', 'eval-steps': '2', 'eval-batches': '1', 'save-steps': '2', 'logging-steps': '1', 'sample-new-tokens': '0', 'per-device-train-batch-size': '2', 'hidden-size': '32', 'intermediate-size': '48', 'num-hidden-layers': '1', 'num-attention-heads': '2', 'num-key-value-heads': '1' } },
    sft: { config: 'doge-tiny-sft', overrides: { 'max-steps': '2', 'eval-steps': '2', 'save-steps': '2', 'logging-steps': '1', 'max-train-rows': '16', 'max-eval-rows': '8', 'per-device-train-batch-size': '2' } },
    dpo: { config: 'doge-tiny-dpo', overrides: { 'max-steps': '2', 'eval-steps': '2', 'save-steps': '2', 'logging-steps': '1', 'max-train-rows': '8', 'max-eval-rows': '4', 'per-device-train-batch-size': '2', 'long-prompts': 'truncate' } },
    eval: { embeddedN: 8, chats: 8, prompts: 4, pairs: 4, maxNewTokens: 8 },
    expectation: 'smoke',
  },
};
