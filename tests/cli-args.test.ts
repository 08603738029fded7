// The one argument parser of every `wm` command (src/cli/args.ts) and what the commands do with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defineCommand, parseCommandArgs, parseIntList, UsageError } from '../src/cli/args';
import { loadPretrainConfig } from '../src/train/config';

const SPEC = defineCommand({
  name: 'wm demo',
  usage: 'usage: wm demo ...',
  options: {
    model: { type: 'string', required: true },
    'max-new-tokens': { type: 'int', min: 0, default: 50 },
    temperature: { type: 'number', min: 0, minExclusive: true },
    'top-p': { type: 'number', min: 0, max: 1, minExclusive: true },
    'no-stream': { type: 'boolean' },
    input: { type: 'string', multiple: true },
    resume: { type: 'string', optionalValue: true },
    layout: { type: 'string', choices: ['token', 'hf'] },
  },
});

test('parses values, inline values, repeats, booleans, optional values and defaults', () => {
  const a = parseCommandArgs(SPEC, ['--model', 'm', '--temperature=0.5', '--input', 'a', '--input', 'b', '--no-stream', '--resume']);
  assert.deepEqual(a.values, { model: 'm', temperature: 0.5, input: ['a', 'b'], 'no-stream': true, resume: true, 'max-new-tokens': 50 });
  assert.equal(parseCommandArgs(SPEC, ['--model', 'm', '--resume', 'runs/x']).values.resume, 'runs/x');
  assert.equal(parseCommandArgs(SPEC, ['--model', 'x', '--help']).help, true);
  assert.equal(parseCommandArgs(SPEC, ['-h']).help, true, '--help works without the required options');
});

test('misspelled options are errors with "did you mean", and every bad value names its option', () => {
  const bad = (argv: string[], re: RegExp) => assert.throws(() => parseCommandArgs(SPEC, argv), (e: unknown) => e instanceof UsageError && e.exitCode === 2 && re.test((e as Error).message));
  bad(['--model', 'm', '--max-new-token', '3'], /^wm demo: unknown option --max-new-token \(did you mean --max-new-tokens\?\)/);
  bad(['--model', 'm', '--temprature', '0.1'], /unknown option --temprature \(did you mean --temperature\?\)/);
  bad(['--model', 'm', '--top-p', '2'], /--top-p must be <= 1, got '2'/);
  bad(['--model', 'm', '--top-p', '0'], /--top-p must be > 0, got '0'/);
  bad(['--model', 'm', '--max-new-tokens', '-5'], /--max-new-tokens must be >= 0, got '-5'/);
  bad(['--model', 'm', '--max-new-tokens', '2.5'], /--max-new-tokens must be an integer, got '2.5'/);
  bad(['--model', 'm', '--temperature', ''], /--temperature must be a number, got ''/);
  bad(['--model', 'm', '--layout', 'x'], /--layout must be one of token, hf/);
  bad(['--model'], /--model needs a value/);
  bad(['--model', ''], /--model is required \(got an empty value\)/);
  bad([], /--model is required/);
  bad(['--model', 'a', '--model', 'b'], /--model is given more than once/);
  bad(['--model', 'a', 'stray'], /unexpected argument 'stray'/);
});

test('id lists: empty lists and empty items are errors, not token 0', () => {
  assert.deepEqual(parseIntList('1, 2,3', 'ids'), [1, 2, 3]);
  assert.throws(() => parseIntList('', 'ids'), /--ids is empty/);
  assert.throws(() => parseIntList('1,,2', 'ids'), /--ids: item 2 is empty/);
  assert.throws(() => parseIntList('1,x', 'ids'), /--ids: item 2 'x' is not an integer/);
  assert.throws(() => parseIntList('1,-1', 'ids', { min: 0 }), /--ids: item 2 \(-1\) must be >= 0/);
});

