/**
 * Model folders shipped inside the package (assets/<name>/: config.json, model.safetensors, tokenizer files).
 *
 * `doge-stories`: a 1.43M-parameter Doge trained by the project's own `wm pretrain` on the embedded story corpus
 * (configs/doge-stories.yaml has the commands that reproduce it; scripts/ship-model.mjs stores it as F16).
 * The notebooks load it to show a model that has learned something.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const SHIPPED_MODELS = ['doge-stories'] as const;
export type ShippedModelName = (typeof SHIPPED_MODELS)[number];

/** The folder of a shipped model (`assets/<name>` at the package root), checked to hold a model. */
export function shippedModelDir(name: ShippedModelName = 'doge-stories'): string {
  if (!(SHIPPED_MODELS as readonly string[]).includes(name)) {
    throw new Error(`shippedModelDir: unknown model '${name}' (shipped: ${SHIPPED_MODELS.join(', ')})`);
  }
  // this file is dist/models/shipped.js or src/models/shipped.ts: the package root is two folders up
  const dir = path.join(__dirname, '..', '..', 'assets', name);
  if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
    throw new Error(`shippedModelDir: ${dir}/model.safetensors is missing (is 'assets' in the package files?)`);
  }
  return dir;
}
