/**
 * `wm data prepare`: documents -> token ids -> fixed-length blocks -> shuffled train/test DatasetDict.
 *
 * Like the reference's data scripts: each document is tokenized (instruction pairs and `messages` through the chat
 * template), an eos goes after every document, the token stream is cut into blocks of exactly `seqLen`
 * (the tail shorter than a block is dropped), several inputs can be mixed by ratio, the blocks are
 * shuffled with a seed and a test split is taken off. The output is a `datasets` folder
 * (`datasets.load_from_disk` opens it).
 *
 * Memory stays bounded: blocks go to a raw int32 scratch file per input while tokenizing, and the
 * shuffled splits are written by reading blocks back from those files.
 * Everything is written to `<out>.tmp-*` and renamed at the end: a failed run leaves no output folder.
 * `outDir` must be new, empty, or an earlier prepare's output (then `overwrite` replaces exactly the entries its
 * manifest lists; src/data/out-folder.ts): prepare never deletes files it did not write.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeDatasetDict, writePackedSplit } from './arrow';
import { Progress } from './progress';
import { permutation } from '../ops/random';
import { readRecords, SourceOptions } from './sources';
import { loadTokenizer, WmTokenizer } from './tokenizer';
import { claimOutputFolder, installEntries, removeStaleTemporaries } from './out-folder';

/** The manifest prepare writes into its output folder (its settings, stats and the entries it wrote). */
export const PREPARE_MANIFEST = 'wm_prepare.json';
const PREPARE_ENTRIES = ['dataset_dict.json', 'train', 'test', PREPARE_MANIFEST];

export interface PrepareInput extends SourceOptions {
  /** `brown`, a file, a glob, a folder, or a datasets folder. */
  input: string;
  /** Share of the mix (e.g. 7, 2, 0.5, 0.5); when any input has one, inputs are mixed by ratio. */
  ratio?: number;
}

export interface PrepareOptions {
  inputs: (string | PrepareInput)[];
  /** A tokenizer or its folder. */
  tokenizer: WmTokenizer | string;
  seqLen: number;
  outDir: string;
  /** Replace the output of an earlier prepare in `outDir` (only what its wm_prepare.json lists). */
  overwrite?: boolean;
  /** Blocks in the test split (default 1% of the blocks, at least 1 and at most 1000). */
  testExamples?: number;
  seed?: number;
  /** Rows per arrow shard (default ~500 MB per shard). */
  rowsPerShard?: number;
  /** Print progress and the summary (default true). */
  log?: boolean;
}

export interface PrepareInputStats {
  input: string;
  documents: number;
  chatDocuments: number;
  pretokenizedRows: number;
  tokens: number;
  blocks: number;
  /** Blocks of this input in the output (after mixing). */
  used: number;
}

export interface PrepareStats {
  documents: number;
  tokens: number;
  blocks: number;
  trainBlocks: number;
  testBlocks: number;
  seqLen: number;
  seed: number;
  vocabSize: number;
  maxTokenId: number;
  seconds: number;
  tokensPerSecond: number;
  inputs: PrepareInputStats[];
}

/** Appends blocks of `seqLen` tokens to a raw int32 file, buffering ~1 MB at a time. */
class BlockSink {
  private readonly fd: number;
  private readonly buf: Int32Array;
  private fill = 0; // tokens in buf
  blocks = 0;
  tokens = 0;
  maxTokenId = -1;

  constructor(
    readonly file: string,
    private readonly seqLen: number,
  ) {
    this.fd = fs.openSync(file, 'w');
    this.buf = new Int32Array(seqLen * Math.max(1, Math.floor(262144 / seqLen)));
  }

  push(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id > this.maxTokenId) this.maxTokenId = id;
      this.buf[this.fill++] = id;
      if (this.fill === this.buf.length) this.flush(this.fill);
    }
    this.tokens += ids.length;
  }

  private flush(n: number): void {
    const whole = n - (n % this.seqLen);
    if (whole > 0) {
      fs.writeSync(this.fd, new Uint8Array(this.buf.buffer, 0, whole * 4));
      this.blocks += whole / this.seqLen;
    }
    this.buf.copyWithin(0, whole, n);
    this.fill = n - whole;
  }

  /** Write the whole blocks left; the partial tail is dropped. Returns the dropped token count. */
  close(): number {
    this.flush(this.fill);
    fs.closeSync(this.fd);
    return this.fill;
  }
}

