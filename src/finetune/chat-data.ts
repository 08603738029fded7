/**
 * Rows of SFT data -> token ids + loss mask (spec 1.1-1.3).
 *
 *   messages           rendered with the tokenizer folder's jinja chat template; by default only assistant tokens
 *                      carry the loss. The assistant tokens of message i are the render difference
 *                        render(messages[:i+1])  minus  render(messages[:i], add_generation_prompt=True)
 *                      (ChatML: `content<|im_end|>\n`; the seed's Doge layout: `content<|end_of_text|>\n\n`).
 *   prompt/completion  the completion only, by the same rule (strings: prompt + completion + EOS).
 *   text               every token, EOS appended (as pre-training preparation does).
 * Plain strings get the tokenizer's own special tokens (a BOS for the Doge tokenizer) unless they already start
 * with the BOS text (then they are a rendered template): never a double BOS (encodePlain).
 *
 * Ids are made segment by segment (non-assistant / assistant text, each encoded without special tokens, then
 * concatenated). A boundary falls at a special token or after a newline, which byte-level BPE pre-tokenisation
 * never merges across, so this equals encoding the whole text; it is checked once per example, and when it fails
 * the whole text is encoded and the mask taken from token offsets (with a warning, as TRL does).
 * Rendered templates carry their own BOS, so they are encoded without the post-processor's (never double BOS).
 */
import type { ChatMessage, WmTokenizer } from '../data/tokenizer';

/** What the loss is computed on: assistant (or completion) tokens only, or every token (the seed's text SFT). */
export type LossOn = 'assistant' | 'all';

export interface ChatExample {
  inputIds: number[];
  /** 1 = a target (when t >= 1), 0 = context only. Same length as inputIds. */
  lossMask: number[];
}

/** The tokenizer surface this file needs (WmTokenizer has it). */
export type ChatTokenizer = Pick<WmTokenizer, 'encode' | 'decode' | 'applyChatTemplate' | 'chatTemplate' | 'eosTokenId' | 'eosToken' | 'bosToken' | 'dir'>;

/**
 * The chat template of the seed's Doge tokenizer (Llama-3 layout with Doge's special tokens): BOS, a system
 * block with the two date lines and the trimmed system message, then `<|start_header_id|>{role}<|end_header_id|>\n
 * {content|trim}<|end_of_text|>\n\n` per message; generation prompt `<|start_header_id|>assistant<|end_header_id|>\n`.
 */
export const DOGE_CHAT_TEMPLATE =
  "{{- bos_token }}" +
  "{%- if messages | length > 0 and messages[0]['role'] == 'system' %}" +
  "{%- set system_message = messages[0]['content'] | trim %}{%- set loop_messages = messages[1:] %}" +
  "{%- else %}{%- set system_message = '' %}{%- set loop_messages = messages %}{%- endif %}" +
  "{{- '<|start_header_id|>system<|end_header_id|>\\n' }}" +
  "{{- 'Cutting Knowledge Date: December 2024\\n' }}{{- 'Today Date: December 2024\\n' }}" +
  "{{- system_message }}{{- '<|end_of_text|>\\n\\n' }}" +
  "{%- for message in loop_messages %}" +
  "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n' + message['content'] | trim + '<|end_of_text|>\\n\\n' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n' }}{%- endif %}";

const ROLES = new Set(['system', 'user', 'assistant']);

/** Check a message list (roles, string contents, at least one assistant turn when needed); `where` names the row. */
export function checkMessages(messages: unknown, where: string, needAssistant = true): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new Error(`${where}: 'messages' must be a non-empty list of {role, content}`);
  messages.forEach((m, i) => {
    const mm = m as Partial<ChatMessage> | null;
    if (!mm || typeof mm !== 'object') throw new Error(`${where}: message ${i} is not an object`);
    if (typeof mm.role !== 'string' || !ROLES.has(mm.role)) throw new Error(`${where}: message ${i} has role ${JSON.stringify(mm.role)}; expected system, user or assistant`);
    if (typeof mm.content !== 'string') throw new Error(`${where}: message ${i} (${mm.role}) has no string 'content'`);
  });
  if (needAssistant && !messages.some((m) => (m as ChatMessage).role === 'assistant')) {
    throw new Error(`${where}: no assistant message, so there is nothing to train on`);
  }
  return (messages as ChatMessage[]).map((m) => ({ role: m.role, content: m.content }));
}

function needTemplate(tok: ChatTokenizer, where: string): void {
  if (!tok.chatTemplate) throw new Error(`${where}: the tokenizer ${tok.dir}/tokenizer_config.json has no chat_template, which chat rows need`);
}

