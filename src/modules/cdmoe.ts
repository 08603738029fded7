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
