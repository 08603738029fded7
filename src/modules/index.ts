// Public API of src/modules: the Doge building blocks (each usable on its own).
export * from './params';
export * from './rmsnorm';
export * from './rope';
export * from './mlp';
export * from './dmattn';
export * from './cdmoe';
export * from './embedding';
export * from '../ops';
