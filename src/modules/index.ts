// Public API of src/modules: the Module protocol and the Doge / Cheems building blocks (each usable on its own).
export * from './module';
export * from './rmsnorm';
export * from './rope';
export * from './mlp';
export * from './dmattn';
export * from './cdmoe';
export * from './embedding';
// the tensor ops the blocks are written with (kernel patches, variable bookkeeping and caches stay internal)
export {
  F32_MIN, Rng, gatherRows, stopGradient, linear, linearT, weightT, crossEntropyLoss, bmm, sliceLast, sliceAxis, permute,
  chunkedLmHeadLoss,
} from '../ops';
export * from './ssd-mixer';
