/**
 * Load any Hugging Face tokenizer folder (`tokenizer.json` + `tokenizer_config.json`) with
 * `@huggingface/tokenizers`, and render its chat template with `@huggingface/jinja`.
 *
 * Speed: for a plain byte-level BPE (what `trainTokenizer` writes) we pre-tokenize ourselves with the same
 * GPT-2 regex and run the library's BPE once per distinct piece (cached); the library's own word cache holds
 * only 10k pieces, and a corpus has more. Other tokenizers go through the library, with long inputs cut into
 * chunks at pre-tokenisation boundaries. Both give the library's ids exactly (checked in tests).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import { GPT2_PATTERN } from './bytelevel';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface TokenizerEncodeOptions {
  /** Let the tokenizer's post-processor add its special tokens (e.g. a BOS); default false. */
  addSpecialTokens?: boolean;
}

export interface TokenizerDecodeOptions {
  /** Drop special tokens (bos, eos, pad, role markers) from the text; default false. */
  skipSpecialTokens?: boolean;
}

/** Strings longer than this are encoded in chunks (characters). */
export const DEFAULT_CHUNK_CHARS = 4096;

/**
 * Cut a text into pieces of about `maxChars` whose concatenation is the text, only at places where a
 * GPT-2/Llama-style pre-tokenizer would start a new piece anyway: after a newline or before a space, with
 * a non-space character on both sides. A text without such a place stays whole.
 */
export function chunkText(text: string, maxChars = DEFAULT_CHUNK_CHARS): string[] {
  if (text.length <= maxChars) return [text];
  const isSpace = (c: string | undefined): boolean => c === undefined || /\s/.test(c);
  const out: string[] = [];
  let start = 0;
  while (text.length - start > maxChars) {
    let cut = -1;
    // Prefer the last safe newline in the window, else the last safe space.
    for (let i = start + maxChars; i > start; i--) {
      if (text[i - 1] === '\n' && !isSpace(text[i - 2]) && !isSpace(text[i])) {
        cut = i;
        break;
      }
    }
    if (cut < 0) {
      for (let i = start + maxChars; i > start; i--) {
        if (text[i] === ' ' && !isSpace(text[i - 1]) && !isSpace(text[i + 1])) {
          cut = i;
          break;
        }
      }
    }
    if (cut < 0) break; // no safe place: keep the rest whole
    out.push(text.slice(start, cut));
    start = cut;
  }
  out.push(text.slice(start));
  return out;
}

type Json = Record<string, unknown>;