/** Reads block i back from a BlockSink file. */
class BlockSource {
  private readonly fd: number;
  constructor(
    file: string,
    private readonly seqLen: number,
  ) {
    this.fd = fs.openSync(file, 'r');
  }
  read(i: number, out: Int32Array): Int32Array {
    const bytes = this.seqLen * 4;
    const n = fs.readSync(this.fd, new Uint8Array(out.buffer, out.byteOffset, bytes), 0, bytes, i * bytes);
    if (n !== bytes) throw new Error(`scratch block file short read at block ${i}`);
    return out;
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

function normalizeInputs(inputs: (string | PrepareInput)[]): PrepareInput[] {
  if (!Array.isArray(inputs) || inputs.length === 0) throw new Error('prepare: at least one input is needed');
  return inputs.map((i) => (typeof i === 'string' ? { input: i } : i));
}

/** How many blocks to take from each input: all of them, or the largest mix that has the given ratios. */
export function mixCounts(blocks: number[], ratios: (number | undefined)[]): number[] {
  if (ratios.every((r) => r === undefined)) return blocks.slice();
  const w = ratios.map((r, i) => {
    const v = r ?? 1;
    if (!(v > 0) || !Number.isFinite(v)) throw new Error(`prepare: ratio of input ${i} must be a positive number, got ${r}`);
    return v;
  });
  const W = w.reduce((a, b) => a + b, 0);
  // The scarcest input (relative to its share) bounds the total.
  const total = Math.min(...blocks.map((b, i) => (b * W) / w[i]!));
  return w.map((wi, i) => Math.min(blocks[i]!, Math.floor((total * wi) / W + 1e-9)));
}

/** Tokenize, pack, mix, shuffle, split and write a DatasetDict folder. */
export async function prepareDataset(o: PrepareOptions): Promise<PrepareStats> {
  const log = o.log ?? true;
  const seed = o.seed ?? 42;
  if (!Number.isInteger(o.seqLen) || o.seqLen < 2) throw new Error(`prepare: seqLen must be an integer >= 2, got ${o.seqLen}`);
  const inputs = normalizeInputs(o.inputs);
  const tok = typeof o.tokenizer === 'string' ? await loadTokenizer(o.tokenizer) : o.tokenizer;
  const eos = tok.eosTokenId;
  if (eos === undefined) throw new Error(`prepare: tokenizer ${tok.dir} has no eos_token (needed between documents)`);

  const outDir = path.resolve(o.outDir);
  // Checked before any work: a refused folder costs nothing.
  const replace = claimOutputFolder(outDir, { command: 'wm data prepare', manifest: PREPARE_MANIFEST, entries: PREPARE_ENTRIES, overwrite: o.overwrite, legacyEntries: PREPARE_ENTRIES });
  fs.mkdirSync(path.dirname(outDir), { recursive: true });
  for (const p of removeStaleTemporaries(outDir)) if (log) console.error(`prepare: removed ${p}, left by an interrupted prepare`);
  const tmp = `${outDir}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp);
  try {
    const progress = new Progress('prepare', log);
    const perInput: PrepareInputStats[] = [];
    const sinks: BlockSink[] = [];
    for (const [k, inp] of inputs.entries()) {
      const sink = new BlockSink(path.join(tmp, `blocks-${k}.bin`), o.seqLen);
      sinks.push(sink);
      const st: PrepareInputStats = { input: inp.input, documents: 0, chatDocuments: 0, pretokenizedRows: 0, tokens: 0, blocks: 0, used: 0 };
      for await (const rec of readRecords(inp.input, inp)) {
        let n: number;
        if (rec.inputIds) {
          // Already tokenized upstream (its own eos, if any): appended as is, once the ids are checked.
          for (let j = 0; j < rec.inputIds.length; j++) {
            const id = rec.inputIds[j]!;
            if (id < 0 || id >= tok.vocabSize) {
              throw new Error(`prepare: input ${inp.input}, row ${st.documents}, position ${j}: token id ${id} is outside the tokenizer's vocabulary (size ${tok.vocabSize})`);
            }
          }
          sink.push(rec.inputIds);
          n = rec.inputIds.length;
          st.pretokenizedRows++;
        } else {
          let ids: number[];
          if (rec.messages) ids = tok.encodeChat(rec.messages);
          else if (rec.prompt !== undefined) {
            ids = tok.encodeChat([
              { role: 'user', content: rec.prompt },
              { role: 'assistant', content: rec.text ?? '' },
            ]);
          } else ids = tok.encode(rec.text ?? '');
          if (rec.messages || rec.prompt !== undefined) st.chatDocuments++;
          ids.push(eos);
          sink.push(ids);
          n = ids.length;
        }
        st.documents++;
        progress.add(1, n);
      }
      sink.close();
      st.tokens = sink.tokens;
      st.blocks = sink.blocks;
      if (st.documents === 0) throw new Error(`prepare: input ${inp.input} has no documents (empty corpus)`);
      if (st.blocks === 0) {
        throw new Error(`prepare: input ${inp.input} has ${st.tokens} tokens, fewer than one block of seqLen ${o.seqLen}`);
      }
      perInput.push(st);
    }

    // Mix: the first `take` blocks of a per-input shuffle, then one global shuffle of all chosen blocks.
    const take = mixCounts(
      perInput.map((s) => s.blocks),
      inputs.map((i) => i.ratio),
    );
    const chosen: [number, number][] = []; // (input, block)
    take.forEach((t, k) => {
      perInput[k]!.used = t;
      const order = t === perInput[k]!.blocks ? undefined : permutation(perInput[k]!.blocks, seed, 1000 + k);
      for (let j = 0; j < t; j++) chosen.push([k, order ? order[j]! : j]);
    });
    const total = chosen.length;
    const testBlocks = o.testExamples ?? Math.min(1000, Math.max(1, Math.round(total * 0.01)));
    if (!Number.isInteger(testBlocks) || testBlocks < 0) throw new Error(`prepare: testExamples must be a non-negative integer, got ${o.testExamples}`);
    if (testBlocks >= total) {
      throw new Error(`prepare: testExamples ${testBlocks} leaves no training blocks (only ${total} blocks of ${o.seqLen} tokens)`);
    }
    const order = permutation(total, seed, 0);

    const sources = sinks.map((s) => new BlockSource(s.file, o.seqLen));
    const rowBuf = new Int32Array(o.seqLen);
    const rowAt = (offset: number) => (i: number) => {
      const [k, b] = chosen[order[offset + i]!]!;
      return sources[k]!.read(b, rowBuf);
    };
    try {
      const dict = path.join(tmp, 'dataset');
      await writePackedSplit(path.join(dict, 'train'), {
        seqLen: o.seqLen,
        numRows: total - testBlocks,
        row: rowAt(testBlocks),
        rowsPerShard: o.rowsPerShard,
        split: 'train',
      });
      await writePackedSplit(path.join(dict, 'test'), { seqLen: o.seqLen, numRows: testBlocks, row: rowAt(0), rowsPerShard: o.rowsPerShard, split: 'test' });
      writeDatasetDict(dict, ['train', 'test']);
    } finally {
      sources.forEach((s) => s.close());
    }

    const seconds = progress.seconds;
    const tokens = perInput.reduce((a, s) => a + s.tokens, 0);
    const stats: PrepareStats = {
      documents: progress.documents,
      tokens,
      blocks: total,
      trainBlocks: total - testBlocks,
      testBlocks,
      seqLen: o.seqLen,
      seed,
      vocabSize: tok.vocabSize,
      maxTokenId: Math.max(...sinks.map((s) => s.maxTokenId)),
      seconds,
      tokensPerSecond: tokens / Math.max(seconds, 1e-9),
      inputs: perInput,
    };
    fs.writeFileSync(path.join(tmp, 'dataset', PREPARE_MANIFEST), JSON.stringify({ tokenizer: tok.dir, files: PREPARE_ENTRIES, stats }, null, 2));

    // Swap the finished entries in: the old output (if any) is removed only once the new one is complete, and
    // only the entries the old manifest lists.
    const finished = path.join(tmp, 'dataset');
    const concurrent = () => new Error(`wm data prepare: ${outDir} was written by another run while this one worked (two prepares into one folder); ` +
      'the other output is kept and this one is discarded. Run one prepare per folder, or run again with --overwrite to replace it');
    try {
      if (!fs.existsSync(outDir)) fs.renameSync(finished, outDir);
      else {
        // entries that appeared since the folder was claimed belong to another run: not ours to replace
        if (PREPARE_ENTRIES.some((e) => !replace.includes(e) && fs.existsSync(path.join(outDir, e)))) throw concurrent();
        installEntries(finished, outDir, PREPARE_ENTRIES, replace);
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') throw concurrent(); // the other run's rename won the race
      throw e;
    }
    if (log) {
      console.error(
        `prepare: ${stats.documents} documents, ${stats.tokens} tokens, ${stats.blocks} blocks of ${o.seqLen} ` +
          `(train ${stats.trainBlocks}, test ${stats.testBlocks}) in ${seconds.toFixed(2)}s ` +
          `(${Math.round(stats.tokensPerSecond)} tokens/s) -> ${outDir}`,
      );
    }
    return stats;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
