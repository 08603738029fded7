import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { tf, loadBackend } from '../src/runtime/backend';
import { AdamW, decaysWeight, lrMultiplier, ScheduleSpec } from '../src/train';

before(async () => {
  await loadBackend({ log: false });
});

/** torch.optim.AdamW's update, written out in float64 for one parameter vector. */
function referenceAdamW(p: number[], grads: number[][], lrs: number[], o: { b1: number; b2: number; eps: number; wd: number }): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const x = p.slice();
  grads.forEach((g, i) => {
    const t = i + 1;
    const lr = lrs[i];
    for (let j = 0; j < x.length; j++) {
      x[j] *= 1 - lr * o.wd;
      m[j] = o.b1 * m[j] + (1 - o.b1) * g[j];
      v[j] = o.b2 * v[j] + (1 - o.b2) * g[j] * g[j];
      const denom = Math.sqrt(v[j]) / Math.sqrt(1 - o.b2 ** t) + o.eps;
      x[j] -= (lr / (1 - o.b1 ** t)) * (m[j] / denom);
    }
  });
  return x;
}

test('AdamW matches torch AdamW (decoupled decay) over several steps; no decay on bias / norm weights', () => {
  const p0 = [0.5, -1.25, 2.0, 0.01];
  const grads = [[0.1, -0.2, 0.3, 0.0], [1.5, 0.5, -0.25, 1e-3], [-0.3, 0.0, 0.7, 2.0]];
  const lrs = [1e-2, 5e-3, 2e-3];
  const o = { b1: 0.9, b2: 0.95, eps: 1e-8, wd: 0.1 };
  const params = new Map<string, tf.Variable>([
    ['model.layers.0.self_attn.q_proj.weight', tf.variable(tf.tensor1d(p0))],
    ['model.layers.0.self_attn.q_proj.bias', tf.variable(tf.tensor1d(p0))],
    ['model.norm.weight', tf.variable(tf.tensor1d(p0))],
  ]);
  const opt = new AdamW(params, { beta1: o.b1, beta2: o.b2, eps: o.eps, weightDecay: o.wd });
  const before = tf.memory().numTensors;
  for (let i = 0; i < grads.length; i++) {
    const g = new Map([...params.keys()].map((k) => [k, tf.tensor1d(grads[i])] as [string, tf.Tensor]));
    opt.applyGradients(g, lrs[i]);
    for (const t of g.values()) t.dispose();
  }
  assert.equal(tf.memory().numTensors, before, 'no tensors left behind by the update');
  assert.equal(opt.step, 3);
  const decayed = referenceAdamW(p0, grads, lrs, o);
  const plain = referenceAdamW(p0, grads, lrs, { ...o, wd: 0 });
  const close = (a: ArrayLike<number>, b: number[], what: string) => {
    for (let j = 0; j < b.length; j++) assert.ok(Math.abs(a[j] - b[j]) < 2e-6, `${what}[${j}]: ${a[j]} vs ${b[j]}`);
  };
  close(params.get('model.layers.0.self_attn.q_proj.weight')!.dataSync(), decayed, 'weight');
  close(params.get('model.layers.0.self_attn.q_proj.bias')!.dataSync(), plain, 'bias');
  close(params.get('model.norm.weight')!.dataSync(), plain, 'norm');
  // The moments round-trip through stateTensors / loadState.
  const state = opt.stateTensors();
  assert.equal(state.size, 6);
  const opt2 = new AdamW(params, { beta1: o.b1, beta2: o.b2, eps: o.eps, weightDecay: o.wd });
  opt2.loadState(state, opt.step);
  assert.deepEqual(Array.from(opt2.stateTensors().get('exp_avg_sq.model.norm.weight')!.dataSync()), Array.from(state.get('exp_avg_sq.model.norm.weight')!.dataSync()));
  assert.throws(() => opt2.loadState(new Map(), 1, 'ckpt/optimizer.safetensors'), /^Error: ckpt\/optimizer.safetensors: missing tensor 'exp_avg\.model\.layers\.0\.self_attn\.q_proj\.weight'$/);
  opt.dispose();
  opt2.dispose();
  for (const v of params.values()) v.dispose();
});

test('the gradient scale (clipping coefficient) multiplies gradients before the moments', () => {
  const mk = () => new Map([['w', tf.variable(tf.tensor1d([1, 2]))]]);
  const a = mk();
  const b = mk();
  const oa = new AdamW(a, { beta2: 0.95 });
  const ob = new AdamW(b, { beta2: 0.95 });
  const g1 = tf.tensor1d([0.4, -0.8]);
  const g2 = tf.tensor1d([0.2, -0.4]);
  oa.applyGradients(new Map([['w', g1]]), 0.1, 0.5);
  ob.applyGradients(new Map([['w', g2]]), 0.1, 1);
  assert.deepEqual(Array.from(oa.stateTensors().get('exp_avg.w')!.dataSync()), Array.from(ob.stateTensors().get('exp_avg.w')!.dataSync()));
  for (const x of [g1, g2, ...a.values(), ...b.values()]) x.dispose();
  oa.dispose();
  ob.dispose();
});

