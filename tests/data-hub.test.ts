// Hub download against a local stand-in of the hub HTTP API on 127.0.0.1 (no network): paged tree listing,
// split selection, bearer token, a connection dropped mid-file and resumed with a Range request, the cache,
// and the Parquet-conversion fallback. The downloaded shards then feed `prepare`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { AddressInfo } from 'node:net';
import { brownCorpusDocuments, downloadHubDataset, readRecords, selectSplitFiles, trainTokenizer } from '../src/data';
import { run as dataCli } from '../src/cli/data';

const FX = 'tests/fixtures/data';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-data-hub-'));

// repo path -> file bytes, per revision
const REPOS: Record<string, Record<string, Record<string, Buffer>>> = {
  'acme/brown-mini': {
    main: {
      'README.md': Buffer.from('# card'),
      'data/train-00000-of-00002.parquet': fs.readFileSync(path.join(FX, 'pretrain-snappy.parquet')),
      'data/train-00001-of-00002.parquet': fs.readFileSync(path.join(FX, 'pretrain-zstd.parquet')),
      'data/test-00000-of-00001.parquet': fs.readFileSync(path.join(FX, 'prompt-text.parquet')),
    },
  },
  'acme/scripted': {
    main: { 'scripted.py': Buffer.from('# a loading script') },
    'refs/convert/parquet': { 'default/train/0000.parquet': fs.readFileSync(path.join(FX, 'prompt-text.parquet')) },
  },
};
const TOKEN = 'hf_test_token';
const requests: string[] = [];
const dropped = new Set<string>();

