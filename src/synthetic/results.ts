/**
 * One result row of the MQAR grid (`runMqarGrid`, results.jsonl): its own file so that the grid, which writes the
 * rows, and the figure, which reads them, both import it without importing each other.
 */
import type { MixerKind } from './mixers';
import type { MqarCurvePoint } from './train';

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
  sweep: Array<{ lr: number; accuracy: number; epochs: number; steps: number; seconds: number; loss: number; stopped: string; curve: MqarCurvePoint[] }>;
}
