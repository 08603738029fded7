/**
 * Multi-query associative recall (MQAR) data, exactly as in Zoology's `multiquery_ar` (Arora et al. 2023) and the
 * task definition of docs/mqar.md:
 *
 *   positions 0 .. 2K-1      k1 v1 k2 v2 ... kK vK         keys from [1, V/2), values from [V/2, V), no repeats
 *   positions 2K .. L-1      query region, S = (L-2K)/2 slots at its even offsets; key j sits at offset 2*g_j,
 *                            the slots g_j drawn without replacement with p(g = i) ∝ a * i^(a-1), i = 1..S
 *   every other position     filler 0, or a uniform token from [0, V) ("random non-queries")
 *   labels                   the value of the key at each query position, -100 elsewhere
 *
 * Everything is deterministic for a seed; train and test use different random streams of the seed and the test
 * split drops any example that also occurs in the train split.
 */
import { IGNORE_INDEX } from '../ops';
import { Xoshiro128 } from '../ops/random';

export interface MqarDataOptions {
  /** Vocabulary size V (token 0 is filler; keys [1, V/2), values [V/2, V)). */
  vocabSize: number;
  /** Sequence length L (even). */
  seqLen: number;
  /** Number of key-value pairs K (4K <= L). */
  numKvPairs: number;
  /** Number of examples. */
  numExamples: number;
  /** Seed; the same seed always gives the same examples. */
  seed: number;
  /** Power-law exponent a of the query placement (default 0.01: short gaps dominate; 1 is uniform). */
  powerA?: number;
  /** Fill non-query positions with uniform random tokens instead of 0 (Mamba-2's "harder" MQAR). */
  randomNonQueries?: boolean;
  /** Random stream within the seed (train = 1, test = 2 in `generateMqarSplits`). */
  stream?: number;
}

export interface MqarData {
  /** Row-major [numExamples, seqLen] token ids. */
  inputs: Int32Array;
  /** Row-major [numExamples, seqLen] targets: the key's value at query positions, -100 elsewhere. */
  labels: Int32Array;
  numExamples: number;
  seqLen: number;
  numKvPairs: number;
  vocabSize: number;
}

export { IGNORE_INDEX };

/** Refuses impossible settings with the rule that failed (Zoology's asserts plus integer checks). */
export function validateMqarOptions(o: Pick<MqarDataOptions, 'vocabSize' | 'seqLen' | 'numKvPairs'> & Partial<MqarDataOptions>): void {
  const { vocabSize: V, seqLen: L, numKvPairs: K } = o;
  for (const [name, v] of [['vocabSize', V], ['seqLen', L], ['numKvPairs', K]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`MQAR: ${name} must be a positive integer, got ${v}`);
  }
  if (L % 2 !== 0) throw new Error(`MQAR: seqLen must be even (keys and values come in pairs), got seqLen=${L}`);
  if (4 * K > L) {
    throw new Error(`MQAR: numKvPairs*4 must be <= seqLen (context 2K plus a query region of at least 2K), got numKvPairs=${K}, seqLen=${L}`);
  }
  if (V <= L) throw new Error(`MQAR: vocabSize must be larger than seqLen (Zoology's rule), got vocabSize=${V}, seqLen=${L}`);
  if (K > Math.floor(V / 2) - 1) {
    throw new Error(`MQAR: numKvPairs must be <= vocabSize/2 - 1 distinct keys, got numKvPairs=${K}, vocabSize=${V}`);
  }
  if (o.numExamples !== undefined && (!Number.isInteger(o.numExamples) || o.numExamples < 0)) {
    throw new Error(`MQAR: numExamples must be a non-negative integer, got ${o.numExamples}`);
  }
  if (o.powerA !== undefined && !(o.powerA > 0)) throw new Error(`MQAR: powerA must be > 0, got ${o.powerA}`);
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new Error(`MQAR: seed must be an integer, got ${o.seed}`);
}

