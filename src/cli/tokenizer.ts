/**
 * `wm tokenizer <subcommand>`:
 *   train    train a byte-level BPE on text inputs and write a Hugging Face tokenizer folder
 *   encode   print the ids of a text (or a chat) with any tokenizer folder
 *   decode   print the text of ids
 */
import * as fs from 'node:fs';
import { trainTokenizer, DEFAULT_SPECIAL_TOKENS } from '../data/bpe-trainer';
import { readRecords } from '../data/sources';
import { loadTokenizer } from '../data/tokenizer';
import { CommandSpec, defineCommand, flag, num, parseCommandArgs, parseIntList, ParsedArgs, str, strs, UsageError } from './args';

const USAGE = `usage:
  wm tokenizer train --input PATH [--input ...] --vocab-size N --out DIR [--overwrite] [--min-frequency 2]
                     [--bos TOKEN] [--eos TOKEN] [--pad TOKEN] [--im-start TOKEN] [--im-end TOKEN]
                     [--special TOKEN ...] [--chat-template FILE.jinja] [--text-column text]
      The default chat template is ChatML with the --im-start/--im-end markers.
      PATH is a text/JSONL/Parquet/Arrow file, a glob, a folder, a datasets folder, or 'brown' (embedded).
  wm tokenizer encode --tokenizer DIR (--text TEXT | --chat-user TEXT [--generation-prompt])
  wm tokenizer decode --tokenizer DIR --ids 1,2,3`;

const SPECS = {
  train: defineCommand({
    name: 'wm tokenizer train',
    usage: USAGE,
    options: {
      input: { type: 'string', multiple: true },
      'vocab-size': { type: 'int', required: true, min: 258 },
      out: { type: 'string', required: true },
      overwrite: { type: 'boolean' },
      'min-frequency': { type: 'int', min: 1 },
      bos: { type: 'string' },
      eos: { type: 'string' },
      pad: { type: 'string' },
      'im-start': { type: 'string' },
      'im-end': { type: 'string' },
      'chat-template': { type: 'string' },
      special: { type: 'string', multiple: true },
      'text-column': { type: 'string' },
    },
  }),
  encode: defineCommand({
    name: 'wm tokenizer encode',
    usage: USAGE,
    options: {
      tokenizer: { type: 'string', required: true },
      text: { type: 'string' },
      'chat-user': { type: 'string' },
      'generation-prompt': { type: 'boolean' },
    },
  }),
  decode: defineCommand({
    name: 'wm tokenizer decode',
    usage: USAGE,
    options: { tokenizer: { type: 'string', required: true }, ids: { type: 'string', required: true } },
  }),
} satisfies Record<string, CommandSpec>;

/** Parse; `undefined` when --help was asked for (and printed). */
function parse(spec: CommandSpec, argv: string[]): ParsedArgs | undefined {
  const a = parseCommandArgs(spec, argv);
  if (a.help) { console.log(USAGE); return undefined; }
  return a;
}

/** The text of every record of every input (prompts and answers both feed the tokenizer). */
async function* corpusTexts(inputs: string[], textColumn?: string): AsyncGenerator<string> {
  for (const input of inputs) {
    for await (const r of readRecords(input, { textColumn })) {
      if (r.prompt !== undefined) yield r.prompt;
      if (r.text !== undefined) yield r.text;
      for (const m of r.messages ?? []) yield m.content;
    }
  }
}

async function train(argv: string[]): Promise<void> {
  const a = parse(SPECS.train, argv);
  if (!a) return;
  const inputs = strs(a, 'input');
  if (inputs.length === 0) throw new UsageError(`wm tokenizer train: --input is required

${USAGE}`);
  const vocabSize = num(a, 'vocab-size')!;
  const chatTemplate = str(a, 'chat-template');
  const r = await trainTokenizer({
    texts: corpusTexts(inputs, str(a, 'text-column')),
    vocabSize,
    outDir: str(a, 'out')!,
    overwrite: flag(a, 'overwrite'),
    minFrequency: num(a, 'min-frequency'),
    specialTokens: {
      bos: str(a, 'bos') ?? DEFAULT_SPECIAL_TOKENS.bos,
      eos: str(a, 'eos') ?? DEFAULT_SPECIAL_TOKENS.eos,
      pad: str(a, 'pad') ?? DEFAULT_SPECIAL_TOKENS.pad,
      imStart: str(a, 'im-start') ?? DEFAULT_SPECIAL_TOKENS.imStart,
      imEnd: str(a, 'im-end') ?? DEFAULT_SPECIAL_TOKENS.imEnd,
      extra: strs(a, 'special').length ? strs(a, 'special') : undefined,
    },
    chatTemplate: chatTemplate === undefined ? undefined : fs.readFileSync(chatTemplate, 'utf8'),
  });
  console.log(JSON.stringify(r));
  console.log(`trained vocab ${r.vocabSize} in ${r.seconds.toFixed(2)}s`);
}

async function encode(argv: string[]): Promise<void> {
  const a = parse(SPECS.encode, argv);
  if (!a) return;
  const tok = await loadTokenizer(str(a, 'tokenizer')!);
  const chatUser = str(a, 'chat-user');
  const text = str(a, 'text');
  if (chatUser !== undefined) {
    const rendered = tok.applyChatTemplate([{ role: 'user', content: chatUser }], { addGenerationPrompt: flag(a, 'generation-prompt') });
    console.log(JSON.stringify(rendered));
    console.log(JSON.stringify(tok.encode(rendered)));
  } else if (text !== undefined) console.log(JSON.stringify(tok.encode(text)));
  else throw new UsageError(`wm tokenizer encode: give --text TEXT or --chat-user TEXT\n\n${USAGE}`);
}

async function decode(argv: string[]): Promise<void> {
  const a = parse(SPECS.decode, argv);
  if (!a) return;
  const ids = parseIntList(str(a, 'ids')!, 'ids', { min: 0 });
  const tok = await loadTokenizer(str(a, 'tokenizer')!);
  const bad = ids.findIndex((n) => n >= tok.vocabSize);
  if (bad >= 0) throw new UsageError(`--ids: item ${bad + 1} (${ids[bad]}) is not a token id of this tokenizer (vocab ${tok.vocabSize})`);
  console.log(JSON.stringify(tok.decode(ids)));
}

export async function run(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === 'train') return train(rest);
  if (sub === 'encode') return encode(rest);
  if (sub === 'decode') return decode(rest);
  if (!sub || sub === '--help' || sub === '-h') {
    console.log(USAGE);
    return;
  }
  throw new UsageError(`wm tokenizer: unknown subcommand '${sub}' (train, encode, decode)\n\n${USAGE}`);
}
