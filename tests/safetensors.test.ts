import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadBackend, tf } from '../src/runtime/backend';
import { decodeSafetensors, encodeSafetensors, loadSafetensors, saveSafetensors } from '../src/io/safetensors';

test('reads the dense fixture with HF names and shapes', async () => {
  await loadBackend({ log: false });
  const { tensors, metadata } = loadSafetensors('tests/fixtures/doge/dense/model.safetensors');
  assert.deepEqual(tensors.get('model.embed_tokens.weight')!.shape, [128, 64]);
  assert.deepEqual(tensors.get('model.layers.0.self_attn.A')!.shape, [2]);
  assert.equal(tensors.has('lm_head.weight'), false);
  assert.equal(typeof metadata, 'object');
  for (const t of tensors.values()) t.dispose();
});

test('round trip keeps values, dtypes and metadata; writes sorted 8-byte aligned data', async () => {
  await loadBackend({ log: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-st-'));
  const file = path.join(dir, 'x.safetensors');
  const a = tf.tensor2d([[1.5, -2], [3, 4e-8]]);
  const b = tf.tensor1d([7, -9], 'int32');
  saveSafetensors(file, { 'z.b': b, 'a.w': a }, { format: 'pt' });
  const bytes = fs.readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + n) % 8, 0);
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
  assert.deepEqual(Object.keys(header), ['__metadata__', 'a.w', 'z.b']);
  const back = loadSafetensors(file);
  assert.deepEqual(back.metadata, { format: 'pt' });
  assert.deepEqual(Array.from(back.tensors.get('a.w')!.dataSync()), Array.from(a.dataSync()));
  assert.equal(back.tensors.get('z.b')!.dtype, 'int32');
  assert.deepEqual(Array.from(back.tensors.get('z.b')!.dataSync()), [7, -9]);
  tf.dispose([a, b, ...back.tensors.values()]);
});

test('F16 and BF16 decode to float32', async () => {
  await loadBackend({ log: false });
  // 1.0, -2.0, 0.5 in bf16 are the high halves of their f32 bit patterns; in f16: 0x3c00, 0xc000, 0x3800.
  const mk = (dtype: string, words: number[]) => {
    const header = JSON.stringify({ t: { dtype, shape: [3], data_offsets: [0, 6] } });
    const buf = Buffer.alloc(8 + header.length + 6);
    buf.writeBigUInt64LE(BigInt(header.length), 0);
    buf.write(header, 8);
    words.forEach((w, i) => buf.writeUInt16LE(w, 8 + header.length + 2 * i));
    return new Uint8Array(buf);
  };
  const bf = decodeSafetensors(mk('BF16', [0x3f80, 0xc000, 0x3f00])).tensors.get('t')!;
  const hf = decodeSafetensors(mk('F16', [0x3c00, 0xc000, 0x3800])).tensors.get('t')!;
  assert.deepEqual(Array.from(bf.dataSync()), [1, -2, 0.5]);
  assert.deepEqual(Array.from(hf.dataSync()), [1, -2, 0.5]);
  tf.dispose([bf, hf]);
});

test('truncated and corrupt files name the problem', async () => {
  await loadBackend({ log: false });
  const good = encodeSafetensors({ w: tf.zeros([4, 4]) });
  assert.throws(() => decodeSafetensors(good.subarray(0, good.length - 3), 'm.safetensors'), /m\.safetensors: tensor 'w' ends at byte \d+ but the file has \d+ bytes \(truncated\)/);
  assert.throws(() => decodeSafetensors(good.subarray(0, 5), 'm.safetensors'), /only 5 bytes/);
  const bad = Uint8Array.from(good);
  bad[8] = 0x7b + 1; // break the JSON
  assert.throws(() => decodeSafetensors(bad, 'm.safetensors'), /header \(bytes 8\.\.\d+\) is not valid UTF-8 JSON/);
  assert.throws(() => loadSafetensors('/nonexistent/x.safetensors'), /no such safetensors file/);
});

test('NaN or Inf weights are refused on load, naming the tensor, the element and the byte; a Doge checkpoint with them does not load', async () => {
  await loadBackend({ log: false });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-st-nan-'));
  const file = path.join(dir, 'x.safetensors');
  const good = tf.tensor2d([[1, 2], [3, 4]]);
  const bad = tf.tensor2d([[1, 2], [NaN, Infinity]]);
  saveSafetensors(file, { 'a.ok': good, 'b.bad': bad });
  assert.throws(() => loadSafetensors(file), /x\.safetensors: tensor 'b\.bad' \[2,2\] has 2 non-finite value\(s\); the first is NaN at index \[1,0\] \(data byte 24\)/);
  const lenient = loadSafetensors(file, { allowNonFinite: true });
  assert.ok(Number.isNaN(lenient.tensors.get('b.bad')!.dataSync()[2]));
  for (const t of lenient.tensors.values()) t.dispose();

  // A real checkpoint folder: copy the dense fixture and poison one weight.
  const { DogeForCausalLM } = await import('../src/models/doge');
  const model = DogeForCausalLM.fromPretrained('tests/fixtures/doge/dense');
  const ckpt = path.join(dir, 'ckpt');
  fs.mkdirSync(ckpt);
  fs.copyFileSync('tests/fixtures/doge/dense/config.json', path.join(ckpt, 'config.json'));
  const params = new Map([...model.parameters()].map(([n, v]) => [n, n === 'model.layers.1.mlp.up_proj.weight' ? tf.fill(v.shape, Infinity) : v] as [string, tf.Tensor]));
  saveSafetensors(path.join(ckpt, 'model.safetensors'), params);
  const before = tf.memory().numTensors;
  assert.throws(() => DogeForCausalLM.fromPretrained(ckpt), /tensor 'model\.layers\.1\.mlp\.up_proj\.weight' \[\d+,\d+\] has \d+ non-finite value\(s\); the first is Infinity at index \[0,0\]/);
  assert.equal(tf.memory().numTensors, before, 'nothing leaks when loading fails');
  params.get('model.layers.1.mlp.up_proj.weight')!.dispose();
  model.dispose();
  good.dispose();
  bad.dispose();
});

