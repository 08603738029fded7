// Public API of src/models/doge: config, model, checkpoints.
export * from './config';
export * from './model';
export * from './checkpoint';
export { LEGACY_LAYOUTS, type LegacyLayout, type LegacyOptions } from './legacy';
