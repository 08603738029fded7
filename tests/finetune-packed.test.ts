// Packed SFT rows against the finetune fixtures sft-packed and sft-packed-window: packDocuments + sftLoss give the
// reference losses for document-aware packing (positions restart, attention inside each document, first token of a
// document not a target) and for the seed's wrapped packing, with all tokens and with the assistant mask.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBackend } from '../src/runtime/backend';
import { DogeForCausalLM } from '../src/models/doge';
import { countTargets, packDocuments, rowsToSftBatch, sftLoss, type ChatExample, type PackingMode } from '../src/finetune';
import { tf } from '../src/runtime/backend';

const FT = path.join(__dirname, 'fixtures', 'finetune');
const DOGE = path.join(__dirname, 'fixtures', 'doge');

before(async () => { await loadBackend({ log: false }); });

interface PackedFixture {
  model: string;
  input_ids: number[];
  seq_lengths: number[];
  position_ids_document_aware: number[];
  loss_mask?: number[];
  expected: Record<string, { loss: number; n_targets: number }>;
}

function documents(f: PackedFixture, masked: boolean): ChatExample[] {
  const docs: ChatExample[] = [];
  let at = 0;
  for (const n of f.seq_lengths) {
    const ids = f.input_ids.slice(at, at + n);
    docs.push({ inputIds: ids, lossMask: masked ? f.loss_mask!.slice(at, at + n) : ids.map(() => 1) });
    at += n;
  }
  return docs;
}

function packedLoss(model: DogeForCausalLM, docs: ChatExample[], mode: PackingMode, T: number): { loss: number; targets: number; positions: number[] } {
  const rows = packDocuments(docs, T, mode, { padId: 2 });
  assert.equal(rows.length, 1, 'one packed row');
  const batch = rowsToSftBatch(rows, { documentAware: mode === 'document' });
  const loss = sftLoss(model, batch);
  const v = loss.dataSync()[0]!;
  const positions = Array.from(rows[0]!.positionIds);
  tf.dispose([loss, batch.inputIds, batch.lossMask, batch.attentionMask, batch.positionIds, ...(batch.documentIds ? [batch.documentIds] : [])]);
  return { loss: v, targets: countTargets(rows), positions };
}

for (const name of ['sft-packed', 'sft-packed-window']) {
  test(`${name}: document-aware and wrapped packing losses`, () => {
    const f = JSON.parse(fs.readFileSync(path.join(FT, `${name}.json`), 'utf8')) as PackedFixture;
    const model = DogeForCausalLM.fromPretrained(path.join(DOGE, path.basename(f.model)), { routerLayout: 'token' });
    const T = f.input_ids.length;
    const report: string[] = [];
    try {
      const cases: [string, PackingMode, boolean][] = [['document_aware_all_tokens', 'document', false], ['wrapped_all_tokens', 'wrapped', false]];
      if (f.loss_mask) cases.push(['document_aware_masked', 'document', true], ['wrapped_masked', 'wrapped', true]);
      for (const [key, mode, masked] of cases) {
        const want = f.expected[key]!;
        const got = packedLoss(model, documents(f, masked), mode, T);
        const err = Math.abs(got.loss - want.loss);
        report.push(`${key}: ${got.loss.toFixed(6)} vs ${want.loss.toFixed(6)} (err ${err.toExponential(2)}), ${got.targets} targets`);
        assert.equal(got.targets, want.n_targets, `${key}: targets`);
        assert.ok(err <= 1e-4, `${key}: loss ${got.loss} vs ${want.loss}`);
        // best-fit decreasing may reorder documents; positions restart at 0 per document either way
        if (mode === 'document') assert.deepEqual([...got.positions].sort((a, b) => a - b), [...f.position_ids_document_aware].sort((a, b) => a - b));
      }
    } finally {
      model.dispose();
      console.log(`${name}\n  ${report.join('\n  ')}`);
    }
  });
}
