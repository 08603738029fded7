// The plain causal attention baseline now lives in src/modules (it is a layer); this keeps the MQAR import path.
export { CausalAttention, type CausalAttentionOptions } from '../modules/causal-attention';
