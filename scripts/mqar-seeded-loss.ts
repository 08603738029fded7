/**
 * A seeded MQAR run's numbers, for checking that a speed change kept the math: trainMqar for --steps optimizer steps
 * (default 20; V 256, L 64, K 4, 640 / 256 examples, batch 64, seed 0) per mixer and width, printing the mean training
 * loss and the test accuracy with all their digits. Run it before and after a change and diff the output.
 *
 *   npx tsx scripts/mqar-seeded-loss.ts [--mixers ssd] [--widths 64,128] [--steps 20]
 */
import { loadBackend } from '../src/runtime/backend';
import { generateMqarSplits } from '../src/synthetic/mqar-data';
import { trainMqar } from '../src/synthetic/train';
import type { MixerKind } from '../src/synthetic/mixers';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

async function main(): Promise<void> {
  await loadBackend({ backend: process.env.WM_BACKEND ?? 'wasm' });
  const steps = Number(arg('steps', '20'));
  const { train, test } = generateMqarSplits({ vocabSize: 256, seqLen: 64, numKvPairs: 4, trainExamples: 64 * steps, testExamples: 256, seed: 0 });
  for (const d of arg('widths', '64,128').split(',').map(Number)) {
    for (const mixer of arg('mixers', 'ssd').split(',') as MixerKind[]) {
      const r = await trainMqar({ mixer, dModel: d, lr: 3e-3, epochs: 1, train, test, maxSteps: steps, evalEvery: steps, seed: 0 });
      console.log(JSON.stringify({ mixer, d_model: d, steps: r.steps, loss: r.loss, accuracy: r.final_accuracy }));
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
