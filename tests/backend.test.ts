import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadBackend, tf } from '../src/runtime/backend';

test('loadBackend picks a backend and names it', async () => {
  const info = await loadBackend({ log: false });
  assert.equal(tf.getBackend(), info.tfjsBackend);
  assert.ok(['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'].includes(info.name));
});

test('an unknown forced backend is refused with the valid names', async () => {
  await assert.rejects(loadBackend({ backend: 'webgl', log: false }), /'webgl' is not a backend; choose one of tensorflow-gpu, webgpu, tensorflow, wasm, cpu/);
});

test('WM_WASM_THREADS=2 runs XNNPACK on 2 threads with the same results as 1 thread, and the process exits by itself', async () => {
  const { execFileSync } = await import('node:child_process');
  const script = `
    const { loadBackend, tf } = require('./src/runtime/backend');
    const { wasmThreadsCount } = require('./src/runtime/wasm-threads');
    loadBackend({ backend: 'wasm', log: false }).then(() => {
      const a = tf.tensor2d(Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i)), [64, 48]);
      const b = tf.tensor2d(Array.from({ length: 48 * 80 }, (_, i) => Math.cos(i)), [48, 80]);
      const c = tf.matMul(a, b).dataSync();
      console.log(JSON.stringify({ threads: wasmThreadsCount(), sum: Array.from(c).reduce((s, x) => s + x, 0), c7: c[7] }));
    });`;
  const run = (threads: string) => JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
    env: { ...process.env, WM_WASM_THREADS: threads }, encoding: 'utf8', timeout: 60_000,
  }).trim().split('\n').pop()!);
  const one = run('1');
  const two = run('2');
  assert.equal(one.threads, 1);
  assert.equal(two.threads, 2);
  assert.ok(Math.abs(one.sum - two.sum) < 1e-3, `${one.sum} vs ${two.sum}`);
  assert.ok(Math.abs(one.c7 - two.c7) < 1e-5);
});

test('a bad WM_WASM_THREADS value is refused with the rule', async () => {
  await assert.rejects(loadBackend({ wasmThreads: 9, log: false }), /WM_WASM_THREADS\/wasmThreads must be 'auto' or an integer from 1 to 8, got '9'/);
});

test('an impossible wasm thread count is refused', async () => {
  const { prepareWasmThreads } = await import('../src/runtime/wasm-threads');
  assert.throws(() => prepareWasmThreads(tf, 0), /wasm threads must be an integer from 1 to 8 \(the backend pre-creates 8 workers\), got 0/);
});

test('many processes starting the threaded backend at once all start (worker scripts written once, atomically, content-addressed)', async () => {
  const { spawn } = await import('node:child_process');
  const crypto = await import('node:crypto');
  const fs = await import('node:fs');
  const path = await import('node:path');
  // 8 threads per process: 8 workers start while the scripts are "written" for each of them (the old race).
  const start = () => new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn(process.execPath, ['-e', "require('./dist').loadBackend({ log: false, backend: 'wasm' }).then(() => console.log('ok'))"],
      { env: { ...process.env, WM_WASM_THREADS: '8' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('exit', (code) => resolve({ code, out: out.trim() }));
  });
  const results: { code: number | null; out: string }[] = [];
  for (let round = 0; round < 2; round++) results.push(...await Promise.all(Array.from({ length: 6 }, start)));
  const bad = results.filter((r) => r.code !== 0 || r.out !== 'ok');
  assert.deepEqual(bad, [], `${bad.length} of ${results.length} starts failed`);
  // The cache holds content-addressed scripts only: each file's name is the hash of its content.
  const { wasmThreadsCacheDir } = await import('../src/runtime/wasm-threads');
  const dir = wasmThreadsCacheDir();
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 2);
  for (const f of files) {
    const sha = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, f), 'utf8')).digest('hex').slice(0, 32);
    assert.equal(f, `${sha}.js`);
  }
});

