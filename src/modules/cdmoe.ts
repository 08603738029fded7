/**
 * Cross Domain Mixture of Experts: a shared SwiGLU expert plus product-key retrieval of single-neuron experts out of
 * `num_experts` (grid side K = floor(sqrt(E))). Two routers, one module:
 *
 * router 'gate' (HF DogeCDMoE, doge-spec 4.8; default): one router Linear `router_gate` [2K, H]
 *   R = router_gate(x)                                   [N, 2K]  (N = B*T tokens, row-major)
 *   routerLayout 'token' (default, causal, the paper):  X = R[:, :K], Y = R[:, K:]
 *   routerLayout 'hf'   (opt-in, reproduces HF):        R's flat buffer read as [2, N, K]: X = buf[0], Y = buf[1]
 *                                                        (for N > 1 this mixes tokens, including later ones)
 * router 'product-keys' (the seed's / Cheems' multi-head CDMoE, cheems-spec 5.4): `queries` [h*D_r, H] and learned
 *   `keys` [h, K, 2, D_r/2]; per head e: q = queries(x) read as [2, h, D_r/2], X_e[a] = q[0, e] . keys[e, a, 0],
 *   Y_e[b] = q[1, e] . keys[e, b, 1]; each head selects and softmaxes its own experts, and the heads are summed.
 *
 * For each head:  score(a*K + b) = X[a] + Y[b];  top-k of the K*K scores -> ids e[1..k] (descending), s[1..k]
 *   w = softmax(s) (/ sum(w) if norm_topk_prob)
 *   out = down(silu(gate x) * up x) + sum_heads sum_m silu(down_embed[e_m] . x) * w_m * up_embed[e_m]
 *
 * The top-k over K*K is found exactly from the top-k of X and of Y (a pair outside those cannot be in the top-k),
 * so the work is N * k^2, not N * K^2. Indices are not differentiated; scores and expert rows are gathered with
 * `gatherRows` (scatter gradient, wasm-safe).
 *
 * Standalone (the seed's module): new CDMoE({ hiddenSize: 64, intermediateSize: 128, numExperts: 256, router: 'product-keys',
 *   numHeads: 4, numExpertsPerTok: 8, retrievalSize: 32, seed: 1 }).apply(x).out   // x [B, T, H]
 */
import { tf } from '../tf';
import { bmm, gatherRows, linearT, permute, sliceLast, stopGradient, weightT } from '../ops';
import { MLP } from './mlp';
import { Module, makeInit, type Init, type InitOptions } from './module';

export type RouterLayout = 'token' | 'hf';

export interface CDMoEOptions extends InitOptions {
  hiddenSize: number;
  intermediateSize: number;
  numExperts: number;
  /** Experts selected per token (per head with product keys). */
  numExpertsPerTok: number;
  normTopkProb?: boolean;
  mlpBias?: boolean;
  routerLayout?: RouterLayout;
  /** 'gate' (HF Doge, default) or 'product-keys' (seed / Cheems multi-head). */
  router?: 'gate' | 'product-keys';
  /** product-keys: retrieval heads (default 4). */
  numHeads?: number;
  /** product-keys: per-head query size D_r (even, default 64). */
  retrievalSize?: number;
}

export interface CDMoEResult {
  out: tf.Tensor; // [B, T, H]
  /** int32 [N, k] ('gate') or [N, heads, k] ('product-keys'), descending score. */
  expertIds?: tf.Tensor;
  expertWeights?: tf.Tensor; // same shape, routing weights
  routerLogits?: tf.Tensor; // 'gate' only: [2, N, K] as HF returns it (for the aux loss)
}

/** Exact integer square root (floor). */
export function productKeySide(numExperts: number): number {
  let K = Math.floor(Math.sqrt(numExperts));
  while (K * K > numExperts) K--;
  while ((K + 1) * (K + 1) <= numExperts) K++;
  return K;
}

/**
 * Product-key selection for R rows of half-scores X, Y [R, K]: the k best a*K + b by X[a] + Y[b].
 * Returns ids int32 [R, k] (descending) and the differentiable scores [R, k].
 */
