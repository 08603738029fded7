// Fine-tuning: chat data with loss masks, packing, SFT and DPO losses and training, the embedded default data.
export * from './default-data';
export { WORDNET_MINI } from './wordnet-mini';
export * from './chat-data';
export * from './packing';
export * from './sft';
export * from './dpo';
export * from './rows';
export * from './config';
export * from './method';
export * from './sft-method';
export * from './dpo-method';
export * from './run';
export * from './chat';