test('weight-decay grouping follows HF Trainer on Doge parameter names', () => {
  const no = ['model.norm.weight', 'model.layers.3.input_layernorm.weight', 'model.layers.3.post_attention_layernorm.weight',
    'model.layers.0.self_attn.q_norm.weight', 'model.layers.0.self_attn.k_norm.weight', 'model.layers.0.self_attn.q_proj.bias',
    'model.layers.0.self_attn.dt_proj.bias', 'model.layers.0.mlp.down_proj.bias'];
  const yes = ['model.embed_tokens.weight', 'lm_head.weight', 'model.layers.0.self_attn.A', 'model.layers.0.input_residual',
    'model.layers.0.post_attention_residual', 'model.layers.0.self_attn.dt_proj.weight', 'model.layers.0.mlp.router_gate.weight',
    'model.layers.0.mlp.down_embed.weight', 'model.layers.0.mlp.up_embed.weight', 'model.layers.0.mlp.gate_proj.weight'];
  for (const n of no) assert.equal(decaysWeight(n), false, n);
  for (const n of yes) assert.equal(decaysWeight(n), true, n);
});

test('warmup_stable_decay follows the doge-spec 2.2 formula', () => {
  const spec: ScheduleSpec = { type: 'warmup_stable_decay', totalSteps: 100, warmupSteps: 10, decaySteps: 10, minLrRatio: 0 };
  assert.equal(lrMultiplier(spec, 0), 0);
  assert.equal(lrMultiplier(spec, 5), 0.5);
  assert.equal(lrMultiplier(spec, 10), 1);
  assert.equal(lrMultiplier(spec, 89), 1);
  assert.equal(lrMultiplier(spec, 90), 1);
  assert.ok(Math.abs(lrMultiplier(spec, 95) - 0.5) < 1e-12);
  assert.ok(Math.abs(lrMultiplier(spec, 99) - 0.1) < 1e-12);
  assert.equal(lrMultiplier(spec, 100), 0);
  const floor = { ...spec, minLrRatio: 0.1 };
  assert.ok(Math.abs(lrMultiplier(floor, 0) - 0.1) < 1e-12);
  assert.ok(Math.abs(lrMultiplier(floor, 5) - 0.55) < 1e-12);
  assert.ok(Math.abs(lrMultiplier(floor, 150) - 0.1) < 1e-12);
  // An explicit stable length moves the decay.
  assert.equal(lrMultiplier({ ...spec, stableSteps: 20 }, 35), 0.5);
});

test('cosine, linear and constant schedules (HF definitions)', () => {
  const base = { totalSteps: 110, warmupSteps: 10 };
  assert.equal(lrMultiplier({ type: 'cosine', ...base }, 5), 0.5);
  assert.equal(lrMultiplier({ type: 'cosine', ...base }, 10), 1);
  assert.ok(Math.abs(lrMultiplier({ type: 'cosine', ...base }, 60) - 0.5) < 1e-12);
  assert.ok(Math.abs(lrMultiplier({ type: 'cosine', ...base }, 110)) < 1e-12);
  assert.equal(lrMultiplier({ type: 'linear', ...base }, 60), 0.5);
  assert.equal(lrMultiplier({ type: 'linear', ...base }, 110), 0);
  assert.equal(lrMultiplier({ type: 'constant', ...base }, 5), 0.5);
  assert.equal(lrMultiplier({ type: 'constant', ...base }, 100), 1);
  assert.equal(lrMultiplier({ type: 'constant', totalSteps: 10, warmupSteps: 0 }, 0), 1);
});

test('creating, stepping and disposing AdamW leaves the live tensor count unchanged', () => {
  const params = new Map([['w', tf.variable(tf.ones([3, 2]))], ['b', tf.variable(tf.zeros([2]))]]);
  const before = tf.memory().numTensors;
  const opt = new AdamW(params, { weightDecay: 0.1 });
  const grads = new Map([['w', tf.fill([3, 2], 0.5)], ['b', tf.fill([2], -1)]]);
  opt.applyGradients(grads, 1e-2);
  tf.dispose([...grads.values()]);
  opt.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.ok(Math.abs(params.get('w')!.dataSync()[0] - (1 * (1 - 1e-3) - 1e-2)) < 1e-6);
  tf.dispose([...params.values()]);
});
