// TRL's other DPO loss types next to sigmoid, against values computed by hand here: stub models whose logits are
// one fixed vector at every position, so log p(token v) = w[v] - logsumexp(w) and every sum is known in closed form.
//   hinge: relu(1 - beta Delta)        ipo: (Delta - 1/(2 beta))^2 with token-averaged log-probs (TRL's ipo rule)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/runtime/backend';
import type { DogeForCausalLM } from '../src/models/doge/model';
import { dpoLoss, dpoPairLossValue, loadFinetuneConfig, parseFinetuneConfig, referenceLogps, type DpoPair } from '../src/finetune';

const V = 4;
/** A "model" whose logits are w at every position of every row. */
function constantModel(w: number[]): DogeForCausalLM {
  const stub = {
    config: { vocab_size: V },
    forward: ({ inputIds }: { inputIds: tf.Tensor }) => {
      const [n, t] = inputIds.shape as [number, number];
      return { logits: tf.tile(tf.reshape(tf.tensor1d(w), [1, 1, V]), [n, t, 1]) };
    },
  };
  return stub as unknown as DogeForCausalLM;
}
const logp = (w: number[], v: number): number => w[v]! - Math.log(w.reduce((a, x) => a + Math.exp(x), 0));
const seqLogp = (w: number[], ids: number[], mean: boolean): number => ids.reduce((a, v) => a + logp(w, v), 0) / (mean ? ids.length : 1);

const wPolicy = [0, 1, 2, 3];
const wRef = [1, 0, 0.5, 1];
const pairs: DpoPair[] = [
  { prompt: [0, 1], chosen: [3, 3], rejected: [1, 2, 0] },
  { prompt: [2], chosen: [0], rejected: [3, 1] },
];
/** Delta per pair by hand (summed or averaged log-probs). */
const deltas = (mean: boolean): number[] => pairs.map((p) =>
  (seqLogp(wPolicy, p.chosen, mean) - seqLogp(wRef, p.chosen, mean)) - (seqLogp(wPolicy, p.rejected, mean) - seqLogp(wRef, p.rejected, mean)));

test('dpo loss types: sigmoid, hinge and ipo equal the hand-computed formulas; rewards use ipo\'s averaged log-probs', async () => {
  await loadBackend({ backend: 'cpu', log: false });
  const policy = constantModel(wPolicy);
  const reference = constantModel(wRef);
  const beta = 0.5;
  const sum = deltas(false);
  const avg = deltas(true);
  // the per-pair formulas on numbers worked out by hand
  assert.ok(Math.abs(dpoPairLossValue(2, 'hinge', 0.25) - 0.5) < 1e-12);
  assert.ok(Math.abs(dpoPairLossValue(2, 'hinge', 1) - 0) < 1e-12);
  assert.ok(Math.abs(dpoPairLossValue(3, 'ipo', 0.5) - 4) < 1e-12); // (3 - 1)^2
  assert.ok(Math.abs(dpoPairLossValue(0, 'sigmoid', 0.5) - Math.LN2) < 1e-12);
  const want = {
    sigmoid: sum.map((d) => Math.log1p(Math.exp(-beta * d))),
    hinge: sum.map((d) => Math.max(0, 1 - beta * d)),
    ipo: avg.map((d) => (d - 1 / (2 * beta)) ** 2),
  };
  assert.ok(want.hinge.some((x) => x > 0) && want.hinge.some((x) => x === 0), 'the example covers both sides of the hinge');
  const ref = referenceLogps(reference, pairs, { padId: 0 });
  for (const lossType of ['sigmoid', 'hinge', 'ipo'] as const) {
    const expected = want[lossType].reduce((a, b) => a + b, 0) / pairs.length;
    for (const [how, r] of [
      ['reference model', dpoLoss(policy, reference, pairs, { beta, padId: 0, lossType })],
      ['precomputed (summed) reference', dpoLoss(policy, null, pairs, { beta, padId: 0, lossType, referenceLogps: ref })],
    ] as const) {
      const got = r.loss.dataSync()[0]!;
      r.loss.dispose();
      assert.ok(Math.abs(got - expected) < 1e-5, `${lossType} (${how}): loss ${got} vs hand ${expected}`);
      assert.ok(Math.abs(r.metrics.loss - expected) < 1e-5, `${lossType} (${how}): logged loss ${r.metrics.loss} vs ${expected}`);
      const mean = lossType === 'ipo';
      const rc = pairs.map((p) => beta * (seqLogp(wPolicy, p.chosen, mean) - seqLogp(wRef, p.chosen, mean)));
      const rr = pairs.map((p) => beta * (seqLogp(wPolicy, p.rejected, mean) - seqLogp(wRef, p.rejected, mean)));
      const m = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      assert.ok(Math.abs(r.metrics['rewards/chosen'] - m(rc)) < 1e-5, `${lossType}: rewards/chosen`);
      assert.ok(Math.abs(r.metrics['rewards/margins'] - m(rc.map((c, i) => c - rr[i]!))) < 1e-5, `${lossType}: rewards/margins`);
      assert.ok(Math.abs(r.metrics['logps/rejected'] - m(pairs.map((p) => seqLogp(wPolicy, p.rejected, mean)))) < 1e-5, `${lossType}: logps/rejected`);
    }
  }
  // hinge and ipo are different numbers from sigmoid on the same pairs (the option is really used)
  assert.notEqual(want.hinge[0], want.sigmoid[0]);
  assert.throws(() => dpoLoss(policy, reference, pairs, { beta, padId: 0, lossType: 'ipo', labelSmoothing: 0.1 }), /label_smoothing \(0.1\) applies to loss_type sigmoid only, not 'ipo'/);
});

