// `pnpm test` starts with scripts/install-system-deps.sh: as root it installs the missing Debian packages, as any
// other user it stops at once with the exact command to run. Checked with stand-ins for dpkg-query and apt-get.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const SCRIPT = path.join(ROOT, 'scripts', 'install-system-deps.sh');

/** A bin folder where dpkg-query reports nothing installed and apt-get only records its arguments. */
function fakeDebian(): { bin: string; log: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-sysdeps-'));
  fs.chmodSync(dir, 0o755);
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { mode: 0o755 });
  const log = path.join(dir, 'apt.log');
  fs.writeFileSync(path.join(bin, 'dpkg-query'), '#!/bin/sh\necho -n "unknown ok not-installed"\n', { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'apt-get'), `#!/bin/sh\necho "apt-get $*" >> ${log}\n`, { mode: 0o755 });
  return { bin, log };
}

test('package.json: pnpm test runs the system-deps step, builds the native addon, then builds, type-checks tests and scripts, and tests', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.test, /^bash scripts\/install-system-deps\.sh && node scripts\/build-native\.mjs && pnpm build && tsc -p tsconfig\.tests\.json && node scripts\/run-tests\.mjs$/);
});

test('as root the missing packages are installed with apt-get', () => {
  const { bin, log } = fakeDebian();
  const asRoot = process.getuid?.() === 0;
  // Not root: `sudo` is not available in tests; the unprivileged branch below covers that user.
  if (!asRoot) {
    const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    assert.equal(r.status, 1);
    return;
  }
  const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  assert.equal(r.status, 0, r.stderr);
  const calls = fs.readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(calls[0], 'apt-get update -qq');
  assert.match(calls[1], /^apt-get install -y -qq --no-install-recommends jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel jupyter-core python3-plotly chromium fonts-dejavu-core libopenblas0-pthread gcc libc6-dev libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri libvulkan1 tmux$/);
});

test('as another user it stops at once and prints the one command to run', () => {
  const { bin, log } = fakeDebian();
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const t0 = Date.now();
  const r = process.getuid?.() === 0
    ? spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'bash', SCRIPT], { encoding: 'utf8', env })
    : spawnSync('bash', [SCRIPT], { encoding: 'utf8', env });
  assert.equal(r.status, 1, r.stderr);
  assert.ok(Date.now() - t0 < 5000);
  assert.match(r.stderr, /missing: jupyter-nbconvert .* chromium fonts-dejavu-core libopenblas0-pthread gcc libc6-dev libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri libvulkan1 tmux/);
  assert.ok(r.stderr.includes(`    sudo bash ${SCRIPT}\n`), r.stderr);
  assert.ok(!fs.existsSync(log), 'nothing was installed');
});
