/**
 * Data pipeline throughput on the embedded Brown corpus, one JSON line per measurement:
 *   tokenizer training time (vocab 4096), encode/decode tokens/s, chunked vs whole encoding of a long
 *   string, prepare tokens/s (seq-len 256), batch loader rows/s.
 * Usage: npx tsx scripts/bench-data.ts [--vocab-size 4096] [--seq-len 256]
 * Timings are wall clock on a shared machine: compare ratios, and repeat when the machine is busy.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { BatchLoader, brownCorpusDocuments, loadTokenizer, openPackedDataset, prepareDataset, trainTokenizer } from '../src/data';

function emit(o: Record<string, unknown>): void {
  console.log(JSON.stringify(o));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'vocab-size': { type: 'string' }, 'seq-len': { type: 'string' } } });
  const vocabSize = Number(values['vocab-size'] ?? 4096);
  const seqLen = Number(values['seq-len'] ?? 256);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wm-bench-data-'));
  try {
    let t = performance.now();
    const docs = brownCorpusDocuments();
    const chars = docs.reduce((a, d) => a + d.length, 0);
    emit({ bench: 'brown_load', documents: docs.length, chars, seconds: (performance.now() - t) / 1000 });

    const trained = await trainTokenizer({ texts: docs, vocabSize, outDir: path.join(dir, 'tok'), log: false });
    emit({ bench: 'tokenizer_train', vocab_size: trained.vocabSize, merges: trained.numMerges, distinct_words: trained.numWords, seconds: trained.seconds });

    const tok = await loadTokenizer(path.join(dir, 'tok'));
    t = performance.now();
    let tokens = 0;
    const encoded: number[][] = [];
    for (const d of docs) {
      const ids = tok.encode(d);
      tokens += ids.length;
      encoded.push(ids);
    }
    let s = (performance.now() - t) / 1000;
    emit({ bench: 'encode', documents: docs.length, tokens, seconds: s, tokens_per_s: tokens / s, chars_per_token: chars / tokens });

    t = performance.now();
    for (const ids of encoded) tok.decode(ids);
    s = (performance.now() - t) / 1000;
    emit({ bench: 'decode', tokens, seconds: s, tokens_per_s: tokens / s });

    // One long string (~600k chars) three ways: the cached fast path (warm), the library in chunks, the
    // library on the whole string.
    const long = docs.slice(0, 50).join('\n');
    for (const [mode, fast, chunkChars] of [['fast_path', true, 4096], ['library_chunked', false, 4096], ['library_whole', false, 0]] as const) {
      tok.useFastPath = fast;
      tok.chunkChars = chunkChars;
      t = performance.now();
      const n = tok.encode(long).length;
      s = (performance.now() - t) / 1000;
      emit({ bench: 'encode_long_string', mode, chars: long.length, tokens: n, seconds: s, tokens_per_s: n / s });
    }
    tok.useFastPath = true;
    tok.chunkChars = 4096;

    // The library path over the corpus, for comparison with the fast path above.
    tok.useFastPath = false;
    t = performance.now();
    let libTokens = 0;
    for (const d of docs.slice(0, 100)) libTokens += tok.encode(d).length;
    s = (performance.now() - t) / 1000;
    emit({ bench: 'encode_library_path', documents: 100, tokens: libTokens, seconds: s, tokens_per_s: libTokens / s });
    tok.useFastPath = true;

    // A freshly loaded tokenizer (cold piece cache), as `wm data prepare` runs.
    const stats = await prepareDataset({ inputs: ['brown'], tokenizer: path.join(dir, 'tok'), seqLen, outDir: path.join(dir, 'ds'), log: false });
    emit({ bench: 'prepare', seq_len: seqLen, documents: stats.documents, tokens: stats.tokens, blocks: stats.blocks, seconds: stats.seconds, tokens_per_s: stats.tokensPerSecond });

    t = performance.now();
    const ds = await openPackedDataset(path.join(dir, 'ds', 'train'));
    const openS = (performance.now() - t) / 1000;
    const loader = new BatchLoader(ds, { batchSize: 32, seed: 0 });
    t = performance.now();
    let rows = 0;
    while (rows < ds.numRows * 3) rows += loader.next().batchSize;
    s = (performance.now() - t) / 1000;
    emit({ bench: 'loader', mode: 'memory', rows_in_split: ds.numRows, open_seconds: openS, rows, seconds: s, rows_per_s: rows / s, tokens_per_s: (rows * seqLen) / s });

    t = performance.now();
    const disk = await openPackedDataset(path.join(dir, 'ds', 'train'), { mode: 'disk' });
    const diskOpenS = (performance.now() - t) / 1000;
    const diskLoader = new BatchLoader(disk, { batchSize: 32, seed: 0 });
    t = performance.now();
    rows = 0;
    while (rows < disk.numRows * 3) rows += diskLoader.next().batchSize;
    s = (performance.now() - t) / 1000;
    emit({ bench: 'loader', mode: 'disk', rows_in_split: disk.numRows, open_seconds: diskOpenS, rows, seconds: s, rows_per_s: rows / s, tokens_per_s: (rows * seqLen) / s });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
