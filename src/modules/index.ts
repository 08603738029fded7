// Public API of src/modules: the Doge building blocks (each usable on its own) and the wasm-safe ops they use.
export * from './module';
export * from './rmsnorm';
export * from './rope';
export * from './mlp';
export * from './dmattn';
export * from './cdmoe';
export * from './embedding';
export {
  F32_MIN, Rng, gatherRows, stopGradient, linear, linearT, weightT, clearWeightCache, crossEntropyLoss, bmm, sliceLast, sliceAxis,
  customOp, makeVariable, isRecordingGradients, installWasmBatchMatMulFix, installWasmSliceFix, installWasmIdentityFix, permute,
  chunkedLmHeadLoss,
} from '../ops';
export { torchTopkIndices } from '../ops/torch-topk';
export * from './ssd-mixer';
