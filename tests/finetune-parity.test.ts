// SFT and DPO math against the finetune fixtures (independent fp32 PyTorch reference on the doge/ checkpoints):
// masked SFT loss, sums, token log-probs, all-tokens loss, step-level token mean under accumulation, gradients;
// DPO sigmoid loss, per-pair log-probs, TRL's metrics, beta / label-smoothing variants, the precomputed-reference
// path, gradients; the first DPO steps through the Trainer (policy = reference); the seed's and current TRL's truncation.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { loadSafetensors } from '../src/io/safetensors';
import { DogeForCausalLM } from '../src/models/doge';
import { completionLogps, dpoLoss, pairSequences, referenceLogps, sftLabels, sftLoss, truncatePair, type DpoPair } from '../src/finetune';

const FT = path.join(__dirname, 'fixtures', 'finetune');
const DOGE = path.join(__dirname, 'fixtures', 'doge');
const TOL = 1e-4;

before(async () => { await loadBackend({ log: false }); });

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const fixture = (name: string): any => JSON.parse(fs.readFileSync(path.join(FT, `${name}.json`), 'utf8'));
const model = (rel: string): DogeForCausalLM => DogeForCausalLM.fromPretrained(path.join(DOGE, path.basename(rel)), { routerLayout: 'token' });

function close(name: string, got: number, want: number, report: string[], tol = TOL): void {
  const err = Math.abs(got - want);
  report.push(`${name}: ${got.toFixed(6)} vs ${want.toFixed(6)} (err ${err.toExponential(2)})`);
  assert.ok(err <= tol, `${name}: ${got} vs ${want} (err ${err})`);
}

/** Gradients vs the fixture: max-abs error <= 1e-4 x the reference tensor's max-abs; returns the worst ratio. */
function checkGrads(grads: Map<string, tf.Tensor>, file: string, report: string[]): void {
  const ref = loadSafetensors(file).tensors;
  let worst = 0;
  let worstName = '';
  let n = 0;
  try {
    for (const [key, r] of ref) {
      if (!key.startsWith('grad.')) continue;
      const name = key.slice(5);
      const g = grads.get(name);
      assert.ok(g, `no gradient for ${name}`);
      assert.deepEqual(g.shape, r.shape, `${name}: shape`);
      const a = g.dataSync();
      const b = r.dataSync();
      let err = 0;
      let scale = 0;
      for (let i = 0; i < b.length; i++) { err = Math.max(err, Math.abs(a[i]! - b[i]!)); scale = Math.max(scale, Math.abs(b[i]!)); }
      const rel = err / (scale || 1);
      if (rel > worst) { worst = rel; worstName = name; }
      assert.ok(err <= 1e-4 * (scale || 1), `grad ${name}: max-abs error ${err} > 1e-4 x ${scale}`);
      n++;
    }
  } finally {
    for (const t of ref.values()) t.dispose();
  }
  assert.ok(n > 0, 'the fixture has gradients');
  report.push(`gradients (${n} tensors): worst relative max-abs error ${worst.toExponential(2)} (${worstName})`);
}

/** Right-pad rows with `pad` (mask 0). */
function padRows(rows: number[][], pad: number): { ids: number[][]; attn: number[][] } {
  const T = Math.max(...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...r, ...new Array(T - r.length).fill(pad)]),
    attn: rows.map((r) => [...r.map(() => 1), ...new Array(T - r.length).fill(0)]),
  };
}