const server = http.createServer((req, res) => {
  const url = new URL(req.url!, 'http://x');
  requests.push(`${req.method} ${url.pathname}${req.headers.range ? ` ${req.headers.range}` : ''}`);
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    res.writeHead(401).end('{"error":"Access to this dataset is restricted"}');
    return;
  }
  let m = /^\/api\/datasets\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
  if (m) {
    const files = REPOS[m[1]!]?.[decodeURIComponent(m[2]!)];
    if (!files) return void res.writeHead(404).end('{"error":"not found"}');
    const entries = Object.entries(files).map(([p, b]) => ({ type: 'file', path: p, size: b.length, oid: 'x' }));
    // Two pages: the hub paginates with a Link header.
    const page = Number(url.searchParams.get('cursor') ?? 0);
    const half = Math.ceil(entries.length / 2);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (page === 0 && entries.length > 1) headers.link = `<${url.pathname}?recursive=true&cursor=1>; rel="next"`;
    res.writeHead(200, headers).end(JSON.stringify(page === 0 ? entries.slice(0, half) : entries.slice(half)));
    return;
  }
  m = /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
  if (m) {
    const file = decodeURIComponent(m[3]!);
    const body = REPOS[m[1]!]?.[decodeURIComponent(m[2]!)]?.[file];
    if (!body) return void res.writeHead(404).end('not found');
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    const start = range ? Number(range[1]) : 0;
    res.writeHead(range ? 206 : 200, { 'content-length': String(body.length - start), ...(range ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
    if (!dropped.has(file) && file.endsWith('00001-of-00002.parquet')) {
      // First attempt at this file: send 40% and drop the connection.
      dropped.add(file);
      res.write(body.subarray(0, Math.floor(body.length * 0.4)), () => res.destroy());
      return;
    }
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(404).end('no route');
});

let endpoint = '';
test('setup: local hub server', async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

test('selectSplitFiles keeps the data files of a split', () => {
  const files = ['README.md', 'data/train-00000-of-00002.parquet', 'data/test-0.parquet', 'train/a.jsonl', 'default/train/0000.parquet', 'trainer.txt'];
  assert.deepEqual(selectSplitFiles(files, 'train'), ['data/train-00000-of-00002.parquet', 'default/train/0000.parquet', 'train/a.jsonl']);
  assert.deepEqual(selectSplitFiles(files, 'test'), ['data/test-0.parquet']);
});

test('download a split: paged listing, token, resume after a dropped connection, cache', async () => {
  const cacheDir = path.join(dir, 'cache');
  await assert.rejects(downloadHubDataset({ dataset: 'acme/brown-mini', split: 'train', endpoint, cacheDir, token: 'wrong', log: false }), /HTTP 401 .*gated or private: set HF_TOKEN/);
  const files = await downloadHubDataset({ dataset: 'acme/brown-mini', split: 'train', endpoint, cacheDir, token: TOKEN, log: false });
  assert.deepEqual(
    files.map((f) => path.relative(cacheDir, f)),
    ['data/train-00000-of-00002.parquet', 'data/train-00001-of-00002.parquet'].map((f) => path.join('datasets', 'acme--brown-mini', 'main', f)),
  );
  for (const f of files) assert.ok(fs.readFileSync(f).equals(REPOS['acme/brown-mini']!.main![path.relative(path.join(cacheDir, 'datasets', 'acme--brown-mini', 'main'), f)]!));
  // The second shard was resumed with a Range request from where the connection dropped.
  assert.ok(requests.some((r) => /resolve\/main\/data\/train-00001-of-00002\.parquet bytes=\d+-$/.test(r)), requests.join('\n'));
  assert.ok(!fs.readdirSync(path.dirname(files[0]!)).some((f) => f.endsWith('.incomplete')));
  // The downloaded shards are ordinary inputs.
  let n = 0;
  for (const f of files) for await (const r of readRecords(f)) n += r.text ? 1 : 0;
  assert.equal(n, 240);
  // Cached: no file is fetched again.
  const before = requests.filter((r) => r.includes('/resolve/')).length;
  await downloadHubDataset({ dataset: 'acme/brown-mini', split: 'train', endpoint, cacheDir, token: TOKEN, log: false });
  assert.equal(requests.filter((r) => r.includes('/resolve/')).length, before);
});

test('without a connection the cached files are used; nothing cached is an error naming the endpoint', async () => {
  const cacheDir = path.join(dir, 'cache');
  const offline = 'http://127.0.0.1:9'; // discard port: connection refused
  const files = await downloadHubDataset({ dataset: 'acme/brown-mini', split: 'train', endpoint: offline, cacheDir, token: TOKEN, log: false });
  assert.equal(files.length, 2);
  assert.ok(files.every((f) => f.includes(path.join('acme--brown-mini', 'main', 'data', 'train-'))));
  await assert.rejects(
    downloadHubDataset({ dataset: 'acme/other', split: 'train', endpoint: offline, cacheDir, token: TOKEN, log: false }),
    /cannot reach http:\/\/127\.0\.0\.1:9 for acme\/other and nothing is cached/,
  );
});

test('a dataset without data files falls back to the Parquet conversion; errors name the dataset', async () => {
  const cacheDir = path.join(dir, 'cache2');
  const files = await downloadHubDataset({ dataset: 'acme/scripted', split: 'train', endpoint, cacheDir, token: TOKEN, log: false });
  assert.equal(files.length, 1);
  assert.ok(files[0]!.endsWith(path.join('acme--scripted', 'refs--convert--parquet', 'default', 'train', '0000.parquet')));
  await assert.rejects(downloadHubDataset({ dataset: 'acme/brown-mini', split: 'validation', endpoint, cacheDir, token: TOKEN, log: false }), /acme\/brown-mini has no data files for split 'validation'/);
  await assert.rejects(downloadHubDataset({ dataset: 'acme/none', endpoint, cacheDir, token: TOKEN, log: false }), /HTTP 404 .*no such dataset/);
  await assert.rejects(downloadHubDataset({ dataset: 'not a name', endpoint, cacheDir, log: false }), /must look like org\/name/);
});

test('wm data prepare --dataset downloads through HF_ENDPOINT/HF_TOKEN and packs the split', async () => {
  const tokDir = path.join(dir, 'tok');
  await trainTokenizer({ texts: brownCorpusDocuments().slice(0, 20), vocabSize: 512, outDir: tokDir, log: false });
  const env = { endpoint: process.env.HF_ENDPOINT, token: process.env.HF_TOKEN };
  process.env.HF_ENDPOINT = endpoint;
  process.env.HF_TOKEN = TOKEN;
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  try {
    const out = path.join(dir, 'prepared');
    await dataCli(['prepare', '--dataset', 'acme/brown-mini', '--dataset-split', 'test', '--cache', path.join(dir, 'cache3'), '--tokenizer', tokDir, '--seq-len', '64', '--out', out, '--test-examples', '2']);
    const stats = JSON.parse(lines.at(-1)!);
    // The test split is prompt-text.parquet: 40 instruction pairs, and only those (not the train shards).
    assert.equal(stats.documents, 40);
    assert.equal(stats.inputs[0].chatDocuments, 40);
    assert.equal(stats.inputs[0].input, 'hub:acme/brown-mini');
  } finally {
    console.log = log;
    if (env.endpoint === undefined) delete process.env.HF_ENDPOINT;
    else process.env.HF_ENDPOINT = env.endpoint;
    if (env.token === undefined) delete process.env.HF_TOKEN;
    else process.env.HF_TOKEN = env.token;
  }
});

test('a misbehaving hub: looping or endless Link: rel="next" pages stop; a token echoed by the server is redacted; listed paths stay inside (issue #20 item 11)', async () => {
  const hits = { loop: 0, endless: 0 };
  const bad = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const m = /^\/api\/datasets\/acme\/(\w+)\/tree\//.exec(url.pathname);
    const kind = m?.[1];
    const page = Number(url.searchParams.get('cursor') ?? 0);
    const one = JSON.stringify([{ type: 'file', path: `data/train-${page}.jsonl`, size: 3 }]);
    if (kind === 'loop') { hits.loop++; return void res.writeHead(200, { link: `<${url.pathname}?recursive=true&cursor=${(page + 1) % 3}>; rel="next"` }).end(one); }
    if (kind === 'endless') { hits.endless++; return void res.writeHead(200, { link: `<${url.pathname}?recursive=true&cursor=${page + 1}>; rel="next"` }).end(one); }
    if (kind === 'echo') return void res.writeHead(500).end(`upstream said: authorization: ${req.headers.authorization}; retry`);
    if (kind === 'escape') return void res.writeHead(200).end(JSON.stringify([{ type: 'file', path: '../../../evil/train.jsonl', size: 3 }]));
    res.writeHead(404).end('no');
  });
  await new Promise<void>((r) => bad.listen(0, '127.0.0.1', r));
  const ep = `http://127.0.0.1:${(bad.address() as AddressInfo).port}`;
  const cacheDir = path.join(dir, 'cache-bad');
  try {
    await assert.rejects(downloadHubDataset({ dataset: 'acme/loop', endpoint: ep, cacheDir, token: TOKEN, log: false }), /hub: listing acme\/loop@main: the server's next page .*cursor=1 was already read \(a loop in its Link: rel="next" headers\)/);
    assert.equal(hits.loop, 4, "first page, cursors 1, 2, 0, then cursor 1 again is refused");
    await assert.rejects(downloadHubDataset({ dataset: 'acme/endless', endpoint: ep, cacheDir, token: TOKEN, log: false }), /hub: listing acme\/endless@main: more than 1000 pages; stopping/);
    assert.equal(hits.endless, 1000);
    await assert.rejects(downloadHubDataset({ dataset: 'acme/echo', endpoint: ep, cacheDir, token: TOKEN, log: false }), (e: Error) => {
      assert.ok(!e.message.includes(TOKEN), e.message);
      assert.match(e.message, /HTTP 500 .*authorization: Bearer <redacted>; retry/);
      return true;
    });
    await assert.rejects(downloadHubDataset({ dataset: 'acme/escape', endpoint: ep, cacheDir, token: TOKEN, log: false }), /the server listed the file path "\.\.\/\.\.\/\.\.\/evil\/train\.jsonl", which is not a relative path inside the repository/);
    assert.ok(!fs.existsSync(path.join(cacheDir, 'evil')));
  } finally {
    bad.close();
  }
});

test('dataset and revision names are checked (usage errors, exit 2); the offline fallback never serves another revision (issue #20 item 11)', async () => {
  const cacheDir = path.join(dir, 'cache-names');
  for (const name of ['org/..', './.', '../x', 'a/.b', 'org/a..b', 'org/', '/x', 'a/b/c']) {
    await assert.rejects(downloadHubDataset({ dataset: name, endpoint, cacheDir, token: TOKEN, log: false }), (e: Error & { exitCode?: number }) =>
      e.exitCode === 2 && e.message === `hub: dataset '${name}' must look like org/name (letters, digits, '-', '_', '.'; each part starting with a letter or digit; no '..')`, name);
  }
  for (const rev of ['..', '.', 'a/../b', 'refs//x', '/main', '.hidden']) {
    await assert.rejects(downloadHubDataset({ dataset: 'acme/brown-mini', revision: rev, endpoint: 'http://127.0.0.1:9', cacheDir, token: TOKEN, log: false }),
      (e: Error & { exitCode?: number }) => e.exitCode === 2 && /hub: revision '.*' is not a branch, tag, commit or refs\/\.\.\. name/.test(e.message), rev);
  }
  // offline: another branch's cached files are not served for the default revision
  const root = path.join(cacheDir, 'datasets', 'acme--cached');
  fs.mkdirSync(path.join(root, 'dev', 'data'), { recursive: true });
  fs.writeFileSync(path.join(root, 'dev', 'data', 'train-0.jsonl'), '{"text":"dev"}\n');
  await assert.rejects(downloadHubDataset({ dataset: 'acme/cached', split: 'train', endpoint: 'http://127.0.0.1:9', cacheDir, token: TOKEN, log: false }), /nothing is cached/);
  const dev = await downloadHubDataset({ dataset: 'acme/cached', split: 'train', revision: 'dev', endpoint: 'http://127.0.0.1:9', cacheDir, token: TOKEN, log: false });
  assert.deepEqual(dev, [path.join(root, 'dev', 'data', 'train-0.jsonl')]);
  // the CLI: a malformed --dataset is a usage error (exit 2)
  await assert.rejects(dataCli(['prepare', '--dataset', 'org/..', '--tokenizer', dir, '--out', path.join(dir, 'never')]), (e: Error & { exitCode?: number }) => e.exitCode === 2);
});
