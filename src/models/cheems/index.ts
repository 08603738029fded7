// Public API of src/models/cheems: config and model (checkpoints through fromPretrained / savePretrained).
export * from './config';
export * from './model';
