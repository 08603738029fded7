/**
 * A byte-level BPE trainer that writes a standard Hugging Face tokenizer folder.
 *
 * `@huggingface/tokenizers` (JS) can load and run tokenizers but not train them, so this is the training
 * half, the same algorithm as the Rust `tokenizers` BpeTrainer:
 *   1. pre-tokenise every text with the GPT-2 pattern and count the distinct pieces ("words");
 *   2. spell each word in byte-level symbols (256 base symbols, after the special tokens);
 *   3. repeatedly merge the most frequent adjacent pair of symbols into a new symbol, updating only the
 *      pair counts of the words that contain it (a max-heap with lazy deletion finds the next pair).
 * The result is a `tokenizer.json` (model BPE, ByteLevel pre-tokenizer and decoder, special tokens as added
 * tokens), a `tokenizer_config.json` with a chat template, and a `special_tokens_map.json`, which both the
 * JS and the Python libraries load.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic';
import { BYTE_TO_CHAR, GPT2_PATTERN } from './bytelevel';
import { Progress } from './progress';

/** The special tokens of a trained tokenizer; their ids are 0..k-1 in this order (bos, eos, pad, roles...). */
export interface SpecialTokens {
  bos: string;
  eos: string;
  pad: string;
  /** Chat role markers: the start and the end of a message. */
  imStart: string;
  imEnd: string;
  /** More special tokens, appended after the ones above. */
  extra?: string[];
}

export const DEFAULT_SPECIAL_TOKENS: SpecialTokens = {
  bos: '<|begin_of_text|>',
  eos: '<|end_of_text|>',
  pad: '<|pad|>',
  imStart: '<|im_start|>',
  imEnd: '<|im_end|>',
};

/**
 * ChatML, the layout of the reference's instruction data: `<|im_start|>role\ncontent<|im_end|>\n` per
 * message, and `<|im_start|>assistant\n` when a generation prompt is asked for.
 */
export function defaultChatTemplate(t: SpecialTokens = DEFAULT_SPECIAL_TOKENS): string {
  return (
    `{% for message in messages %}{{ '${t.imStart}' + message['role'] + '\\n' + message['content'] + '${t.imEnd}' + '\\n' }}{% endfor %}` +
    `{% if add_generation_prompt %}{{ '${t.imStart}assistant\\n' }}{% endif %}`
  );
}

export interface TrainTokenizerOptions {
  /** The training corpus, one document per item (an async iterable streams a large corpus). */
  texts: Iterable<string> | string[] | AsyncIterable<string>;
  /** Final vocabulary size including the special tokens and the 256 byte symbols. */
  vocabSize: number;
  /** Output folder (created); receives tokenizer.json, tokenizer_config.json, special_tokens_map.json. */
  outDir: string;
  specialTokens?: Partial<SpecialTokens>;
  /** Pairs seen fewer times than this are never merged (default 2). */
  minFrequency?: number;
  /** Jinja chat template for tokenizer_config.json (default: ChatML with the role markers). */
  chatTemplate?: string;
  /** Context length written as `model_max_length` (default 2048). */
  modelMaxLength?: number;
  /** Print progress (default true). */
  log?: boolean;
  /** Replace the tokenizer files already in `outDir` (other files in it are never touched). */
  overwrite?: boolean;
}

/** The files a tokenizer folder written here consists of. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

/**
 * The output rule of `wm tokenizer train` (see out-folder.ts: never lose what the program did not write): the three
 * tokenizer files are the only entries it writes, so other files may stay next to them (e.g. a model folder that
 * gets its tokenizer); tokenizer files already there are replaced only with `overwrite`.
 */
function checkTokenizerOutDir(dir: string, overwrite: boolean): void {
  if (!fs.existsSync(dir)) return;
  if (!fs.statSync(dir).isDirectory()) throw new Error(`wm tokenizer train: output ${dir} exists and is not a folder`);
  const existing = fs.readdirSync(dir).filter((e) => TOKENIZER_FILES.includes(e)).sort();
  if (existing.length && !overwrite) {
    throw new Error(`wm tokenizer train: ${dir} already holds a tokenizer (${existing.join(', ')}); pass --overwrite to replace those files ` +
      '(nothing else in the folder is touched), or choose another folder');
  }
}

export interface TrainTokenizerResult {
  outDir: string;
  vocabSize: number;
  numMerges: number;
  /** Distinct pre-tokenised pieces and their total count in the corpus. */
  numWords: number;
  numPieces: number;
  seconds: number;
}