test('sft-masked: assistant-only loss, sums, all-tokens loss, accumulation, gradients', () => {
  const f = fixture('sft-masked');
  const m = model(f.model);
  const report: string[] = [];
  try {
    const e = f.expected;
    const { ids, attn } = padRows(f.input_ids, f.pad_id);
    const mask = padRows(f.loss_mask, 0).ids;
    // the chats rendered in the fixture's id layout give exactly its ids and mask
    f.conversations.forEach((conv: { role: string; content: number[] }[], i: number) => {
      const r: number[] = [];
      const lm: number[] = [];
      const roleId: Record<string, number> = { system: 5, user: 6, assistant: 7 };
      for (const msg of conv) {
        const a = msg.role === 'assistant' ? 1 : 0;
        r.push(3, roleId[msg.role]!, 8, ...msg.content, 4, 8);
        lm.push(0, 0, 0, ...msg.content.map(() => a), a, a);
      }
      assert.deepEqual(r, f.input_ids[i]);
      assert.deepEqual(lm, f.loss_mask[i]);
    });
    const { numTargets } = sftLabels(ids, mask, attn);
    assert.equal(numTargets, e.n_targets);
    const loss = sftLoss(m, { inputIds: ids, lossMask: mask, attentionMask: attn });
    close('loss', loss.dataSync()[0]!, e.loss, report);
    loss.dispose();
    // per sequence sums (each row alone, divisor 1 = the summed NLL)
    f.input_ids.forEach((row: number[], i: number) => {
      const s = sftLoss(m, { inputIds: [row], lossMask: [f.loss_mask[i]] }, 1);
      close(`per_seq_nll[${i}]`, s.dataSync()[0]!, e.per_seq_nll[i], report);
      s.dispose();
    });
    const sum = sftLoss(m, { inputIds: ids, lossMask: mask, attentionMask: attn }, 1);
    close('nll_sum', sum.dataSync()[0]!, e.nll_sum, report, 1e-3);
    sum.dispose();
    // row-0 token log-probs: completionLogps with every position t >= 1 scored, one token at a time
    const row0 = f.input_ids[0] as number[];
    const per = e.token_logprobs_row0 as number[];
    let worst = 0;
    for (let t = 1; t < row0.length; t++) {
      const lp = completionLogps(m, [{ inputIds: row0.slice(0, t + 1), completionMask: row0.slice(0, t + 1).map((_, k) => (k === t ? 1 : 0)) }], { padId: 2 });
      worst = Math.max(worst, Math.abs(lp.logps.dataSync()[0]! - per[t - 1]!));
      lp.logps.dispose();
    }
    report.push(`token_logprobs_row0: max err ${worst.toExponential(2)}`);
    assert.ok(worst <= TOL);
    // every real token a target (the seed's text-column SFT)
    const all = sftLoss(m, { inputIds: ids, lossMask: attn, attentionMask: attn });
    close('loss_all_tokens', all.dataSync()[0]!, e.loss_all_tokens, report);
    all.dispose();
    assert.equal(sftLabels(ids, attn, attn).numTargets, e.n_targets_all_tokens);
    // accumulation: micro-batches [0] and [1, 2], each divided by the step's target count, summed
    const micro = e.accumulation.micro_batches as number[][];
    const pick = (idx: number[]) => {
      const p = padRows(idx.map((i) => f.input_ids[i]), f.pad_id);
      return { inputIds: p.ids, attentionMask: p.attn, lossMask: padRows(idx.map((i) => f.loss_mask[i]), 0).ids };
    };
    let stepMean = 0;
    let meanOfMeans = 0;
    for (const idx of micro) {
      const b = pick(idx);
      const a = sftLoss(m, b, e.n_targets);
      const own = sftLoss(m, b);
      stepMean += a.dataSync()[0]!;
      meanOfMeans += own.dataSync()[0]! / micro.length;
      a.dispose();
      own.dispose();
    }
    close('accumulation.step_token_mean', stepMean, e.accumulation.step_token_mean, report);
    close('accumulation.mean_of_micro_batch_means', meanOfMeans, e.accumulation.mean_of_micro_batch_means, report);
    // gradients of the batch loss
    const before = tf.memory().numTensors;
    const { value, grads } = m.variableGrads(() => sftLoss(m, { inputIds: ids, lossMask: mask, attentionMask: attn }));
    value.dispose();
    checkGrads(grads, path.join(FT, 'sft-masked.safetensors'), report);
    for (const g of grads.values()) g.dispose();
    assert.equal(tf.memory().numTensors, before, 'no tensor leaked by sftLoss under variableGrads');
  } finally {
    m.dispose();
    console.log('sft-masked\n  ' + report.join('\n  '));
  }
});

function fixturePairs(f: { pairs: DpoPair[] }): DpoPair[] {
  return f.pairs.map((p) => ({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected }));
}

function checkMetrics(got: Record<string, number>, want: Record<string, number>, report: string[]): void {
  for (const [k, v] of Object.entries(want)) {
    assert.ok(k in got, `metric ${k} missing`);
    close(`metrics ${k}`, got[k]!, v, report);
  }
}

