/**
 * A model folder ready to talk: the model (Doge or Cheems), its tokenizer, the decoding defaults of its
 * generation_config.json, the chat template's end-of-turn token. `wm chat` and `wm serve` share it: a prompt in,
 * text out piece by piece (UTF-8 safe), stop strings, an AbortSignal, token counts and timing.
 */
import * as path from 'node:path';
import { loadCausalLM } from '../models/auto';
import type { CausalLMModel } from '../models/registry';
import type { RouterLayout } from '../modules/cdmoe';
import { IncrementalDecoder, loadTokenizer, type ChatMessage, type WmTokenizer } from '../data/tokenizer';
import { generationOptionsFrom, readGenerationConfig } from '../generation/generation-config';
import type { GenerateOptions, GenerativeModel } from '../generation/generate';
import { generateStream } from '../generation/stream';
import { endOfTurnId } from '../finetune/chat';
import { resolveModelDir } from '../io/model-dir';

export interface ReplyOptions {
  /** Decoding settings (already merged with the folder's defaults by the caller). */
  generation: GenerateOptions;
  /** Strings that end the reply (not included in it). */
  stop?: string[];
  signal?: AbortSignal;
  /** Each new piece of text, as soon as it is complete and cannot be the start of a stop string. */
  onText?: (piece: string) => void;
}

export interface Reply {
  text: string;
  promptTokens: number;
  /** New tokens computed (an end-of-turn token included). */
  completionTokens: number;
  /** OpenAI's finish_reason: 'stop' (end-of-turn, end-of-text or a stop string), 'length' (token budget), or 'aborted'. */
  finish: 'stop' | 'length' | 'aborted';
  seconds: number;
}

/** Display name of a model folder: the run folder's name for `runs/x/final`, else the folder's own name. */
export function modelName(dir: string): string {
  const abs = path.resolve(dir);
  const base = path.basename(abs);
  return base === 'final' ? path.basename(path.dirname(abs)) : base;
}

/** Length of the longest suffix of `text` that is a proper prefix of one of `stops` (text to hold back). */
function pendingStopPrefix(text: string, stops: string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > best; k--) {
      if (text.endsWith(s.slice(0, k))) { best = k; break; }
    }
  }
  return best;
}

export class TalkModel {
  private constructor(
    readonly id: string,
    readonly dir: string,
    readonly model: CausalLMModel,
    readonly tok: WmTokenizer,
    /** generation_config.json as generate() options ({} without the file). */
    readonly defaults: GenerateOptions,
    /** The template's end-of-turn token; undefined without a chat template. */
    readonly endOfTurn: number | undefined,
  ) {}

  /** Load `dir` (a model folder or a run folder: its final/). */
  static async load(dir: string, opts: { id?: string; routerLayout?: RouterLayout; what?: string } = {}): Promise<TalkModel> {
    const modelDir = resolveModelDir(dir, opts.what ?? '--model');
    const tok = await loadTokenizer(modelDir);
    const model = loadCausalLM(modelDir, { routerLayout: opts.routerLayout ?? 'token' });
    if (tok.vocabSize > model.config.vocab_size) {
      model.dispose();
      throw new Error(`${modelDir}: the tokenizer has ${tok.vocabSize} tokens but the model's vocab_size is ${model.config.vocab_size}`);
    }
    const gen = readGenerationConfig(modelDir);
    const eot = tok.chatTemplate ? endOfTurnId(tok) : undefined;
    return new TalkModel(opts.id ?? modelName(dir), modelDir, model, tok, gen ? generationOptionsFrom(gen) : {}, eot);
  }

  get hasChatTemplate(): boolean {
    return this.endOfTurn !== undefined;
  }

  /** Positions the model was built for (max_position_embeddings): prompt + reply must fit. */
  get contextLength(): number {
    return this.model.config.max_position_embeddings;
  }

  /** The fix to print when a chat is asked of a folder without a chat template. */
  noTemplateMessage(): string {
    return `${this.dir} has no chat template (tokenizer_config.json 'chat_template'): fine-tune it with wm sft ` +
      `(configs/doge-tiny-sft.yaml writes one), or copy tokenizer_config.json from a chat model with the same tokenizer`;
  }

  /** Token ids of a conversation rendered with the template's generation prompt. */
  chatPrompt(messages: ChatMessage[]): number[] {
    if (!this.hasChatTemplate) throw new Error(this.noTemplateMessage());
    return this.tok.encodeChat(messages, { addGenerationPrompt: true });
  }

  /** Token ids of a plain-text prompt (the tokenizer's own special tokens, e.g. a BOS, included). */
  textPrompt(text: string): number[] {
    return this.tok.encode(text, { addSpecialTokens: true });
  }

  /** Tokens that end a reply: end-of-turn (chat) and the tokenizer's end-of-text. */
  private endTokens(chat: boolean): number[] {
    const ids = new Set<number>();
    if (chat && this.endOfTurn !== undefined) ids.add(this.endOfTurn);
    if (this.tok.eosTokenId !== undefined) ids.add(this.tok.eosTokenId);
    else if (this.model.config.eos_token_id !== null) ids.add(this.model.config.eos_token_id);
    return [...ids];
  }

  /** Generate after `prompt`; the text streams through opts.onText. `chat` also stops at end-of-turn. */
  async reply(prompt: number[], chat: boolean, opts: ReplyOptions): Promise<Reply> {
    const t0 = performance.now();
    const ends = this.endTokens(chat);
    const stops = (opts.stop ?? []).filter((s) => s.length > 0);
    const decoder = new IncrementalDecoder(this.tok, { skipSpecialTokens: true });
    let text = '';
    let shown = 0;
    let stopAt = -1;
    let endedByToken = false;
    const show = (final: boolean) => {
      const end = final ? text.length : text.length - pendingStopPrefix(text, stops);
      if (end > shown) { opts.onText?.(text.slice(shown, end)); shown = end; }
    };
    const r = await generateStream(this.model as unknown as GenerativeModel, prompt, { ...opts.generation, eosTokenId: ends, padTokenId: this.tok.padTokenId ?? ends[0] ?? 0 }, {
      signal: opts.signal,
      onToken: (id) => {
        if (ends.includes(id)) { endedByToken = true; return; }
        text += decoder.push(id);
        if (stops.length) {
          const hit = Math.min(...stops.map((s) => text.indexOf(s)).filter((i) => i >= 0));
          if (Number.isFinite(hit)) { stopAt = hit; return true; }
        }
        show(false);
      },
    });
    if (stopAt >= 0) text = text.slice(0, stopAt);
    else if (r.ended !== 'aborted') text += decoder.flush();
    if (r.ended !== 'aborted') show(true);
    const finish = r.ended === 'aborted' ? 'aborted' : stopAt >= 0 || endedByToken ? 'stop' : 'length';
    return { text, promptTokens: prompt.length, completionTokens: r.tokens.length, finish, seconds: (performance.now() - t0) / 1000 };
  }

  dispose(): void {
    this.model.dispose();
  }
}