/** A max-heap of (count, pair) entries; ties go to the smaller pair key so training is deterministic. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];
  get size(): number {
    return this.counts.length;
  }
  private above(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }
  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }
  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): { count: number; key: number } | undefined {
    const n = this.counts.length;
    if (n === 0) return undefined;
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    this.swap(0, n - 1);
    this.counts.pop();
    this.keys.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < n - 1 && this.above(l, best)) best = l;
      if (r < n - 1 && this.above(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}

// A pair of symbol ids (< 2^21 each) packed into one number, so maps can key on it.
const PAIR_SHIFT = 2 ** 21;
const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b;
const pairLeft = (k: number): number => Math.floor(k / PAIR_SHIFT);
const pairRight = (k: number): number => k % PAIR_SHIFT;

/** Count the GPT-2 pre-tokenised pieces of all texts, as UTF-8 byte strings keyed by their byte-level spelling. */
async function countWords(texts: Iterable<string> | AsyncIterable<string>, log: boolean): Promise<{ words: Map<string, number>; pieces: number }> {
  const words = new Map<string, number>();
  let pieces = 0;
  let docs = 0;
  const progress = new Progress('tokenizer: counting', log, 2000, 'pieces');
  for await (const text of texts) {
    if (typeof text !== 'string') throw new Error(`trainTokenizer: text ${docs} is ${typeof text}, expected a string`);
    let n = 0;
    for (const m of text.matchAll(GPT2_PATTERN)) {
      const w = m[0];
      words.set(w, (words.get(w) ?? 0) + 1);
      pieces++;
      n++;
    }
    docs++;
    progress.add(1, n);
  }
  if (log) console.error(`tokenizer: ${docs} documents, ${pieces} pieces, ${words.size} distinct`);
  return { words, pieces };
}

/**
 * Train a byte-level BPE tokenizer and write it as a Hugging Face tokenizer folder.
 * Ids: special tokens first (bos=0, eos=1, pad=2, im_start=3, im_end=4, extras), then the 256 bytes, then merges.
 */