test('auto wasm threads per workload: decoding single-threaded, training one thread per core free now', async () => {
  const { autoWasmThreads } = await import('../src/runtime/backend');
  const now = (busy: number) => ({ busy, source: 'now' as const });
  assert.deepEqual(autoWasmThreads('inference', 2, now(0)), { threads: 1, why: 'inference: single-threaded by default' });
  assert.deepEqual(autoWasmThreads('training', 2, now(0.2)), { threads: 2, why: 'training: 0.2 of 2 cores busy now' });
  // the case the 1-minute load average got wrong: a job just ended (load average 0.7), nothing runs now -> 2 threads
  assert.equal(autoWasmThreads('training', 2, now(0)).threads, 2);
  assert.equal(autoWasmThreads('training', 2, { busy: 0.7, source: 'load average' }).threads, 1);
  assert.equal(autoWasmThreads('training', 2, now(0.8)).threads, 1);
  assert.deepEqual(autoWasmThreads('training', 2, now(2)), { threads: 1, why: 'training: machine busy, 2.0 of 2 cores busy now' });
  assert.deepEqual(autoWasmThreads('training', 2, { busy: 12.4, source: 'load average' }), { threads: 1, why: 'training: machine busy, load average 12.4 on 2 cores' });
  assert.equal(autoWasmThreads('training', 16, now(0)).threads, 8);
  assert.equal(autoWasmThreads('training', 16, now(6)).threads, 8);
  assert.equal(autoWasmThreads('training', 16, now(10)).threads, 6);
});

test('cores busy now: /proc/stat ticks between two samples, in cores, minus this process', async () => {
  const { cpuBusyNow, parseProcStat } = await import('../src/runtime/backend');
  const stat = (user: number, idle: number) => `cpu  ${user} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\nintr 1\n`;
  assert.deepEqual(parseProcStat('cpu  10 2 3 100 5 1 1 1 7 0\ncpu0 1\ncpu1 1\ncpu2 1\n'), { busy: 18, total: 123, cpus: 3 });
  assert.throws(() => parseProcStat('garbage'), /\/proc\/stat: no aggregate 'cpu' line in 'garbage'/);
  // a fixed clock: each reading advances wall time by 100 ms and this process's CPU time by `ownPerRead` ms
  const fixedClock = (ownPerRead: number) => {
    let own = 0, wall = 0;
    return { ownCpuMs: () => (own += ownPerRead), wallMs: () => (wall += 100) };
  };
  // 2 cpus, 20 ticks in the window, 15 of them busy: 1.5 cores busy; this process used 30 ms of CPU in 100 ms: 0.3 core
  let texts = [stat(100, 100), stat(115, 105)];
  assert.deepEqual(await cpuBusyNow(1, () => texts.shift()!, fixedClock(30)), { busy: 1.5 - 0.3, source: 'now' });
  // a late timer: our CPU time is divided by the interval that passed (100 ms), not the requested window (1 ms)
  texts = [stat(100, 100), stat(115, 105)];
  assert.deepEqual(await cpuBusyNow(1, () => texts.shift()!, fixedClock(0)), { busy: 1.5, source: 'now' });
  // more than everything busy (our own usage over-counted) is clamped to [0, cpus]
  texts = [stat(100, 100), stat(101, 119)];
  assert.deepEqual(await cpuBusyNow(1, () => texts.shift()!, fixedClock(90)), { busy: 0, source: 'now' });
  // no ticks at all (a frozen counter) is an idle machine, not a division by zero
  assert.deepEqual(await cpuBusyNow(1, () => stat(100, 100)), { busy: 0, source: 'now' });
  // unreadable /proc/stat: the load average
  assert.equal((await cpuBusyNow(1, () => { throw new Error('ENOENT'); })).source, 'load average');
  // the real file on this machine (Linux): a number of cores in [0, cpus]
  const real = await cpuBusyNow(20);
  assert.ok(real.busy >= 0 && real.busy <= 64, JSON.stringify(real));
});