export function productKeyTopK(X: tf.Tensor, Y: tf.Tensor, k: number): { ids: tf.Tensor; scores: tf.Tensor } {
  const [R, K] = X.shape as [number, number];
  // --- selection (no gradient) ---
  const k1 = Math.min(k, K);
  const tx = tf.topk(stopGradient(X), k1, true), ty = tf.topk(stopGradient(Y), k1, true); // [R, k1]
  const grid = tf.reshape(tf.add(tf.reshape(tx.values, [R, k1, 1]), tf.reshape(ty.values, [R, 1, k1])), [R, k1 * k1]);
  const sel = tf.topk(grid, k, true).indices; // [R, k] positions in the (i, j) rank grid
  const rowBase = tf.reshape(tf.mul(tf.range(0, R, 1, 'int32'), tf.scalar(k1, 'int32')), [R, 1]);
  const ia = tf.add(rowBase, tf.floorDiv(sel, tf.scalar(k1, 'int32'))); // [R, k] flat index into tx.indices
  const ib = tf.add(rowBase, tf.mod(sel, tf.scalar(k1, 'int32')));
  const a = tf.reshape(tf.gather(tf.reshape(tx.indices, [-1]), tf.reshape(ia, [-1])), [R, k]); // x-half expert index
  const b = tf.reshape(tf.gather(tf.reshape(ty.indices, [-1]), tf.reshape(ib, [-1])), [R, k]); // y-half expert index
  const ids = tf.add(tf.mul(a, tf.scalar(K, 'int32')), b); // [R, k] expert ids
  // --- differentiable scores ---
  const xBase = tf.reshape(tf.mul(tf.range(0, R, 1, 'int32'), tf.scalar(K, 'int32')), [R, 1]);
  const sx = tf.reshape(gatherRows(tf.reshape(X, [R * K, 1]), tf.add(xBase, a)), [R, k]);
  const sy = tf.reshape(gatherRows(tf.reshape(Y, [R * K, 1]), tf.add(xBase, b)), [R, k]);
  return { ids, scores: tf.add(sx, sy) };
}

export class CDMoE extends Module {
  readonly shared: MLP;
  readonly router: 'gate' | 'product-keys';
  readonly routerW: tf.Variable | null = null; // 'gate': [2K, H]
  readonly queries: tf.Variable | null = null; // 'product-keys': [h * D_r, H]
  readonly keys: tf.Variable | null = null; // 'product-keys': [h, K, 2, D_r / 2]
  readonly downEmbed: tf.Variable; // [E, H]
  readonly upEmbed: tf.Variable; // [E, H]
  readonly K: number;
  readonly topK: number;
  readonly numHeads: number;
  readonly retrievalSize: number;
  readonly normTopkProb: boolean;
  routerLayout: RouterLayout;

  constructor(opts: CDMoEOptions, init: Init = makeInit(opts)) {
    super();
    const H = opts.hiddenSize;
    this.K = productKeySide(opts.numExperts);
    this.topK = opts.numExpertsPerTok;
    this.router = opts.router ?? 'gate';
    if (this.router !== 'gate' && this.router !== 'product-keys') throw new Error(`CDMoE: router must be 'gate' or 'product-keys', got '${this.router}'`);
    this.numHeads = this.router === 'gate' ? 1 : opts.numHeads ?? 4;
    this.retrievalSize = opts.retrievalSize ?? 64;
    if (this.router === 'gate' && this.topK > this.K * this.K) throw new Error(`num_experts_per_tok ${this.topK} exceeds the ${this.K * this.K} usable experts`);
    if (this.router === 'product-keys') {
      if (!(this.topK >= 1 && this.topK <= this.K)) throw new Error(`CDMoE: experts per head ${this.topK} must be in [1, K = ${this.K}]`);
      if (this.retrievalSize % 2 !== 0) throw new Error(`CDMoE: retrievalSize ${this.retrievalSize} must be even (two halves)`);
    }
    this.normTopkProb = !!opts.normTopkProb;
    this.routerLayout = opts.routerLayout ?? 'token';
    this.shared = this.module('', new MLP(init, { hiddenSize: H, intermediateSize: opts.intermediateSize, bias: opts.mlpBias }));
    if (this.router === 'gate') {
      this.routerW = this.param('router_gate.weight', [2 * this.K, H], 'normal', init);
    } else {
      this.queries = this.param('queries.weight', [this.numHeads * this.retrievalSize, H], 'normal', init);
      this.keys = this.param('keys', [this.numHeads, this.K, 2, this.retrievalSize / 2], 'normal', init);
    }
    this.downEmbed = this.param('down_embed.weight', [opts.numExperts, H], 'normal', init);
    this.upEmbed = this.param('up_embed.weight', [opts.numExperts, H], 'normal', init);
  }

