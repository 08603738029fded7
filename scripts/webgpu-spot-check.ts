// Spot check (issue 21): generation, eval scoring, perplexity, a DPO loss, Cheems loss and generation, an MQAR epoch on wasm and
// on webgpu (WM_BACKEND=webgpu: the software adapter where there is no GPU), values side by side.
// Run: node --import tsx scripts/webgpu-spot-check.ts
import { tf, loadBackend } from '../src/runtime/backend';
import { registerTopKGradient } from '../src/runtime/gradients';
import { startWebGpu } from '../src/runtime/webgpu';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { CheemsForCausalLM } from '../src/models/cheems';
import { buildModelConfig, createCausalLM } from '../src/models/auto';
import { scoreContinuations } from '../src/eval/loglikelihood';
import { perplexity } from '../src/eval/perplexity';
import { dpoLoss } from '../src/finetune/dpo';
import { generateMqarSplits } from '../src/synthetic/mqar-data';
import { trainMqar } from '../src/synthetic/train';
import { variableGradsByName } from '../src/modules/module';

async function runAll(): Promise<Record<string, unknown>> {
  const r: Record<string, unknown> = {};
  const cfg = new DogeConfig({ vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, keep_window_size: 8, is_moe: true, num_experts: 16, num_experts_per_tok: 4, max_position_embeddings: 64 } as Partial<DogeConfig>);
  const m = new DogeForCausalLM(cfg, { seed: 5 });
  r.generate_greedy = m.generate([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]], { maxNewTokens: 8, eosTokenId: null })[0].slice(12).join(',');
  const sc = scoreContinuations(m, [{ context: [1, 2, 3], continuation: [4, 5] }, { context: [9, 8, 7, 6], continuation: [5] }]);
  r.eval_logprob_sums = sc.map((s) => s.sum.toFixed(5)).join(',');
  r.perplexity = perplexity(m, [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [3, 3, 3, 2, 2]]).ppl.toFixed(5);
  const pairs = [{ prompt: [1, 2, 3], chosen: [4, 5], rejected: [6, 7, 8] }];
  const ref = new DogeForCausalLM(cfg, { seed: 6 });
  const { value } = variableGradsByName(m.parameters(), () => dpoLoss(m, ref, pairs, { beta: 0.1, padId: 0 }).loss);
  r.dpo_loss = value.dataSync()[0].toFixed(6);
  m.dispose(); ref.dispose();
  const ch = createCausalLM(buildModelConfig('cheems-tiny', { vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 1, num_hidden_layers: 2 }), { seed: 1 }) as unknown as CheemsForCausalLM;
  const ids = tf.tensor2d([[1, 5, 9, 3, 4, 7, 8, 2, 6, 1, 3, 5]], [1, 12], 'int32');
  const g = variableGradsByName(ch.parameters(), () => ch.forward({ inputIds: ids, labels: ids }).loss as tf.Scalar);
  r.cheems_loss = g.value.dataSync()[0].toFixed(6);
  r.cheems_generate = ch.generate([[1, 2, 3, 4]], { maxNewTokens: 6, eosTokenId: null })[0].slice(4).join(',');
  ch.dispose();
  const { train, test } = generateMqarSplits({ vocabSize: 32, seqLen: 16, numKvPairs: 2, trainExamples: 64, testExamples: 32, seed: 0, randomNonQueries: false });
  const mq = await trainMqar({ mixer: 'dmattn', dModel: 16, lr: 3e-3, epochs: 1, train, test, batchSize: 32, seed: 1 });
  r.mqar_loss = mq.loss.toFixed(5);
  return r;
}

(async () => {
  await loadBackend({ backend: 'wasm', log: false });
  const t0 = Date.now();
  const wasm = await runAll();
  const t1 = Date.now();
  await startWebGpu(tf, { allowSoftware: true });
  registerTopKGradient(tf);
  await tf.setBackend('webgpu');
  const gpu = await runAll();
  const t2 = Date.now();
  for (const k of Object.keys(wasm)) console.log(`${k.padEnd(18)} wasm ${String(wasm[k]).padEnd(24)} webgpu ${gpu[k]} ${wasm[k] === gpu[k] ? 'same' : 'DIFF'}`);
  console.log(`wasm ${(t1 - t0) / 1000}s, webgpu (software) ${(t2 - t1) / 1000}s`);
})();
