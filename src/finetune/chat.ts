/**
 * Chatting with a fine-tuned model: render the conversation with the chat template and the generation prompt,
 * decode until the template's end-of-turn token, stream the text. And the stop rate, the share of replies that
 * end at end-of-turn within a budget (what SFT teaches first).
 */
import type { DogeForCausalLM } from '../models/doge/model';
import type { ChatMessage, WmTokenizer } from '../data/tokenizer';
import { assistantSpans } from './chat-data';

/** The template's end-of-turn id: the first special token the template writes after an assistant's content. */
export function endOfTurnId(tok: WmTokenizer): number {
  const msgs: ChatMessage[] = [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }];
  const { text, spans } = assistantSpans(tok, msgs, 'endOfTurnId');
  const [a, b] = spans[0]!;
  const tail = text.slice(a, b).replace(/^b/, '');
  const ids = tok.encode(tail);
  const special = new Set(((tok.tokenizerJson.added_tokens as { id: number; special?: boolean }[] | undefined) ?? []).filter((t) => t.special !== false).map((t) => t.id));
  const id = ids.find((i) => special.has(i));
  if (id === undefined) throw new Error(`endOfTurnId: the chat template of ${tok.dir} ends an assistant turn with no special token ('${tail}')`);
  return id;
}

export interface ChatReplyOptions {
  maxNewTokens?: number;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Called with each new piece of text as it is generated (streaming). */
  onText?: (piece: string) => void;
}

/** One assistant reply to `messages` (rendered with the generation prompt); stops at end-of-turn. */
export function chatReply(model: DogeForCausalLM, tok: WmTokenizer, messages: ChatMessage[], opts: ChatReplyOptions = {}): { text: string; ids: number[]; stopped: boolean } {
  const eot = endOfTurnId(tok);
  const prompt = tok.encode(tok.applyChatTemplate(messages, { addGenerationPrompt: true }));
  const out: number[] = [];
  let shown = '';
  const [row] = model.generate([prompt], {
    maxNewTokens: opts.maxNewTokens ?? 48, doSample: opts.doSample ?? false, temperature: opts.temperature, topK: opts.topK, topP: opts.topP,
    seed: opts.seed ?? 0, eosTokenId: [eot], padTokenId: tok.padTokenId ?? 0,
    onToken: (tokens) => {
      if (tokens[0] === eot) return;
      out.push(tokens[0]!);
      if (opts.onText) {
        const text = tok.decode(out);
        // hold back an incomplete UTF-8 sequence (decoded as U+FFFD) until its last byte arrives
        if (!text.endsWith('\ufffd')) { opts.onText(text.slice(shown.length)); shown = text; }
      }
    },
  });
  const gen = row!.slice(prompt.length);
  const stopped = gen.at(-1) === eot;
  const text = tok.decode(stopped ? gen.slice(0, -1) : gen);
  // flush what was held back (a reply may end inside a UTF-8 sequence)
  if (opts.onText && text.length > shown.length) opts.onText(text.slice(shown.length));
  return { text, ids: gen, stopped };
}

/** Share of greedy replies (single-turn prompts) that end with end-of-turn within maxNewTokens, and their mean length. */
export function stopRate(model: DogeForCausalLM, tok: WmTokenizer, prompts: ChatMessage[][], opts: { maxNewTokens?: number; batchSize?: number } = {}): { rate: number; meanNewTokens: number; n: number; replies: string[] } {
  const eot = endOfTurnId(tok);
  const bs = opts.batchSize ?? 16;
  let stopped = 0;
  let tokens = 0;
  const replies: string[] = [];
  for (let i = 0; i < prompts.length; i += bs) {
    const ids = prompts.slice(i, i + bs).map((m) => tok.encode(tok.applyChatTemplate(m, { addGenerationPrompt: true })));
    const rows = model.generate(ids, { maxNewTokens: opts.maxNewTokens ?? 32, eosTokenId: [eot], padTokenId: tok.padTokenId ?? 0 });
    rows.forEach((r, k) => {
      const gen = r.slice(ids[k]!.length); // prompt + new tokens (up to and including end-of-turn)
      if (gen.at(-1) === eot) stopped++;
      tokens += gen.length;
      replies.push(tok.decode(gen.at(-1) === eot ? gen.slice(0, -1) : gen, { skipSpecialTokens: true }));
    });
  }
  return { rate: stopped / prompts.length, meanNewTokens: tokens / prompts.length, n: prompts.length, replies };
}
