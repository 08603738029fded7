/**
 * Download a dataset's data files from the Hugging Face hub into a local cache, resumably.
 *
 * Uses the public HTTP API: `GET {endpoint}/api/datasets/{repo}/tree/{revision}?recursive=true` lists the
 * files (paged with a `Link: <...>; rel="next"` header), `GET {endpoint}/datasets/{repo}/resolve/{revision}/{path}`
 * fetches one (following the redirect to the storage host). `HF_TOKEN` is sent as a bearer token for
 * gated/private datasets; `HF_ENDPOINT` overrides the endpoint (tests point it at a local server).
 * A partial download is kept as `<file>.incomplete` and continued with an HTTP Range request.
 * When the repository itself has no data files for the split, the hub's Parquet conversion
 * (revision `refs/convert/parquet`) is used. Without a connection, complete files already in the cache are used.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface HubDownloadOptions {
  /** `org/name` */
  dataset: string;
  /** Keep only files of this split (`train`, `test`, ...); default: all data files. */
  split?: string;
  /** Only files under this folder of the repo (a config, e.g. `sample/10BT`). */
  subdir?: string;
  revision?: string;
  /** Cache root; default `$WM_CACHE` or `~/.cache/wonderful-matrices`. */
  cacheDir?: string;
  /** Default `HF_TOKEN` from the environment. */
  token?: string;
  /** Default `HF_ENDPOINT` or https://huggingface.co */
  endpoint?: string;
  /** Stop after this many files (a quick sample of a big corpus). */
  maxFiles?: number;
  log?: boolean;
}

interface TreeEntry {
  type: 'file' | 'directory';
  path: string;
  size?: number;
  lfs?: { size?: number };
}

const DATA_EXT = /\.(parquet|arrow|jsonl|json|txt|ndjson)$/i;

export function defaultCacheDir(): string {
  return process.env.WM_CACHE ?? path.join(os.homedir(), '.cache', 'wonderful-matrices');
}

/** Pages of a file listing followed at most (the hub pages 1000 files a page: a million files). */
export const MAX_LIST_PAGES = 1000;

/** An error that is the caller's input (a malformed name): the CLI exits 2, as for any usage mistake. */
function usageError(message: string): Error {
  return Object.assign(new Error(message), { exitCode: 2 });
}

/** `org/name` as the hub spells repository ids: each part starts with a letter or digit, no `..`. */
export function checkDatasetName(dataset: string): void {
  const ok = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(dataset) && !dataset.includes('..');
  if (!ok) throw usageError(`hub: dataset '${dataset}' must look like org/name (letters, digits, '-', '_', '.'; each part starting with a letter or digit; no '..')`);
}

/** A branch, tag, commit or `refs/...` name: segments of letters, digits, '-', '_', '.', none empty or starting with '.'. */
export function checkRevisionName(revision: string): void {
  const ok = revision.length > 0 && revision.length <= 255 && revision.split('/').every((seg) => /^[\w+=@-][\w.+=@-]*$/.test(seg)) && !revision.includes('..');
  if (!ok) throw usageError(`hub: revision '${revision}' is not a branch, tag, commit or refs/... name (segments of letters, digits, '-', '_', '.', none empty or starting with '.'; no '..')`);
}

