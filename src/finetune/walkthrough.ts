/**
 * The models notebooks 7 and 8 start from, found or made in one call, so their first cells are a few lines.
 *
 * Notebook 7 fine-tunes the checkpoint notebook 5 saved; notebook 8 compares the base, SFT and DPO models notebook 7
 * saved. Each notebook also runs on its own: what is missing is made here with short CPU runs of the same recipes
 * (pre-training doge-tiny on the embedded Brown corpus; `configs/doge-tiny-sft.yaml` / `doge-tiny-dpo.yaml`).
 * All paths are relative to the working folder (notebooks/ in Jupyter).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { prepareDefaultCorpus } from '../data';
import { copyModelFolder } from '../data/model-folder';
import { parsePretrainConfig } from '../train/config';
import { runPretrain } from '../train/pretrain';
import { loadFinetuneConfig } from './config';
import { runDpo, runSft } from './run';

/** Where notebook 5 saves its model, and where a notebook that pre-trains one itself puts it. */
export const NOTEBOOK_BASE_CANDIDATES = ['runs/pretrain-notebook/final', 'runs/notebooks/pretrain/final'];

/** The shipped recipes (configs/ at the package root). */
function shippedRecipe(name: string): string {
  return path.join(__dirname, '..', '..', 'configs', `${name}.yaml`);
}

const isModelFolder = (d: string): boolean => fs.existsSync(path.join(d, 'model.safetensors')) && fs.existsSync(path.join(d, 'tokenizer.json'));

export interface NotebookBaseModel {
  /** The folder the notebook works on (a copy). */
  dir: string;
  /** Where it came from: notebook 5's checkpoint, or the run made here. */
  from: string;
  /** True when this call pre-trained it (no checkpoint from notebook 5). */
  pretrainedHere: boolean;
}

/**
 * Notebook 5's checkpoint copied to `to`; when there is none, pre-train doge-tiny the way notebook 5 does
 * (60 steps of 8 x 128 tokens of Brown, seed 233) and use that. One summary line goes to `log`.
 */
export async function notebookBaseModel(o: { to: string; log?: (line: string) => void }): Promise<NotebookBaseModel> {
  const log = o.log ?? ((l: string) => console.log(l));
  let from = NOTEBOOK_BASE_CANDIDATES.find(isModelFolder);
  const pretrainedHere = from === undefined;
  if (from === undefined) {
    from = NOTEBOOK_BASE_CANDIDATES[1]!;
    const t0 = performance.now();
    const data = await prepareDefaultCorpus({ outDir: 'runs/data', vocabSize: 4096, seqLen: 128, log: false });
    // the pipeline notebook 5 and `wm pretrain` use; final/ gets the weights, the tokenizer and generation_config.json
    const cfg = parsePretrainConfig({
      model: { preset: 'doge-tiny' },
      data: { dataset_dir: data.datasetDir, tokenizer_dir: data.tokenizerDir, seq_len: 128 },
      training: {
        output_dir: path.dirname(from), seed: 233, max_steps: 60, per_device_train_batch_size: 8, learning_rate: 4e-3,
        warmup_ratio: 0.1, weight_decay: 0.01, adam_beta2: 0.95, logging_steps: 60, eval_steps: 0, save_steps: 0,
      },
    }, 'notebook');
    const r = await runPretrain(cfg, { log: () => {} });
    log(`no checkpoint from notebook 5: pre-trained doge-tiny for ${r.steps} steps here (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  copyModelFolder(from, o.to);
  return { dir: o.to, from, pretrainedHere };
}

/**
 * The base, SFT and DPO models notebook 7 saves (`runs/notebooks/{base,sft,dpo}`); what is missing is made with
 * short runs of the CPU recipes (SFT 20 steps on 1,000 chats, DPO 8 steps on 100 pairs), one log line each.
 */
export async function notebookFinetunedModels(o: { log?: (line: string) => void } = {}): Promise<Record<'base' | 'sft' | 'dpo', string>> {
  const log = o.log ?? ((l: string) => console.log(l));
  const base = ['runs/notebooks/base', ...NOTEBOOK_BASE_CANDIDATES].find(isModelFolder) ?? (await notebookBaseModel({ to: 'runs/notebooks/base', log })).dir;
  const quick = async (kind: 'sft' | 'dpo', from: string, steps: number, rows: number): Promise<string> => {
    const out = `runs/notebooks/eval-${kind}`;
    if (isModelFolder(path.join(out, 'final'))) return path.join(out, 'final');
    fs.rmSync(out, { recursive: true, force: true });
    const overrides = { init_from: from, output_dir: out, max_steps: String(steps), eval_steps: String(steps), save_steps: String(steps), max_train_rows: String(rows), max_eval_rows: '50' };
    const config = loadFinetuneConfig(shippedRecipe(`doge-tiny-${kind}`), kind, overrides);
    const r = await (kind === 'sft' ? runSft : runDpo)(config, { log: () => {} });
    log(`${kind}: ${steps} steps from ${from} in ${r.seconds.toFixed(0)} s (notebook 7's model is missing)`);
    return r.finalDir!;
  };
  const sft = isModelFolder('runs/notebooks/sft') ? 'runs/notebooks/sft' : await quick('sft', base, 20, 1000);
  const dpo = isModelFolder('runs/notebooks/dpo') ? 'runs/notebooks/dpo' : await quick('dpo', sft, 8, 100);
  return { base, sft, dpo };
}