/** Character spans [start, end) of the assistant tokens of each assistant message in render(messages). */
export function assistantSpans(tok: ChatTokenizer, messages: ChatMessage[], where = 'assistantSpans'): { text: string; spans: [number, number][] } {
  needTemplate(tok, where);
  const text = tok.applyChatTemplate(messages);
  const spans: [number, number][] = [];
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const before = tok.applyChatTemplate(messages.slice(0, i), { addGenerationPrompt: true });
    const upTo = tok.applyChatTemplate(messages.slice(0, i + 1));
    if (!text.startsWith(before) || !text.startsWith(upTo) || upTo.length < before.length) {
      throw new Error(`${where}: the chat template does not render message ${i} as a prefix of the whole chat, so the assistant tokens cannot be located by the render difference`);
    }
    if (upTo.length > before.length) spans.push([before.length, upTo.length]);
  });
  return { text, spans };
}

let warnedFallback = false;

/** Encode `text` with `spans` marked, segment-wise, checking equality with the whole-text encoding. */
export function encodeWithSpans(tok: ChatTokenizer, text: string, spans: [number, number][], opts: { warn?: (m: string) => void } = {}): ChatExample {
  const inputIds: number[] = [];
  const lossMask: number[] = [];
  let at = 0;
  const push = (s: string, m: number): void => {
    if (!s) return;
    for (const id of tok.encode(s, { addSpecialTokens: false })) { inputIds.push(id); lossMask.push(m); }
  };
  for (const [a, b] of spans) { push(text.slice(at, a), 0); push(text.slice(a, b), 1); at = b; }
  push(text.slice(at), 0);
  const whole = tok.encode(text, { addSpecialTokens: false });
  if (whole.length === inputIds.length && whole.every((id, i) => id === inputIds[i])) return { inputIds, lossMask };
  // Fallback: whole-text ids; a token is a target when its characters overlap a span (as TRL's char_to_token marks
  // every token holding a span character). Offsets come from decoding prefixes.
  const warn = opts.warn ?? ((m: string) => { if (!warnedFallback) { warnedFallback = true; process.stderr.write(`warning: ${m}\n`); } });
  warn(`segment-wise encoding differs from whole-text encoding (the template puts a segment boundary inside a token); using token offsets for the loss mask`);
  const ends = whole.map((_, k) => tok.decode(whole.slice(0, k + 1)).length);
  const mask = whole.map((_, k) => {
    const start = k === 0 ? 0 : ends[k - 1]!;
    return spans.some(([a, b]) => start < b && ends[k]! > a) ? 1 : 0;
  });
  return { inputIds: whole, lossMask: mask };
}

export interface ChatExampleOptions {
  lossOn?: LossOn;
  warn?: (message: string) => void;
  /** Names the row in errors (e.g. `train.jsonl row 12`). */
  where?: string;
}

/** A chat (`messages`) -> ids and loss mask (spec 1.3). */
export function chatExample(tok: ChatTokenizer, messages: ChatMessage[], opts: ChatExampleOptions = {}): ChatExample {
  const where = opts.where ?? 'chatExample';
  const lossOn = opts.lossOn ?? 'assistant';
  const msgs = checkMessages(messages, where, lossOn === 'assistant');
  const { text, spans } = assistantSpans(tok, msgs, where);
  const ex = encodeWithSpans(tok, text, lossOn === 'all' ? [[0, text.length]] : spans, opts);
  if (lossOn === 'assistant' && !ex.lossMask.some((m, i) => m === 1 && i >= 1)) throw new Error(`${where}: no assistant token to train on`);
  return ex;
}