/** Generates `numExamples` MQAR examples; ~1 s per 100k examples of length 256 on one core. */
export function generateMqar(options: MqarDataOptions): MqarData {
  validateMqarOptions(options);
  const { vocabSize: V, seqLen: L, numKvPairs: K, numExamples: n, seed } = options;
  const a = options.powerA ?? 0.01;
  const randomFill = options.randomNonQueries ?? false;
  const rng = new Xoshiro128(seed, options.stream ?? 0);

  const half = Math.floor(V / 2);
  // Pools of candidate keys / values; a partial Fisher-Yates on a permutation gives a uniform draw without
  // replacement whatever order the pool was left in by the previous example.
  const keyPool = Int32Array.from({ length: half - 1 }, (_, i) => i + 1);
  const valuePool = Int32Array.from({ length: V - half }, (_, i) => i + half);
  const S = (L - 2 * K) / 2;
  // Weighted sampling without replacement, in draw order (Efraimidis-Spirakis): slot i gets the key
  // log(u) / w_i with w_i ∝ i^(a-1); the K largest keys, sorted descending, are distributed like K successive draws.
  const invWeight = Float64Array.from({ length: S }, (_, i) => Math.pow(i + 1, 1 - a));
  const esKey = new Float64Array(S);
  const order = new Int32Array(S);

  const inputs = new Int32Array(n * L);
  const labels = new Int32Array(n * L).fill(IGNORE_INDEX);
  for (let e = 0; e < n; e++) {
    const row = e * L;
    partialShuffle(keyPool, K, rng);
    partialShuffle(valuePool, K, rng);
    for (let j = 0; j < K; j++) {
      inputs[row + 2 * j] = keyPool[j];
      inputs[row + 2 * j + 1] = valuePool[j];
    }
    for (let i = 0; i < S; i++) {
      esKey[i] = Math.log(1 - rng.next()) * invWeight[i];
      order[i] = i;
    }
    order.sort((x, y) => esKey[y] - esKey[x]);
    for (let j = 0; j < K; j++) {
      const pos = row + 2 * K + 2 * order[j];
      inputs[pos] = keyPool[j];
      labels[pos] = valuePool[j];
    }
    if (randomFill) {
      // Zoology replaces every 0 (the only zeros are fillers) by a uniform token, which may itself be 0 or a key.
      for (let t = 2 * K; t < L; t++) if (labels[row + t] === IGNORE_INDEX) inputs[row + t] = rng.int(0, V);
    }
  }
  return { inputs, labels, numExamples: n, seqLen: L, numKvPairs: K, vocabSize: V };
}

function partialShuffle(pool: Int32Array, k: number, rng: Xoshiro128): void {
  for (let i = 0; i < k; i++) {
    const j = rng.int(i, pool.length);
    const t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
  }
}

export interface MqarSplitOptions extends Omit<MqarDataOptions, 'numExamples' | 'stream'> {
  trainExamples: number;
  testExamples: number;
}

/** Train and test splits from disjoint random streams of `seed`; test examples identical to a train one are redrawn. */
export function generateMqarSplits(options: MqarSplitOptions): { train: MqarData; test: MqarData } {
  const { trainExamples, testExamples, ...rest } = options;
  const train = generateMqar({ ...rest, numExamples: trainExamples, stream: 1 });
  const L = train.seqLen;
  const seen = new Map<number, number[]>();
  for (let e = 0; e < train.numExamples; e++) {
    const h = hashRow(train.inputs, e * L, L);
    const list = seen.get(h);
    if (list) list.push(e);
    else seen.set(h, [e]);
  }
  const isInTrain = (data: Int32Array, off: number): boolean =>
    (seen.get(hashRow(data, off, L)) ?? []).some((e) => rowsEqual(train.inputs, e * L, data, off, L));

  const test = generateMqar({ ...rest, numExamples: testExamples, stream: 2 });
  // Redraw collisions from a third stream until none is left (only happens for tiny vocabularies).
  let redraw = 0;
  for (let e = 0; e < test.numExamples; e++) {
    while (isInTrain(test.inputs, e * L)) {
      const one = generateMqar({ ...rest, numExamples: 1, stream: 3 + redraw++ });
      test.inputs.set(one.inputs, e * L);
      test.labels.set(one.labels, e * L);
      if (redraw > 10 * (testExamples + 1)) throw new Error('MQAR: cannot draw test examples distinct from the train split (vocabulary too small)');
    }
  }
  return { train, test };
}

function hashRow(data: Int32Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = off; i < off + len; i++) {
    h = Math.imul(h ^ data[i], 0x01000193);
  }
  return h >>> 0;
}

function rowsEqual(a: Int32Array, ao: number, b: Int32Array, bo: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}
