/**
 * The whole offline data path of `pnpm run pretrain`: train a byte-level BPE on the embedded Brown corpus,
 * tokenize and pack it, split off a test set. Outputs are reused when they exist and were made with the
 * same settings, so a second run costs only the check.
 *
 *   <outDir>/tokenizer/   tokenizer.json, tokenizer_config.json, special_tokens_map.json
 *   <outDir>/dataset/     DatasetDict: dataset_dict.json, train/, test/
 *   <outDir>/wm_default_corpus.json   the settings and stats of both (the reuse key), and the manifest
 *
 * The folder rule of every command (out-folder.ts): a folder without wm_default_corpus.json that is not empty is
 * refused, so a tokenizer or dataset this command did not write is never replaced.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { trainTokenizer } from './bpe-trainer';
import { brownCorpusDocuments } from './brown';
import { prepareDataset, PrepareStats } from './prepare';
import { claimOutputFolder } from './out-folder';
import { writeFileAtomic } from '../io/atomic';

const MANIFEST = 'wm_default_corpus.json';
const ENTRIES = ['tokenizer', 'dataset', MANIFEST];

/** Bump when the corpus text, the trainer or the packing changes, to invalidate old outputs. */
const DEFAULT_CORPUS_VERSION = 1;

export interface PrepareDefaultCorpusOptions {
  outDir: string;
  vocabSize?: number;
  seqLen?: number;
  testExamples?: number;
  seed?: number;
  log?: boolean;
}

export interface PrepareDefaultCorpusResult {
  tokenizerDir: string;
  datasetDir: string;
  stats: PrepareStats;
  /** Tokenizer training time (0 when reused). */
  tokenizerSeconds: number;
  reusedTokenizer: boolean;
  reusedDataset: boolean;
}

interface Manifest {
  version: number;
  /** The entries this command wrote (out-folder.ts's manifest rule). */
  files?: string[];
  tokenizer?: { vocabSize: number };
  dataset?: { seqLen: number; testExamples: number | null; seed: number; stats: PrepareStats };
}

export async function prepareDefaultCorpus(o: PrepareDefaultCorpusOptions): Promise<PrepareDefaultCorpusResult> {
  const vocabSize = o.vocabSize ?? 4096;
  const seqLen = o.seqLen ?? 256;
  const seed = o.seed ?? 42;
  const log = o.log ?? true;
  const tokenizerDir = path.join(o.outDir, 'tokenizer');
  const datasetDir = path.join(o.outDir, 'dataset');
  const manifestFile = path.join(o.outDir, MANIFEST);
  // its own earlier output is reused or rebuilt; anything else in the way is refused before a file is written
  claimOutputFolder(o.outDir, { command: 'wm data default', manifest: MANIFEST, entries: ENTRIES, overwrite: true, legacyEntries: ['tokenizer', 'dataset'] });
  fs.mkdirSync(o.outDir, { recursive: true });

  let manifest: Manifest = { version: DEFAULT_CORPUS_VERSION, files: ENTRIES };
  if (fs.existsSync(manifestFile)) {
    try {
      const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as Manifest;
      if (m.version === DEFAULT_CORPUS_VERSION) manifest = { ...m, files: ENTRIES };
    } catch {
      // unreadable manifest: rebuild everything
    }
  }
  const save = (): void => writeFileAtomic(manifestFile, JSON.stringify(manifest, null, 2));

  let tokenizerSeconds = 0;
  const reusedTokenizer = manifest.tokenizer?.vocabSize === vocabSize && fs.existsSync(path.join(tokenizerDir, 'tokenizer.json'));
  if (!reusedTokenizer) {
    manifest.tokenizer = undefined;
    manifest.dataset = undefined; // a new tokenizer invalidates the token ids
    save();
    const r = await trainTokenizer({ texts: brownCorpusDocuments(), vocabSize, outDir: tokenizerDir, log, overwrite: true });
    tokenizerSeconds = r.seconds;
    manifest.tokenizer = { vocabSize };
    save();
  } else if (log) console.error(`tokenizer: reusing ${tokenizerDir} (vocab ${vocabSize})`);

  const d = manifest.dataset;
  const reusedDataset =
    d !== undefined &&
    d.seqLen === seqLen &&
    d.seed === seed &&
    d.testExamples === (o.testExamples ?? null) &&
    fs.existsSync(path.join(datasetDir, 'dataset_dict.json'));
  let stats: PrepareStats;
  if (reusedDataset) {
    stats = d!.stats;
    if (log) console.error(`prepare: reusing ${datasetDir} (${stats.blocks} blocks of ${seqLen})`);
  } else {
    stats = await prepareDataset({ inputs: ['brown'], tokenizer: tokenizerDir, seqLen, outDir: datasetDir, testExamples: o.testExamples, seed, log, overwrite: true });
    manifest.dataset = { seqLen, testExamples: o.testExamples ?? null, seed, stats };
    save();
  }
  return { tokenizerDir, datasetDir, stats, tokenizerSeconds, reusedTokenizer, reusedDataset };
}
