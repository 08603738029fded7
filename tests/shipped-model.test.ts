// The shipped doge-stories model (assets/doge-stories, F16): it loads by name and writes corpus-shaped text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBackend } from '../src/runtime/backend';
import { DogeForCausalLM } from '../src/models/doge';
import { shippedModelDir } from '../src/models/shipped';
import { loadTokenizer } from '../src/data/tokenizer';
import { storyVocabulary, storyWords } from '../src/data/stories';
import { parseSafetensorsHeader } from '../src/io/safetensors';

test('doge-stories: F16 weights under 4 MB, loads, and greedy decoding writes a story in the corpus vocabulary', async () => {
  await loadBackend({ backend: 'cpu', log: false });
  const dir = shippedModelDir('doge-stories');
  const file = path.join(dir, 'model.safetensors');
  assert.ok(fs.statSync(file).size < 4e6, 'small enough to ship');
  const header = parseSafetensorsHeader(new Uint8Array(fs.readFileSync(file)), file);
  assert.ok([...header.tensors.values()].every((t) => t.dtype === 'F16'));
  const model = DogeForCausalLM.fromPretrained(dir);
  const tok = await loadTokenizer(dir);
  const prompt = 'Once upon a time, there was';
  const ids = tok.encode(prompt);
  const [row] = model.generate([ids], { maxNewTokens: 40, eosTokenId: tok.eosTokenId ?? null });
  const text = tok.decode(row!.slice(ids.length), { skipSpecialTokens: true });
  const known = storyVocabulary();
  const words = storyWords(text);
  assert.ok(words.length >= 20, text);
  // the last word may be cut by maxNewTokens
  assert.deepEqual(words.slice(0, -1).filter((w) => !known.has(w)), [], `made-up words in: ${text}`);
  assert.match(text, /named [A-Z][a-z]+\./, text);
  model.dispose();
  assert.throws(() => shippedModelDir('nope' as 'doge-stories'), /unknown model 'nope' \(shipped: doge-stories\)/);
});
