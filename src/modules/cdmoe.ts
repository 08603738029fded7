/**
 * Cross Domain Mixture of Experts (HF DogeCDMoE, spec 4.8): a shared SwiGLU expert plus product-key retrieval of
 * `num_experts_per_tok` single-neuron experts out of `num_experts` (grid side K = floor(sqrt(E))).
 *
 *   R = router_gate(x)                                   [N, 2K]  (N = B*T tokens, row-major)
 *   routerLayout 'token' (default, causal, the paper):  X = R[:, :K], Y = R[:, K:]
 *   routerLayout 'hf'   (opt-in, reproduces HF):        R's flat buffer read as [2, N, K]: X = buf[0], Y = buf[1]
 *                                                        (for N > 1 this mixes tokens, including later ones)
 *   score(a*K + b) = X[a] + Y[b];  top-k of the K*K scores -> ids e[1..k] (descending), s[1..k]
 *   w = softmax(s) (/ sum(w) if norm_topk_prob)
 *   out = down(silu(gate x) * up x) + sum_m silu(down_embed[e_m] . x) * w_m * up_embed[e_m]
 *
 * The top-k over K*K is found exactly from the top-k of X and of Y (a pair outside those cannot be in the top-k),
 * so the work is N * k^2, not N * K^2. Indices are not differentiated; scores and expert rows are gathered with
 * `gatherRows` (scatter gradient, wasm-safe).
 */
import { tf } from '../backend';
import { gatherRows, linearT, sliceLast, stopGradient, weightT } from '../ops';
import { MLP } from './mlp';
import type { Store } from './params';

export type RouterLayout = 'token' | 'hf';

export interface CDMoEOptions {
  hiddenSize: number;
  intermediateSize: number;
  numExperts: number;
  numExpertsPerTok: number;
  normTopkProb?: boolean;
  mlpBias?: boolean;
  routerLayout?: RouterLayout;
}

export interface CDMoEResult {
  out: tf.Tensor; // [B, T, H]
  expertIds?: tf.Tensor; // int32 [N, k], descending score
  expertWeights?: tf.Tensor; // [N, k] routing weights
  routerLogits?: tf.Tensor; // [2, N, K] as HF returns it (for the aux loss)
}

export class CDMoE {
  readonly shared: MLP;
  readonly routerW: tf.Variable; // [2K, H]
  readonly downEmbed: tf.Variable; // [E, H]
  readonly upEmbed: tf.Variable; // [E, H]
  readonly K: number;
  readonly topK: number;
  readonly normTopkProb: boolean;
  routerLayout: RouterLayout;

  constructor(store: Store, opts: CDMoEOptions) {
    const H = opts.hiddenSize;
    this.K = Math.floor(Math.sqrt(opts.numExperts));
    this.topK = opts.numExpertsPerTok;
    if (this.topK > this.K * this.K) throw new Error(`num_experts_per_tok ${this.topK} exceeds the ${this.K * this.K} usable experts`);
    this.normTopkProb = !!opts.normTopkProb;
    this.routerLayout = opts.routerLayout ?? 'token';
    this.shared = new MLP(store, { hiddenSize: H, intermediateSize: opts.intermediateSize, bias: opts.mlpBias });
    this.routerW = store.add('router_gate.weight', [2 * this.K, H], 'normal');
    this.downEmbed = store.add('down_embed.weight', [opts.numExperts, H], 'normal');
    this.upEmbed = store.add('up_embed.weight', [opts.numExperts, H], 'normal');
  }

  apply(x: tf.Tensor, opts: { outputRouting?: boolean } = {}): CDMoEResult {
    const [B, T, H] = x.shape;
    const N = B * T, K = this.K, k = this.topK;
    const xs = tf.reshape(x, [N, H]); // [N, H]
    const shared = this.shared.apply(xs); // [N, H]

    const R = linearT(xs, weightT([this.routerW])); // [N, 2K]
    let X: tf.Tensor, Y: tf.Tensor; // [N, K] each
    if (this.routerLayout === 'hf') {
      const flat = tf.reshape(R, [1, 2 * N * K]);
      X = tf.reshape(sliceLast(flat, 0, N * K), [N, K]);
      Y = tf.reshape(sliceLast(flat, N * K, N * K), [N, K]);
    } else {
      X = sliceLast(R, 0, K);
      Y = sliceLast(R, K, K);
    }

    // --- selection (no gradient) ---
    const k1 = Math.min(k, K);
    const Xs = stopGradient(X), Ys = stopGradient(Y);
    const tx = tf.topk(Xs, k1, true), ty = tf.topk(Ys, k1, true); // [N, k1]
    const grid = tf.reshape(tf.add(tf.reshape(tx.values, [N, k1, 1]), tf.reshape(ty.values, [N, 1, k1])), [N, k1 * k1]);
    const sel = tf.topk(grid, k, true).indices; // [N, k] positions in the (i, j) rank grid
    const rowBase = tf.reshape(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(k1, 'int32')), [N, 1]);
    const ia = tf.add(rowBase, tf.floorDiv(sel, tf.scalar(k1, 'int32'))); // [N, k] flat index into tx.indices
    const ib = tf.add(rowBase, tf.mod(sel, tf.scalar(k1, 'int32')));
    const a = tf.reshape(tf.gather(tf.reshape(tx.indices, [-1]), tf.reshape(ia, [-1])), [N, k]); // x-half expert index
    const b = tf.reshape(tf.gather(tf.reshape(ty.indices, [-1]), tf.reshape(ib, [-1])), [N, k]); // y-half expert index
    const ids = tf.add(tf.mul(a, tf.scalar(K, 'int32')), b); // [N, k] expert ids
    const xBase = tf.reshape(tf.mul(tf.range(0, N, 1, 'int32'), tf.scalar(K, 'int32')), [N, 1]);

    // --- differentiable scores and expert mixing ---
    const sx = tf.reshape(gatherRows(tf.reshape(X, [N * K, 1]), tf.add(xBase, a)), [N, k]);
    const sy = tf.reshape(gatherRows(tf.reshape(Y, [N * K, 1]), tf.add(xBase, b)), [N, k]);
    let w = tf.softmax(tf.add(sx, sy)); // [N, k]
    if (this.normTopkProb) w = tf.div(w, tf.sum(w, -1, true));
    const down = gatherRows(this.downEmbed, ids); // [N, k, H]
    const up = gatherRows(this.upEmbed, ids); // [N, k, H]
    const z = tf.reshape(tf.matMul(down, tf.reshape(xs, [N, H, 1])), [N, k]); // [N, k]
    const zs = tf.mul(tf.mul(z, tf.sigmoid(z)), w); // silu(z) * w
    const experts = tf.reshape(tf.matMul(tf.reshape(zs, [N, 1, k]), up), [N, H]); // [N, H]
    const out = tf.reshape(tf.add(shared, experts), [B, T, H]);

    const res: CDMoEResult = { out };
    if (opts.outputRouting) {
      res.expertIds = ids;
      res.expertWeights = w;
      res.routerLogits = this.routerLayout === 'hf' ? tf.reshape(R, [2, N, K]) : tf.stack([X, Y]);
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