test('dpo-sigmoid: per-pair log-probs, loss, TRL metrics, variants, precomputed reference, gradients', () => {
  const f = fixture('dpo-sigmoid');
  const policy = model(f.policy);
  const reference = model(f.reference);
  const report: string[] = [];
  try {
    const pairs = fixturePairs(f);
    const pp = f.expected.per_pair;
    const seqs = pairSequences(pairs);
    assert.deepEqual(seqs.slice(0, 3).map((s) => s.inputIds), pp.chosen_input_ids);
    assert.deepEqual(seqs.slice(0, 3).map((s) => s.completionMask), pp.chosen_completion_mask);
    assert.deepEqual(seqs.slice(3).map((s) => s.inputIds), pp.rejected_input_ids);
    const lp = completionLogps(policy, seqs, { padId: f.pad_id });
    const v = Array.from(lp.logps.dataSync());
    lp.logps.dispose();
    v.slice(0, 3).forEach((x, i) => close(`policy_chosen_logps[${i}]`, x, pp.policy_chosen_logps[i], report));
    v.slice(3).forEach((x, i) => close(`policy_rejected_logps[${i}]`, x, pp.policy_rejected_logps[i], report));
    const ref = referenceLogps(reference, pairs, { padId: f.pad_id, batchSize: 2 });
    ref.chosen.forEach((x, i) => close(`ref_chosen_logps[${i}]`, x, pp.ref_chosen_logps[i], report));
    ref.rejected.forEach((x, i) => close(`ref_rejected_logps[${i}]`, x, pp.ref_rejected_logps[i], report));

    const opts = { beta: f.beta, labelSmoothing: f.label_smoothing, padId: f.pad_id };
    const a = dpoLoss(policy, reference, pairs, opts);
    close('loss (tensor)', a.loss.dataSync()[0]!, f.expected.metrics.loss, report);
    a.loss.dispose();
    checkMetrics(a.metrics, f.expected.metrics, report);
    // the precomputed path gives the same numbers
    const b = dpoLoss(policy, null, pairs, { ...opts, referenceLogps: ref });
    close('loss (precomputed reference)', b.loss.dataSync()[0]!, f.expected.metrics.loss, report);
    b.loss.dispose();
    for (const [key, want] of Object.entries(f.expected.loss_variants_from_logps as Record<string, number>)) {
      const [, beta, ls] = /beta=([\d.]+),label_smoothing=([\d.]+)/.exec(key)!.map(Number);
      const c = dpoLoss(policy, null, pairs, { beta: beta!, labelSmoothing: ls!, padId: f.pad_id, referenceLogps: ref });
      close(`loss ${key}`, c.loss.dataSync()[0]!, want, report);
      close(`metrics.loss ${key}`, c.metrics.loss, want, report);
      c.loss.dispose();
    }
    const before = tf.memory().numTensors;
    const { value, grads } = policy.variableGrads(() => dpoLoss(policy, reference, pairs, opts).loss);
    value.dispose();
    checkGrads(grads, path.join(FT, 'dpo-sigmoid.safetensors'), report);
    for (const g of grads.values()) g.dispose();
    assert.equal(tf.memory().numTensors, before, 'no tensor leaked by dpoLoss under variableGrads');
    assert.throws(() => dpoLoss(policy, reference, pairs, { ...opts, lossType: 'robust' as 'sigmoid' }), /loss_type 'robust' is not supported \(supported: sigmoid, hinge, ipo\)/);
  } finally {
    policy.dispose();
    reference.dispose();
    console.log('dpo-sigmoid\n  ' + report.join('\n  '));
  }
});

test('dpo-init: policy = reference gives ln 2, zero rewards, accuracy 0 (strict)', () => {
  const f = fixture('dpo-init');
  const policy = model(f.policy);
  const reference = model(f.reference);
  const report: string[] = [];
  try {
    const r = dpoLoss(policy, reference, fixturePairs(f), { beta: f.beta, labelSmoothing: f.label_smoothing, padId: f.pad_id });
    close('loss', r.loss.dataSync()[0]!, Math.log(2), report);
    r.loss.dispose();
    checkMetrics(r.metrics, f.expected.metrics, report);
  } finally {
    policy.dispose();
    reference.dispose();
    console.log('dpo-init\n  ' + report.join('\n  '));
  }
});