test('the backend log line is one short line (backend, threads, BLAS); WM_LOG=debug (wm --verbose sets it) adds the reasons', async () => {
  const { spawnSync } = await import('node:child_process');
  const { backendSummary } = await import('../src/runtime/backend');
  const stderr = (env: Record<string, string>) => spawnSync(process.execPath, ['-e', "require('./dist').loadBackend({ backend: 'wasm' })"],
    { encoding: 'utf8', env: { ...process.env, WM_LOG: '', WM_WASM_THREADS: '1', WM_NATIVE_BLAS: 'auto', ...env } }).stderr;
  const short = stderr({});
  assert.match(short, /^\[wonderful-matrices\] backend: wasm, 1 thread, BLAS OpenBLAS \S+\n$/);
  assert.ok(short.length < 80, short);
  const off = stderr({ WM_NATIVE_BLAS: '0' });
  assert.equal(off, '[wonderful-matrices] backend: wasm, 1 thread, BLAS none (XNNPACK matmuls)\n');
  const debug = stderr({ WM_LOG: 'debug' }).split('\n');
  assert.equal(debug[0], short.trim());
  assert.match(debug[1], /^\[wonderful-matrices\] backend details: forced by WM_BACKEND\/option; 1 XNNPACK thread \(WM_WASM_THREADS\/option; WM_WASM_THREADS=N sets it\); matmuls on OpenBLAS/);
  // a fall-back past wasm, or a failed threaded start, is said on the short line
  assert.equal(backendSummary({ name: 'cpu', tfjsBackend: 'cpu', reason: 'best that loaded; wasm unavailable (x)' }), 'cpu (wasm did not load; WM_LOG=debug says why)');
  assert.equal(backendSummary({ name: 'cpu', tfjsBackend: 'cpu', reason: 'forced by WM_BACKEND/option' }), 'cpu');
  assert.equal(backendSummary({ name: 'wasm', tfjsBackend: 'wasm', reason: '', threads: 1, blas: 'OpenBLAS 0.3.21' }, ['threaded XNNPACK failed to start']),
    'wasm, 1 thread, BLAS OpenBLAS 0.3.21 (threaded XNNPACK failed to start; WM_LOG=debug says why)');
});

test('loadBackend on an inference workload runs XNNPACK single-threaded', async () => {
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync(process.execPath, ['-e', "const b=require('./dist');b.loadBackend({ workload: 'inference', backend: 'wasm' }).then(()=>console.log(require('./dist/runtime/wasm-threads').wasmThreadsCount()))"],
    { encoding: 'utf8', env: { ...process.env, WM_WASM_THREADS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(out.trim(), '1');
});

test('API use before loadBackend() names loadBackend(); after it, an uncaught user error exits 1 and runs exit handlers', async () => {
  const { spawnSync } = await import('node:child_process');
  const node = (code: string) => spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...process.env, WM_WASM_THREADS: '2' } });
  const early = node("const { DogeConfig, DogeForCausalLM } = require('./dist'); new DogeForCausalLM(DogeConfig.preset('doge-tiny'), { seed: 0 });");
  assert.notEqual(early.status, 0);
  assert.match(early.stderr, /no tfjs backend is ready yet; call `await loadBackend\(\)` \(from 'wonderful-matrices'\) once before using models or tensors/);
  const late = node("require('./dist').loadBackend({ log: false, backend: 'wasm' }).then(() => { process.on('exit', (c) => console.log('exit handler', c)); setTimeout(() => { throw new Error('user bug'); }, 5); });");
  assert.equal(late.status, 1, late.stderr);
  assert.equal(late.stdout.trim(), 'exit handler 1');
  assert.match(late.stderr, /Error: user bug/);
  const rejected = node("require('./dist').loadBackend({ log: false, backend: 'wasm' }).then(() => { process.on('exit', (c) => console.log('exit handler', c)); Promise.reject(new Error('async bug')); });");
  assert.equal(rejected.status, 1, rejected.stderr);
  assert.equal(rejected.stdout.trim(), 'exit handler 1');
});

test('savePretrained folders follow the umask (0755 under umask 022), not mkdtemp\'s 0700', async () => {
  const { spawnSync } = await import('node:child_process');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-mode-'));
  for (const [umask, want] of [['0o022', 0o755], ['0o027', 0o750]] as const) {
    const out = path.join(dir, `m${umask}`);
    const r = spawnSync(process.execPath, ['-e', `process.umask(${umask}); const b = require('./dist'); b.loadBackend({ log: false }).then(() => {
      const m = new b.DogeForCausalLM(new b.DogeConfig({ vocab_size: 16, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1 }), { seed: 0 });
      m.savePretrained(${JSON.stringify(out)}); })`], { encoding: 'utf8', env: { ...process.env, WM_WASM_THREADS: '1' } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal((fs.statSync(out).mode & 0o777).toString(8), want.toString(8), `umask ${umask}`);
  }
});
