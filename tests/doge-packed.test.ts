// Packed sequences: `positionIds` restarting per document + `documentIds` (block-diagonal causal attention, no target
// across a document boundary) equal the documents run one by one (fixtures finetune/sft-packed{,-window}: an
// independent fp32 PyTorch implementation), and the plain causal row ("wrapped") is unchanged.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeForCausalLM } from '../src/models/doge';

const ROOT = path.join(__dirname, 'fixtures', 'finetune');

before(async () => { await loadBackend({ log: false }); });

interface PackedCase {
  model: string;
  input_ids: number[];
  seq_lengths: number[];
  position_ids_document_aware: number[];
  loss_mask?: number[];
  expected: Record<string, { loss: number; n_targets: number }>;
}

function readCase(name: string): PackedCase {
  return JSON.parse(fs.readFileSync(path.join(ROOT, `${name}.json`), 'utf8')) as PackedCase;
}

/** Document id of every token from the document lengths. */
function documentIdsOf(seqLengths: number[]): number[] {
  const out: number[] = [];
  seqLengths.forEach((n, d) => { for (let i = 0; i < n; i++) out.push(d); });
  return out;
}

/** labels = input ids where the loss mask is 1 (all tokens without a mask), else -100. */
function labelsOf(ids: number[], lossMask?: number[]): number[] {
  return ids.map((v, i) => (lossMask && lossMask[i] === 0 ? -100 : v));
}

function lossOf(model: DogeForCausalLM, input: Parameters<DogeForCausalLM['forward']>[0]): number {
  const out = model.forward(input);
  const v = out.loss!.dataSync()[0];
  tf.dispose(out as unknown as tf.TensorContainer);
  return v;
}

/** Sum of the NLL and the target count of each document run on its own (positions 0..n-1). */
function separateLoss(model: DogeForCausalLM, c: PackedCase, lossMask?: number[]): { loss: number; n: number } {
  let sum = 0, n = 0, start = 0;
  for (const len of c.seq_lengths) {
    const ids = c.input_ids.slice(start, start + len);
    const labels = labelsOf(ids, lossMask?.slice(start, start + len));
    const count = labels.slice(1).filter((v) => v !== -100).length;
    // numItemsInBatch = 1 gives the NLL sum
    sum += lossOf(model, { inputIds: [ids], labels: [labels], numItemsInBatch: 1 });
    n += count;
    start += len;
  }
  return { loss: sum / n, n };
}

for (const [name, variants] of [['sft-packed', ['all_tokens', 'masked']], ['sft-packed-window', ['all_tokens']]] as const) {
  test(`${name}: document-aware packed loss == documents run separately == fixture; wrapped == fixture`, () => {
    const c = readCase(name);
    const model = DogeForCausalLM.fromPretrained(path.join(ROOT, c.model), { routerLayout: 'token' });
    try {
      const ids = [c.input_ids];
      const positionIds = [c.position_ids_document_aware];
      const documentIds = [documentIdsOf(c.seq_lengths)];
      for (const v of variants) {
        const mask = v === 'masked' ? c.loss_mask : undefined;
        const labels = [labelsOf(c.input_ids, mask)];
        const packed = lossOf(model, { inputIds: ids, labels, positionIds, documentIds });
        const sep = separateLoss(model, c, mask);
        const want = c.expected[`document_aware_${v}`];
        console.log(`${name} document_aware_${v}: packed ${packed} separate ${sep.loss} fixture ${want.loss} `
          + `(err ${Math.abs(packed - want.loss).toExponential(2)}, packed-separate ${Math.abs(packed - sep.loss).toExponential(2)})`);
        assert.equal(sep.n, want.n_targets, 'target count');
        assert.ok(Math.abs(packed - want.loss) <= 1e-4, `packed ${packed} vs fixture ${want.loss}`);
        assert.ok(Math.abs(packed - sep.loss) <= 1e-5, `packed ${packed} vs separate ${sep.loss}`);

        const wrapped = lossOf(model, { inputIds: ids, labels });
        const w = c.expected[`wrapped_${v}`];
        console.log(`${name} wrapped_${v}: ${wrapped} fixture ${w.loss} (err ${Math.abs(wrapped - w.loss).toExponential(2)})`);
        assert.ok(Math.abs(wrapped - w.loss) <= 1e-4, `wrapped ${wrapped} vs fixture ${w.loss}`);
        // RoPE is relative: inside a block-diagonal mask, shifted positions give the same scores (within float error)
        const docsOnly = lossOf(model, { inputIds: ids, labels, documentIds });
        assert.ok(Math.abs(docsOnly - packed) <= 1e-4, `documentIds without restarted positions ${docsOnly} vs ${packed}`);
        // restarted positions without document ids leave the cross-document attention: a different loss
        const posOnly = lossOf(model, { inputIds: ids, labels, positionIds });
        assert.ok(Math.abs(posOnly - packed) > 1e-3, `positionIds alone ${posOnly} should differ from ${packed}`);
      }
    } finally {
      model.dispose();
    }
  });
}

test('documentIds: one document everywhere == no documentIds (bit-exact); shape errors name the tensor', () => {
  const c = readCase('sft-packed-window');
  const model = DogeForCausalLM.fromPretrained(path.join(ROOT, c.model), { routerLayout: 'token' });
  try {
    const ids = [c.input_ids.slice(0, 12), c.input_ids.slice(12, 24)];
    const a = model.forward({ inputIds: ids });
    const b = model.forward({ inputIds: ids, documentIds: ids.map((r) => r.map(() => 7)) });
    assert.deepEqual(Array.from(a.logits.dataSync()), Array.from(b.logits.dataSync()));
    // a second document starting at t = 6 in row 1 leaves row 0 and the first 6 positions of row 1 unchanged
    const docs = [ids[0].map(() => 0), ids[1].map((_, t) => (t < 6 ? 0 : 1))];
    const d = model.forward({ inputIds: ids, documentIds: docs });
    const V = model.config.vocab_size;
    const la = a.logits.dataSync(), ld = d.logits.dataSync();
    assert.deepEqual(Array.from(ld.slice(0, 18 * V)), Array.from(la.slice(0, 18 * V)));
    assert.notDeepEqual(Array.from(ld.slice(18 * V)), Array.from(la.slice(18 * V)));
    tf.dispose([a, b, d] as unknown as tf.TensorContainer);
    assert.throws(() => model.forward({ inputIds: ids, documentIds: [[0, 0]] }), /documentIds has shape \[1,2\], expected \[2, 12\]/);
  } finally {
    model.dispose();
  }
});
