// Evaluation math against the reference fixtures (tests/fixtures/finetune, produced by an fp32 PyTorch
// implementation of lighteval's scoring on the doge/ checkpoints): continuation log-probs with left truncation,
// multiple-choice decisions, single-token scoring, corpus perplexity, greedy decoding until a stop id.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeForCausalLM } from '../src/models/doge';
import { greedyUntil, mcDecisions, perplexity, scoreContinuations, singleTokenScores, MC_METRICS } from '../src/eval';

const FX = path.join(__dirname, 'fixtures', 'finetune');
const DOGE = path.join(__dirname, 'fixtures', 'doge');
const TOL = 1e-4;

before(async () => { await loadBackend({ log: false }); });

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function fixture(name: string): any {
  return JSON.parse(fs.readFileSync(path.join(FX, `${name}.json`), 'utf8'));
}
function load(rel: string, routerLayout: 'token' | 'hf'): DogeForCausalLM {
  return DogeForCausalLM.fromPretrained(path.join(DOGE, path.basename(rel)), { routerLayout });
}

type McChoice = { ids: number[]; chars: number; leading_space: boolean };
type McQuestion = {
  context: number[]; choices: McChoice[]; gold: number | number[]; max_length: number | null;
  expected: {
    per_choice: { token_logprobs: number[]; sum: number; greedy: boolean; truncated: number }[];
    predictions: Record<string, number>; correct: Record<string, number>; decision_margins: Record<string, number>;
  };
};

for (const shareContext of [true, false]) test(`mc-score: continuation log-probs (batched, left-truncated), greedy flags, decisions, margins, accuracy (shareContext ${shareContext})`, () => {
  const fx = fixture('mc-score');
  const model = load(fx.model, fx.router_layout);
  try {
    let maxErr = 0;
    let marginErr = 0;
    const acc: Record<string, number> = {};
    // all questions with the same max_length in one call, so choices of different questions share batches
    const questions = fx.questions as McQuestion[];
    for (const maxLength of [...new Set(questions.map((q) => q.max_length))]) {
      const qs = questions.filter((q) => q.max_length === maxLength);
      const requests = qs.flatMap((q) => q.choices.map((c) => ({ context: q.context, continuation: c.ids })));
      const scores = scoreContinuations(model, requests, { maxLength: maxLength ?? 2048, batchSize: 3, shareContext });
      let k = 0;
      for (const q of qs) {
        const mine = q.choices.map(() => scores[k++]);
        mine.forEach((s, i) => {
          const e = q.expected.per_choice[i];
          assert.equal(s.tokenLogprobs.length, e.token_logprobs.length);
          s.tokenLogprobs.forEach((v, j) => { maxErr = Math.max(maxErr, Math.abs(v - e.token_logprobs[j])); });
          maxErr = Math.max(maxErr, Math.abs(s.sum - e.sum));
          assert.equal(s.greedy, e.greedy, 'greedy flag');
          assert.equal(s.truncated, e.truncated, 'truncated count');
        });
        const d = mcDecisions(mine.map((s) => s.sum), q.choices.map((c) => ({ chars: c.chars, leadingSpace: c.leading_space })), q.choices.map((c) => c.ids.length), q.gold);
        for (const m of MC_METRICS) {
          assert.equal(d.predictions[m], q.expected.predictions[m], `prediction ${m}`);
          assert.equal(d.correct[m], q.expected.correct[m], `correct ${m}`);
          marginErr = Math.max(marginErr, Math.abs(d.margins[m] - q.expected.decision_margins[m]));
          acc[m] = (acc[m] ?? 0) + d.correct[m] / questions.length;
        }
      }
    }
    for (const m of MC_METRICS) assert.ok(Math.abs(acc[m] - fx.expected.accuracy[m]) < 1e-9, `accuracy ${m}: ${acc[m]}`);
    console.log(`# mc-score (shareContext ${shareContext}): max |logprob err| ${maxErr.toExponential(2)}, max |margin err| ${marginErr.toExponential(2)}`);
    assert.ok(maxErr <= TOL, `log-prob error ${maxErr}`);
    assert.ok(marginErr <= TOL, `margin error ${marginErr}`);
    assert.ok(questions.some((q) => q.expected.per_choice.some((c) => c.truncated > 0)), 'the fixture covers truncation');
  } finally {
    model.dispose();
  }
});