test('an empty YAML config means all defaults; a YAML list is refused by name', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-yaml-'));
  fs.writeFileSync(path.join(dir, 'empty.yaml'), '');
  assert.equal(loadPretrainConfig(path.join(dir, 'empty.yaml'), { 'max-steps': '3' }).training.max_steps, 3);
  fs.writeFileSync(path.join(dir, 'list.yaml'), '- a\n- b\n');
  assert.throws(() => loadPretrainConfig(path.join(dir, 'list.yaml')), /list\.yaml: the config must be a YAML mapping .* \(got a list\)/);
});

// The real command line (built dist/, as users run it): --help for every subcommand, --version, exit codes.
const WM = path.join(__dirname, '..', 'dist', 'cli', 'wm.js');
function wm(...args: string[]) {
  return spawnSync(process.execPath, [WM, ...args], { encoding: 'utf8', env: { ...process.env, WM_WASM_THREADS: '1' } });
}

test('wm --version and --help of every subcommand', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  const v = wm('--version');
  assert.equal(v.status, 0);
  assert.equal(v.stdout.trim(), `wonderful-matrices ${pkg.version}`);
  for (const cmd of [['data', 'prepare'], ['data', 'default'], ['data', 'inspect'], ['data', 'download'], ['tokenizer', 'train'], ['tokenizer', 'encode'],
    ['tokenizer', 'decode'], ['generate'], ['pretrain']]) {
    const r = wm(...cmd, '--help');
    assert.equal(r.status, 0, `${cmd.join(' ')} --help: ${r.stderr}`);
    assert.match(r.stdout, /usage:/, cmd.join(' '));
  }
});

test('wm generate: misspelled flags and bad sampling values exit 2 before loading anything', () => {
  const r = wm('generate', '--model', 'nowhere', '--ids', '1', '--max-new-token', '3', '--temprature', '0.1');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option --max-new-token \(did you mean --max-new-tokens\?\)/);
  const p = wm('generate', '--model', 'nowhere', '--ids', '1', '--top-p', '2');
  assert.equal(p.status, 2);
  assert.match(p.stderr, /--top-p must be <= 1, got '2'/);
  const e = wm('generate', '--model', 'nowhere', '--ids', '');
  assert.equal(e.status, 2);
  assert.match(e.stderr, /--ids is empty/);
  const rp = wm('generate', '--model', 'nowhere', '--ids', '1', '--repetition-penalty', '0');
  assert.match(rp.stderr, /--repetition-penalty must be > 0/);
  const d = wm('data', 'prepare', '--inptu', 'x');
  assert.equal(d.status, 2);
  assert.match(d.stderr, /unknown option --inptu \(did you mean --input\?\)/);
});

test('--config takes the name of a shipped recipe from any folder, and names the recipes when it is neither', async () => {
  const { resolveConfigPath, SHIPPED_CONFIGS_DIR } = await import('../src/cli/pretrain');
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-cwd-'));
  const cwd = process.cwd();
  process.chdir(elsewhere);
  try {
    assert.equal(resolveConfigPath('doge-tiny'), path.join(SHIPPED_CONFIGS_DIR, 'doge-tiny.yaml'));
    assert.equal(resolveConfigPath('configs/doge-20m.yaml'), path.join(SHIPPED_CONFIGS_DIR, 'doge-20m.yaml'));
    assert.equal(resolveConfigPath('doge-tiny-moe.yaml'), path.join(SHIPPED_CONFIGS_DIR, 'doge-tiny-moe.yaml'));
    assert.throws(() => resolveConfigPath('doge-tinny'), /config file not found: doge-tinny; give a YAML file or a shipped recipe name \(.*doge-tiny.*; in .*configs\)/);
    fs.writeFileSync('doge-tiny.yaml', 'training:\n  max_steps: 3\n');
    assert.equal(resolveConfigPath('doge-tiny.yaml'), 'doge-tiny.yaml', 'a file that exists wins');
  } finally {
    process.chdir(cwd);
  }
  assert.ok(fs.existsSync(path.join(SHIPPED_CONFIGS_DIR, 'doge-tiny.yaml')));
});
