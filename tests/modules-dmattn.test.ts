// DynamicMaskAttention (against src/modules/reference/dmattn-loop.ts) and CDMoE against plain-JS loop references written
// from the spec (not from the fixtures):
// GQA with 3 query heads per kv head, odd lengths, keep_window_size < S with distinct d, padding, non-square expert
// counts, norm_topk_prob; plus a directional finite-difference check of the gradients.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/runtime/backend';
import { buildMaskBias } from '../src/modules/dmattn';
import { DynamicMaskAttention, CDMoE, Rng, type DynamicMaskAttentionOptions } from '../src/modules';
import { dmattnLoop, type DMAttnLoopOptions } from '../src/modules/reference/dmattn-loop';

before(async () => { await loadBackend({ log: false }); });

type P = Map<string, tf.Variable>;
const arr = (t: tf.Tensor) => Array.from(t.dataSync());

function randomize(params: P, rng: Rng, scale = 0.3): void {
  for (const [name, v] of params) {
    const n = v.size;
    const vals = new Float32Array(n);
    for (let i = 0; i < n; i++) vals[i] = name.endsWith('norm.weight') ? 1 + 0.2 * rng.normal() : scale * rng.normal();
    v.assign(tf.tensor(vals, v.shape));
  }
}

function maxDiff(a: number[], b: number[]): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('DMAttn standalone: GQA 3:1, odd length, top-k window active, padding — matches a loop reference', () => {
  const cases = [
    { nh: 6, nkv: 2, H: 24, T: 7, keep: 3, bias: true, pad: false },
    { nh: 3, nkv: 1, H: 18, T: 9, keep: 2048, bias: false, pad: true },
    { nh: 6, nkv: 2, H: 24, T: 11, keep: 4, bias: false, pad: true },
  ];
  for (const c of cases) {
    const attn = new DynamicMaskAttention({ hiddenSize: c.H, numHeads: c.nh, numKvHeads: c.nkv, keepWindowSize: c.keep, attentionBias: c.bias, useRope: false, seed: 3 });
    const rng = new Rng(11);
    randomize(attn.parameters(), rng);
    const B = 2;
    const x = tf.tensor(rng.normalArray(B * c.T * c.H, 1), [B, c.T, c.H]);
    const mask = c.pad ? [[...new Array(c.T).fill(1)], [0, 0, ...new Array(c.T - 2).fill(1)]] : undefined;
    const y = attn.apply(x, { attentionMask: mask ? tf.tensor2d(mask, [B, c.T], 'int32') : undefined });
    const p = new Map([...attn.parameters()].map(([k, v]) => [k, arr(v)]));
    const ref = dmattnLoop(x.arraySync() as number[][][], p, { nh: c.nh, nkv: c.nkv, hd: c.H / c.nh, keep: c.keep, eps: 1e-6, mask });
    const got = arr(y);
    const flat = ref.flat(2);
    const err = maxDiff(got, flat);
    const scale = Math.max(...flat.map(Math.abs));
    console.log(`DMAttn nh=${c.nh} nkv=${c.nkv} T=${c.T} keep=${c.keep} pad=${c.pad}: max err ${err.toExponential(2)} (scale ${scale.toFixed(2)})`);
    // padded query rows (all keys masked) are uniform averages in both; compare every row
    assert.ok(err <= 1e-4 * scale, `max err ${err}`);
    assert.deepEqual(attn.parameters().get('A')!.shape, [c.nkv]);
    assert.deepEqual(attn.parameters().get('dt_proj.weight')!.shape, [c.nkv, c.nkv * (c.H / c.nh)]);
    x.dispose(); y.dispose(); attn.dispose();
  }
});