function readJson(file: string, what: string): Json {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${what}: cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(raw) as Json;
  } catch (e) {
    throw new Error(`${what}: ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** `bos_token` etc. are strings or `{ content: string }` objects in tokenizer_config.json. */
function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/** Model types of tokenizer.json that `@huggingface/tokenizers` implements. */
const MODEL_TYPES = ['BPE', 'WordPiece', 'WordLevel', 'Unigram'];

const describe = (v: unknown): string => (Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`);

/**
 * Check the structure and ranges of a tokenizer.json before the library reads it (the library accepts a string
 * vocabulary and encodes every text to [], takes negative ids and merges of unknown tokens, and an added token
 * with id 1e9 makes a vocabulary of 1e9+1). Errors name the file and the field.
 */
export function validateTokenizerJson(j: unknown, file: string): void {
  const fail = (field: string, msg: string): never => { throw new Error(`loadTokenizer: ${file}: ${field} ${msg}`); };
  if (j === null || typeof j !== 'object' || Array.isArray(j)) fail('the top level', `must be an object, got ${describe(j)}`);
  const t = j as Json;
  const model = t.model as Json;
  if (model === null || typeof model !== 'object' || Array.isArray(model)) return fail('model', `must be an object, got ${describe(model)}`);
  if (typeof model.type !== 'string' || !MODEL_TYPES.includes(model.type)) fail('model.type', `${JSON.stringify(model.type)} is not a model type this library reads (${MODEL_TYPES.join(', ')})`);
  const ids: { field: string; id: unknown }[] = [];
  const tokens = new Set<string>();
  if (model.type === 'Unigram') {
    if (!Array.isArray(model.vocab)) fail('model.vocab', `of a Unigram model must be an array of [piece, score] pairs, got ${describe(model.vocab)}`);
    (model.vocab as unknown[]).forEach((e, i) => {
      if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || typeof e[1] !== 'number' || !Number.isFinite(e[1])) fail(`model.vocab[${i}]`, `must be a [piece, score] pair, got ${JSON.stringify(e)?.slice(0, 60)}`);
      tokens.add((e as [string, number])[0]);
    });
  } else {
    const v = model.vocab;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) fail('model.vocab', `of a ${model.type} model must be an object of token -> id, got ${describe(v)}`);
    for (const [tok, id] of Object.entries(v as Json)) { ids.push({ field: `model.vocab[${JSON.stringify(tok)}]`, id }); tokens.add(tok); }
  }
  if (model.type === 'BPE' && model.merges !== undefined) {
    if (!Array.isArray(model.merges)) fail('model.merges', `must be an array, got ${describe(model.merges)}`);
    (model.merges as unknown[]).forEach((m, i) => {
      const pair = typeof m === 'string' ? m.split(' ') : m;
      if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((x) => typeof x === 'string')) return fail(`model.merges[${i}]`, `must be "a b" or ["a", "b"], got ${JSON.stringify(m)?.slice(0, 60)}`);
      for (const part of [pair[0], pair[1], pair[0] + pair[1]]) {
        if (!tokens.has(part)) fail(`model.merges[${i}]`, `${JSON.stringify(m)} uses ${JSON.stringify(part)}, which is not in model.vocab`);
      }
    });
  }
  const added = t.added_tokens ?? [];
  if (!Array.isArray(added)) fail('added_tokens', `must be an array, got ${describe(added)}`);
  (added as unknown[]).forEach((a, i) => {
    const e = a as Json;
    if (e === null || typeof e !== 'object' || typeof e.content !== 'string' || e.content === '') fail(`added_tokens[${i}]`, `must be an object with a non-empty string content, got ${JSON.stringify(a)?.slice(0, 60)}`);
    ids.push({ field: `added_tokens[${i}].id`, id: e.id });
  });
  // ids: integers from 0, no further beyond the number of entries than a sane gap (the embedding has max id + 1 rows)
  const entries = tokens.size + (added as unknown[]).length;
  const limit = 2 * entries + 1024;
  for (const { field, id } of ids) {
    if (!Number.isInteger(id) || (id as number) < 0) fail(field, `must be a non-negative integer id, got ${JSON.stringify(id)}`);
    if ((id as number) >= limit) fail(field, `= ${id} is far beyond the ${entries} vocabulary entries (ids must stay below ${limit}); the file is corrupt`);
  }
}

/**
 * Bounds of one chat-template rendering. The jinja sandbox keeps a template from reaching the system but not from
 * looping: `{% for a in range(1000000000) %}` builds a 10^9-element array (V8 aborts the process) and three nested
 * range(3000) loops run for hours. A normal template takes a few dozen steps per message.
 */
export const CHAT_TEMPLATE_LIMITS = {
  /** Evaluated expressions and statements (ChatML takes ~15 per message; 200k are ~0.2-1 s of work). */
  steps: 200_000,
  /** Wall time, for steps that are each slow (a filter over a long string in a loop). */
  seconds: 10,
  /** Elements of one range(). */
  rangeItems: 100_000,
  /** Characters of any string the template builds, beyond 4x the characters of the messages. */
  chars: 1_000_000,
};

/** Python's range() with at most CHAT_TEMPLATE_LIMITS.rangeItems elements. */
function boundedRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() step must not be zero');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (!(n <= CHAT_TEMPLATE_LIMITS.rangeItems)) throw new Error(`range(${start}, ${stop}, ${step}) has ${n} elements, over the limit of ${CHAT_TEMPLATE_LIMITS.rangeItems}`);
  return Array.from({ length: n }, (_, i) => start + i * step);
}

let strftimeTemplate: Template | undefined;
/** The library's own strftime_now (a global of its Template.render, not exported). */
function strftimeNow(format: string): string {
  strftimeTemplate ??= new Template('{{ strftime_now(f) }}');
  return strftimeTemplate.render({ f: format });
}

type Evaluate = (node: unknown, scope: unknown) => { value?: unknown };

/**
 * Template.render with bounds: the library's globals (range bounded), and an interpreter whose every evaluation
 * counts a step and whose string and array results are size-checked (patched on this instance only).
 */
