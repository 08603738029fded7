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
 * The dynamic-mask fields both configs share (DMA as arXiv 2508.02124 / flash-dmattn write it; defaults = HF):
 *   dynamic_mask_bias   'exp' (HF: exp(A softplus(dt))) | 'linear' (A softplus(dt), no exp)
 *   dynamic_mask_select 'row' (HF: top-k per query row after the causal mask) | 'key' (once per key row, causality after)
 *   dynamic_mask_type   'topk' (keep keep_window_size keys) | 'relu' (keep a key iff its bias > 0)
 *   window_size         accepted as the name of keep_window_size (the authors' name); written back as keep_window_size
 */
export interface DmaFields {
  dynamic_mask_bias: 'exp' | 'linear';
  dynamic_mask_select: 'row' | 'key';
  dynamic_mask_type: 'topk' | 'relu';
}

export const DMA_DEFAULTS: DmaFields = { dynamic_mask_bias: 'exp', dynamic_mask_select: 'row', dynamic_mask_type: 'topk' };
const DMA_ALLOWED: Record<keyof DmaFields, readonly string[]> = {
  dynamic_mask_bias: ['exp', 'linear'], dynamic_mask_select: ['row', 'key'], dynamic_mask_type: ['topk', 'relu'],
};
export const DMA_KEYS = [...Object.keys(DMA_DEFAULTS), 'window_size'];

/** The DMA fields of `src` (checked), and keep_window_size resolved from its alias window_size. */
export function readDmaFields(src: Record<string, unknown>, fail: (field: string, msg: string) => never): DmaFields & { keepWindowSize: unknown } {
  const out = { ...DMA_DEFAULTS } as DmaFields;
  for (const k of Object.keys(DMA_DEFAULTS) as Array<keyof DmaFields>) {
    const v = src[k];
    if (v === undefined) continue;
    if (!DMA_ALLOWED[k].includes(v as string)) fail(k, `must be ${DMA_ALLOWED[k].map((a) => `'${a}'`).join(' or ')}, got ${JSON.stringify(v)}`);
    (out as unknown as Record<string, unknown>)[k] = v;
  }
  let keepWindowSize = src.keep_window_size;
  if (src.window_size !== undefined) {
    if (keepWindowSize !== undefined && keepWindowSize !== src.window_size) {
      fail('window_size', `(${JSON.stringify(src.window_size)}) is another name of keep_window_size (${JSON.stringify(keepWindowSize)}): give one of them`);
    }
    keepWindowSize = src.window_size;
  }
  return { ...out, keepWindowSize };
}

/** The DMA fields that differ from the defaults (config.json stays as HF writes it unless one is set). */
export function dmaFieldsJSON(self: DmaFields): Partial<DmaFields> {
  const out: Partial<DmaFields> = {};
  for (const k of Object.keys(DMA_DEFAULTS) as Array<keyof DmaFields>) if (self[k] !== DMA_DEFAULTS[k]) (out as Record<string, unknown>)[k] = self[k];
  return out;
}
