/**
 * The HTTP server of `wm serve`: an OpenAI-compatible API over loaded TalkModels, and the chat page at `/`.
 *
 *   GET  /                     the chat page (assets/chat.html: plain HTML + JS, no build step)
 *   GET  /v1/models            the served models
 *   POST /v1/chat/completions  messages -> reply (chat-template models only); stream: server-sent events
 *   POST /v1/completions       prompt -> continuation (every model)
 *
 * One computation at a time per model: requests wait in the model's queue (429 when it is full), so concurrent
 * clients get exactly what they would get alone. A client that disconnects stops its generation (or leaves the
 * queue). Prompts longer than the context are an error (400, code context_length_exceeded: clients own their
 * history, nothing is cut silently); a reply is cut at the context's end (finish_reason 'length').
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { GenerateOptions } from '../generation/generate';
import { ApiError, parseChatRequest, parseCompletionRequest, type SamplingRequest } from './openai';
import type { Reply, TalkModel } from './talk-model';

export interface ServeOptions {
  host?: string;
  /** 0 = a free port. */
  port?: number;
  /** Required as `Authorization: Bearer KEY` on /v1/* when set. */
  apiKey?: string;
  /** Largest request body (default 1 MiB): 413 beyond. */
  maxBodyBytes?: number;
  /** Largest max_tokens a request may ask for (default 1024). */
  maxTokensCap?: number;
  /** Requests per model, running one included, before 429 (default 16). */
  maxQueue?: number;
  log?: (line: string) => void;
}

export interface RunningServer {
  server: http.Server;
  url: string;
  port: number;
  /** Stop accepting requests, let the running ones finish for up to graceMs, cancel the rest, close. */
  close(graceMs?: number): Promise<void>;
}

/** The chat page (shipped in assets/, next to the package's diagrams). */
export function chatPageHtml(): string {
  return fs.readFileSync(path.join(__dirname, '..', '..', 'assets', 'chat.html'), 'utf8');
}

/** A model's waiting line: at most `limit` requests (the running one included); jobs run one at a time. */
class ModelQueue {
  private tail: Promise<unknown> = Promise.resolve();
  size = 0;
  constructor(private readonly limit: number) {}

  run<T>(job: () => Promise<T>): Promise<T> {
    if (this.size >= this.limit) throw new ApiError(429, `The queue of this model is full (${this.limit} requests); retry later.`, null, 'rate_limit_exceeded', 'rate_limit_error');
    this.size++;
    const result = this.tail.then(job);
    this.tail = result.catch(() => undefined).finally(() => { this.size--; });
    return result;
  }
}

const newId = (prefix: string) => `${prefix}-${randomBytes(12).toString('hex')}`;