/** A prompt/completion row -> ids and a completion-only mask (or all tokens). Strings or message lists. */
export function promptCompletionExample(tok: ChatTokenizer, prompt: string | ChatMessage[], completion: string | ChatMessage[], opts: ChatExampleOptions = {}): ChatExample {
  const where = opts.where ?? 'promptCompletionExample';
  const all = opts.lossOn === 'all';
  if (Array.isArray(prompt) || Array.isArray(completion)) {
    if (!Array.isArray(prompt) || !Array.isArray(completion)) throw new Error(`${where}: 'prompt' and 'completion' must both be strings or both message lists`);
    needTemplate(tok, where);
    const p = checkMessages(prompt, `${where} (prompt)`, false);
    const c = checkMessages(completion, `${where} (completion)`, false);
    const before = tok.applyChatTemplate(p, { addGenerationPrompt: true });
    const text = tok.applyChatTemplate([...p, ...c]);
    if (!text.startsWith(before)) throw new Error(`${where}: render(prompt, generation prompt) is not a prefix of render(prompt + completion)`);
    return encodeWithSpans(tok, text, [[all ? 0 : before.length, text.length]], opts);
  }
  if (typeof prompt !== 'string' || typeof completion !== 'string') throw new Error(`${where}: 'prompt' and 'completion' must be strings or message lists`);
  const eos = tok.eosToken ?? '';
  const comp = eos && !completion.endsWith(eos) ? completion + eos : completion;
  const pIds = encodePlain(tok, prompt);
  const cIds = tok.encode(comp, { addSpecialTokens: false });
  return { inputIds: [...pIds, ...cIds], lossMask: [...pIds.map(() => (all ? 1 : 0)), ...cIds.map(() => 1)] };
}

/**
 * Plain (not chat-rendered) text is encoded with the tokenizer's own special-token rule (e.g. the Doge tokenizer's
 * BOS), unless it already starts with the BOS text (a rendered template, as in the seed's preprocessed strings):
 * never a double BOS.
 */
export function encodePlain(tok: Pick<ChatTokenizer, 'encode' | 'bosToken'>, text: string): number[] {
  const rendered = !!tok.bosToken && text.startsWith(tok.bosToken);
  return tok.encode(text, { addSpecialTokens: !rendered });
}

/** A plain `text` row: every token a target, EOS appended when missing. */
export function textExample(tok: ChatTokenizer, text: string, opts: { where?: string } = {}): ChatExample {
  if (typeof text !== 'string' || text.length === 0) throw new Error(`${opts.where ?? 'textExample'}: 'text' must be a non-empty string`);
  const ids = encodePlain(tok, text);
  if (tok.eosTokenId !== undefined && ids[ids.length - 1] !== tok.eosTokenId) ids.push(tok.eosTokenId);
  return { inputIds: ids, lossMask: ids.map(() => 1) };
}

/** TRL's `conversations` layout (`from`/`value`, roles human/gpt) -> messages. */
function fromShareGpt(conv: unknown, where: string): ChatMessage[] {
  if (!Array.isArray(conv)) throw new Error(`${where}: 'conversations' must be a list`);
  const roleOf: Record<string, string> = { human: 'user', user: 'user', gpt: 'assistant', assistant: 'assistant', system: 'system' };
  return conv.map((m, i) => {
    const mm = m as { from?: unknown; value?: unknown };
    const role = typeof mm?.from === 'string' ? roleOf[mm.from] : undefined;
    if (!role) throw new Error(`${where}: conversations[${i}] has 'from' ${JSON.stringify(mm?.from)}; expected human, gpt or system`);
    return { role, content: mm.value as string };
  });
}

/**
 * Any SFT row: `messages`, `conversations`, `prompt` + `text` (an instruction pair: user + assistant turn),
 * `prompt` + `completion`, or `text` (checked in that order).
 */
export function sftExample(tok: ChatTokenizer, row: Record<string, unknown>, opts: ChatExampleOptions = {}): ChatExample {
  const where = opts.where ?? 'sft row';
  if (!row || typeof row !== 'object') throw new Error(`${where}: not an object`);
  if (row.messages !== undefined) return chatExample(tok, row.messages as ChatMessage[], { ...opts, where });
  if (row.conversations !== undefined) return chatExample(tok, fromShareGpt(row.conversations, where), { ...opts, where });
  if (row.prompt !== undefined && row.completion === undefined && typeof row.text === 'string' && typeof row.prompt === 'string') {
    // an instruction pair (`prompt` + `text`, as `wm data prepare` reads it): the user turn and the assistant's answer
    return chatExample(tok, [{ role: 'user', content: row.prompt }, { role: 'assistant', content: row.text }], { ...opts, where });
  }
  if (row.prompt !== undefined || row.completion !== undefined) {
    if (row.prompt === undefined || row.completion === undefined) throw new Error(`${where}: has '${row.prompt === undefined ? 'completion' : 'prompt'}' but no '${row.prompt === undefined ? 'prompt' : 'completion'}' column`);
    return promptCompletionExample(tok, row.prompt as string, row.completion as string, { ...opts, where });
  }
  if (row.text !== undefined) return textExample(tok, row.text as string, { where });
  throw new Error(`${where}: no 'messages', 'conversations', 'prompt'/'completion' or 'text' column (columns: ${Object.keys(row).join(', ') || 'none'})`);
}
