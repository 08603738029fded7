import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { copyModelFolder, copyTokenizerFiles } from '../src/data/model-folder';

test('copyTokenizerFiles copies the tokenizer files present, names a missing tokenizer.json, refuses a symlink target', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-mf-'));
  const tok = path.join(root, 'tok');
  fs.mkdirSync(tok);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'notes.txt']) fs.writeFileSync(path.join(tok, f), f);
  const model = path.join(root, 'model');
  assert.deepEqual(copyTokenizerFiles(tok, model), ['tokenizer.json', 'tokenizer_config.json']);
  assert.equal(fs.readFileSync(path.join(model, 'tokenizer.json'), 'utf8'), 'tokenizer.json');
  assert.equal(fs.existsSync(path.join(model, 'notes.txt')), false);
  assert.throws(() => copyTokenizerFiles(model + '-none', model), /model-none\/tokenizer\.json is missing/);
  const evil = path.join(root, 'evil');
  fs.mkdirSync(evil);
  fs.symlinkSync(path.join(root, 'outside.json'), path.join(evil, 'tokenizer.json'));
  assert.throws(() => copyTokenizerFiles(tok, evil), /evil\/tokenizer\.json is a symbolic link/);
  assert.equal(fs.existsSync(path.join(root, 'outside.json')), false);
});

test('copyModelFolder replaces the target with the files of a model folder', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-mf-'));
  const a = path.join(root, 'a');
  fs.mkdirSync(path.join(a, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(a, 'config.json'), '{}');
  fs.writeFileSync(path.join(a, 'model.safetensors'), 'x');
  const b = path.join(root, 'b');
  fs.mkdirSync(b);
  fs.writeFileSync(path.join(b, 'stale.txt'), 'old');
  copyModelFolder(a, b);
  assert.deepEqual(fs.readdirSync(b).sort(), ['config.json', 'model.safetensors']);
  assert.throws(() => copyModelFolder(path.join(a, 'sub'), b), /has no config\.json \(not a model folder\)/);
});
