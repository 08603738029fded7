/**
 * `wm tokenizer <subcommand>`:
 *   train    train a byte-level BPE on text inputs and write a Hugging Face tokenizer folder
 *   encode   print the ids of a text (or a chat) with any tokenizer folder
 *   decode   print the text of ids
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { trainTokenizer, DEFAULT_SPECIAL_TOKENS } from '../data/bpe-trainer';
import { readRecords } from '../data/sources';
import { loadTokenizer } from '../data/tokenizer';

const USAGE = `usage:
  wm tokenizer train --input PATH [--input ...] --vocab-size N --out DIR [--min-frequency 2]
                     [--bos TOKEN] [--eos TOKEN] [--pad TOKEN] [--im-start TOKEN] [--im-end TOKEN]
                     [--special TOKEN ...] [--chat-template FILE.jinja] [--text-column text]
      The default chat template is ChatML with the --im-start/--im-end markers.
      PATH is a text/JSONL/Parquet/Arrow file, a glob, a folder, a datasets folder, or 'brown' (embedded).
  wm tokenizer encode --tokenizer DIR (--text TEXT | --chat-user TEXT [--generation-prompt])
  wm tokenizer decode --tokenizer DIR --ids 1,2,3`;

function need<T>(v: T | undefined, name: string): T {
  if (v === undefined) throw new Error(`--${name} is required\n\n${USAGE}`);
  return v;
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
  const { values } = parseArgs({
    args: argv,
    options: {
      input: { type: 'string', multiple: true },
      'vocab-size': { type: 'string' },
      out: { type: 'string' },
      'min-frequency': { type: 'string' },
      bos: { type: 'string' },
      eos: { type: 'string' },
      pad: { type: 'string' },
      'im-start': { type: 'string' },
      'im-end': { type: 'string' },
      'chat-template': { type: 'string' },
      special: { type: 'string', multiple: true },
      'text-column': { type: 'string' },
    },
  });
  const inputs = need(values.input, 'input');
  const vocabSize = Number(need(values['vocab-size'], 'vocab-size'));
  const r = await trainTokenizer({
    texts: corpusTexts(inputs, values['text-column']),
    vocabSize,
    outDir: need(values.out, 'out'),
    minFrequency: values['min-frequency'] === undefined ? undefined : Number(values['min-frequency']),
    specialTokens: {
      bos: values.bos ?? DEFAULT_SPECIAL_TOKENS.bos,
      eos: values.eos ?? DEFAULT_SPECIAL_TOKENS.eos,
      pad: values.pad ?? DEFAULT_SPECIAL_TOKENS.pad,
      imStart: values['im-start'] ?? DEFAULT_SPECIAL_TOKENS.imStart,
      imEnd: values['im-end'] ?? DEFAULT_SPECIAL_TOKENS.imEnd,
      extra: values.special,
    },
    chatTemplate: values['chat-template'] === undefined ? undefined : fs.readFileSync(values['chat-template'], 'utf8'),
  });
  console.log(JSON.stringify(r));
  console.log(`trained vocab ${r.vocabSize} in ${r.seconds.toFixed(2)}s`);
}

async function encode(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      tokenizer: { type: 'string' },
      text: { type: 'string' },
      'chat-user': { type: 'string' },
      'generation-prompt': { type: 'boolean' },
    },
  });
  const tok = await loadTokenizer(need(values.tokenizer, 'tokenizer'));
  if (values['chat-user'] !== undefined) {
    const rendered = tok.applyChatTemplate([{ role: 'user', content: values['chat-user'] }], { addGenerationPrompt: values['generation-prompt'] ?? false });
    console.log(JSON.stringify(rendered));
    console.log(JSON.stringify(tok.encode(rendered)));
  } else console.log(JSON.stringify(tok.encode(need(values.text, 'text'))));
}

async function decode(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { tokenizer: { type: 'string' }, ids: { type: 'string' } } });
  const tok = await loadTokenizer(need(values.tokenizer, 'tokenizer'));
  const ids = need(values.ids, 'ids')
    .split(',')
    .map((s) => {
      const n = Number(s.trim());
      if (!Number.isInteger(n) || n < 0 || n >= tok.vocabSize) throw new Error(`--ids: '${s}' is not a token id of this tokenizer (vocab ${tok.vocabSize})`);
      return n;
    });
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
  throw new Error(`unknown 'wm tokenizer' subcommand '${sub}'\n\n${USAGE}`);
}
