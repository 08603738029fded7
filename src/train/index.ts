// Public API of src/train: the pre-training loop and its parts (optimizer, schedules, config, checkpoints, metrics).
export { AdamW, decaysWeight } from './adamw';
export type { AdamWOptions } from './adamw';
export { lrMultiplier, SCHEDULE_TYPES } from './schedule';
export type { ScheduleSpec, ScheduleType } from './schedule';
export {
  parsePretrainConfig, loadPretrainConfig, applyOverrides, configToJSON, scheduleSpec, warmupSteps, decaySteps,
  modelFieldNames, DATA_DEFAULTS, TRAINING_DEFAULTS,
} from './config';
export type { PretrainConfig, ModelSection, DataSection, TrainingSection, LrSchedulerKwargs } from './config';
export {
  saveCheckpoint, loadTrainerState, listCheckpoints, latestCheckpoint, inheritParameters, writeFolderAtomically,
  TRAINER_STATE_FORMAT,
} from './checkpoint';
export { acquireOutputLock, cleanStaleTemporaries, startFreshRun, currentRunId, newRunId, fsyncTree, checkpointRunId } from './checkpoint';
export type { TrainerState, SavableModel, LogWindow } from './checkpoint';
export { MetricsLog, readMetrics, writeLossHtml, lossFigure, trainingFigures } from './metrics';
export type { TrainRow, EvalRow, MetricsRow } from './metrics';
export { formatProgress, formatDuration } from './progress';
export { Trainer, NonFiniteLossError, dropoutSeedFor, batchToTensor, loadParametersExact } from './trainer';
export type { CausalLM, TokenDataset, BatchSource, LossHook, TokenBatch, TrainerControl, TrainerOptions, StepResult, StepRow, LogLevel, TrainResult } from './trainer';
export * from './run-folder';
export { runPretrain, trainAndSave, modelConfigFrom, checkDataAgainstModel } from './pretrain';
export type { RunOptions, PretrainRunOptions, PretrainRunResult } from './pretrain';