export async function trainTokenizer(options: TrainTokenizerOptions): Promise<TrainTokenizerResult> {
  const t0 = performance.now();
  const log = options.log ?? true;
  const special: SpecialTokens = { ...DEFAULT_SPECIAL_TOKENS, ...options.specialTokens };
  const specialList = [special.bos, special.eos, special.pad, special.imStart, special.imEnd, ...(special.extra ?? [])];
  if (new Set(specialList).size !== specialList.length) {
    throw new Error(`trainTokenizer: special tokens must be distinct, got ${JSON.stringify(specialList)}`);
  }
  checkTokenizerOutDir(options.outDir, options.overwrite ?? false);
  const minFrequency = options.minFrequency ?? 2;
  const base = specialList.length + 256;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < base) {
    throw new Error(`trainTokenizer: vocabSize ${options.vocabSize} must be an integer >= ${base} (special tokens + 256 bytes)`);
  }

  // Symbol table: id -> byte-level string. Special tokens are added tokens, not BPE symbols, but they
  // occupy the first ids so bos/eos/pad have small, stable ids.
  const symbols: string[] = [...specialList, ...BYTE_TO_CHAR];
  const byteId = (b: number): number => specialList.length + b;

  const { words: wordCounts, pieces } = await countWords(options.texts, log);
  if (wordCounts.size === 0) throw new Error('trainTokenizer: the corpus is empty (no text to learn from)');

  // Each distinct word as an array of symbol ids, with its corpus count.
  const encoder = new TextEncoder();
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [w, c] of wordCounts) {
    words.push(Array.from(encoder.encode(w), byteId));
    freq.push(c);
  }

  // Pair counts over the corpus and, for each pair, the words it occurs in.
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPair = (k: number, wi: number, c: number): void => {
    pairCount.set(k, (pairCount.get(k) ?? 0) + c);
    let s = pairWords.get(k);
    if (!s) pairWords.set(k, (s = new Set()));
    s.add(wi);
  };
  for (let wi = 0; wi < words.length; wi++) {
    const w = words[wi]!;
    for (let i = 0; i + 1 < w.length; i++) addPair(pairKey(w[i]!, w[i + 1]!), wi, freq[wi]!);
  }
  const heap = new PairHeap();
  for (const [k, c] of pairCount) heap.push(c, k);

  const merges: string[] = [];
  const wanted = options.vocabSize - base;
  while (merges.length < wanted) {
    const top = heap.pop();
    if (!top) break;
    const current = pairCount.get(top.key) ?? 0;
    // Counts only ever go down for existing pairs, so a stale heap entry is re-queued with its real count.
    if (current !== top.count) {
      if (current > 0) heap.push(current, top.key);
      continue;
    }
    if (current < minFrequency) break;
    const a = pairLeft(top.key);
    const b = pairRight(top.key);
    const merged = symbols.length;
    symbols.push(symbols[a]! + symbols[b]!);
    merges.push(`${symbols[a]} ${symbols[b]}`);

    // Rewrite every word that contains (a, b); update the neighbours' pair counts incrementally.
    const touched = new Map<number, number>(); // new pairs -> count added (pushed on the heap afterwards)
    for (const wi of pairWords.get(top.key) ?? []) {
      const w = words[wi]!;
      const c = freq[wi]!;
      const out: number[] = [];
      let i = 0;
      let changed = false;
      while (i < w.length) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          changed = true;
          i += 2;
          out.push(merged);
        } else {
          out.push(w[i]!);
          i++;
        }
      }
      if (!changed) continue;
      // Remove the old pairs of this word and add the new ones (simple and exact: words are short).
      for (let j = 0; j + 1 < w.length; j++) {
        const k = pairKey(w[j]!, w[j + 1]!);
        pairCount.set(k, pairCount.get(k)! - c);
      }
      for (let j = 0; j + 1 < out.length; j++) {
        const k = pairKey(out[j]!, out[j + 1]!);
        pairCount.set(k, (pairCount.get(k) ?? 0) + c);
        let s = pairWords.get(k);
        if (!s) pairWords.set(k, (s = new Set()));
        s.add(wi);
        if (out[j] === merged || out[j + 1] === merged) touched.set(k, 1);
      }
      words[wi] = out;
    }
    pairCount.delete(top.key);
    pairWords.delete(top.key);
    for (const k of touched.keys()) heap.push(pairCount.get(k)!, k);
    if (log && merges.length % 1000 === 0) {
      console.error(`tokenizer: ${merges.length}/${wanted} merges, ${((performance.now() - t0) / 1000).toFixed(1)}s`);
    }
  }

  writeTokenizerFolder(options.outDir, {
    symbols,
    specialList,
    special,
    merges,
    chatTemplate: options.chatTemplate ?? defaultChatTemplate(special),
    modelMaxLength: options.modelMaxLength ?? 2048,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (log) {
    console.error(`tokenizer: vocab ${symbols.length} (${merges.length} merges) trained in ${seconds.toFixed(2)}s -> ${options.outDir}`);
  }
  return { outDir: options.outDir, vocabSize: symbols.length, numMerges: merges.length, numWords: wordCounts.size, numPieces: pieces, seconds };
}

interface TokenizerFiles {
  symbols: string[];
  specialList: string[];
  special: SpecialTokens;
  merges: string[];
  chatTemplate: string;
  modelMaxLength: number;
}

/** Write tokenizer.json, tokenizer_config.json and special_tokens_map.json as `tokenizers`/`transformers` do. */
function writeTokenizerFolder(outDir: string, f: TokenizerFiles): void {
  fs.mkdirSync(outDir, { recursive: true });
  const addedTokens = f.specialList.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const vocab: Record<string, number> = {};
  f.symbols.forEach((s, id) => (vocab[s] = id));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      // "a b" strings: read by every version of `tokenizers` (byte-level symbols never contain a space).
      merges: f.merges,
    },
  };
  const addedTokensDecoder: Record<string, unknown> = {};
  for (const t of addedTokens) {
    const { id, ...rest } = t;
    addedTokensDecoder[String(id)] = rest;
  }
  const extra = f.specialList.slice(3);
  const config = {
    added_tokens_decoder: addedTokensDecoder,
    additional_special_tokens: extra,
    bos_token: f.special.bos,
    eos_token: f.special.eos,
    pad_token: f.special.pad,
    unk_token: null,
    chat_template: f.chatTemplate,
    clean_up_tokenization_spaces: false,
    model_max_length: f.modelMaxLength,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  const specialMap = {
    additional_special_tokens: extra,
    bos_token: f.special.bos,
    eos_token: f.special.eos,
    pad_token: f.special.pad,
  };
  // each file atomically (temp + rename): a symlink planted at a name is replaced, its target untouched
  writeFileAtomic(path.join(outDir, 'tokenizer.json'), JSON.stringify(tokenizerJson, null, 2));
  writeFileAtomic(path.join(outDir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
  writeFileAtomic(path.join(outDir, 'special_tokens_map.json'), JSON.stringify(specialMap, null, 2));
}
