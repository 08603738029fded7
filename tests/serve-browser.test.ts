// The chat page of `wm serve` in headless Chromium (Debian's chromium through playwright-core), every request
// outside the server blocked: pick the model, set greedy decoding, type a message, see the reply stream in with
// its tokens/s, equal to the API's greedy reply; the page fits a phone's width.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { loadBackend } from '../src/runtime/backend';
import { TalkModel } from '../src/serve/talk-model';
import { startServer } from '../src/serve/server';
import { tinyChatModels } from './talk-helpers';
// @ts-expect-error plain ESM helper without types
import { CHROMIUM } from '../scripts/browser.mjs';

test('chat page: a typed message gets a streamed reply (the greedy API reply) with tokens/s, on a phone-sized screen', { timeout: 120_000 }, async () => {
  await loadBackend({ log: false });
  const dirs = await tinyChatModels('wm-page-', 512);
  const models = [await TalkModel.load(dirs.doge), await TalkModel.load(dirs.plain)];
  const srv = await startServer(models, { port: 0 });
  const profile = mkdtempSync(join(tmpdir(), 'wm-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM as string, headless: true, args: ['--no-sandbox', '--disable-gpu'], viewport: { width: 390, height: 760 } });
  try {
    const want = await (await fetch(`${srv.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'doge', messages: [{ role: 'user', content: 'hello there' }], temperature: 0, max_tokens: 120 }) })).json() as { choices: { message: { content: string } }[] };
    const page = await ctx.newPage();
    const blocked: string[] = [];
    const errors: string[] = [];
    await page.route('**/*', (route) => (route.request().url().startsWith(srv.url) ? route.continue() : (blocked.push(route.request().url()), route.abort())));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${srv.url}/`);
    await page.waitForFunction("document.getElementById('model').options.length === 2");
    assert.deepEqual(await page.evaluate("[...document.querySelectorAll('#model option')].map((o) => [o.textContent, o.disabled])"), [['doge', false], ['plain (no chat template)', true]]);
    await page.click('summary');
    await page.fill('#temperature', '0');
    await page.fill('#max_tokens', '120');
    // count how often the reply's text changes while it streams: mutation records, not observer callbacks (a fast
    // server's events can arrive in one network read, and one task's mutations reach the observer in one callback)
    await page.evaluate("window.updates = 0; new MutationObserver((records) => { window.updates += records.length; }).observe(document.getElementById('log'), { childList: true, subtree: true, characterData: true })");
    await page.fill('#input', 'hello there');
    await page.press('#input', 'Enter');
    await page.waitForSelector('.assistant .meta', { timeout: 60_000 });
    const meta = await page.textContent('.assistant .meta');
    assert.match(meta ?? '', /^\d+ tokens, [\d.]+ tokens\/s/);
    const reply = await page.evaluate("document.querySelector('.assistant').firstChild.textContent");
    assert.equal(reply, want.choices[0]!.message.content);
    assert.ok((await page.evaluate('window.updates')) as number > 5, 'the reply arrived in pieces');
    assert.equal(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth'), true, 'no sideways scrolling on a 390-pixel screen');
    if (process.env.WM_CHAT_SCREENSHOT) await page.screenshot({ path: process.env.WM_CHAT_SCREENSHOT });
    assert.deepEqual(errors, []);
    assert.deepEqual(blocked, []);
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
    await srv.close(0);
    for (const m of models) m.dispose();
  }
});