  /** Half-scores X, Y [N * heads, K] (rows token-major, then head). */
  private halfScores(xs: tf.Tensor): { X: tf.Tensor; Y: tf.Tensor; R?: tf.Tensor } {
    const N = xs.shape[0] as number, K = this.K;
    if (this.router === 'gate') {
      const R = linearT(xs, weightT([this.routerW!])); // [N, 2K]
      if (this.routerLayout === 'hf') {
        const flat = tf.reshape(R, [1, 2 * N * K]);
        return { X: tf.reshape(sliceLast(flat, 0, N * K), [N, K]), Y: tf.reshape(sliceLast(flat, N * K, N * K), [N, K]), R };
      }
      return { X: sliceLast(R, 0, K), Y: sliceLast(R, K, K), R };
    }
    const h = this.numHeads, half = this.retrievalSize / 2;
    const q = linearT(xs, weightT([this.queries!])); // [N, 2 * h * half], read as [N, 2, h, half]
    const qh = tf.reshape(permute(tf.reshape(q, [N, 2, h, half]), [2, 1, 0, 3]), [h * 2, N, half]); // [(h, p), N, half]
    const kh = tf.reshape(permute(this.keys!, [0, 2, 3, 1]), [h * 2, half, this.K]); // [(h, p), half, K]
    const sim = permute(tf.reshape(bmm(qh, kh), [h, 2, N, K]), [1, 2, 0, 3]); // [2, N, h, K]
    const X = tf.reshape(tf.slice(sim, [0, 0, 0, 0], [1, N, h, K]), [N * h, K]);
    const Y = tf.reshape(tf.slice(sim, [1, 0, 0, 0], [1, N, h, K]), [N * h, K]);
    return { X, Y };
  }

  /** x [B, T, H] -> out [B, T, H] (and the routing with outputRouting). Tidies its intermediates (usable standalone). */
  apply(x: tf.Tensor, opts: { outputRouting?: boolean } = {}): CDMoEResult {
    return tf.tidy(() => this.route(x, !!opts.outputRouting) as unknown as tf.TensorContainer) as unknown as CDMoEResult;
  }

  private route(x: tf.Tensor, outputRouting: boolean): CDMoEResult {
    const [B, T, H] = x.shape;
    const N = B * T, k = this.topK, h = this.numHeads;
    const xs = tf.reshape(x, [N, H]); // [N, H]
    const shared = this.shared.apply(xs); // [N, H]
    const { X, Y, R } = this.halfScores(xs); // [N * h, K] each
    const { ids, scores } = productKeyTopK(X, Y, k); // [N * h, k]
    let w = tf.softmax(scores); // per head
    if (this.normTopkProb) w = tf.div(w, tf.sum(w, -1, true));
    const idsTok = tf.reshape(ids, [N, h * k]), wTok = tf.reshape(w, [N, h * k]); // every expert of a token, all heads
    const down = gatherRows(this.downEmbed, idsTok); // [N, h*k, H]
    const up = gatherRows(this.upEmbed, idsTok); // [N, h*k, H]
    const z = tf.reshape(tf.matMul(down, tf.reshape(xs, [N, H, 1])), [N, h * k]); // [N, h*k]
    const zs = tf.mul(tf.mul(z, tf.sigmoid(z)), wTok); // silu(z) * w
    const experts = tf.reshape(tf.matMul(tf.reshape(zs, [N, 1, h * k]), up), [N, H]); // [N, H]
    const out = tf.reshape(tf.add(shared, experts), [B, T, H]);

    const res: CDMoEResult = { out };
    if (outputRouting) {
      res.expertIds = this.router === 'gate' ? ids : tf.reshape(ids, [N, h, k]);
      res.expertWeights = this.router === 'gate' ? w : tf.reshape(w, [N, h, k]);
      if (R) res.routerLogits = this.routerLayout === 'hf' ? tf.reshape(R, [2, N, this.K]) : tf.stack([X, Y]);
    }
    return res;
  }
}

