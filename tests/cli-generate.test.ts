// `wm generate`: UTF-8-safe streaming, generation_config.json defaults, and checkpoints of `wm pretrain` that are
// complete model folders (tokenizer, special token ids, decoding defaults).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { IncrementalDecoder, loadTokenizer, prepareDataset, trainTokenizer, WmTokenizer } from '../src/data';
import { readGenerationConfig } from '../src/generation/generation-config';
import { run as generate } from '../src/cli/generate';
import { run as pretrain } from '../src/cli/pretrain';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-cli-gen-'));
const tokDir = path.join(dir, 'tok');
let tok: WmTokenizer;
const TEXT = 'café naïve 日本語 🙂 and ascii';

before(async () => {
  await loadBackend({ log: false });
  // ASCII training text: every non-ASCII character is split over several byte tokens.
  await trainTokenizer({ texts: ['the quick brown fox jumps over the lazy dog '.repeat(20)], vocabSize: 300, outDir: tokDir, log: false });
  tok = await loadTokenizer(tokDir);
});

/** Run `fn` and return what it wrote to stdout (process.stdout.write and console.log). */
async function stdoutOf(fn: () => Promise<void>): Promise<string> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const log = console.log;
  process.stdout.write = ((s: string | Uint8Array) => { chunks.push(String(s)); return true; }) as typeof process.stdout.write;
  console.log = (...a: unknown[]) => { chunks.push(a.join(' ') + '\n'); };
  try {
    await fn();
  } finally {
    process.stdout.write = write;
    console.log = log;
  }
  return chunks.join('');
}

test('IncrementalDecoder hands out only complete characters: no replacement characters, no split surrogates', () => {
  const ids = tok.encode(TEXT);
  assert.ok(ids.length > TEXT.length / 2, 'multi-byte characters span several tokens');
  const d = new IncrementalDecoder(tok);
  const pieces = ids.map((id) => d.push(id));
  pieces.push(d.flush());
  assert.equal(pieces.join(''), TEXT);
  for (const p of pieces) {
    assert.ok(!p.includes('\ufffd'), JSON.stringify(p));
    assert.ok(!/[\ud800-\udbff]$/.test(p) && !/^[\udc00-\udfff]/.test(p), `split surrogate pair in ${JSON.stringify(p)}`);
  }
  // A byte that never completes is real: it comes out at the end.
  const e = new IncrementalDecoder(tok);
  const partial = tok.encode('é').slice(0, 1);
  assert.equal(e.push(partial[0]), '');
  assert.equal(e.flush(), '\ufffd');
});

test('wm generate streams exactly the text it returns without streaming (random byte tokens included)', async () => {
  const model = new DogeForCausalLM(new DogeConfig({ vocab_size: tok.vocabSize, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1 }), { seed: 4 });
  const m = path.join(dir, 'random-model');
  model.savePretrained(m);
  for (const f of fs.readdirSync(tokDir)) fs.copyFileSync(path.join(tokDir, f), path.join(m, f));
  const args = ['--model', m, '--prompt', 'café', '--max-new-tokens', '60', '--temperature', '1', '--top-k', '0', '--seed', '3'];
  const streamed = await stdoutOf(() => generate(args));
  const whole = await stdoutOf(() => generate([...args, '--no-stream']));
  const prompt = tok.encode('café');
  const [row] = model.generate([prompt], { maxNewTokens: 60, doSample: true, temperature: 1, topK: 0, seed: 3, eosTokenId: tok.eosTokenId ?? null });
  const want = tok.decode(row.slice(prompt.length), { skipSpecialTokens: true });
  assert.equal(whole, want + '\n');
  assert.equal(streamed, whole);
  model.dispose();
});

test('wm pretrain checkpoints are complete model folders: tokenizer, bos/eos/pad ids, generation_config.json used by wm generate', async () => {
  const ds = path.join(dir, 'ds');
  await prepareDataset({ inputs: ['tests/fixtures/data/docs.jsonl'], tokenizer: tokDir, seqLen: 16, outDir: ds, testExamples: 2, log: false });
  const cfg = path.join(dir, 'cfg.yaml');
  fs.writeFileSync(cfg, `model:
  vocab_size: ${tok.vocabSize}
  hidden_size: 32
  intermediate_size: 48
  num_hidden_layers: 1
  num_attention_heads: 2
  num_key_value_heads: 1
  max_position_embeddings: 32
data:
  dataset_dir: ${ds}
  tokenizer_dir: ${tokDir}
  seq_len: 16
training:
  output_dir: ${path.join(dir, 'run')}
  max_steps: 2
  save_steps: 2
  eval_steps: 0
  logging_steps: 1
  sample_new_tokens: 0
`);
  await pretrain(['--config', cfg]);
  for (const sub of ['checkpoint-2', 'final']) {
    const d = path.join(dir, 'run', sub);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'config.json', 'model.safetensors']) assert.ok(fs.existsSync(path.join(d, f)), `${sub}/${f}`);
    const c = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
    assert.deepEqual([c.bos_token_id, c.eos_token_id, c.pad_token_id], [tok.bosTokenId, tok.eosTokenId, tok.padTokenId]);
    const g = readGenerationConfig(d)!;
    assert.deepEqual([g.do_sample, g.top_k, g.temperature, g.repetition_penalty, g.eos_token_id], [true, 40, 0.8, 1.2, tok.eosTokenId]);
  }
  // wm generate straight from a checkpoint, with its sampling defaults (what wm pretrain's samples use).
  const errs: string[] = [];
  const origErr = console.error;
  console.error = (...a: unknown[]) => { errs.push(a.join(' ')); };
  try {
    await stdoutOf(() => generate(['--model', path.join(dir, 'run', 'checkpoint-2'), '--prompt', 'the quick', '--max-new-tokens', '5', '--no-stream']));
  } finally {
    console.error = origErr;
  }
  assert.match(errs.join('\n'), /sampled: temperature 0\.8, top-k 40, top-p 1, repetition penalty 1\.2; defaults from generation_config\.json/);
});

test('a prompt past max_position_embeddings is warned about', async () => {
  const model = new DogeForCausalLM(new DogeConfig({ vocab_size: tok.vocabSize, hidden_size: 16, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 8 }), { seed: 1 });
  const m = path.join(dir, 'short-model');
  model.savePretrained(m);
  model.dispose();
  const errs: string[] = [];
  const origErr = console.error;
  console.error = (...a: unknown[]) => { errs.push(a.join(' ')); };
  try {
    await stdoutOf(() => generate(['--model', m, '--ids', '1,2,3,4,5,6', '--max-new-tokens', '4', '--no-stream']));
  } finally {
    console.error = origErr;
  }
  assert.match(errs.join('\n'), /warning: prompt \(6 tokens\) \+ max-new-tokens \(4\) = 10 exceeds the model's max_position_embeddings 8/);
});