test('dpo-truncation: the seed rule and current TRL (max_length only, prompt-only pairs dropped)', () => {
  const f = fixture('dpo-truncation');
  const policy = model(f.policy);
  const reference = model(f.reference);
  const report: string[] = [];
  try {
    const t = f.truncation;
    const cut = (tr: { max_length: number | null; max_prompt_length: number | null; max_completion_length: number | null }) =>
      (f.pairs as DpoPair[]).map((p) => truncatePair(p.prompt, p.chosen, p.rejected, { maxLength: tr.max_length, maxPromptLength: tr.max_prompt_length, maxCompletionLength: tr.max_completion_length }));
    const seed = cut(t) as DpoPair[];
    const seqs = pairSequences(seed);
    const pp = f.expected.per_pair;
    assert.deepEqual(seqs.slice(0, seed.length).map((s) => s.inputIds), pp.chosen_input_ids);
    assert.deepEqual(seqs.slice(0, seed.length).map((s) => s.completionMask), pp.chosen_completion_mask);
    assert.deepEqual(seqs.slice(seed.length).map((s) => s.inputIds), pp.rejected_input_ids);
    assert.deepEqual(seqs.slice(seed.length).map((s) => s.completionMask), pp.rejected_completion_mask);
    const r = dpoLoss(policy, reference, seed, { beta: f.beta, padId: f.pad_id });
    r.loss.dispose();
    checkMetrics(r.metrics, f.expected.metrics, report);
    const alt = f.expected.alternative_truncation;
    const kept = cut(alt.truncation);
    assert.deepEqual(kept.map((p, i) => (p ? i : -1)).filter((i) => i >= 0), alt.kept_pairs);
    const keptPairs = kept.filter((p): p is DpoPair => p !== null);
    const s2 = pairSequences(keptPairs);
    assert.deepEqual(s2.slice(0, keptPairs.length).map((s) => s.inputIds), alt.chosen_input_ids);
    assert.deepEqual(s2.slice(keptPairs.length).map((s) => s.inputIds), alt.rejected_input_ids);
    const r2 = dpoLoss(policy, reference, keptPairs, { beta: f.beta, padId: f.pad_id });
    r2.loss.dispose();
    checkMetrics(r2.metrics, alt.metrics, report);
    assert.throws(() => truncatePair([1], [2], [3], { maxLength: 0 }), /maxLength must be a positive integer/);
  } finally {
    policy.dispose();
    reference.dispose();
    console.log('dpo-truncation\n  ' + report.join('\n  '));
  }
});

test('DPO through the Trainer (the one optimizer step): from policy = reference the first step is ln 2, the second is below it on the same pairs', async () => {
  const { Trainer, TRAINING_DEFAULTS } = await import('../src/train');
  const { dpoLossHook } = await import('../src/finetune');
  const f = fixture('dpo-init');
  const policy = model(f.policy);
  const reference = model(f.reference);
  const pairs = fixturePairs(f);
  const hook = dpoLossHook(policy, { model: reference }, pairs, { beta: 0.5, labelSmoothing: 0, padId: 2, evalBatchSize: 8 });
  const trainer = new Trainer({
    model: policy, seqLen: 0, writePlot: false, log: () => {}, lossHook: hook,
    args: { ...TRAINING_DEFAULTS, output_dir: fs.mkdtempSync(path.join(os.tmpdir(), 'wm-dpo-step-')), max_steps: 2, per_device_train_batch_size: pairs.length, learning_rate: 1e-3, weight_decay: 0, adam_beta2: 0.999, warmup_steps: 0, lr_scheduler_type: 'constant', max_grad_norm: 1 },
    trainLoader: () => ({ next: () => ({ pairs }), position: 0 }),
  });
  try {
    const s1 = trainer.trainStep();
    assert.ok(Math.abs(s1.loss - Math.LN2) < 1e-6, 'the first step is evaluated at policy = reference');
    assert.ok(s1.gradNorm > 0);
    // (the first step creates the reference's inference weight cache; after it the count must stay flat)
    const before = tf.memory().numTensors;
    const s2 = trainer.trainStep();
    assert.equal(tf.memory().numTensors, before, 'no tensor leaked by a DPO step');
    assert.ok(s2.loss < Math.LN2 && s2.extra!['rewards/margins']! > 0, `loss ${s2.loss}, margin ${s2.extra!['rewards/margins']}`);
    console.log(`DPO step: loss ${s1.loss.toFixed(6)} -> ${s2.loss.toFixed(6)}, rewards/accuracies ${s2.extra!['rewards/accuracies']}`);
  } finally {
    trainer.dispose();
    policy.dispose();
    reference.dispose();
  }
});
