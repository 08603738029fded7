/**
 * Types shared by the MQAR files: the result row of the grid (`runMqarGrid`, results.jsonl), its accuracy curve,
 * and the recipe's value types. Their own file so that the grid (writes rows), the figure (reads them), the
 * trainer and the recipes import them without importing each other.
 */
import type { MixerKind } from './mixers';

/** A size that may depend on the sequence length: a number, or an expression in L such as `L/4`, `L+1`, `2*L`. */
export type LengthExpr = number | string;

/** Init of the projections that write into the residual stream: 'scaled' = std 0.02 / sqrt(2 x layers), 'plain' = 0.02. */
export type MqarInit = 'scaled' | 'plain';

/** One point of a run's accuracy curve: test accuracy after `step` optimizer steps. */
export interface MqarCurvePoint {
  step: number;
  accuracy: number;
  /** Mean training loss of the steps since the previous point. */
  loss: number;
  seconds: number;
}

export interface MqarCellResult {
  mixer: MixerKind;
  seq_len: number;
  kv_pairs: number;
  vocab_size: number;
  d_model: number;
  /** Learning rate of the best run. */
  lr: number;
  /** Best test accuracy (over epochs of the best learning rate). */
  accuracy: number;
  /** Epochs run by the best learning rate. */
  epochs: number;
  /** Seconds for the whole sweep of this cell. */
  seconds: number;
  num_parameters: number;
  /** dmattn only: keys kept per query. */
  keep_window_size?: number;
  random_non_queries: boolean;
  train_examples: number;
  test_examples: number;
  backend: string;
  /** Optimizer steps of the best run. */
  steps: number;
  /** Seed of the data and the init of this row. */
  seed: number;
  /** The recipe the row was trained with (init, warmup, weight decay; dmattn: keep window, q/k norm, A, dt_proj std). */
  recipe: Record<string, string | number | boolean>;
  /** Test accuracy vs steps of the best run (see MqarCurvePoint). */
  curve: MqarCurvePoint[];
  sweep: Array<{
    lr: number; accuracy: number; epochs: number; steps: number; seconds: number; loss: number; stopped: string; curve: MqarCurvePoint[];
    /** dmattn curriculum: the step at which the top-k window started to shrink (null: its accuracy trigger never fired). */
    shrink_start_step?: number | null;
  }>;
}