/** The message with the token's value (and any bearer credential a server echoed) replaced by <redacted>. */
function redact(message: string, token: string | undefined): string {
  let out = token ? message.split(token).join('<redacted>') : message;
  out = out.replace(/(Bearer\s+)[^\s"'<>,;]+/gi, '$1<redacted>');
  return out;
}

function headers(token: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { 'user-agent': 'wonderful-matrices', ...extra };
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

async function httpError(res: Response, what: string): Promise<Error> {
  let body = '';
  try {
    body = (await res.text()).slice(0, 300);
  } catch {
    // ignore
  }
  const hint = res.status === 401 || res.status === 403 ? ' (gated or private: set HF_TOKEN)' : res.status === 404 ? ' (no such dataset, revision or file)' : '';
  // (the server's body may echo the request, bearer token included: downloadHubDataset redacts every message)
  return new Error(`hub: ${what} failed: HTTP ${res.status} ${res.statusText}${hint}${body ? `: ${body}` : ''}`);
}

/** All files of a dataset repo at a revision (follows pagination). */
export async function listHubFiles(o: HubDownloadOptions): Promise<{ path: string; size: number }[]> {
  const token = o.token ?? process.env.HF_TOKEN;
  try {
    return await listPages(o, token);
  } catch (e) {
    throw redactError(e, token);
  }
}

/** The same error with the token redacted from its message (a TypeError stays one: it means "no connection"). */
function redactError(e: unknown, token: string | undefined): unknown {
  if (!(e instanceof Error)) return e;
  const clean = redact(e.message, token);
  if (clean === e.message) return e;
  return Object.assign(e instanceof TypeError ? new TypeError(clean) : new Error(clean), { exitCode: (e as { exitCode?: number }).exitCode });
}

async function listPages(o: HubDownloadOptions, token: string | undefined): Promise<{ path: string; size: number }[]> {
  const endpoint = (o.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
  checkDatasetName(o.dataset);
  if (o.revision !== undefined) checkRevisionName(o.revision);
  const rev = encodeURIComponent(o.revision ?? 'main');
  const sub = o.subdir ? `/${o.subdir.split('/').map(encodeURIComponent).join('/')}` : '';
  let url: string | undefined = `${endpoint}/api/datasets/${o.dataset}/tree/${rev}${sub}?recursive=true`;
  const out: { path: string; size: number }[] = [];
  const seen = new Set<string>();
  while (url) {
    // a server whose Link: rel="next" loops (or never ends) would be asked forever
    if (seen.has(url)) throw new Error(`hub: listing ${o.dataset}@${o.revision ?? 'main'}: the server's next page ${url} was already read (a loop in its Link: rel="next" headers)`);
    if (seen.size >= MAX_LIST_PAGES) throw new Error(`hub: listing ${o.dataset}@${o.revision ?? 'main'}: more than ${MAX_LIST_PAGES} pages; stopping (pass --max-files, or check the endpoint)`);
    seen.add(url);
    const res = await fetch(url, { headers: headers(token) });
    if (!res.ok) throw await httpError(res, `listing ${o.dataset}@${o.revision ?? 'main'}`);
    const entries = (await res.json()) as TreeEntry[];
    if (!Array.isArray(entries)) throw new Error(`hub: listing ${o.dataset}: the server sent ${typeof entries}, not a list of files`);
    for (const e of entries) {
      if (e?.type !== 'file') continue;
      // a listed path becomes a cache path: no '..', '.', empty or absolute segments
      if (typeof e.path !== 'string' || e.path.split('/').some((seg) => seg === '' || seg === '.' || seg === '..' || seg.includes('\\'))) {
        throw new Error(`hub: listing ${o.dataset}: the server listed the file path ${JSON.stringify(e.path)}, which is not a relative path inside the repository`);
      }
      out.push({ path: e.path, size: e.lfs?.size ?? e.size ?? -1 });
    }
    const link = res.headers.get('link');
    const next = link?.match(/<([^>]+)>;\s*rel="next"/);
    url = next ? new URL(next[1]!, url).toString() : undefined;
  }
  return out;
}

/** Data files of a split: the split name as a folder or as the start of the file name (`train-0000.parquet`). */
export function selectSplitFiles(files: string[], split?: string): string[] {
  const data = files.filter((f) => DATA_EXT.test(f) && !/(^|\/)(\.|README|dataset_infos?\.json$|state\.json$|dataset_dict\.json$)/.test(f));
  if (!split) return data.sort();
  const esc = split.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`(^|/)${esc}([-_./]|$)|(^|/)${esc}/`);
  return data.filter((f) => re.test(f)).sort();
}

/** Download one file to `dest` (resuming `dest.incomplete`), then rename into place. */
async function downloadFile(url: string, dest: string, size: number, token: string | undefined, log: boolean): Promise<void> {
  if (fs.existsSync(dest) && (size < 0 || fs.statSync(dest).size === size)) return;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const part = `${dest}.incomplete`;
  for (let attempt = 0; ; attempt++) {
    const have = fs.existsSync(part) ? fs.statSync(part).size : 0;
    if (size >= 0 && have === size) break;
    const res = await fetch(url, { headers: headers(token, have > 0 ? { range: `bytes=${have}-` } : {}) });
    if (res.status === 416 && size < 0) break; // nothing left to fetch
    if (!res.ok) throw await httpError(res, `downloading ${url}`);
    // 206: the server continues where we were; 200: it sends everything again.
    const append = res.status === 206 && have > 0;
    const out = fs.createWriteStream(part, { flags: append ? 'a' : 'w' });
    let got = append ? have : 0;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        got += chunk.length;
      }
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    } catch (e) {
      await new Promise<void>((resolve) => out.end(() => resolve()));
      if (attempt >= 4) throw new Error(`hub: downloading ${url} failed after ${attempt + 1} attempts at byte ${got}: ${(e as Error).message}`);
      if (log) console.error(`hub: connection lost at byte ${got} of ${dest}, resuming`);
      continue;
    }
    if (size < 0 || got === size) break;
    if (attempt >= 4) throw new Error(`hub: ${url} ended at byte ${got} of ${size} after ${attempt + 1} attempts`);
    if (log) console.error(`hub: ${dest} ended at byte ${got} of ${size}, resuming`);
  }
  if (size >= 0 && fs.statSync(part).size !== size) throw new Error(`hub: ${dest} has ${fs.statSync(part).size} bytes, expected ${size}`);
  fs.renameSync(part, dest);
}

/** Complete (not `.incomplete`) cached data files of a split, from the given revision or any cached one. */
function cachedSplitFiles(cacheRoot: string, revision: string | undefined, split: string | undefined): string[] {
  if (!fs.existsSync(cacheRoot)) return [];
  // the revision asked for, or (none asked) main and the hub's Parquet export of it: never another branch's files
  const revs = (revision ? [revision] : ['main', 'refs/convert/parquet']).map(cacheFolderOf);
  for (const rev of revs) {
    const root = path.join(cacheRoot, rev);
    if (!fs.existsSync(root)) continue;
    const all: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else all.push(path.relative(root, p).split(path.sep).join('/'));
      }
    };
    walk(root);
    const picked = selectSplitFiles(all, split);
    if (picked.length) return picked.map((f) => path.join(root, ...f.split('/')));
  }
  return [];
}