test('DMAttn options of arXiv 2508.02124 / flash-dmattn (linear bias, key-row top-k, relu) and tie rules match the loop reference', () => {
  type Case = { name: string; nh: number; nkv: number; H: number; T: number; keep: number; pad: boolean; opts: Partial<DynamicMaskAttentionOptions>; ref: Partial<DMAttnLoopOptions>; ties?: 'torch' | 'recent'; tieD?: boolean; A?: number[] };
  const cases: Case[] = [
    { name: 'linear bias', nh: 4, nkv: 2, H: 16, T: 9, keep: 3, pad: true, opts: { dynamicMaskBias: 'linear' }, ref: { bias: 'linear' } },
    { name: 'key-row top-k', nh: 6, nkv: 2, H: 24, T: 10, keep: 4, pad: true, opts: { dynamicMaskSelect: 'key' }, ref: { select: 'key' } },
    { name: 'key-row top-k, linear, per-query masks', nh: 4, nkv: 2, H: 16, T: 8, keep: 3, pad: false, opts: { dynamicMaskSelect: 'key', dynamicMaskBias: 'linear', dynamicMaskHeads: 'query' }, ref: { select: 'key', bias: 'linear', maskHeads: 'query' } },
    // linear bias with A = [0.7, -0.7]: kv head 0 keeps every key (d > 0), kv head 1 none (its rows output 0)
    { name: 'relu', nh: 4, nkv: 2, H: 16, T: 9, keep: 2048, pad: true, opts: { dynamicMaskType: 'relu', dynamicMaskBias: 'linear' }, ref: { type: 'relu', bias: 'linear' }, A: [0.7, -0.7] },
    // every d equal (A = 0): the top-k is decided by the tie rule alone
    { name: 'ties torch', nh: 4, nkv: 2, H: 16, T: 9, keep: 3, pad: false, opts: {}, ref: {}, ties: 'torch', tieD: true },
    { name: 'ties recent', nh: 4, nkv: 2, H: 16, T: 9, keep: 3, pad: false, opts: {}, ref: {}, ties: 'recent', tieD: true },
  ];
  const outs = new Map<string, number[]>();
  for (const c of cases) {
    const attn = new DynamicMaskAttention({ hiddenSize: c.H, numHeads: c.nh, numKvHeads: c.nkv, keepWindowSize: c.keep, useRope: false, seed: 3, ...c.opts });
    const rng = new Rng(21);
    randomize(attn.parameters(), rng, 0.5);
    if (c.tieD) attn.parameters().get('A')!.assign(tf.zeros(attn.parameters().get('A')!.shape));
    if (c.A) attn.parameters().get('A')!.assign(tf.tensor1d(c.A));
    const B = 2;
    const x = tf.tensor(rng.normalArray(B * c.T * c.H, 1), [B, c.T, c.H]);
    const mask = c.pad ? [[...new Array(c.T).fill(1)], [0, 0, ...new Array(c.T - 2).fill(1)]] : undefined;
    const y = tf.tidy(() => {
      const maskBias = buildMaskBias(B, c.T, 0, mask ? mask.flat() : null, null);
      return attn.forward(x, { cos: null, sinSigned: null, maskBias, ties: c.ties }).out;
    });
    const p = new Map([...attn.parameters()].map(([k, v]) => [k, arr(v)]));
    const ref = dmattnLoop(x.arraySync() as number[][][], p, { nh: c.nh, nkv: c.nkv, hd: c.H / c.nh, keep: c.keep, mask, ties: c.ties, ...c.ref }).flat(2);
    const err = maxDiff(arr(y), ref);
    const scale = Math.max(...ref.map(Math.abs));
    console.log(`DMAttn ${c.name}: max err ${err.toExponential(2)} (scale ${scale.toFixed(2)})`);
    assert.ok(err <= 1e-4 * scale && scale > 0.1, `${c.name}: max err ${err}, scale ${scale}`);
    outs.set(c.name, arr(y));
    x.dispose(); y.dispose(); attn.dispose();
  }
  // the tie rule matters when every d ties: torch's order and 'recent' keep different keys
  assert.ok(maxDiff(outs.get('ties torch')!, outs.get('ties recent')!) > 1e-3);
  assert.throws(() => new DynamicMaskAttention({ hiddenSize: 8, numHeads: 2, dynamicMaskBias: 'softplus' as never }), /dynamicMaskBias must be 'exp' or 'linear', got "softplus"/);
});