/** Read the body up to `limit` bytes (413 beyond; the rest is drained so the client gets the answer). */
function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    const tooLarge = () => new ApiError(413, `The request body is larger than this server's limit of ${limit} bytes.`, null, 'request_too_large');
    const chunks: Buffer[] = [];
    let size = 0;
    let over = declared > limit;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      if (size > limit * 16 + (1 << 20)) req.destroy(); // a client that keeps sending: drop it
      if (!over) chunks.push(c);
    });
    req.on('end', () => (over ? reject(tooLarge()) : resolve(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) { res.end(); return; }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Request sampling parameters over the model's generation_config.json defaults. */
function generationFor(m: TalkModel, r: SamplingRequest, cap: number, promptLength: number): GenerateOptions {
  const g: GenerateOptions = { ...m.defaults };
  if (r.temperature !== undefined) {
    g.doSample = r.temperature > 0;
    if (r.temperature > 0) g.temperature = r.temperature;
  }
  if (r.topP !== undefined) g.topP = r.topP;
  if (r.topK !== undefined) g.topK = r.topK;
  if (r.seed !== undefined) g.seed = r.seed;
  g.maxNewTokens = Math.min(r.maxTokens ?? Math.min(cap, m.defaults.maxNewTokens ?? 128), m.contextLength - promptLength);
  return g;
}

export function startServer(models: TalkModel[], opts: ServeOptions = {}): Promise<RunningServer> {
  if (models.length === 0) throw new Error('startServer: no models');
  const byId = new Map(models.map((m) => [m.id, m]));
  if (byId.size !== models.length) throw new Error(`startServer: two models have the same name (${models.map((m) => m.id).join(', ')}); give each a distinct folder name`);
  const maxBody = opts.maxBodyBytes ?? 1 << 20;
  const cap = opts.maxTokensCap ?? 1024;
  const queues = new Map(models.map((m) => [m.id, new ModelQueue(opts.maxQueue ?? 16)]));
  const log = opts.log ?? (() => {});
  /** The requests waiting or running (SIGTERM cancels what is left after the grace period). */
  const running = new Set<AbortController>();
  let closing = false;
  const created = Math.floor(Date.now() / 1000);

  const authorized = (req: http.IncomingMessage): boolean => !opts.apiKey || req.headers.authorization === `Bearer ${opts.apiKey}`;

  async function complete(req: http.IncomingMessage, res: http.ServerResponse, kind: 'chat' | 'text'): Promise<void> {
    let raw: unknown;
    const text = await readBody(req, maxBody);
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new ApiError(400, `We could not parse the JSON body of your request (${(e as Error).message}). The body must be a JSON object.`, null, 'invalid_json');
    }
    const r = kind === 'chat' ? parseChatRequest(raw, cap) : parseCompletionRequest(raw, cap);
    const m = byId.get(r.model);
    if (!m) throw new ApiError(404, `The model '${r.model}' does not exist; this server has ${[...byId.keys()].join(', ')}.`, 'model', 'model_not_found');
    if (kind === 'chat' && !m.hasChatTemplate) throw new ApiError(400, `The model '${m.id}' has no chat template, so it answers /v1/completions only: ${m.noTemplateMessage()}.`, 'model', 'no_chat_template');
    let prompt: number[];
    try {
      prompt = 'messages' in r ? m.chatPrompt(r.messages) : m.textPrompt(r.prompt);
    } catch (e) {
      // the chat template itself may refuse a conversation (raise_exception on a role order it does not know)
      throw new ApiError(400, `The chat template of '${m.id}' cannot render these messages: ${(e as Error).message}`, kind === 'chat' ? 'messages' : 'prompt', 'invalid_value');
    }
    if (prompt.length >= m.contextLength) {
      const param = kind === 'chat' ? 'messages' : 'prompt';
      throw new ApiError(400, `This model's maximum context length is ${m.contextLength} tokens, but the ${param} is ${prompt.length} tokens; shorten it (the server does not cut history).`, param, 'context_length_exceeded');
    }
    const generation = generationFor(m, r, cap, prompt.length);
    const abort = new AbortController();
    res.on('close', () => { if (!res.writableFinished) abort.abort(); });
    const id = newId(kind === 'chat' ? 'chatcmpl' : 'cmpl');
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
    const t0 = performance.now();
    const sse = (data: unknown) => { if (!res.destroyed) res.write(`data: ${JSON.stringify(data)}\n\n`); };
    res.on('error', () => abort.abort()); // a write racing a disconnect: the generation stops, the server goes on
    const chunk = (choice: Record<string, unknown>) => ({ id, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: Math.floor(Date.now() / 1000), model: m.id, choices: [{ index: 0, logprobs: null, finish_reason: null, ...choice }] });
    running.add(abort);
    const reply: Reply = await queues.get(m.id)!.run(async () => {
      // a client that left while waiting: nothing to compute
      if (abort.signal.aborted) return { text: '', promptTokens: prompt.length, completionTokens: 0, finish: 'aborted', seconds: 0 } as Reply;
      if (r.stream) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
        if (kind === 'chat') sse(chunk({ delta: { role: 'assistant', content: '' } }));
      }
      return m.reply(prompt, kind === 'chat', {
        generation, stop: r.stop, signal: abort.signal,
        onText: r.stream ? (piece) => sse(chunk(kind === 'chat' ? { delta: { content: piece } } : { text: piece })) : undefined,
      });
    }).finally(() => running.delete(abort));
    const usage = { prompt_tokens: reply.promptTokens, completion_tokens: reply.completionTokens, total_tokens: reply.promptTokens + reply.completionTokens };
    const seconds = (performance.now() - t0) / 1000;
    log(`${req.method} ${req.url} ${m.id}: ${reply.promptTokens} + ${reply.completionTokens} tokens, ${reply.finish}, ${seconds.toFixed(2)} s (${(reply.completionTokens / Math.max(reply.seconds, 1e-9)).toFixed(1)} tokens/s)`);
    if (reply.finish === 'aborted') { res.destroy(); return; }
    if (r.stream) {
      sse(chunk(kind === 'chat' ? { delta: {}, finish_reason: reply.finish } : { text: '', finish_reason: reply.finish }));
      if (r.includeUsage) sse({ id, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: Math.floor(Date.now() / 1000), model: m.id, choices: [], usage });
      res.end('data: [DONE]\n\n');
      return;
    }
    const choice = kind === 'chat' ? { index: 0, message: { role: 'assistant', content: reply.text }, finish_reason: reply.finish, logprobs: null } : { index: 0, text: reply.text, finish_reason: reply.finish, logprobs: null };
    sendJson(res, 200, { id, object, created: Math.floor(Date.now() / 1000), model: m.id, choices: [choice], usage, system_fingerprint: null });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    if (closing) throw new ApiError(503, 'The server is shutting down.', null, 'shutting_down', 'server_error');
    if (req.method === 'GET' && (url === '/' || url === '/index.html')) {
      const html = chatPageHtml();
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html) });
      res.end(html);
      return;
    }
    if (url.startsWith('/v1/') && !authorized(req)) {
      throw new ApiError(401, req.headers.authorization ? 'Incorrect API key provided.' : "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.", null, 'invalid_api_key');
    }
    if (req.method === 'GET' && url === '/v1/models') {
      sendJson(res, 200, {
        object: 'list',
        data: models.map((m) => ({ id: m.id, object: 'model', created, owned_by: 'wonderful-matrices', context_length: m.contextLength, chat: m.hasChatTemplate })),
      });
      return;
    }
    if (req.method === 'POST' && url === '/v1/chat/completions') return complete(req, res, 'chat');
    if (req.method === 'POST' && url === '/v1/completions') return complete(req, res, 'text');
    throw new ApiError(404, `Unknown request URL: ${req.method} ${url}. This server answers GET /, GET /v1/models, POST /v1/chat/completions and POST /v1/completions.`, null, 'unknown_url');
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const err = e instanceof ApiError ? e : new ApiError(500, `Internal error: ${(e as Error)?.message ?? String(e)}`, null, 'internal_error');
      if (err.status >= 500 || err.status === 429) log(`${req.method} ${req.url}: ${err.status} ${err.message}`);
      if (res.headersSent) { res.destroy(); return; }
      if (err.status === 413) res.setHeader('Connection', 'close');
      sendJson(res, err.status, err.toJSON());
    });
  });
  // Node's own bounds stay: a request (headers and body) must arrive within requestTimeout (300 s), headers within
  // headersTimeout (60 s); a response is bounded by max_tokens (capped) and the context.

  const close = async (graceMs = 10_000): Promise<void> => {
    closing = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const t0 = Date.now();
    while ([...queues.values()].some((q) => q.size > 0) && Date.now() - t0 < graceMs) await new Promise((r) => setTimeout(r, 20));
    for (const a of running) a.abort();
    for (const q of queues.values()) while (q.size > 0) await new Promise((r) => setTimeout(r, 5));
    server.closeAllConnections();
    await closed;
  };

  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE'
      ? new Error(`port ${opts.port ?? 8000} on ${opts.host ?? '127.0.0.1'} is in use; give another --port (0 = any free port)`)
      : e));
    server.listen(opts.port ?? 8000, opts.host ?? '127.0.0.1', () => {
      const a = server.address() as { port: number; address: string };
      const host = a.address.includes(':') ? `[${a.address}]` : a.address;
      resolve({ server, url: `http://${host}:${a.port}`, port: a.port, close });
    });
  });
}
