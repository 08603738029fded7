/**
 * The OpenAI request bodies `wm serve` accepts, checked field by field: a wrong type or value is an
 * `ApiError` (HTTP 400) naming the parameter, as OpenAI's own API answers; fields this server does not use are
 * ignored, as OpenAI ignores unknown ones. Shapes: https://platform.openai.com/docs/api-reference/chat
 */
import type { ChatMessage } from '../data/tokenizer';

/** An error answered as OpenAI's error JSON: { error: { message, type, param, code } }. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly code: string | null = null, readonly type = status === 401 ? 'authentication_error' : status >= 500 ? 'server_error' : 'invalid_request_error') {
    super(message);
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);
const badType = (param: string, want: string, v: unknown) => new ApiError(400, `Invalid type for '${param}': expected ${want}, but got ${typeName(v)} instead.`, param, 'invalid_type');
const badValue = (param: string, why: string) => new ApiError(400, `Invalid value for '${param}': ${why}`, param, 'invalid_value');

/** The sampling parameters common to both endpoints (undefined = the model folder's default). */
export interface SamplingRequest {
  model: string;
  maxTokens: number | undefined;
  temperature: number | undefined;
  topP: number | undefined;
  /** Extension (vLLM, llama.cpp): top-k filtering. */
  topK: number | undefined;
  seed: number | undefined;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
}

export interface ChatRequest extends SamplingRequest { messages: ChatMessage[] }
export interface CompletionRequest extends SamplingRequest { prompt: string }

function optNumber(body: Record<string, unknown>, key: string, check: (v: number) => string | undefined, integer = false): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badType(key, integer ? 'an integer' : 'a number', v);
  if (integer && !Number.isInteger(v)) throw badType(key, 'an integer', v);
  const why = check(v);
  if (why) throw badValue(key, why);
  return v;
}

function sampling(body: Record<string, unknown>, maxTokensCap: number): SamplingRequest {
  if (body.model === undefined) throw new ApiError(400, "you must provide a model parameter", 'model', 'missing_required_parameter');
  if (typeof body.model !== 'string') throw badType('model', 'a string', body.model);
  const n = optNumber(body, 'n', (v) => (v === 1 ? undefined : `only n = 1 is supported, got ${v}`), true);
  void n;
  const maxKey = body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = optNumber(body, maxKey, (v) => (v < 1 ? `must be at least 1, got ${v}` : v > maxTokensCap ? `must be at most ${maxTokensCap} (this server's --max-tokens-cap), got ${v}` : undefined), true);
  const temperature = optNumber(body, 'temperature', (v) => (v < 0 || v > 2 ? `must be between 0 and 2, got ${v}` : undefined));
  const topP = optNumber(body, 'top_p', (v) => (v <= 0 || v > 1 ? `must be greater than 0 and at most 1, got ${v}` : undefined));
  const topK = optNumber(body, 'top_k', (v) => (v < 0 ? `must be >= 0, got ${v}` : undefined), true);
  const seed = optNumber(body, 'seed', (v) => (v < 0 || v > 2 ** 53 ? `must be a non-negative integer, got ${v}` : undefined), true);
  let stop: string[] = [];
  if (typeof body.stop === 'string') stop = [body.stop];
  else if (Array.isArray(body.stop)) {
    if (body.stop.length > 4) throw badValue('stop', `at most 4 stop sequences, got ${body.stop.length}`);
    body.stop.forEach((s, i) => { if (typeof s !== 'string') throw badType(`stop[${i}]`, 'a string', s); });
    stop = body.stop as string[];
  } else if (body.stop !== undefined && body.stop !== null) throw badType('stop', 'a string or an array of strings', body.stop);
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw badType('stream', 'a boolean', body.stream);
  const so = body.stream_options;
  if (so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so))) throw badType('stream_options', 'an object', so);
  const includeUsage = !!(so as { include_usage?: unknown } | null | undefined)?.include_usage;
  return { model: body.model, maxTokens, temperature, topP, topK, seed, stop, stream: body.stream === true, includeUsage };
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant']);

/** Message content: a string or an array of text parts ({type: 'text', text}). */
function contentText(v: unknown, param: string): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    return v.map((part, j) => {
      const p = part as { type?: unknown; text?: unknown };
      if (!p || typeof p !== 'object' || p.type !== 'text' || typeof p.text !== 'string') throw badValue(`${param}[${j}]`, "only text parts ({ type: 'text', text }) are supported");
      return p.text;
    }).join('');
  }
  throw badType(param, 'a string or an array of text parts', v);
}

function asObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ApiError(400, `The request body must be a JSON object, got ${typeName(body)}.`, null, 'invalid_body');
  return body as Record<string, unknown>;
}

/** POST /v1/chat/completions. */
export function parseChatRequest(raw: unknown, maxTokensCap: number): ChatRequest {
  const body = asObject(raw);
  if (body.messages === undefined) throw new ApiError(400, "you must provide a messages parameter", 'messages', 'missing_required_parameter');
  if (!Array.isArray(body.messages)) throw badType('messages', 'an array', body.messages);
  if (body.messages.length === 0) throw badValue('messages', 'the list is empty; give at least one message');
  const messages = body.messages.map((m, i): ChatMessage => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw badType(`messages[${i}]`, 'an object', m);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (typeof role !== 'string' || !ROLES.has(role)) throw badValue(`messages[${i}].role`, `must be one of system, developer, user, assistant, got ${JSON.stringify(role)}`);
    if (content === undefined || content === null) throw new ApiError(400, `messages[${i}].content is missing`, `messages[${i}].content`, 'missing_required_parameter');
    const text = contentText(content, `messages[${i}].content`);
    if (role === 'user' && text.trim() === '') throw badValue(`messages[${i}].content`, 'the user message is empty');
    return { role: role === 'developer' ? 'system' : role, content: text };
  });
  return { ...sampling(body, maxTokensCap), messages };
}

/** POST /v1/completions. */
export function parseCompletionRequest(raw: unknown, maxTokensCap: number): CompletionRequest {
  const body = asObject(raw);
  let prompt = body.prompt;
  if (prompt === undefined) throw new ApiError(400, 'you must provide a prompt parameter', 'prompt', 'missing_required_parameter');
  if (Array.isArray(prompt)) {
    if (prompt.length !== 1 || typeof prompt[0] !== 'string') throw badValue('prompt', 'give one string (batches of prompts are not supported)');
    prompt = prompt[0];
  }
  if (typeof prompt !== 'string') throw badType('prompt', 'a string', prompt);
  if (prompt === '') throw badValue('prompt', 'the prompt is empty');
  return { ...sampling(body, maxTokensCap), prompt };
}
