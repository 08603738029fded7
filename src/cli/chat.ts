/**
 * `wm chat --model DIR [options]`: talk to a chat model in the terminal.
 *
 * The conversation is rendered with the folder's chat template and the reply streams token by token (UTF-8 safe),
 * stopping at the template's end-of-turn token. History is kept and cut from the left (oldest exchange first, the
 * system prompt kept, with a notice) when prompt + reply budget outgrow the model's context. Decoding defaults come
 * from generation_config.json; the sampling flags of `wm generate` override them. Ctrl-C stops a reply (the chat
 * goes on; Ctrl-C at the prompt twice, /exit or Ctrl-D leaves). With piped input every line is one user message and
 * every reply is printed on one line of stdout (notices and speeds go to stderr).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { loadBackend } from '../runtime/backend';
import type { ChatMessage } from '../data/tokenizer';
import type { RouterLayout } from '../modules/cdmoe';
import { describeModelConfig } from '../models/auto';
import { TalkModel } from '../serve/talk-model';
import { defineCommand, parseCommandArgs, str, UsageError } from './args';
import { GENERATE_SPEC, generateOptionsFromArgs } from './generate';

export const USAGE = `usage: wm chat --model DIR [options]

  --model DIR               a chat model folder (tokenizer_config.json with a chat_template: wm sft / wm dpo write
                            one) or a run folder (its final/ model)
  --system TEXT             system prompt
  --max-new-tokens N        longest reply (default: generation_config.json, else 128)
  --greedy | --temperature T | --top-k K | --top-p P | --repetition-penalty R | --seed S   as wm generate
  --router-layout token|hf  CDMoE routing layout (default token)

In the chat: /reset clears the history, /system TEXT sets the system prompt (/system alone removes it),
/save FILE writes the conversation as JSON, /help, /exit. Ctrl-C stops a reply. With piped input every line is
one message and every reply one line of output.`;

const { prompt: _p, ids: _i, 'no-stream': _n, ...SAMPLING } = GENERATE_SPEC.options;

export const CHAT_SPEC = defineCommand({
  name: 'wm chat',
  usage: USAGE,
  options: { ...SAMPLING, system: { type: 'string' } },
});

const HELP = `/reset         forget the conversation (the system prompt stays)
/system TEXT   set the system prompt (/system alone removes it)
/save FILE     write the conversation to FILE as JSON
/help          this list
/exit          leave (also Ctrl-D; Ctrl-C stops a reply)`;

/** The conversation: system prompt + alternating user / assistant messages. */
export class Conversation {
  system: string | undefined;
  history: ChatMessage[] = [];

  constructor(system?: string) {
    this.system = system || undefined;
  }

  messages(extra: ChatMessage[] = []): ChatMessage[] {
    return [...(this.system ? [{ role: 'system', content: this.system }] : []), ...this.history, ...extra];
  }

  /**
   * The prompt for a new user message, dropping the oldest exchanges while prompt + `maxNew` exceed `context`.
   * Returns the ids, how many messages were dropped, and the reply budget (less than maxNew only when the new
   * message alone leaves less room); throws when the new message alone does not fit.
   */
  promptFor(model: TalkModel, user: string, maxNew: number): { ids: number[]; dropped: number; maxNew: number } {
    const context = model.contextLength;
    const budget = Math.max(1, context - Math.min(maxNew, Math.floor(context / 2)));
    let dropped = 0;
    for (;;) {
      const ids = model.chatPrompt(this.messages([{ role: 'user', content: user }]));
      if (ids.length <= budget || (this.history.length === 0 && ids.length < context)) {
        return { ids, dropped, maxNew: Math.min(maxNew, context - ids.length) };
      }
      if (this.history.length === 0) {
        throw new Error(`this message is ${ids.length} tokens with the template${this.system ? ' and the system prompt' : ''}; the model's context is ${context} tokens: shorten it`);
      }
      const n = this.history.length >= 2 ? 2 : 1;
      this.history.splice(0, n);
      dropped += n;
    }
  }
}

/**
 * Reply text as printed: control characters (a model can emit ESC sequences or carriage returns) are dropped;
 * piped output keeps one reply per line, so newlines become spaces there.
 */
export function terminalSafe(text: string, tty: boolean): string {
  const visible = text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
  return tty ? visible : visible.replace(/\n/g, ' ');
}

/** Write the conversation to `file` (never through a symlink). */
function saveConversation(file: string, model: TalkModel, conv: Conversation): string {
  const target = path.resolve(file);
  if (fs.existsSync(target) && fs.lstatSync(target).isSymbolicLink()) throw new Error(`/save: ${file} is a symbolic link; give another file`);
  fs.writeFileSync(target, JSON.stringify({ model: model.dir, messages: conv.messages() }, null, 2) + '\n');
  return target;
}