/**
 * Download the data files of a hub dataset (one split, or all) and return their local paths, ready to be
 * used as `prepare` inputs. Files already in the cache with the right size are not fetched again.
 */
export async function downloadHubDataset(o: HubDownloadOptions): Promise<string[]> {
  const token = o.token ?? process.env.HF_TOKEN;
  try {
    return await download(o, token);
  } catch (e) {
    throw redactError(e, token); // no message carries the token, whatever a server echoed
  }
}

/** The cache folder of a revision (`refs/convert/parquet` -> `refs--convert--parquet`). */
function cacheFolderOf(revision: string): string {
  return revision.replace(/\//g, '--');
}

async function download(o: HubDownloadOptions, token: string | undefined): Promise<string[]> {
  checkDatasetName(o.dataset);
  if (o.revision !== undefined) checkRevisionName(o.revision);
  const endpoint = (o.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/$/, '');
  const log = o.log ?? true;
  let revision = o.revision ?? 'main';
  const cacheRoot = path.join(o.cacheDir ?? defaultCacheDir(), 'datasets', o.dataset.replace('/', '--'));
  let files: { path: string; size: number }[];
  try {
    files = await listHubFiles({ ...o, revision, endpoint, token });
  } catch (e) {
    // No connection (fetch throws a TypeError, not an HTTP error): use complete files already in the cache.
    if (!(e instanceof TypeError)) throw e;
    const cached = cachedSplitFiles(cacheRoot, o.revision, o.split);
    if (cached.length === 0) throw new Error(`hub: cannot reach ${endpoint} for ${o.dataset} and nothing is cached in ${cacheRoot}: ${e.message}`);
    if (log) console.error(`hub: cannot reach ${endpoint} (${redact(e.message, token)}); using ${cached.length} cached files of ${o.dataset}`);
    return cached;
  }
  let selected = selectSplitFiles(
    files.map((f) => f.path),
    o.split,
  );
  if (selected.length === 0 && o.revision === undefined) {
    // Script-based or non-file datasets: the hub's automatic Parquet export.
    const converted = await listHubFiles({ ...o, revision: 'refs/convert/parquet', endpoint, token }).catch(() => []);
    const convSelected = selectSplitFiles(
      converted.map((f) => f.path),
      o.split,
    );
    if (convSelected.length > 0) {
      revision = 'refs/convert/parquet';
      files = converted;
      selected = convSelected;
    }
  }
  if (selected.length === 0) {
    throw new Error(`hub: ${o.dataset} has no data files${o.split ? ` for split '${o.split}'` : ''} (files: ${files.slice(0, 10).map((f) => f.path).join(', ')}${files.length > 10 ? ', ...' : ''})`);
  }
  if (o.maxFiles !== undefined) selected = selected.slice(0, o.maxFiles);
  const sizes = new Map(files.map((f) => [f.path, f.size]));
  const root = path.join(cacheRoot, cacheFolderOf(revision));
  const out: string[] = [];
  for (const [i, f] of selected.entries()) {
    const dest = path.join(root, ...f.split('/'));
    const url = `${endpoint}/datasets/${o.dataset}/resolve/${encodeURIComponent(revision)}/${f.split('/').map(encodeURIComponent).join('/')}`;
    if (log) console.error(`hub: [${i + 1}/${selected.length}] ${o.dataset}/${f}`);
    await downloadFile(url, dest, sizes.get(f) ?? -1, token, log);
    out.push(dest);
  }
  return out;
}