test('mc-score: one request at a time equals the batched result; live tensors do not grow', () => {
  const fx = fixture('mc-score');
  const model = load(fx.model, fx.router_layout);
  try {
    const q = (fx.questions as McQuestion[])[0];
    const requests = q.choices.map((c) => ({ context: q.context, continuation: c.ids }));
    // warm-up: the model caches transposed weights and rotary tables on first use
    scoreContinuations(model, requests, { batchSize: 4 });
    const single = requests.map((r) => scoreContinuations(model, [r], { batchSize: 1 })[0]);
    const before = tf.memory().numTensors;
    const batched = scoreContinuations(model, requests, { batchSize: 4 });
    for (const r of requests) scoreContinuations(model, [r], { batchSize: 1 });
    assert.equal(tf.memory().numTensors, before);
    let err = 0;
    batched.forEach((b, i) => { err = Math.max(err, Math.abs(b.sum - single[i].sum)); });
    console.log(`# batched vs single: max |sum err| ${err.toExponential(2)}`);
    assert.ok(err <= 1e-5);
  } finally {
    model.dispose();
  }
});

test('mc-score single_token: log-softmax at the last context position, left-truncated contexts', () => {
  const fx = fixture('mc-score');
  const model = load(fx.model, fx.router_layout);
  try {
    let maxErr = 0;
    for (const c of fx.single_token as { context: number[]; choice_ids: number[]; gold: number; max_length: number | null; expected: { logprobs: number[]; prediction: number; correct: number } }[]) {
      const lp = singleTokenScores(model, c.context, c.choice_ids, { maxLength: c.max_length ?? 2048 });
      lp.forEach((v, i) => { maxErr = Math.max(maxErr, Math.abs(v - c.expected.logprobs[i])); });
      const pred = lp.indexOf(Math.max(...lp));
      assert.equal(pred, c.expected.prediction);
      assert.equal(pred === c.gold ? 1 : 0, c.expected.correct);
    }
    console.log(`# single_token: max |logprob err| ${maxErr.toExponential(2)}`);
    assert.ok(maxErr <= TOL);
  } finally {
    model.dispose();
  }
});

test('perplexity: pooled NLL of blocks (first token context) and with an EOS prefix', () => {
  const fx = fixture('perplexity');
  const model = load(fx.model, fx.router_layout);
  try {
    const report: string[] = [];
    for (const [key, opts] of [['blocks', {}], ['with_prefix', { prefixId: fx.prefix_id as number }]] as const) {
      const e = fx.expected[key];
      const r = perplexity(model, fx.documents, { ...opts, batchSize: 2 });
      assert.equal(r.nTokens, e.n_tokens);
      assert.deepEqual(r.perDocument.map((d) => d.tokens), e.per_doc_tokens);
      const docErr = Math.max(...r.perDocument.map((d, i) => Math.abs(d.nll - e.per_doc_nll[i])));
      const nllErr = Math.abs(r.nllSum - e.nll_sum);
      const pplRel = Math.abs(r.ppl - e.ppl) / e.ppl;
      report.push(`${key}: nll_sum err ${nllErr.toExponential(2)}, per-doc err ${docErr.toExponential(2)}, ppl ${r.ppl.toFixed(4)} vs ${e.ppl.toFixed(4)} (rel ${pplRel.toExponential(2)})`);
      assert.ok(nllErr <= TOL && docErr <= TOL, `${key}: nll errors ${nllErr}, ${docErr}`);
      assert.ok(pplRel <= TOL / e.n_tokens * 10, `${key}: ppl ${r.ppl} vs ${e.ppl}`);
    }
    console.log(`# perplexity: ${report.join('; ')}`);
    // windows: a document longer than maxLength is scored in windows, every token once
    const long = fx.documents[1] as number[];
    const w = perplexity(model, [long], { maxLength: 4 });
    assert.equal(w.nTokens, long.length - 1);
  } finally {
    model.dispose();
  }
});

