// Makes the package resolvable by its own name from inside the repository (notebooks/, examples):
// node_modules/wonderful-matrices -> .. (a relative symlink). Node honours package.json "exports"
// self-reference, but tslab type-checks cells with TypeScript's Node10 resolution, which only looks in
// node_modules; with the link both find dist/index.js and dist/index.d.ts. Idempotent.
import { existsSync, lstatSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function linkSelf(root = resolve(dirname(fileURLToPath(import.meta.url)), '..')) {
  const link = join(root, 'node_modules', 'wonderful-matrices');
  mkdirSync(join(root, 'node_modules'), { recursive: true });
  if (existsSync(link) || isSymlink(link)) {
    if (isSymlink(link) && readlinkSync(link) === '..') return link;
    if (!isSymlink(link)) throw new Error(`${link} exists and is not a symlink; remove it to let link-self create one`);
    unlinkSync(link);
  }
  symlinkSync('..', link, 'dir');
  return link;
}

function isSymlink(p) {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(`linked ${linkSelf()} -> ..`);
}
