// `wm serve` against the official `openai` client on 127.0.0.1 (a free port), with tiny random-init models:
// streamed deltas equal the non-streamed greedy reply, usage counts, every error status, parallel requests
// answered exactly like one, a client that disconnects mid-stream, Cheems, a folder without a chat template,
// and SIGTERM on the real command.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import OpenAI from 'openai';
import { loadBackend, tf } from '../src/runtime/backend';
import { TalkModel } from '../src/serve/talk-model';
import { startServer, type RunningServer } from '../src/serve/server';
import { tinyChatModels, type TinyModels } from './talk-helpers';

let dirs: TinyModels;
let models: TalkModel[];
let srv: RunningServer;
const logs: string[] = [];
let client: OpenAI;
const MESSAGES = [{ role: 'system' as const, content: 'You are terse.' }, { role: 'user' as const, content: 'hello there, how are you?' }];

before(async () => {
  await loadBackend({ log: false });
  dirs = await tinyChatModels('wm-serve-', 96);
  models = [await TalkModel.load(dirs.doge), await TalkModel.load(dirs.cheems), await TalkModel.load(dirs.plain)];
  srv = await startServer(models, { port: 0, maxQueue: 16, maxTokensCap: 64, log: (l) => logs.push(l) });
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  await srv?.close(0);
  for (const m of models ?? []) m.dispose();
});

/** The greedy reply computed directly with the model (no server): the chat template, stop at end-of-turn. */
function directReply(m: TalkModel, maxNew: number): { text: string; promptTokens: number; completionTokens: number } {
  const prompt = m.tok.encodeChat(MESSAGES, { addGenerationPrompt: true });
  const eot = m.endOfTurn!;
  const [row] = m.model.generate([prompt], { maxNewTokens: maxNew, doSample: false, eosTokenId: [eot, m.tok.eosTokenId!], padTokenId: m.tok.padTokenId ?? 0 });
  const gen = row!.slice(prompt.length);
  return { text: m.tok.decode(gen.filter((t) => t !== eot && t !== m.tok.eosTokenId), { skipSpecialTokens: true }), promptTokens: prompt.length, completionTokens: gen.length };
}

test('GET /v1/models lists the folders by name; the folder without a chat template is marked', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), ['doge', 'cheems', 'plain']);
  assert.deepEqual(list.data.map((m) => (m as unknown as { chat: boolean }).chat), [true, true, false]);
});

test('chat completions: the greedy reply, usage counts, and the streamed deltas concatenate to the same text', async () => {
  for (const name of ['doge', 'cheems']) {
    const want = directReply(models.find((m) => m.id === name)!, 40);
    const r = await client.chat.completions.create({ model: name, messages: MESSAGES, temperature: 0, max_tokens: 40 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0]!.message.content, want.text);
    assert.equal(r.choices[0]!.finish_reason, want.completionTokens === 40 ? 'length' : 'stop');
    assert.deepEqual(r.usage, { prompt_tokens: want.promptTokens, completion_tokens: want.completionTokens, total_tokens: want.promptTokens + want.completionTokens });
    const stream = await client.chat.completions.create({ model: name, messages: MESSAGES, temperature: 0, max_tokens: 40, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: unknown;
    let chunks = 0;
    for await (const c of stream) {
      chunks++;
      if (c.usage) usage = c.usage;
      if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
      if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
    }
    assert.ok(chunks > 3, `${chunks} chunks: the reply streamed`);
    assert.equal(text, want.text);
    assert.equal(finish, r.choices[0]!.finish_reason);
    assert.deepEqual(usage, r.usage);
  }
});

test('completions: plain text continuation (also for the folder without a chat template), stop strings, streaming', async () => {
  const r = await client.completions.create({ model: 'plain', prompt: 'hello there', max_tokens: 30, temperature: 0 });
  const m = models[2]!;
  const prompt = m.tok.encode('hello there', { addSpecialTokens: true });
  const [row] = m.model.generate([prompt], { maxNewTokens: 30, doSample: false, eosTokenId: m.tok.eosTokenId!, padTokenId: 0 });
  const gen = row!.slice(prompt.length).filter((t) => t !== m.tok.eosTokenId);
  const full = m.tok.decode(gen, { skipSpecialTokens: true });
  assert.equal(r.choices[0]!.text, full);
  assert.equal(r.usage!.prompt_tokens, prompt.length);
  // a stop string taken from the middle of the reply: the text ends right before it
  const stop = full.slice(8, 11);
  const cut = full.slice(0, full.indexOf(stop));
  const s = await client.completions.create({ model: 'plain', prompt: 'hello there', max_tokens: 30, temperature: 0, stop: [stop] });
  assert.equal(s.choices[0]!.text, cut);
  assert.equal(s.choices[0]!.finish_reason, 'stop');
  let streamed = '';
  for await (const c of await client.completions.create({ model: 'plain', prompt: 'hello there', max_tokens: 30, temperature: 0, stop: [stop], stream: true })) streamed += c.choices[0]?.text ?? '';
  assert.equal(streamed, cut);
});

test('sampling with a seed is reproducible and differs from greedy; unknown fields are ignored', async () => {
  const ask = (extra: Record<string, unknown>) => client.chat.completions.create({ model: 'doge', messages: MESSAGES, max_tokens: 20, ...extra } as never) as Promise<OpenAI.ChatCompletion>;
  const a = await ask({ temperature: 1.5, top_p: 0.95, seed: 5, frequency_penalty: 0, user: 'x', some_future_field: { a: 1 } });
  const b = await ask({ temperature: 1.5, top_p: 0.95, seed: 5 });
  const g = await ask({ temperature: 0 });
  assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
  assert.notEqual(a.choices[0]!.message.content, g.choices[0]!.message.content);
});

/** The status, param and message of a failed call. */
async function failure(p: Promise<unknown>): Promise<{ status: number | undefined; param: string | null | undefined; code: string | null | undefined; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpenAI.APIError) return { status: e.status, param: e.param, code: e.code, message: e.message };
    throw e;
  }
  assert.fail('the request succeeded');
}

