// Public API of src/data: corpora, tokenizers, packed datasets and the batch loader.
export * from './brown';
export * from './stories';
export * from './bytelevel';
export * from './bpe-trainer';
export * from './tokenizer';
export * from './arrow';
export * from './sources';
export * from './prepare';
export * from './default-corpus';
export * from './loader';
export * from './hub';
export * from './packed-disk';
// Generic helpers under data-specific names (the root barrel re-exports every area).
export { permutation as dataPermutation } from '../ops/random';
export { Progress as DataProgress } from './progress';
export * from './out-folder';
export * from './input-bytes';
export * from './model-folder';