/** A safetensors buffer from a raw header text and a data section of `dataBytes` zero bytes. */
function rawSafetensors(header: string, dataBytes: number): Uint8Array {
  const h = Buffer.from(header, 'utf8');
  const buf = Buffer.alloc(8 + h.length + dataBytes);
  buf.writeBigUInt64LE(BigInt(h.length), 0);
  h.copy(buf, 8);
  return new Uint8Array(buf);
}

test('headers the reference library rejects are refused, naming the file and the tensor (issue #20 item 10)', async () => {
  await loadBackend({ log: false });
  const t = (offsets: [number, number], dtype: unknown = 'F32', shape = [(offsets[1] - offsets[0]) / 4]) => JSON.stringify({ dtype, shape, data_offsets: offsets });
  const cases: [string, number, RegExp][] = [
    [`{"a":${t([0, 8])},"a":${t([8, 16])}}`, 16, /m\.safetensors: header \(bytes 8\.\.\d+\): key "a" appears twice \(duplicate tensor name\)/],
    [`{"a":${t([0, 8])},"b":${t([4, 12])}}`, 12, /m\.safetensors: tensor 'b' data \[4, 12\) overlaps tensor 'a' \(which ends at 8\)/],
    [`{"a":${t([0, 8])},"b":${t([0, 8])}}`, 8, /m\.safetensors: tensor '[ab]' data \[0, 8\) overlaps/],
    [`{"a":${t([0, 4])},"b":${t([8, 12])}}`, 12, /m\.safetensors: tensor 'b' data starts at 8 but tensor 'a' ends at 4: a gap of 4 bytes/],
    [`{"a":${t([4, 8])}}`, 8, /m\.safetensors: tensor 'a' data starts at 4 but the data section starts at 0/],
    [`{"a":${t([0, 4])}}`, 12, /m\.safetensors: the tensors cover 4 of the 12 data bytes: 8 bytes after the last tensor/],
    [`{"a":${t([0, 4], 'toString')}}`, 4, /m\.safetensors: tensor 'a' has unsupported dtype "toString"/],
    [`{"a":${t([0, 4], ['F32'])}}`, 4, /m\.safetensors: tensor 'a' has unsupported dtype \["F32"\]/],
    [`{"a":${t([0, 4], 'constructor')}}`, 4, /unsupported dtype "constructor"/],
    [`{"a":${t([8, 4], 'F32', [1])}}`, 8, /m\.safetensors: tensor 'a' has invalid data_offsets \[8,4\]/],
    [`{"__metadata__":{"k":{"x":1}},"a":${t([0, 4])}}`, 4, /m\.safetensors: __metadata__\.k must be a string, got an object/],
    [`{"__metadata__":{"k":7},"a":${t([0, 4])}}`, 4, /m\.safetensors: __metadata__\.k must be a string, got 7/],
    [`{"__metadata__":["x"],"a":${t([0, 4])}}`, 4, /m\.safetensors: __metadata__ must be a map of strings, got an array/],
    [`{"__metadata__":{"k":${'['.repeat(200000)}${']'.repeat(200000)}}}`, 0, /m\.safetensors: header \(bytes 8\.\.\d+\): nesting deeper than 3 levels at header byte 22/],
    [`{"a":${t([0, 4]).replace('"dtype":"F32"', '"dtype":"F32","dtype":"I32"')}}`, 4, /key "dtype" appears twice/],
    [`{"a":5}`, 0, /m\.safetensors: tensor 'a' is not an object/],
  ];
  for (const [header, n, re] of cases) assert.throws(() => decodeSafetensors(rawSafetensors(header, n), 'm.safetensors'), re, header.slice(0, 120));
  // what the format allows still loads: a zero-size tensor, keys in any order, escaped names
  const ok = decodeSafetensors(rawSafetensors(`{"b\\"q":${t([4, 8])},"e":${t([4, 4], 'F32', [0, 3])},"a":${t([0, 4])},"__metadata__":{"format":"pt"}}`, 8), 'ok.safetensors');
  assert.deepEqual([...ok.tensors.keys()].sort(), ['a', 'b"q', 'e']);
  assert.deepEqual(ok.tensors.get('e')!.shape, [0, 3]);
  for (const x of ok.tensors.values()) x.dispose();
});
