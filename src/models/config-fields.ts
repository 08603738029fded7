/** JSON type checks and config.json reading shared by the model configs (each error names the field or file). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FieldKinds {
  ints: readonly string[];
  floats: readonly string[];
  bools: readonly string[];
  nullableInts: readonly string[];
}

export function checkFieldTypes(self: Record<string, unknown>, kinds: FieldKinds, fail: (field: string, msg: string) => never): void {
  for (const f of kinds.ints) if (typeof self[f] !== 'number' || !Number.isInteger(self[f])) fail(f, `must be an integer, got ${JSON.stringify(self[f])}`);
  for (const f of kinds.floats) if (typeof self[f] !== 'number' || !Number.isFinite(self[f] as number)) fail(f, `must be a number, got ${JSON.stringify(self[f])}`);
  for (const f of kinds.bools) if (typeof self[f] !== 'boolean') fail(f, `must be true or false, got ${JSON.stringify(self[f])}`);
  for (const f of kinds.nullableInts) {
    const v = self[f];
    if (v !== null && (typeof v !== 'number' || !Number.isInteger(v))) fail(f, `must be an integer or null, got ${JSON.stringify(v)}`);
  }
  if (typeof self.hidden_act !== 'string') fail('hidden_act', `must be a string, got ${JSON.stringify(self.hidden_act)}`);
}

/** num_key_value_heads: null or absent means one kv head per query head. */
export function kvHeadsOf(src: Record<string, unknown>, numHeads: number, fail: (field: string, msg: string) => never): number {
  const kv = src.num_key_value_heads;
  if (kv === undefined || kv === null) return numHeads;
  if (typeof kv !== 'number' || !Number.isInteger(kv)) fail('num_key_value_heads', `must be an integer or null, got ${JSON.stringify(kv)}`);
  return kv;
}

/** The parsed config.json of a model folder (errors name the file). */
export function readConfigJSON(dir: string): Record<string, unknown> {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new Error(`${file}: no config.json in the model folder`);
  let obj: unknown;
  try {
    obj = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`${file}: expected a JSON object`);
  return obj as Record<string, unknown>;
}