/** Plain-loop CDMoE (spec 4.8, token layout). */
function refCDMoE(x: number[][], p: Map<string, number[]>, o: { H: number; I: number; E: number; k: number; norm: boolean }) {
  const K = Math.floor(Math.sqrt(o.E));
  const lin = (v: number[], w: number[], out: number, inp: number) => Array.from({ length: out }, (_, r) => { let s = 0; for (let c = 0; c < inp; c++) s += w[r * inp + c] * v[c]; return s; });
  const silu = (z: number) => z / (1 + Math.exp(-z));
  const outs: number[][] = [], ids: number[][] = [];
  for (const xr of x) {
    const g = lin(xr, p.get('gate_proj.weight')!, o.I, o.H), u = lin(xr, p.get('up_proj.weight')!, o.I, o.H);
    const shared = lin(g.map((gg, i) => silu(gg) * u[i]), p.get('down_proj.weight')!, o.H, o.I);
    const R = lin(xr, p.get('router_gate.weight')!, 2 * K, o.H);
    const cand: [number, number][] = [];
    for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) cand.push([R[a] + R[K + b], a * K + b]);
    cand.sort((m, n) => n[0] - m[0]);
    const top = cand.slice(0, o.k);
    const mx = top[0][0];
    let w = top.map(([s]) => Math.exp(s - mx));
    const Z = w.reduce((a, b) => a + b, 0);
    w = w.map((v) => v / Z);
    if (o.norm) { const z2 = w.reduce((a, b) => a + b, 0); w = w.map((v) => v / z2); }
    const out = [...shared];
    top.forEach(([, e], m) => {
      const de = p.get('down_embed.weight')!.slice(e * o.H, (e + 1) * o.H), ue = p.get('up_embed.weight')!.slice(e * o.H, (e + 1) * o.H);
      const z = silu(de.reduce((a, v, i) => a + v * xr[i], 0)) * w[m];
      for (let i = 0; i < o.H; i++) out[i] += z * ue[i];
    });
    outs.push(out);
    ids.push(top.map(([, e]) => e));
  }
  return { outs, ids };
}

test('CDMoE: non-square expert count, norm_topk_prob, top-k > sqrt(E) — matches a loop reference (token layout)', () => {
  for (const c of [{ E: 50, k: 9, norm: true }, { E: 30, k: 3, norm: false }]) {
    const H = 16, I = 24;
    const moe = new CDMoE({ hiddenSize: H, intermediateSize: I, numExperts: c.E, numExpertsPerTok: c.k, normTopkProb: c.norm }, { rng: new Rng(5), std: 0.3 });
    const rng = new Rng(9);
    const x = tf.tensor(rng.normalArray(2 * 5 * H, 1), [2, 5, H]);
    const r = moe.apply(x, { outputRouting: true });
    const p = new Map([...moe.parameters()].map(([k, v]) => [k, arr(v)]));
    const ref = refCDMoE((tf.reshape(x, [10, H]).arraySync() as number[][]), p, { H, I, E: c.E, k: c.k, norm: c.norm });
    const err = maxDiff(arr(r.out), ref.outs.flat());
    console.log(`CDMoE E=${c.E} (K=${Math.floor(Math.sqrt(c.E))}) k=${c.k} norm=${c.norm}: max err ${err.toExponential(2)}, ids identical`);
    assert.deepEqual(r.expertIds!.arraySync(), ref.ids);
    assert.ok(err < 1e-4 * Math.max(...ref.outs.flat().map(Math.abs)));
    tf.dispose([x, r.out, r.expertIds!, r.expertWeights!, r.routerLogits!]);
    moe.dispose();
  }
});

