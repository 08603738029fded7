/**
 * Every seeded random stream of the library, in one place. Nothing here uses Math.random or the tfjs backend, so
 * a seed means the same numbers on every machine and backend.
 *
 * Two generator families are kept because seeded results already depend on them (changing either would change
 * model initialisations, data orders or the MQAR datasets that the tests and saved runs pin down):
 *   - mulberry32: model initialisation, dropout seeds, sampling (`Rng`), and data order (`dataRng`,
 *     `permutation`, seeded through `mixSeed` so (seed, stream) pairs give independent streams);
 *   - xoshiro128** seeded through splitmix32: the MQAR task generator and its epoch shuffles (`Xoshiro128`).
 */

/** One mulberry32 step: returns the new state and a uniform float in [0, 1). */
function mulberry32(state: number): [number, number] {
  const s = (state + 0x6d2b79f5) >>> 0;
  let t = s;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return [s, ((t ^ (t >>> 14)) >>> 0) / 4294967296];
}

/** Mix two integers into a 32-bit seed (splitmix-style avalanche). */
export function mixSeed(seed: number, stream: number): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul((stream | 0) + 0x632be5ab, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h === 0 ? 0x6d2b79f5 : h;
}

/** mulberry32 with a normal sampler (Box-Muller): model initialisation, dropout seeds, sampling. */
export class Rng {
  private state: number;
  private spare: number | null = null;
  constructor(seed: number) {
    this.state = (Math.floor(seed) >>> 0) ^ 0x9e3779b9;
  }
  /** A generator for (seed, stream): independent streams from one seed (data order). */
  static stream(seed: number, stream = 0): Rng {
    const r = new Rng(0);
    r.state = mixSeed(seed, stream);
    return r;
  }
  /** Uniform in [0, 1). */
  next(): number {
    const [s, u] = mulberry32(this.state);
    this.state = s;
    return u;
  }
  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) { const s = this.spare; this.spare = null; return s; }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  /** A fresh 31-bit integer (e.g. to seed a sub-stream or a tfjs op). */
  int(): number {
    return Math.floor(this.next() * 2147483647);
  }
  normalArray(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * std;
    return out;
  }
}

/** A uniform float in [0, 1) generator for (seed, stream) (data order, few-shot draws, generated data). */
export function dataRng(seed: number, stream = 0): () => number {
  const r = Rng.stream(seed, stream);
  return () => r.next();
}

/** A random permutation of 0..n-1 for (seed, stream) (Fisher-Yates). */
export function permutation(n: number, seed: number, stream = 0): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const r = dataRng(seed, stream);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** xoshiro128** seeded through splitmix32: the MQAR task generator (its datasets depend only on the seed). */
export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number, stream = 0) {
    // splitmix32 expands (seed, stream) into four non-zero state words.
    let x = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(stream | 0, 0x85ebca6b) ^ 0x6a09e667) >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next() || 1;
    this.s1 = next() || 2;
    this.s2 = next() || 3;
    this.s3 = next() || 4;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