function renderBounded(template: Template, items: Record<string, unknown>, inputChars: number): string {
  const env = new Environment();
  const globals: Record<string, unknown> = {
    false: false, true: true, none: null, False: false, True: true, None: null,
    raise_exception: (message: unknown) => { throw new Error(String(message)); },
    range: boundedRange, strftime_now: strftimeNow,
  };
  for (const [k, v] of Object.entries({ ...globals, ...items })) env.set(k, v);
  const interpreter = new Interpreter(env);
  const self = interpreter as unknown as { evaluate: Evaluate };
  const evaluate = self.evaluate.bind(interpreter);
  const maxChars = CHAT_TEMPLATE_LIMITS.chars + 4 * inputChars;
  let steps = 0;
  const deadline = Date.now() + CHAT_TEMPLATE_LIMITS.seconds * 1000;
  self.evaluate = (node, scope) => {
    if (++steps > CHAT_TEMPLATE_LIMITS.steps) throw new Error(`rendering took more than ${CHAT_TEMPLATE_LIMITS.steps} steps (a loop that does not end in time)`);
    if (steps % 64 === 0 && Date.now() > deadline) throw new Error(`rendering took more than ${CHAT_TEMPLATE_LIMITS.seconds} s`);
    const r = evaluate(node, scope);
    const v = r?.value;
    if (typeof v === 'string' && v.length > maxChars) throw new Error(`the template built a string of ${v.length} characters, over the limit of ${maxChars}`);
    if (Array.isArray(v) && v.length > CHAT_TEMPLATE_LIMITS.rangeItems) throw new Error(`the template built a list of ${v.length} items, over the limit of ${CHAT_TEMPLATE_LIMITS.rangeItems}`);
    return r;
  };
  return interpreter.run(template.parsed).value as string;
}

/** Pieces cached by the fast path before the cache is cleared (bounded memory). */
const PIECE_CACHE_LIMIT = 500_000;

/**
 * True for a plain GPT-2-style byte-level BPE (what `trainTokenizer` writes): no normalizer, ByteLevel
 * pre-tokenizer with the GPT-2 regex and no prefix space, no post-processor additions, added tokens
 * matched verbatim. For these, encoding piece by piece (with a cache) gives exactly the library's ids.
 */
function isPlainByteLevelBpe(j: Json): boolean {
  const pre = j.pre_tokenizer as Json | null;
  const post = j.post_processor as Json | null;
  const model = j.model as Json | null;
  const added = (j.added_tokens as Json[] | undefined) ?? [];
  return (
    !j.normalizer &&
    pre?.type === 'ByteLevel' &&
    pre.use_regex !== false &&
    !pre.add_prefix_space &&
    (!post || post.type === 'ByteLevel') &&
    model?.type === 'BPE' &&
    !model.dropout &&
    added.every((t) => !t.lstrip && !t.rstrip && !t.single_word && !t.normalized)
  );
}

/** Pre-tokenizers for which chunking is exact (ByteLevel, or regex Split as in Llama 3 / Qwen). */
function chunkingIsSafe(tokenizerJson: Json): boolean {
  const pre = tokenizerJson.pre_tokenizer as Json | null | undefined;
  if (!pre) return false;
  const ok = (p: Json): boolean =>
    (p.type === 'ByteLevel' && !p.add_prefix_space) || p.type === 'Split' || p.type === 'Digits' || p.type === 'Punctuation';
  if (pre.type === 'Sequence') return ((pre.pretokenizers as Json[]) ?? []).every(ok);
  return ok(pre);
}

/**
 * The part of `@huggingface/tokenizers`' Tokenizer this class uses. Declared here so the published .d.ts files do not
 * import that ES-only package (CommonJS declarations cannot, under `moduleResolution: node16`).
 */
export interface HfTokenizerCore {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens?: boolean): Map<string, number>;
}