test('bad requests: 400 naming the parameter, 404 for an unknown model, never a crash', async () => {
  const chat = (body: Record<string, unknown>) => failure(client.chat.completions.create({ model: 'doge', messages: MESSAGES, ...body } as never));
  assert.deepEqual(await chat({ temperature: 'hot' }), { status: 400, param: 'temperature', code: 'invalid_type', message: "400 Invalid type for 'temperature': expected a number, but got a string instead." });
  assert.equal((await chat({ temperature: 3 })).param, 'temperature');
  assert.equal((await chat({ top_p: 0 })).param, 'top_p');
  assert.equal((await chat({ max_tokens: 1.5 })).param, 'max_tokens');
  assert.match((await chat({ max_tokens: 65 })).message, /'max_tokens': must be at most 64 \(this server's --max-tokens-cap\), got 65/);
  assert.match((await chat({ n: 2 })).message, /only n = 1 is supported/);
  assert.equal((await chat({ stop: [1] })).param, 'stop[0]');
  assert.equal((await chat({ stream: 'yes' })).param, 'stream');
  assert.deepEqual(await chat({ messages: [] }), { status: 400, param: 'messages', code: 'invalid_value', message: "400 Invalid value for 'messages': the list is empty; give at least one message" });
  assert.equal((await chat({ messages: [{ role: 'user', content: '  ' }] })).param, 'messages[0].content');
  assert.equal((await chat({ messages: [{ role: 'robot', content: 'hi' }] })).param, 'messages[0].role');
  assert.equal((await chat({ messages: 'hi' })).param, 'messages');
  const long = await chat({ messages: [{ role: 'user', content: 'hello there '.repeat(60) }] });
  assert.equal(long.code, 'context_length_exceeded');
  assert.match(long.message, /maximum context length is 96 tokens, but the messages is \d+ tokens/);
  const unknown = await failure(client.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES }));
  assert.deepEqual([unknown.status, unknown.param, unknown.code], [404, 'model', 'model_not_found']);
  assert.match(unknown.message, /The model 'gpt-4o' does not exist; this server has doge, cheems, plain/);
  const plain = await failure(client.chat.completions.create({ model: 'plain', messages: MESSAGES }));
  assert.deepEqual([plain.status, plain.code], [400, 'no_chat_template']);
  assert.match(plain.message, /answers \/v1\/completions only/);
  assert.equal((await failure(client.completions.create({ model: 'doge', prompt: '' }))).param, 'prompt');
  // raw bodies the client would never send
  const post = (body: string) => fetch(`${srv.url}/v1/chat/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
  const bad = await post('{"model": "doge", "messages": [');
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: { message: string } }).error.message, /^We could not parse the JSON body of your request/);
  const arr = await post('[1, 2]');
  assert.equal(arr.status, 400);
  assert.match(((await arr.json()) as { error: { message: string } }).error.message, /must be a JSON object, got an array/);
  const nowhere = await fetch(`${srv.url}/v1/embeddings`, { method: 'POST', body: '{}' });
  assert.equal(nowhere.status, 404);
  // the server still answers
  assert.equal((await client.models.list()).data.length, 3);
});

test('401 without the API key, 413 for a large body, 429 when the model queue is full', async () => {
  const s = await startServer([models[0]!], { port: 0, apiKey: 'sekret', maxBodyBytes: 2048, maxQueue: 1 });
  try {
    const noKey = await failure(new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'wrong', maxRetries: 0 }).models.list());
    assert.deepEqual([noKey.status, noKey.code], [401, 'invalid_api_key']);
    const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sekret', maxRetries: 0 });
    const big = await failure(c.chat.completions.create({ model: 'doge', messages: [{ role: 'user', content: 'x'.repeat(5000) }] }));
    assert.equal(big.status, 413);
    assert.match(big.message, /larger than this server's limit of 2048 bytes/);
    // one streaming request holds the queue (size 1): a second one is refused while it runs
    const stream = await c.chat.completions.create({ model: 'doge', messages: MESSAGES, max_tokens: 64, temperature: 0, stream: true });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const busy = await failure(c.chat.completions.create({ model: 'doge', messages: MESSAGES, max_tokens: 4 }));
    assert.deepEqual([busy.status, busy.code], [429, 'rate_limit_exceeded']);
    while (!(await it.next()).done);
    const ok = await c.chat.completions.create({ model: 'doge', messages: MESSAGES, max_tokens: 4 });
    assert.equal(ok.choices.length, 1);
    // the page needs no key (it asks for one); the API does
    assert.equal((await fetch(`${s.url}/`)).status, 200);
    await assert.rejects(startServer([models[0]!], { port: s.port }), { message: `port ${s.port} on 127.0.0.1 is in use; give another --port (0 = any free port)` });
  } finally {
    await s.close(0);
  }
});

test('8 parallel requests are answered exactly like one (queued per model, never interleaved)', async () => {
  const body = { model: 'doge', messages: MESSAGES, max_tokens: 24, temperature: 0.9, seed: 11 };
  const one = await client.chat.completions.create(body);
  const eight = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2
    ? client.chat.completions.create(body)
    : (async () => { let t = ''; for await (const c of await client.chat.completions.create({ ...body, stream: true })) t += c.choices[0]?.delta?.content ?? ''; return t; })())));
  for (const r of eight) assert.equal(typeof r === 'string' ? r : r.choices[0]!.message.content, one.choices[0]!.message.content);
});

test('a client that disconnects mid-stream stops its generation; the server goes on', async () => {
  logs.length = 0;
  const ac = new AbortController();
  const stream = await client.chat.completions.create({ model: 'doge', messages: MESSAGES, max_tokens: 64, temperature: 0, stream: true }, { signal: ac.signal });
  let n = 0;
  try {
    for await (const c of stream) {
      if (c.choices[0]?.delta?.content && ++n === 2) ac.abort();
    }
  } catch (e) {
    assert.match(String(e), /abort/i); // the client ends the iteration (or throws its abort error)
  }
  assert.equal(n, 2);
  for (let i = 0; i < 100 && !logs.some((l) => /aborted/.test(l)); i++) await new Promise((r) => setTimeout(r, 20));
  const line = logs.find((l) => /aborted/.test(l));
  assert.ok(line, logs.join('\n'));
  const done = Number(/\+ (\d+) tokens/.exec(line!)![1]);
  assert.ok(done < 64, `stopped after ${done} of 64 tokens`);
  const r = await client.chat.completions.create({ model: 'doge', messages: MESSAGES, max_tokens: 5 });
  assert.equal(r.usage!.completion_tokens, 5);
});

test('no tensor is left behind by finished, stopped and refused requests', async () => {
  const before = tf.memory().numTensors;
  for (const model of ['doge', 'cheems']) {
    await client.chat.completions.create({ model, messages: MESSAGES, max_tokens: 6 });
    await client.chat.completions.create({ model, messages: MESSAGES, max_tokens: 30, temperature: 0, stop: ['e'] });
    const ac = new AbortController();
    try {
      for await (const c of await client.chat.completions.create({ model, messages: MESSAGES, max_tokens: 40, stream: true }, { signal: ac.signal })) if (c.choices[0]?.delta?.content) ac.abort();
    } catch { /* aborted */ }
    await failure(client.chat.completions.create({ model, messages: [] }));
  }
  await new Promise((r) => setTimeout(r, 200)); // the aborted generations end after their current token
  assert.equal(tf.memory().numTensors, before);
});

test('wm serve: SIGTERM lets the running request finish, then exits 0', { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join('src', 'cli', 'wm.ts'), 'serve', '--model', dirs.doge, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`wm serve exited ${code}: ${err}`)));
  });
  const c = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
  const stream = await c.chat.completions.create({ model: 'doge', messages: MESSAGES, max_tokens: 48, temperature: 0, stream: true });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  let text = '';
  for (let r = await it.next(); !r.done; r = await it.next()) text += r.value.choices[0]?.delta?.content ?? '';
  assert.equal(await exited, 0);
  assert.equal(text, directReply(models[0]!, 48).text);
  assert.match(err, /SIGTERM: finishing running requests \(up to 10 s\), then exiting/);
});
