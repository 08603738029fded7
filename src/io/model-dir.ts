/**
 * `--model DIR` / `--init-from DIR` accept a model folder (config.json + model.safetensors) or the run folder a
 * training command wrote (`runs/doge-tiny`: checkpoint-N/ folders and, once the run finished, final/). A run
 * folder stands for its final/ model; an unfinished run's folder is an error that lists its checkpoints.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

function isModelFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'config.json')) &&
    (fs.existsSync(path.join(dir, 'model.safetensors')) || fs.existsSync(path.join(dir, 'model.safetensors.index.json')));
}

/** The checkpoint-N folders of a run folder, oldest step first. */
export function runCheckpoints(dir: string): string[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return [];
  return fs.readdirSync(dir)
    .filter((f) => /^checkpoint-\d+$/.test(f) && isModelFolder(path.join(dir, f)))
    .sort((a, b) => Number(a.slice(11)) - Number(b.slice(11)));
}

/**
 * The model folder `dir` stands for: `dir` itself when it holds a model (or is not a run folder: the loader's own
 * error then names what is missing), `dir/final` for a finished run. `what` names the option in the error.
 */
export function resolveModelDir(dir: string, what = '--model'): string {
  if (isModelFolder(dir)) return dir;
  const final = path.join(dir, 'final');
  if (isModelFolder(final)) return final;
  const checkpoints = runCheckpoints(dir);
  if (checkpoints.length) {
    const last = path.join(dir, checkpoints.at(-1)!);
    throw new Error(`${what} ${dir} is a run folder without final/ (the run has not finished); it holds ${checkpoints.join(', ')}: ` +
      `give one of them (e.g. ${what} ${last}) or finish the run with --resume`);
  }
  return dir;
}