export class WmTokenizer {
  readonly dir: string;
  /** The underlying `@huggingface/tokenizers` Tokenizer. */
  readonly hf: HfTokenizerCore;
  readonly tokenizerJson: Json;
  readonly config: Json;
  /** One more than the largest id (vocabulary plus added tokens). */
  readonly vocabSize: number;
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly padToken: string | undefined;
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  /** The Jinja chat template of tokenizer_config.json, if any. */
  readonly chatTemplate: string | undefined;
  /** Library path: encode strings longer than this in chunks (0 turns chunking off). */
  chunkChars: number;
  /**
   * Encode plain byte-level BPE tokenizers piece by piece with a cache (3-20x faster, same ids; set false
   * to go through the library on whole strings/chunks). Ignored for other tokenizers.
   */
  useFastPath = true;
  /** Whether this tokenizer qualifies for the fast path. */
  get hasFastPath(): boolean {
    return this.pieceCache !== undefined;
  }
  private readonly canChunk: boolean;
  private compiledTemplate: Template | undefined;
  /** Fast path (plain byte-level BPE only): piece -> ids, and the added tokens to split on first. */
  private readonly pieceCache: Map<string, number[]> | undefined;
  private readonly addedSplit: RegExp | undefined;
  private readonly addedIds = new Map<string, number>();

  constructor(dir: string, tokenizerJson: Json, config: Json) {
    this.dir = dir;
    this.tokenizerJson = tokenizerJson;
    this.config = config;
    validateTokenizerJson(tokenizerJson, path.join(dir, 'tokenizer.json'));
    try {
      this.hf = new Tokenizer(tokenizerJson, config);
    } catch (e) {
      throw new Error(`loadTokenizer: ${path.join(dir, 'tokenizer.json')} cannot be loaded: ${(e as Error).message}`);
    }
    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.bosToken = tokenString(config.bos_token);
    this.eosToken = tokenString(config.eos_token);
    this.padToken = tokenString(config.pad_token);
    const idOf = (t: string | undefined): number | undefined => (t === undefined ? undefined : this.hf.token_to_id(t));
    this.bosTokenId = idOf(this.bosToken);
    this.eosTokenId = idOf(this.eosToken);
    this.padTokenId = idOf(this.padToken);
    this.chatTemplate = typeof config.chat_template === 'string' ? config.chat_template : undefined;
    this.canChunk = chunkingIsSafe(tokenizerJson);
    this.chunkChars = DEFAULT_CHUNK_CHARS;
    if (isPlainByteLevelBpe(tokenizerJson)) {
      this.pieceCache = new Map();
      const added = ((tokenizerJson.added_tokens as { id: number; content: string }[] | undefined) ?? []).filter((t) => t.content);
      for (const t of added) this.addedIds.set(t.content, t.id);
      // Longest first, so a token that contains another wins (as the library's trie does).
      const alts = [...this.addedIds.keys()].sort((a, b) => b.length - a.length).map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      this.addedSplit = alts.length ? new RegExp(alts.join('|'), 'g') : undefined;
    }
  }

  /** Plain byte-level BPE: split off added tokens, pre-tokenize with the GPT-2 regex, BPE each piece once. */
  private encodeByPieces(text: string, out: number[]): void {
    const cache = this.pieceCache!;
    const encodeSegment = (seg: string): void => {
      for (const m of seg.matchAll(GPT2_PATTERN)) {
        const piece = m[0];
        let ids = cache.get(piece);
        if (ids === undefined) {
          ids = this.hf.encode(piece, { add_special_tokens: false }).ids;
          if (cache.size >= PIECE_CACHE_LIMIT) cache.clear();
          cache.set(piece, ids);
        }
        for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
      }
    };
    if (!this.addedSplit) return encodeSegment(text);
    let last = 0;
    for (const m of text.matchAll(this.addedSplit)) {
      if (m.index! > last) encodeSegment(text.slice(last, m.index));
      out.push(this.addedIds.get(m[0])!);
      last = m.index! + m[0].length;
    }
    if (last < text.length) encodeSegment(text.slice(last));
  }

  /** Token ids of a text. Long texts are encoded in chunks with the same result. */
  encode(text: string, opts: TokenizerEncodeOptions = {}): number[] {
    const add = opts.addSpecialTokens ?? false;
    if (this.pieceCache && this.useFastPath) {
      const ids: number[] = add ? this.hf.encode('', { add_special_tokens: true }).ids : [];
      this.encodeByPieces(text, ids);
      return ids;
    }
    if (!this.canChunk || this.chunkChars <= 0 || text.length <= this.chunkChars) {
      return this.hf.encode(text, { add_special_tokens: add }).ids;
    }
    const ids: number[] = add ? this.hf.encode('', { add_special_tokens: true }).ids : [];
    for (const piece of chunkText(text, this.chunkChars)) {
      for (const id of this.hf.encode(piece, { add_special_tokens: false }).ids) ids.push(id);
    }
    return ids;
  }