test('DMAttn + CDMoE gradients agree with finite differences (directional)', () => {
  const attn = new DynamicMaskAttention({ hiddenSize: 12, numHeads: 3, numKvHeads: 1, keepWindowSize: 4, attentionBias: true, seed: 1 });
  const rng = new Rng(2);
  randomize(attn.parameters(), rng, 0.4);
  const moe = new CDMoE({ hiddenSize: 12, intermediateSize: 8, numExperts: 20, numExpertsPerTok: 3 }, { rng: new Rng(4), std: 0.3 });
  const x = tf.tensor(rng.normalArray(2 * 7 * 12, 1), [2, 7, 12]);
  const vars = [...attn.parameters().values(), ...moe.parameters().values()];
  const f = () => tf.sum(tf.square(moe.apply(attn.apply(x)).out)) as tf.Scalar;
  const { value, grads } = tf.variableGrads(f, vars);
  value.dispose();
  const dirs = vars.map((v) => tf.tensor(rng.normalArray(v.size, 1), v.shape));
  const analytic = vars.reduce((a, v, i) => a + tf.sum(tf.mul(grads[v.name], dirs[i])).dataSync()[0], 0);
  const eps = 1e-3;
  const shift = (s: number) => vars.forEach((v, i) => v.assign(tf.add(v, tf.mul(dirs[i], s))));
  shift(eps); const lp = f().dataSync()[0];
  shift(-2 * eps); const lm = f().dataSync()[0];
  shift(eps);
  const numeric = (lp - lm) / (2 * eps);
  console.log(`directional derivative: analytic ${analytic.toFixed(4)}, finite difference ${numeric.toFixed(4)}`);
  assert.ok(Math.abs(analytic - numeric) <= 2e-2 * Math.max(1, Math.abs(numeric)), `${analytic} vs ${numeric}`);
  tf.dispose([x, ...dirs, ...Object.values(grads)]);
  attn.dispose();
  moe.dispose();
});

test('ops: chunked lm_head + loss equals logits + crossEntropyLoss (value and gradients, ignored targets)', async () => {
  const { chunkedLmHeadLoss, crossEntropyLoss } = await import('../src/ops');
  const rng = new Rng(1);
  const h = tf.tensor2d(rng.normalArray(10 * 6, 1), [10, 6]);
  const w = tf.tensor2d(rng.normalArray(13 * 6, 0.5), [13, 6]);
  const targets = Int32Array.from([3, -100, 0, 12, 5, 5, -100, 7, 1, 2]);
  const f1 = (a: tf.Tensor, b: tf.Tensor) => crossEntropyLoss(tf.matMul(a, b, false, true) as tf.Tensor2D, targets, 8);
  const f2 = (a: tf.Tensor, b: tf.Tensor) => chunkedLmHeadLoss(a as tf.Tensor2D, b as tf.Tensor2D, targets, 8, 3);
  const g1 = tf.grads(f1)([h, w]), g2 = tf.grads(f2)([h, w]);
  const l1 = f1(h, w).dataSync()[0], l2 = f2(h, w).dataSync()[0];
  assert.ok(Math.abs(l1 - l2) < 1e-5, `${l1} vs ${l2}`);
  for (let i = 0; i < 2; i++) assert.ok(maxDiff(arr(g1[i]), arr(g2[i])) < 1e-5);
  // against a plain-JS loss
  const lg = tf.matMul(h, w, false, true).arraySync() as number[][];
  let ref = 0;
  targets.forEach((t, i) => { if (t === -100) return; const m = Math.max(...lg[i]); ref += m + Math.log(lg[i].reduce((a, v) => a + Math.exp(v - m), 0)) - lg[i][t]; });
  assert.ok(Math.abs(ref / 8 - l1) < 1e-5);
  tf.dispose([h, w, ...g1, ...g2]);
});