test('generate-stop: greedy decoding until a stop id (not returned) or max_new_tokens; exact match of ids', () => {
  const fx = fixture('generate-stop');
  const model = load(fx.model, fx.router_layout);
  try {
    greedyUntil(model, fx.context, { maxNewTokens: 2 }); // warm-up: transposed weights are cached on first use
    const before = tf.memory().numTensors;
    let last: number[] = [];
    for (const c of fx.cases as { stop_ids: number[]; max_new_tokens: number; expected: { generated: number[]; finish: string } }[]) {
      const r = greedyUntil(model, fx.context, { stopIds: c.stop_ids, maxNewTokens: c.max_new_tokens });
      assert.deepEqual(r.ids, c.expected.generated);
      assert.equal(r.finish, c.expected.finish);
      last = r.ids;
    }
    assert.equal(tf.memory().numTensors, before, 'greedyUntil leaks no tensors');
    const em = (fx.gold_id_lists as number[][]).some((g) => g.length === last.length && g.every((v, i) => v === last[i])) ? 1 : 0;
    assert.equal(em, fx.expected.exact_match_last_case);
    // stop strings on decoded text: with a toy decoder the text is cut at the first stop string
    const decode = (ids: number[]) => ids.map((i) => (i === 78 ? '.' : `t${i}`)).join('');
    const s = greedyUntil(model, fx.context, { stopStrings: ['.'], maxNewTokens: 12, decode });
    assert.deepEqual(s.ids, [35, 28, 78]);
    assert.equal(s.text, 't35t28');
    assert.equal(s.finish, 'stop');
  } finally {
    model.dispose();
  }
});

test('bad requests are errors naming the request and field', () => {
  const fx = fixture('mc-score');
  const model = load(fx.model, fx.router_layout);
  try {
    assert.throws(() => scoreContinuations(model, [{ context: [], continuation: [3] }]), /request 0: context is empty/);
    assert.throws(() => scoreContinuations(model, [{ context: [1], continuation: [3] }, { context: [1], continuation: [] }]), /request 1: continuation is empty/);
    assert.throws(() => scoreContinuations(model, [{ context: [1, 9999], continuation: [3] }]), /request 0: context\[1\] = 9999 is not a token id in \[0, 128\)/);
    assert.throws(() => scoreContinuations(model, [{ context: [1], continuation: [3, 4, 5] }], { maxLength: 2 }), /more than maxLength 2/);
    assert.throws(() => mcDecisions([1, 2], ['a', 'b'], [1, 1], 2), /gold index 2 is not one of the 2 choices/);
    assert.throws(() => greedyUntil(model, [1], { stopStrings: ['.'] }), /stopStrings need a decode function/);
    assert.throws(() => perplexity(model, [[5]]), /document 0 has 1 token\(s\): nothing to predict/);
  } finally {
    model.dispose();
  }
});

test('shared contexts (read once through the KV cache) score exactly like one row per request, on every fixture checkpoint', () => {
  let seed = 5;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  for (const name of ['dense', 'dense-window-bias', 'moe-token', 'moe-hf', 'padding']) {
    const expected = JSON.parse(fs.readFileSync(path.join(DOGE, name, 'expected.json'), 'utf8'));
    const model = DogeForCausalLM.fromPretrained(path.join(DOGE, name), { routerLayout: expected.router_layout });
    try {
      const V = model.config.vocab_size;
      const requests: { context: number[]; continuation: number[] }[] = [];
      for (let q = 0; q < 7; q++) {
        const context = Array.from({ length: 3 + rnd(12) }, () => rnd(V));
        for (let c = 0; c < 2 + rnd(3); c++) requests.push({ context, continuation: Array.from({ length: 1 + rnd(5) }, () => rnd(V)) });
      }
      requests.push({ context: [rnd(V)], continuation: [rnd(V), rnd(V)] }); // a context of its own
      let calls = 0;
      const counting = { config: model.config, routerLayout: model.routerLayout, forward: (i: Parameters<typeof model.forward>[0]) => { calls++; return model.forward(i); } };
      const shared = scoreContinuations(counting, requests, { batchSize: 4 });
      const sharedCalls = calls;
      calls = 0;
      const plain = scoreContinuations(counting, requests, { batchSize: 4, shareContext: false });
      const before = tf.memory().numTensors;
      scoreContinuations(model, requests, { batchSize: 4 });
      assert.equal(tf.memory().numTensors, before, `${name}: the shared path leaks no tensors`);
      let err = 0;
      shared.forEach((s, i) => {
        assert.equal(s.tokenLogprobs.length, requests[i].continuation.length);
        assert.equal(s.greedy, plain[i].greedy);
        s.tokenLogprobs.forEach((v, j) => { err = Math.max(err, Math.abs(v - plain[i].tokenLogprobs[j])); });
      });
      console.log(`# ${name}: shared vs per-request max |logprob err| ${err.toExponential(2)}, forward passes ${sharedCalls} vs ${calls}`);
      assert.ok(err <= 2e-5, `${name}: ${err}`);
    } finally {
      model.dispose();
    }
  }
});
