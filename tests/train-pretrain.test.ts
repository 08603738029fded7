import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackend } from '../src/backend';
import { writePackedSplit, writeDatasetDict } from '../src/data';
import { run, parseArgs } from '../src/cli/pretrain';

before(async () => {
  await loadBackend({ log: false });
});

const V = 256;
const T = 32;

/** A packed DatasetDict (train/test) of seeded token rows in [0, maxId]. */
async function makeDataset(dir: string, o: { rows?: number; seqLen?: number; maxId?: number } = {}): Promise<string> {
  const seqLen = o.seqLen ?? T;
  const maxId = o.maxId ?? V - 1;
  let s = 12345;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const mk = (n: number) => Array.from({ length: n }, () => {
    const r = new Int32Array(seqLen);
    r[0] = Math.floor(rand() * (maxId + 1));
    for (let t = 1; t < seqLen; t++) r[t] = rand() < 0.7 ? (r[t - 1] * 7 + 3) % (maxId + 1) : Math.floor(rand() * (maxId + 1));
    return r;
  });
  const train = mk(o.rows ?? 48);
  const testRows = mk(8);
  await writePackedSplit(path.join(dir, 'train'), { seqLen, numRows: train.length, row: (i) => train[i], split: 'train' });
  await writePackedSplit(path.join(dir, 'test'), { seqLen, numRows: testRows.length, row: (i) => testRows[i], split: 'test' });
  writeDatasetDict(dir, ['train', 'test']);
  return dir;
}

/** A tiny Doge config file (vocab 256, 2 layers, seq 32) over `datasetDir`. */
function writeConfig(dir: string, datasetDir: string, extra: { model?: string; training?: string } = {}): string {
  const file = path.join(dir, 'tiny.yaml');
  fs.writeFileSync(file, `model:
  vocab_size: ${V}
  hidden_size: 32
  intermediate_size: 64
  num_hidden_layers: 2
  num_attention_heads: 4
  num_key_value_heads: 2
  max_position_embeddings: 64
  tie_word_embeddings: true
${extra.model ?? ''}
data:
  dataset_dir: ${datasetDir}
  seq_len: ${T}
training:
  output_dir: ${path.join(dir, 'out')}
  max_steps: 8
  per_device_train_batch_size: 4
  per_device_eval_batch_size: 4
  learning_rate: 1.0e-2
  logging_steps: 2
  eval_steps: 4
  eval_batches: 2
  save_steps: 4
${extra.training ?? ''}
`);
  return file;
}

function tmp(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `wm-pretrain-${name}-`));
}

test('argument parsing: flags, overrides, --resume with and without a folder', () => {
  assert.deepEqual(parseArgs(['--config', 'c.yaml', '--max-steps', '200', '--output-dir=runs/x', '--resume']),
    { config: 'c.yaml', resume: true, prepareDefault: false, overrides: { 'max-steps': '200', 'output-dir': 'runs/x' } });
  assert.deepEqual(parseArgs(['--resume', 'runs/x/checkpoint-4', '--prepare-default', '--config', 'c.yaml']),
    { config: 'c.yaml', resume: 'runs/x/checkpoint-4', prepareDefault: true, overrides: {} });
  assert.throws(() => parseArgs(['--max-steps']), /^Error: --max-steps needs a value$/);
});

test('a missing dataset folder is named', async () => {
  const dir = tmp('missing');
  const cfg = writeConfig(dir, path.join(dir, 'nope'));
  await assert.rejects(() => run(['--config', cfg]), /^Error: dataset folder not found: .*nope \(set data\.dataset_dir, run 'wm data prepare', or pass --prepare-default\)$/);
});

test('token ids beyond the model vocabulary are reported with row, position and id', async () => {
  const dir = tmp('vocab');
  const ds = await makeDataset(path.join(dir, 'ds'), { maxId: 400 });
  const cfg = writeConfig(dir, ds);
  await assert.rejects(() => run(['--config', cfg]), /token id \d+ at row \d+, position \d+ of .*train is outside the model's vocabulary \(vocab_size 256\)/);
});

test('a sequence length above max_position_embeddings is refused', async () => {
  const dir = tmp('seqlen');
  const ds = await makeDataset(path.join(dir, 'ds'), { seqLen: 96, rows: 8 });
  const cfg = writeConfig(dir, ds);
  await assert.rejects(() => run(['--config', cfg, '--seq-len', '96']), /the sequence length 96 of .*train exceeds the model's max_position_embeddings 64/);
  await assert.rejects(() => run(['--config', cfg]), /data\.seq_len is 32 but the rows of .*train have 96 tokens/);
});
