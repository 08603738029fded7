/**
 * Copying the pieces of a Hugging Face model folder: the tokenizer files into a folder that has the weights
 * (what `AutoTokenizer.from_pretrained(dir)` and `loadTokenizer(dir)` read), or a whole folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { TOKENIZER_FILES } from './bpe-trainer';

/** A tokenizer folder's files: what `wm tokenizer train` writes, plus a separate chat template when there is one. */
const COPIED = [...TOKENIZER_FILES, 'chat_template.jinja'];

/** Copy the tokenizer files of `fromDir` into `toDir` (created if needed); returns the names copied. */
export function copyTokenizerFiles(fromDir: string, toDir: string): string[] {
  if (!fs.existsSync(path.join(fromDir, 'tokenizer.json'))) {
    throw new Error(`copyTokenizerFiles: ${path.join(fromDir, 'tokenizer.json')} is missing (is ${fromDir} a tokenizer folder?)`);
  }
  fs.mkdirSync(toDir, { recursive: true });
  const copied: string[] = [];
  for (const f of COPIED) {
    const src = path.join(fromDir, f);
    if (!fs.existsSync(src)) continue;
    const dst = path.join(toDir, f);
    if (fs.lstatSync(dst, { throwIfNoEntry: false })?.isSymbolicLink()) throw new Error(`copyTokenizerFiles: ${dst} is a symbolic link; not writing through it`);
    fs.copyFileSync(src, dst);
    copied.push(f);
  }
  return copied;
}

/** Replace `toDir` with a copy of the files (not sub-folders) of the model folder `fromDir`. */
export function copyModelFolder(fromDir: string, toDir: string): void {
  if (!fs.existsSync(path.join(fromDir, 'config.json'))) throw new Error(`copyModelFolder: ${fromDir} has no config.json (not a model folder)`);
  if (path.resolve(fromDir) === path.resolve(toDir)) return;
  fs.rmSync(toDir, { recursive: true, force: true });
  fs.mkdirSync(toDir, { recursive: true });
  for (const f of fs.readdirSync(fromDir)) {
    const src = path.join(fromDir, f);
    if (fs.lstatSync(src).isFile()) fs.copyFileSync(src, path.join(toDir, f));
  }
}
