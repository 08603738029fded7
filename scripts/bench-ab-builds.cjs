// In-process A/B of two builds of the package on wasm (e.g. main's and a branch's `dist/`): alternating whole training
// steps (forward, backward, global-norm clip, AdamW) of the same preset on the same tokens, so both see the same
// machine load. Prints median / min wall and process-CPU ms per step, the AdamW+clip part, and the losses (which must
// agree when the change does not alter the math).
//
//   (cd ../main && pnpm build && cp -r dist /tmp/dist-main)
//   WM_WASM_THREADS=1 node scripts/bench-ab-builds.cjs /tmp/dist-main dist doge-tiny 6
//
// Both builds share node_modules (one tfjs instance); the backend comes from the second build.
const path = require('node:path');
const [dirA, dirB] = [process.argv[2], process.argv[3]].map((d) => path.resolve(d ?? ''));
if (!process.argv[3]) throw new Error('usage: node scripts/bench-ab-builds.cjs DIST_A DIST_B [preset] [rounds]');
const load = (d) => ({ models: require(`${d}/models/auto`), adamw: require(`${d}/train/adamw`), mod: require(`${d}/modules/module`) });
const before = load(dirA), after = load(dirB);
const { loadBackend, tf } = require(`${dirB}/runtime/backend`);
const preset = process.argv[4] || 'doge-tiny', rounds = Number(process.argv[5] || 5), B = 8, T = 256;
(async () => {
  await loadBackend({ backend: 'wasm' });
  // both builds number their variables from wm0: make the names unique (tfjs refuses two variables with one name)
  const eng = tf.engine(), mk = eng.makeVariable.bind(eng);
  let k = 0;
  eng.makeVariable = (init, trainable, name, dtype) => mk(init, trainable, name ? `${name}~${k++}` : name, dtype);
  const ids = tf.tensor2d(Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % 1000), [B, T], 'int32');
  const arm = (lib, label) => {
    const cfg = lib.models.buildModelConfig(preset, {});
    const model = lib.models.createCausalLM(cfg, { seed: 0 });
    const params = model.parameters();
    const opt = new lib.adamw.AdamW(params, { beta1: 0.9, beta2: 0.95, weightDecay: 0.01 });
    const step = () => {
      const t0 = performance.now(), c0 = process.cpuUsage();
      const { value, grads } = lib.mod.variableGradsByName(params, () => model.forward({ inputIds: ids, labels: ids, training: true, numItemsInBatch: B * (T - 1), lossOnly: true }).loss);
      const loss = value.dataSync()[0]; value.dispose();
      const t1 = performance.now(), c1 = process.cpuUsage();
      const n = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))));
      const norm = n.dataSync()[0]; n.dispose();
      opt.applyGradients(grads, 1e-3, Math.min(1, 1 / (norm + 1e-6)));
      const c2 = process.cpuUsage(c1);
      const t2 = performance.now();
      for (const g of grads.values()) g.dispose();
      const c = process.cpuUsage(c0);
      return { loss, wall: t2 - t0, cpu: (c.user + c.system) / 1000, fbWall: t1 - t0, clipOptCpu: (c2.user + c2.system) / 1000 };
    };
    return { label, step, res: [] };
  };
  const arms = [arm(before, 'A'), arm(after, 'B')];
  for (const a of arms) a.step(); // warm-up
  for (let r = 0; r < rounds; r++) for (const a of (r % 2 ? [...arms].reverse() : arms)) a.res.push(a.step());
  const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const min = (xs) => Math.min(...xs);
  for (const a of arms) {
    const f = (k) => `${k} median ${med(a.res.map((x) => x[k])).toFixed(1)} min ${min(a.res.map((x) => x[k])).toFixed(1)}`;
    console.log(`${preset} ${a.label}: ${f('wall')} | ${f('cpu')} | ${f('clipOptCpu')} | losses ${a.res.map((x) => x.loss.toFixed(5)).join(',')}`);
  }
  console.log(`load ${require('fs').readFileSync('/proc/loadavg', 'utf8').trim()}`);
})();
