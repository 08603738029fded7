/** wm eval opens either model by config.json's model_type (loadCausalLM): a tiny Cheems next to a tiny Doge. */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { CheemsConfig, CheemsForCausalLM } from '../src/models/cheems';
import { brownCorpusDocuments, trainTokenizer } from '../src/data';
import { run as evalCli } from '../src/cli/eval';

before(async () => {
  await loadBackend({ log: false });
});

test('wm eval scores a Cheems checkpoint (and a Doge one in the same run)', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-eval-cheems-'));
  try {
    const ids = { eos_token_id: 1, bos_token_id: 0, pad_token_id: 2 };
    const models = {
      cheems: new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny', { vocab_size: 512, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, max_position_embeddings: 512, ...ids }), { seed: 1 }),
      doge: new DogeForCausalLM(new DogeConfig({ vocab_size: 512, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, ...ids }), { seed: 1 }),
    };
    const tokDir = path.join(root, 'tok');
    await trainTokenizer({ texts: brownCorpusDocuments().slice(0, 5), vocabSize: 300, outDir: tokDir, log: false });
    for (const [name, m] of Object.entries(models)) {
      const d = path.join(root, name);
      m.savePretrained(d);
      m.dispose();
      for (const f of fs.readdirSync(tokDir)) fs.copyFileSync(path.join(tokDir, f), path.join(d, f));
    }
    assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'cheems', 'config.json'), 'utf8')).model_type, 'cheems');
    const out = path.join(root, 'out');
    const orig = [console.log, console.error];
    console.log = () => {};
    console.error = () => {};
    try {
      await evalCli(['--model', path.join(root, 'cheems'), '--model', path.join(root, 'doge'), '--tasks', 'embedded', '--embedded-n', '8', '--limit', '4', '--ppl', 'brown', '--ppl-limit', '2', '--max-length', '256', '--out', out]);
    } finally {
      [console.log, console.error] = orig;
    }
    const all = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as { model: string; task: string; metric: string; value: number; n: number }[];
    assert.deepEqual(all.map((r) => `${r.model}/${r.task}/${r.metric}`), ['cheems', 'doge'].flatMap((m) => [`${m}/embedded/acc`, `${m}/embedded/acc_norm_nospace`, `${m}/perplexity/ppl`, `${m}/perplexity/word_perplexity`, `${m}/perplexity/bits_per_byte`]));
    for (const r of all.filter((x) => x.metric.startsWith('acc'))) assert.ok(r.n === 4 && r.value >= 0 && r.value <= 1, `${r.model} ${r.metric} ${r.value}`);
    const ppl = all.filter((r) => r.metric === 'ppl');
    assert.ok(ppl.every((r) => r.value > 50 && r.value < 2000), `an untrained model has a perplexity near its vocabulary size: ${ppl.map((r) => r.value)}`);
    assert.ok(fs.existsSync(path.join(out, 'results-cheems.json')));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