export async function run(argv: string[]): Promise<void> {
  const args = parseCommandArgs(CHAT_SPEC, argv);
  if (args.help) { console.log(USAGE); return; }
  const modelArg = str(args, 'model');
  if (!modelArg) throw new UsageError(`wm chat: --model is required\n\n${USAGE}`);
  await loadBackend({ workload: 'inference', log: false });
  const model = await TalkModel.load(modelArg, { routerLayout: (str(args, 'router-layout') as RouterLayout | undefined) ?? 'token' });
  try {
    if (!model.hasChatTemplate) throw new Error(`wm chat: ${model.noTemplateMessage()}; wm generate --model ${modelArg} --prompt "..." continues plain text`);
    const generation = generateOptionsFromArgs(args, { maxNewTokens: 128, ...model.defaults });
    await chatLoop(model, new Conversation(str(args, 'system')), generation);
  } finally {
    model.dispose();
  }
}

async function chatLoop(model: TalkModel, conv: Conversation, generation: ReturnType<typeof generateOptionsFromArgs>): Promise<void> {
  const tty = !!process.stdin.isTTY && !!process.stdout.isTTY;
  const note = (s: string) => (tty ? process.stdout.write(`\x1b[2m${s}\x1b[0m\n`) : process.stderr.write(s + '\n'));
  const rl = readline.createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty });
  let replying: AbortController | undefined;
  let ctrlC = 0;
  rl.on('SIGINT', () => {
    if (replying) { replying.abort(); return; }
    if (++ctrlC >= 2) { rl.close(); return; }
    process.stdout.write('\n');
    note('(Ctrl-C again, /exit or Ctrl-D to leave)');
    rl.prompt();
  });
  if (tty) {
    note(`${model.id}: ${describeModelConfig(model.model.config)}, context ${model.contextLength} tokens; ${generation.doSample ? `sampling (temperature ${generation.temperature ?? 1}, top-k ${generation.topK ?? 50}, top-p ${generation.topP ?? 1})` : 'greedy'}, up to ${generation.maxNewTokens} tokens a reply. /help lists the commands.`);
    rl.setPrompt('you> ');
    rl.prompt();
  }
  for await (const raw of rl) {
    ctrlC = 0;
    const line = raw.trim();
    if (line === '') { if (tty) rl.prompt(); continue; }
    if (line.startsWith('/')) {
      const [cmd] = line.split(/\s/, 1);
      const rest = line.slice(cmd!.length).trim();
      if (cmd === '/exit' || cmd === '/quit') break;
      if (cmd === '/help') note(HELP);
      else if (cmd === '/reset') { conv.history = []; note('(conversation cleared)'); }
      else if (cmd === '/system') { conv.system = rest || undefined; note(rest ? '(system prompt set)' : '(system prompt removed)'); }
      else if (cmd === '/save') {
        if (!rest) note('/save needs a file name: /save chat.json');
        else {
          try { note(`(saved to ${saveConversation(rest, model, conv)})`); } catch (e) { note((e as Error).message); }
        }
      } else note(`unknown command ${cmd}; /help lists the commands`);
      if (tty) rl.prompt();
      continue;
    }
    let prompt: { ids: number[]; dropped: number; maxNew: number };
    try {
      prompt = conv.promptFor(model, line, generation.maxNewTokens ?? 128);
    } catch (e) {
      note(`(${(e as Error).message})`);
      if (!tty) process.stdout.write('\n');
      if (tty) rl.prompt();
      continue;
    }
    if (prompt.dropped) note(`(history: dropped the ${prompt.dropped} oldest message${prompt.dropped > 1 ? 's' : ''} to fit the model's ${model.contextLength}-token context)`);
    replying = new AbortController();
    if (tty) process.stdout.write('bot> ');
    const r = await model.reply(prompt.ids, true, {
      generation: { ...generation, maxNewTokens: prompt.maxNew },
      signal: replying.signal,
      onText: (piece) => process.stdout.write(terminalSafe(piece, tty)),
    });
    replying = undefined;
    process.stdout.write('\n');
    conv.history.push({ role: 'user', content: line }, { role: 'assistant', content: r.text });
    const speed = `${r.completionTokens} tokens in ${r.seconds.toFixed(2)} s, ${(r.completionTokens / Math.max(r.seconds, 1e-9)).toFixed(1)} tokens/s`;
    note(`[${speed}${r.finish === 'aborted' ? '; stopped by Ctrl-C' : r.finish === 'length' ? `; cut at ${prompt.maxNew} tokens` : ''}]`);
    if (tty) rl.prompt();
  }
  rl.close();
}