  decode(ids: number[] | Int32Array, opts: TokenizerDecodeOptions = {}): string {
    if (ids.length === 0) return ''; // tokenizers.js rejects an empty list
    return this.hf.decode(Array.from(ids), {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  /** Render messages with the chat template (as `transformers` does, with the special tokens as variables). */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    if (!this.chatTemplate) {
      throw new Error(`applyChatTemplate: ${path.join(this.dir, 'tokenizer_config.json')} has no chat_template`);
    }
    for (const [i, m] of messages.entries()) {
      if (typeof m?.role !== 'string' || typeof m?.content !== 'string') {
        throw new Error(`applyChatTemplate: message ${i} must have string 'role' and 'content', got ${JSON.stringify(m)}`);
      }
    }
    const where = `${path.join(this.dir, 'tokenizer_config.json')} chat_template`;
    try {
      this.compiledTemplate ??= new Template(this.chatTemplate);
    } catch (e) {
      throw new Error(`applyChatTemplate: ${where} does not parse: ${(e as Error).message}`);
    }
    try {
      const items = { messages, add_generation_prompt: opts.addGenerationPrompt ?? false, bos_token: this.bosToken ?? '', eos_token: this.eosToken ?? '', pad_token: this.padToken ?? '' };
      return renderBounded(this.compiledTemplate, items, messages.reduce((a, m) => a + m.content.length + m.role.length, 0));
    } catch (e) {
      // RangeError covers a recursion that overflows the stack and a string past V8's limit
      throw new Error(`applyChatTemplate: ${where} failed to render: ${(e as Error).message}`);
    }
  }

  /** Token ids of a chat (the rendered template carries its own special tokens). */
  encodeChat(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, opts), { addSpecialTokens: false });
  }
}

/** Load a Hugging Face tokenizer folder: `tokenizer.json` (required) and `tokenizer_config.json` (optional). */
export async function loadTokenizer(dir: string): Promise<WmTokenizer> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(`loadTokenizer: tokenizer folder ${dir} does not exist`);
  }
  const tokFile = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokFile)) {
    throw new Error(`loadTokenizer: ${tokFile} is missing (a tokenizer folder needs tokenizer.json)`);
  }
  const tokenizerJson = readJson(tokFile, 'loadTokenizer');
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(cfgFile) ? readJson(cfgFile, 'loadTokenizer') : {};
  return new WmTokenizer(dir, tokenizerJson, config);
}

/**
 * Streaming decode (what transformers' `TextStreamer` does): feed tokens one at a time, get back only the text that
 * is complete. Byte-level BPE splits a multi-byte UTF-8 character (é, 日, 🙂) over several tokens; decoding a prefix
 * that ends inside one yields U+FFFD replacement characters, which later tokens turn back into the real character.
 * So a trailing run of U+FFFD (and a dangling high surrogate) is held back until it resolves or the stream ends.
 *
 *   const stream = new IncrementalDecoder(tok, { skipSpecialTokens: true });
 *   model.generate([ids], { onToken: (t) => process.stdout.write(stream.push(t[0])) });
 *   process.stdout.write(stream.flush());
 */
export class IncrementalDecoder {
  private readonly ids: number[] = [];
  /** Characters (UTF-16 units) of the decoded text already handed out. */
  private emitted = 0;

  constructor(private readonly tok: { decode(ids: number[], opts?: TokenizerDecodeOptions): string }, private readonly opts: TokenizerDecodeOptions = {}) {}

  /** Add one token; returns the newly completed text (possibly ''). */
  push(id: number): string {
    this.ids.push(id);
    const text = this.tok.decode(this.ids, this.opts);
    let end = text.length;
    while (end > this.emitted && text.charCodeAt(end - 1) === 0xfffd) end--;
    if (end > this.emitted && isHighSurrogate(text.charCodeAt(end - 1))) end--;
    return this.take(text, end);
  }

  /** The rest (call at the end of the stream: a replacement character that never resolved is real). */
  flush(): string {
    const text = this.ids.length ? this.tok.decode(this.ids, this.opts) : '';
    return this.take(text, text.length);
  }

  private take(text: string, end: number): string {
    if (end <= this.emitted) return '';
    const out = text.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
