// `wm chat`: piped input (one message per line, one reply per line), the /commands, history cut from the left,
// Doge and Cheems, run folders, a folder without a chat template; the terminal (TTY) behaviour in tmux.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBackend } from '../src/runtime/backend';
import { loadCausalLM } from '../src/models/auto';
import { loadTokenizer } from '../src/data';
import { endOfTurnId } from '../src/finetune/chat';
import { loadFinetuneConfig } from '../src/finetune';
import { terminalSafe } from '../src/cli/chat';
import { resolveModelDir } from '../src/io/model-dir';
import { tinyChatModels, type TinyModels } from './talk-helpers';

let dirs: TinyModels;

before(async () => {
  await loadBackend({ log: false, workload: 'inference' }); // as wm chat: the same kernels, the same greedy tokens
  dirs = await tinyChatModels('wm-chat-', 96);
});

/** Run `wm chat` with `input` on stdin. */
function chat(args: string[], input: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join('src', 'cli', 'wm.ts'), 'chat', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('exit', (code) => resolve({ code, out, err }));
    child.stdin.end(input);
  });
}

/** The greedy reply to one user message, computed directly (what the first line of a piped chat must be). */
async function firstReply(dir: string, user: string, maxNew: number): Promise<string> {
  const tok = await loadTokenizer(dir);
  const model = loadCausalLM(dir);
  const prompt = tok.encodeChat([{ role: 'user', content: user }], { addGenerationPrompt: true });
  const [row] = model.generate([prompt], { maxNewTokens: maxNew, doSample: false, eosTokenId: [endOfTurnId(tok), tok.eosTokenId!] });
  model.dispose();
  return terminalSafe(tok.decode(row!.slice(prompt.length), { skipSpecialTokens: true }), false);
}

test('piped: one reply line per message line, commands on stderr, history cut from the left with a notice', { timeout: 60_000 }, async () => {
  const save = path.join(dirs.root, 'conv.json');
  const r = await chat(['--model', dirs.doge, '--max-new-tokens', '24'], `hello there\n/system be brief\nhow are you?\n\n/oops\nthank you\n/save ${save}\n/reset\n/system\nhello there\n`);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n');
  assert.equal(lines.length, 5, JSON.stringify(r.out)); // four replies and the final newline
  const want = await firstReply(dirs.doge, 'hello there', 24);
  assert.equal(lines[0], want);
  assert.equal(lines[3], want, 'after /reset and /system (removed) the same message gets the same reply');
  assert.match(r.err, /\(system prompt removed\)/);
  assert.match(r.err, /\(system prompt set\)/);
  assert.match(r.err, /unknown command \/oops; \/help lists the commands/);
  assert.match(r.err, /\(history: dropped the 2 oldest messages to fit the model's 96-token context\)/);
  assert.match(r.err, /\(conversation cleared\)/);
  assert.equal((r.err.match(/\[\d+ tokens in [\d.]+ s, [\d.]+ tokens\/s/g) ?? []).length, 4);
  const saved = JSON.parse(fs.readFileSync(save, 'utf8')) as { messages: { role: string; content: string }[] };
  // 96 tokens of context hold the system prompt and one exchange of 24-token replies: the older ones were dropped
  assert.deepEqual(saved.messages.map((m) => m.role), ['system', 'user', 'assistant']);
  assert.equal(saved.messages[0]!.content, 'be brief');
  assert.equal(saved.messages.at(-2)!.content, 'thank you');
});

test('Cheems chats too; a message longer than the context is refused and the chat goes on', { timeout: 60_000 }, async () => {
  const r = await chat(['--model', dirs.cheems, '--max-new-tokens', '8'], `${'hello there '.repeat(60)}\nhello there\n`);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /\(this message is \d+ tokens with the template; the model's context is 96 tokens: shorten it\)/);
  const lines = r.out.split('\n');
  assert.equal(lines.length, 3);
  assert.equal(lines[0], '');
  assert.equal(lines[1], await firstReply(dirs.cheems, 'hello there', 8));
});

test('a folder without a chat template is refused with the fix; a run folder stands for its final/ model', { timeout: 60_000 }, async () => {
  const r = await chat(['--model', dirs.plain], 'hi\n');
  assert.equal(r.code, 1);
  assert.match(r.err, /wm chat: .*plain has no chat template \(tokenizer_config\.json 'chat_template'\): fine-tune it with wm sft/);
  const run = path.join(dirs.root, 'run');
  fs.cpSync(dirs.doge, path.join(run, 'checkpoint-10'), { recursive: true });
  fs.cpSync(dirs.doge, path.join(run, 'checkpoint-2'), { recursive: true });
  assert.throws(() => resolveModelDir(run), { message: `--model ${run} is a run folder without final/ (the run has not finished); it holds checkpoint-2, checkpoint-10: give one of them (e.g. --model ${path.join(run, 'checkpoint-10')}) or finish the run with --resume` });
  fs.cpSync(dirs.doge, path.join(run, 'final'), { recursive: true });
  assert.equal(resolveModelDir(run), path.join(run, 'final'));
  // wm sft / wm dpo --init-from RUN (what failed with "tokenizer.json is missing")
  assert.equal(loadFinetuneConfig('configs/doge-tiny-sft.yaml', 'sft', { 'init-from': run }).model.init_from, path.join(run, 'final'));
  const ok = await chat(['--model', run, '--max-new-tokens', '6'], 'hello there\n');
  assert.equal(ok.code, 0, ok.err);
  assert.equal(ok.out, (await firstReply(dirs.doge, 'hello there', 6)) + '\n');
});


test('terminal: prompt, streamed reply, Ctrl-C stops a reply without leaving, /exit leaves (tmux)', { timeout: 90_000 }, async () => {
  // tmux comes with scripts/install-system-deps.sh (pnpm test runs it first).
  assert.equal(spawnSync('tmux', ['-V']).status, 0, 'tmux is not installed: run scripts/install-system-deps.sh');
  const big = await tinyChatModels('wm-chat-tty-', 4096);
  const session = `wm-chat-test-${process.pid}`;
  const tmux = (...a: string[]) => spawnSync('tmux', a, { encoding: 'utf8' });
  const pane = () => tmux('capture-pane', '-t', session, '-p', '-S', '-200').stdout;
  const waitFor = async (re: RegExp, ms = 30_000) => {
    for (const t0 = Date.now(); Date.now() - t0 < ms;) {
      if (re.test(pane())) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`timed out waiting for ${re} in:\n${pane()}`);
  };
  const cmd = `${process.execPath} --import tsx src/cli/wm.ts chat --model ${big.doge} --max-new-tokens 4000; echo CHAT-EXITED $?; sleep 60`;
  assert.equal(tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '50', '-c', process.cwd(), cmd).status, 0);
  try {
    await waitFor(/you>\s*$/m);
    assert.match(pane(), /doge: Doge, 1 layers, hidden 32, context 4096 tokens; greedy, up to 4000 tokens a reply/);
    tmux('send-keys', '-t', session, 'hello there', 'Enter');
    await waitFor(/bot> ./);
    tmux('send-keys', '-t', session, 'C-c');
    await waitFor(/tokens\/s; stopped by Ctrl-C\]\s*\nyou>\s*$/m);
    tmux('send-keys', '-t', session, '/exit', 'Enter');
    await waitFor(/CHAT-EXITED 0/);
  } finally {
    tmux('kill-session', '-t', session);
  }
});
