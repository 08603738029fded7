/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter), the update torch.optim.AdamW makes:
 *
 *   p <- p * (1 - lr * wd)                          (decay, only for parameters in the decay group)
 *   m <- b1 m + (1 - b1) g
 *   v <- b2 v + (1 - b2) g^2
 *   p <- p - (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * tfjs' own AdamOptimizer folds weight decay into the gradient (L2), which is not the same thing once the
 * adaptive denominator rescales it; this one is written out. Each variable's update is `adamwStep` (one kernel on
 * webgpu, a handful of element-wise ops elsewhere) inside one tf.tidy; the moments are non-trainable tf.Variables so they stay on the backend.
 *
 * Weight-decay grouping follows HF Trainer's default (`get_decay_parameter_names`): no decay for biases and
 * normalisation weights (names matching bias / layernorm / rmsnorm / `.norm.` / `_norm`), decay for the rest,
 * including embeddings, Doge's `A` and the residual scales (doge-spec section 6).
 */
import { tf } from '../tf';
import { adamwStep } from '../ops/fused';

const NO_DECAY_PATTERNS = [/bias/, /layernorm/, /rmsnorm/, /(?:^|\.)norm(?:$|\.)/, /_norm(?:$|\.)/];

/** True when HF Trainer's default grouping would apply weight decay to this parameter name. */
export function decaysWeight(name: string): boolean {
  const lower = name.toLowerCase();
  return !NO_DECAY_PATTERNS.some((re) => re.test(lower));
}

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Which parameters get weight decay; default `decaysWeight` (HF grouping). */
  decay?: (name: string) => boolean;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Number of updates applied so far (t in the bias corrections is step + 1 during an update). */
  step = 0;
  private readonly params: Map<string, tf.Variable>;
  private readonly decayed: Set<string>;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(params: Map<string, tf.Variable>, options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    for (const [k, x] of [['beta1', this.beta1], ['beta2', this.beta2]] as const) {
      if (!(x >= 0 && x < 1)) throw new Error(`AdamW: ${k} must be in [0, 1), got ${x}`);
    }
    if (!(this.eps > 0)) throw new Error(`AdamW: eps must be > 0, got ${this.eps}`);
    if (!(this.weightDecay >= 0)) throw new Error(`AdamW: weight_decay must be >= 0, got ${this.weightDecay}`);
    this.params = params;
    const decay = options.decay ?? decaysWeight;
    this.decayed = new Set([...params.keys()].filter(decay));
    for (const [name, p] of params) {
      // tidy: the zeros are copied into the variables and would otherwise stay alive (a leak per optimizer)
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /** Names of the parameters that receive weight decay (the rest are biases and norm weights). */
  decayedNames(): string[] {
    return [...this.params.keys()].filter((n) => this.decayed.has(n));
  }

  /**
   * Apply one update. `grads` maps parameter names to gradients (missing names are skipped: a parameter that
   * got no gradient is neither decayed nor moved, as in torch). `gradScale` multiplies every gradient first
   * (the global-norm clipping coefficient).
   */
  applyGradients(grads: Map<string, tf.Tensor>, lr: number, gradScale = 1): void {
    const t = this.step + 1;
    const bc1 = 1 - this.beta1 ** t;
    const bc2Sqrt = Math.sqrt(1 - this.beta2 ** t);
    const stepSize = lr / bc1;
    const b1 = this.beta1;
    const b2 = this.beta2;
    for (const [name, p] of this.params) {
      const gRaw = grads.get(name);
      if (!gRaw) continue;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const decay = this.decayed.has(name) ? 1 - lr * this.weightDecay : 1;
      tf.tidy(() => {
        // one kernel where the backend has it (webgpu), the element-wise ops otherwise (src/ops/fused.ts)
        const [pNew, mNew, vNew] = adamwStep(p, m, v, gRaw, { beta1: b1, beta2: b2, eps: this.eps, gradScale, decay, stepSize, bc2Sqrt });
        m.assign(mNew);
        v.assign(vNew);
        p.assign(pNew);
      });
    }
    this.step = t;
  }

  /** The moments as named tensors (`exp_avg.<param>`, `exp_avg_sq.<param>`, torch's names), for checkpoints. */
  stateTensors(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [name, m] of this.m) out.set(`exp_avg.${name}`, m);
    for (const [name, v] of this.v) out.set(`exp_avg_sq.${name}`, v);
    return out;
  }

  /** Restore the moments and the step count saved by `stateTensors()`; every moment must be present with the right shape. */
  loadState(tensors: Map<string, tf.Tensor>, step: number, source = 'optimizer state'): void {
    for (const [prefix, table] of [['exp_avg', this.m], ['exp_avg_sq', this.v]] as const) {
      for (const [name, dst] of table) {
        const key = `${prefix}.${name}`;
        const src = tensors.get(key);
        if (!src) throw new Error(`${source}: missing tensor '${key}'`);
        if (src.shape.join(',') !== dst.shape.join(',')) {
          throw new Error(`${source}: tensor '${key}' has shape [${src.shape}] but the parameter has [${dst.shape}]`);
        }
        dst.assign(src);
      }
    }
    this.step = step;
  }

  dispose(): void {
    for (const x of this.m.values()) x.dispose();
    for (const x of this.v.values()) x.dispose();
    this.m.clear();
    this.v.clear();
  }
}
