/**
 * Time of one MQAR training step per mixer and width, and the tfjs kernels it runs (for comparing the MQAR mixers,
 * and one tree against another, on a loaded machine).
 *
 *   npx tsx scripts/bench-mqar-step.ts [--mixers attention,dmattn,ssd,linear] [--widths 64,128] [--steps 5] [--top 12]
 *
 * The step is trainMqar's (src/synthetic/train.ts): MqarModel.logitsAt at the labelled positions, mean
 * cross-entropy, tf.variableGrads, AdamW.applyGradients; the cross-entropy here is logSoftmax · oneHot, written out so
 * the script runs unchanged on older trees (the loss is a few kernels at the end, the same for every mixer). Shapes
 * of `wm mqar --preset cpu`: V 256, L 64, K 4, batch 64, 2 layers, SSD state 64. Per mixer and width it prints
 * ms/step (mean of --steps after one warm-up step, wall time), the kernels per step, and a per-kernel profile of one
 * step in process CPU time (what a kernel costs on an idle core; wall time on a shared machine includes waiting),
 * plus the load average. `--eval N` also times trainMqar's test evaluation (evaluateMqar, batches of 256) on N examples. Compare ratios between mixers and kernel counts; absolute times move with the load.
 */
import * as fs from 'node:fs';
import { tf, loadBackend } from '../src/runtime/backend';
import { useCpuClock } from './cpu-clock';
import { MqarModel } from '../src/synthetic/model';
import { generateMqar } from '../src/synthetic/mqar-data';
import { evaluateMqar, makeBatch } from '../src/synthetic/train';
import { AdamW } from '../src/train/adamw';
import type { MixerKind } from '../src/synthetic/mixers';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const V = 256, L = 64, K = 4, BATCH = 64;

function loadavg(): string {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

async function main(): Promise<void> {
  await loadBackend({ backend: process.env.WM_BACKEND ?? 'wasm' });
  const mixers = arg('mixers', 'attention,dmattn,ssd,linear').split(',') as MixerKind[];
  const widths = arg('widths', '64,128').split(',').map(Number);
  const steps = Number(arg('steps', '5'));
  const top = Number(arg('top', '12'));
  const evalRows = Number(arg('eval', '0')); // > 0: also time evaluateMqar on this many test examples
  const data = generateMqar({ vocabSize: V, seqLen: L, numKvPairs: K, numExamples: BATCH * (steps + 2), seed: 1 });
  for (const d of widths) {
    for (const mixer of mixers) {
      const model = new MqarModel({ mixer, vocabSize: V, dModel: d, numLayers: 2, dState: 64, keepWindowSize: K, seed: 0 });
      const params = model.parameters();
      const vars = [...params.values()];
      const opt = new AdamW(params, { weightDecay: 0.1, decay: (name) => params.get(name)!.rank >= 2 });
      let batchNo = 0;
      const step = (): number => {
        const rows = Int32Array.from({ length: BATCH }, (_, i) => (batchNo * BATCH + i) % data.numExamples);
        batchNo++;
        const { ids, positions, targets } = makeBatch(data, rows);
        const tgt = tf.tensor1d(targets, 'int32');
        const { value, grads } = tf.variableGrads(() => {
          const logits = model.logitsAt(ids, positions);
          return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(tgt, V)), -1))) as tf.Scalar;
        }, vars);
        opt.applyGradients(new Map([...params].map(([name, p]) => [name, grads[p.name]])), 1e-3);
        const l = value.dataSync()[0];
        tf.dispose([ids, positions, tgt, value, ...Object.values(grads)]);
        return l;
      };
      step(); // warm-up (kernel setup, first allocations)
      const load0 = loadavg();
      const t0 = performance.now();
      for (let s = 0; s < steps; s++) step();
      const msPerStep = (performance.now() - t0) / steps;
      // one profiled step, kernel times in CPU time
      const backend = tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> };
      const savedTime = backend.time;
      useCpuClock();
      const info = await tf.profile(() => { step(); return tf.scalar(0); });
      backend.time = savedTime;
      const byName = new Map<string, { ms: number; calls: number }>();
      let kernels = 0;
      for (const k of info.kernels) {
        if (k.name === 'unnamed scope') continue;
        kernels++;
        const s = byName.get(k.name) ?? { ms: 0, calls: 0 };
        s.ms += k.kernelTimeMs as number;
        s.calls++;
        byName.set(k.name, s);
      }
      const cpuMs = [...byName.values()].reduce((a, s) => a + s.ms, 0);
      console.log(JSON.stringify({ mixer, d_model: d, ms_per_step: +msPerStep.toFixed(1), cpu_ms_profiled_step: +cpuMs.toFixed(1), kernels_per_step: kernels, loadavg: load0 }));
      const rows = [...byName.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top);
      for (const [name, s] of rows) console.log(`    ${name.padEnd(24)} ${s.ms.toFixed(1).padStart(8)} ms ${(100 * s.ms / cpuMs).toFixed(1).padStart(5)}% ${String(s.calls).padStart(5)} calls`);
      if (evalRows > 0) {
        // the test evaluation of trainMqar (forward only, batches of 256), every evalEvery steps of `wm mqar`
        const test = generateMqar({ vocabSize: V, seqLen: L, numKvPairs: K, numExamples: evalRows, seed: 2 });
        evaluateMqar(model, test); // warm-up at this batch shape
        const e0 = performance.now();
        evaluateMqar(model, test);
        const evalMs = performance.now() - e0;
        useCpuClock();
        const einfo = await tf.profile(() => { evaluateMqar(model, test); return tf.scalar(0); });
        backend.time = savedTime;
        const ebyName = new Map<string, { ms: number; calls: number }>();
        for (const k of einfo.kernels) {
          const s = ebyName.get(k.name) ?? { ms: 0, calls: 0 };
          s.ms += k.kernelTimeMs as number;
          s.calls++;
          ebyName.set(k.name, s);
        }
        const ecpu = [...ebyName.values()].reduce((a, s) => a + s.ms, 0);
        console.log(JSON.stringify({ mixer, d_model: d, eval_examples: evalRows, eval_ms: +evalMs.toFixed(1), eval_cpu_ms_profiled: +ecpu.toFixed(1), eval_kernels: einfo.kernels.length, loadavg: loadavg() }));
        for (const [name, s] of [...ebyName.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) console.log(`    eval ${name.padEnd(19)} ${s.ms.toFixed(1).padStart(8)} ms ${(100 * s.ms / ecpu).toFixed(1).padStart(5)}% ${String(s.calls).padStart(5)} calls`);
      }
      model.dispose();
      opt.dispose();
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
