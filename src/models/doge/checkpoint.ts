/**
 * Doge checkpoints (HF `config.json` + `model.safetensors`, sharded too): thin names over the generic folder code in
 * ../checkpoint.ts and `DogeForCausalLM.fromPretrained` / `savePretrained` (which use `Module.loadState`).
 */
import type { RouterLayout } from '../../modules/cdmoe';
import { DogeForCausalLM } from './model';
import type { LegacyOptions } from './legacy';

export { loadCheckpointTensors } from '../checkpoint';

export function loadDogeCheckpoint(dir: string, options: { routerLayout?: RouterLayout } & LegacyOptions = {}): DogeForCausalLM {
  return DogeForCausalLM.fromPretrained(dir, options);
}

export function saveDogeCheckpoint(model: DogeForCausalLM, dir: string): void {
  model.savePretrained(dir);
}