/**
 * HF's CDMoE load-balancing loss (spec 4.10; only used when config.output_router_logits is true).
 * routerLogits: per layer [2, N, K] (HF layout). For every layer and row: sort both halves, score the K*K
 * (i, j) rank combinations, P = softmax over them, ids = the top-k combinations' expert ids. With all layers
 * concatenated: f[e] = share of expert e among all selected ids, p[c] = mean over rows of P[:, c];
 * aux = E * sum_c f[c] * p[c] (expert-indexed f times rank-indexed p, exactly as HF, so E must be K^2).
 * rowMask (length N, 1 = real token) drops padded rows from both.
 */
export function cdmoeAuxLoss(routerLogits: tf.Tensor[], numExperts: number, topK: number, rowMask: ArrayLike<number> | null = null): tf.Scalar {
  const K = routerLogits[0].shape[2] as number;
  const N = routerLogits[0].shape[1] as number;
  if (K * K !== numExperts) throw new Error(`router aux loss: num_experts (${numExperts}) must be a perfect square (HF multiplies expert-indexed by rank-indexed shares)`);
  const keepRows = rowMask ? Array.from({ length: N }, (_, i) => i).filter((i) => rowMask[i] !== 0) : null;
  const counts = new Float32Array(numExperts);
  let nSel = 0;
  const probs: tf.Tensor[] = [];
  for (const rl of routerLogits) {
    const X = tf.reshape(tf.slice(rl, [0, 0, 0], [1, N, K]), [N, K]);
    const Y = tf.reshape(tf.slice(rl, [1, 0, 0], [1, N, K]), [N, K]);
    const base = tf.reshape(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(K, 'int32')), [N, 1]);
    const sorted = (Z: tf.Tensor) => {
      const idx = tf.topk(stopGradient(Z), K, true).indices; // [N, K] descending
      return { idx, val: tf.reshape(gatherRows(tf.reshape(Z, [N * K, 1]), tf.add(base, idx)), [N, K]) };
    };
    const sx = sorted(X), sy = sorted(Y);
    const grid = tf.reshape(tf.add(tf.reshape(sx.val, [N, K, 1]), tf.reshape(sy.val, [N, 1, K])), [N, K * K]);
    let P = tf.softmax(grid); // [N, K*K], columns in (i, j) rank order
    const pos = tf.topk(stopGradient(grid), topK, true).indices.dataSync(); // [N, topK]
    const ix = sx.idx.dataSync(), iy = sy.idx.dataSync();
    for (let r = 0; r < N; r++) {
      if (rowMask && rowMask[r] === 0) continue;
      for (let m = 0; m < topK; m++) {
        const q = pos[r * topK + m];
        counts[ix[r * K + Math.floor(q / K)] * K + iy[r * K + (q % K)]] += 1;
        nSel++;
      }
    }
    if (keepRows) P = gatherRows(P, tf.tensor1d(keepRows, 'int32')); // drop padded rows (scatter gradient, wasm-safe)
    probs.push(P);
  }
  const allP = tf.concat(probs, 0); // [rows, K*K]
  const p = tf.mean(allP, 0); // [K*K]
  const f = tf.tensor1d(counts.map((c) => c / Math.max(nSel, 1)));
  return tf.mul(tf.sum(tf.mul(f, p)), numExperts) as tf.Scalar;
}
