// Public API of src/synthetic: the MQAR task (generator, mixers, model, trainer, grid runner, figure).
export { generateMqar, generateMqarSplits, validateMqarOptions, IGNORE_INDEX } from './mqar-data';
export type { MqarData, MqarDataOptions, MqarSplitOptions } from './mqar-data';
export { CausalAttention } from './attention';
export type { CausalAttentionOptions } from './attention';
export { SSD, ssdChunked, ssdRecurrent, ssdStep } from '../modules/ssd';
export type { SSDOptions } from '../modules/ssd';
export { createMixer, isMixerKind, MIXER_KINDS } from './mixers';
export type { MixerKind, MixerOptions, SequenceMixer } from './mixers';
export { MqarModel } from './model';
export type { MqarModelOptions } from './model';
export { AdamW, cosineLr } from './adamw';
export { trainMqar, evaluateMqar, makeBatch } from './train';
export type { MqarTrainOptions, MqarRunResult, MqarEpochInfo } from './train';
export { runMqarGrid, validateGrid, evalLengthExpr, formatMqarTable } from './grid';
export type { MqarGridOptions, MqarCellResult, MqarGridHooks, LengthExpr } from './grid';
export { writeMqarFigure } from './figure';
export { installWasmMatMulFix } from './wasm-matmul';
export { MQAR_PRESETS, parseMqarArgs } from '../cli/mqar';
