/**
 * Generation for callers that must stay responsive while a reply is produced (a server streaming to several
 * clients, a terminal chat stopped by Ctrl-C): `generateSteps` driven one token at a time, with the event loop
 * served between tokens, an AbortSignal, and a per-token callback that may end the reply (a stop string).
 */
import { generateSteps, type DecodingCache, type GenerateOptions, type GenerativeModel } from './generate';

export interface StreamHooks {
  /** Aborting ends the reply after the current token (the decoding cache is freed). */
  signal?: AbortSignal;
  /** Called with every new token; return true to end the reply here. */
  onToken?: (token: number) => boolean | void;
}

export interface StreamResult {
  /** The new tokens (the prompt not included; an end-of-sequence token included when one ended the reply). */
  tokens: number[];
  /** 'done': end-of-sequence or maxNewTokens; 'stopped': onToken asked to stop; 'aborted': the signal fired. */
  ended: 'done' | 'stopped' | 'aborted';
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** One prompt (batch 1), token by token; same tokens as `generate(model, [prompt], opts)`. */
export async function generateStream<C extends DecodingCache>(model: GenerativeModel<C>, prompt: number[], opts: GenerateOptions, hooks: StreamHooks = {}): Promise<StreamResult> {
  const tokens: number[] = [];
  if (hooks.signal?.aborted) return { tokens, ended: 'aborted' };
  const steps = generateSteps(model, [prompt], opts);
  try {
    for (;;) {
      const r = steps.next();
      if (r.done) return { tokens, ended: 'done' };
      tokens.push(r.value[0]!);
      if (hooks.onToken?.(r.value[0]!) === true) return { tokens, ended: 'stopped' };
      await nextTurn();
      if (hooks.signal?.aborted) return { tokens, ended: 'aborted' };
    }
  } finally {
    steps.return([]); // runs generate's cleanup (cache, fast decoder) when the loop ended early
  }
}
