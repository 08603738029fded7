// Public API of src/generation.
export * from './generate';
export * from './sampling';
export * from './generation-config';
export * from './session';
export * from './stream';