test('dpo loss types: loss_type in the recipe is checked; label_smoothing with hinge/ipo is refused', () => {
  const base = { model: { init_from: 'x' }, data: { train: 'embedded:prefs' }, training: { output_dir: 'runs/x' } };
  assert.equal(parseFinetuneConfig({ ...base, dpo: { loss_type: 'ipo' } }, 'dpo').dpo.loss_type, 'ipo');
  assert.equal(parseFinetuneConfig({ ...base, dpo: { loss_type: 'hinge' } }, 'dpo').dpo.loss_type, 'hinge');
  assert.throws(() => parseFinetuneConfig({ ...base, dpo: { loss_type: 'robust' } }, 'dpo'), /'dpo.loss_type' 'robust' is not supported \(supported: sigmoid, hinge, ipo\)/);
  assert.throws(() => parseFinetuneConfig({ ...base, dpo: { loss_type: 'hinge', label_smoothing: 0.1 } }, 'dpo'), /'dpo.label_smoothing' applies to loss_type sigmoid only, not 'hinge'/);
  // the CLI's --loss-type override (wm dpo --config doge-tiny-dpo --loss-type ipo)
  assert.equal(loadFinetuneConfig('configs/doge-tiny-dpo.yaml', 'dpo', { 'loss-type': 'ipo' }).dpo.loss_type, 'ipo');
  assert.equal(loadFinetuneConfig('configs/doge-tiny-dpo.yaml', 'dpo', {}).dpo.loss_type, 'sigmoid');
  assert.throws(() => loadFinetuneConfig('configs/doge-tiny-dpo.yaml', 'dpo', { 'loss-type': 'robust' }), /doge-tiny-dpo.yaml: 'dpo.loss_type' 'robust' is not supported/);
});

test('dpo rpo_alpha: adds alpha times the chosen completions\' token-mean NLL to every loss type; 0 is plain DPO', async () => {
  await loadBackend({ backend: 'cpu', log: false });
  const policy = constantModel(wPolicy);
  const reference = constantModel(wRef);
  const beta = 0.5;
  const alpha = 0.7;
  // by hand: -(sum of chosen token log-probs) / (number of chosen tokens), summed log-probs for every loss type
  const nll = -pairs.reduce((a, p) => a + seqLogp(wPolicy, p.chosen, false), 0) / pairs.reduce((n, p) => n + p.chosen.length, 0);
  assert.ok(nll > 0.1, `the example's NLL is not tiny: ${nll}`);
  for (const lossType of ['sigmoid', 'hinge', 'ipo'] as const) {
    const plain = dpoLoss(policy, reference, pairs, { beta, padId: 0, lossType });
    const zero = dpoLoss(policy, reference, pairs, { beta, padId: 0, lossType, rpoAlpha: 0 });
    const rpo = dpoLoss(policy, reference, pairs, { beta, padId: 0, lossType, rpoAlpha: alpha });
    const [p, z, r] = [plain, zero, rpo].map((x) => { const v = x.loss.dataSync()[0]!; x.loss.dispose(); return v; });
    assert.ok(Math.abs(z - p) < 1e-7, `${lossType}: rpoAlpha 0 = plain DPO`);
    assert.ok(Math.abs(r - (p + alpha * nll)) < 1e-5, `${lossType}: ${r} vs ${p} + ${alpha} * ${nll}`);
    assert.ok(Math.abs(rpo.metrics.loss - (plain.metrics.loss + alpha * nll)) < 1e-5, `${lossType}: the logged loss carries the RPO term`);
    assert.equal(rpo.metrics['rewards/margins'], plain.metrics['rewards/margins'], 'rewards are unchanged');
  }
  // with gradient accumulation (numPairsInStep = 2 micro-batches' pairs) the term is weighted like its pairs
  const half = dpoLoss(policy, reference, pairs, { beta, padId: 0, rpoAlpha: alpha, numPairsInStep: 2 * pairs.length });
  const full = dpoLoss(policy, reference, pairs, { beta, padId: 0, rpoAlpha: alpha });
  const [h, f] = [half, full].map((x) => { const v = x.loss.dataSync()[0]!; x.loss.dispose(); return v; });
  assert.ok(Math.abs(h - f / 2) < 1e-6, `accumulated: ${h} vs ${f} / 2`);
  assert.throws(() => dpoLoss(policy, reference, pairs, { beta, padId: 0, rpoAlpha: -1 }), /rpo_alpha must be >= 0, got -1/);
  const base = { model: { init_from: 'x' }, data: { train: 'embedded:prefs' }, training: { output_dir: 'runs/x' } };
  assert.equal(parseFinetuneConfig({ ...base, dpo: { rpo_alpha: 0.5 } }, 'dpo').dpo.rpo_alpha, 0.5);
  assert.equal(parseFinetuneConfig(base, 'dpo').dpo.rpo_alpha, 0);
  assert.throws(() => parseFinetuneConfig({ ...base, dpo: { rpo_alpha: -0.1 } }, 'dpo'), /'dpo.rpo_alpha' must be a number >= 0, got -0.1/);
});
