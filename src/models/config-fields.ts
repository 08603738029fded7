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


/**
 * Upper bounds of the size fields: far above any model of the paper (or of the hub) and low enough that a typo or a
 * hostile config.json (1e6 layers, vocab_size 1e12) is refused before anything is allocated.
 */
export const SIZE_LIMITS: Record<string, number> = {
  vocab_size: 2 ** 24, hidden_size: 2 ** 16, intermediate_size: 2 ** 18, num_hidden_layers: 1024, max_position_embeddings: 2 ** 24,
  num_attention_heads: 1024, keep_window_size: 2 ** 24, num_experts: 2 ** 24, num_experts_per_tok: 2 ** 16, ssd_chunk_size: 2 ** 16,
  attn_layer_period: 1024, attn_layer_offset: 1024, num_cdmoe_experts: 2 ** 24, num_cdmoe_heads: 1024, num_cdmoe_experts_per_head: 2 ** 16,
  expert_retrieval_size: 2 ** 16,
};

/** Parameters a model may have: 4 GB of float32, what the wasm backend's memory holds at most. */
export const MAX_PARAMETERS = 1e9;

export function checkSizeLimits(self: Record<string, unknown>, fields: readonly string[], fail: (field: string, msg: string) => never): void {
  for (const f of fields) {
    const max = SIZE_LIMITS[f];
    if (max !== undefined && (self[f] as number) > max) fail(f, `must be <= ${max}, got ${self[f]} (a model this size cannot be built in memory)`);
  }
}

/**
 * Refuse a parameter count that cannot fit, naming the fields of its largest part (`parts`: a description such as
 * 'vocab_size x hidden_size' and its count, e.g. the embedding, the layers).
 */
export function checkParameterCount(parts: [string, number][], fail: (field: string, msg: string) => never): void {
  const total = parts.reduce((a, [, n]) => a + n, 0);
  if (total <= MAX_PARAMETERS) return;
  const [what, n] = parts.reduce((a, b) => (b[1] > a[1] ? b : a));
  fail(what.split(' ')[0], `gives a model of ${total.toExponential(2)} parameters (${what} = ${n.toExponential(2)}), more than the ${MAX_PARAMETERS.toExponential(0)} ` +
    `(${(MAX_PARAMETERS * 4 / 2 ** 30).toFixed(1)} GiB of float32) this library can hold`);
}
