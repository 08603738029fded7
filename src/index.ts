/**
 * wonderful-matrices: Doge and Cheems from "Wonderful Matrices" (arXiv 2412.11834) on TensorFlow.js.
 *
 *   import { tf, loadBackend, DogeConfig, DogeForCausalLM } from 'wonderful-matrices';
 */
export * from './runtime';
export * from './io/safetensors';
export * from './modules';
export * from './models/doge';
export * from './models/cheems';
export * from './models/auto';
export * from './models/registry';
export * from './models/values';
export * from './generation';
export * from './data';
export * from './train';
export * from './finetune';
export * from './eval';
export * from './synthetic';
export { MQAR_PRESETS, parseMqarArgs } from './cli/mqar';
export * from './viz';
