/**
 * A small AdamW (decoupled weight decay, Loshchilov & Hutter) with a warmup + cosine learning-rate schedule, enough for
 * the MQAR runs. Weight decay applies to matrices only (rank >= 2), not to norms, biases, A_log, D or dt_bias.
 */
import { tf } from '../backend';

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export class AdamW {
  private readonly m = new Map<tf.Variable, tf.Variable>();
  private readonly v = new Map<tf.Variable, tf.Variable>();
  private t = 0;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;

  constructor(readonly vars: tf.Variable[], readonly options: AdamWOptions) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.1;
    const zeroVar = (p: tf.Variable): tf.Variable => {
      const z = tf.zerosLike(p);
      const v = tf.variable(z, false);
      z.dispose(); // the variable keeps its own reference to the data
      return v;
    };
    for (const p of vars) {
      this.m.set(p, zeroVar(p));
      this.v.set(p, zeroVar(p));
    }
  }

  /** One update with learning rate `lr` from gradients keyed by variable name (as tf.variableGrads returns). */
  step(grads: Record<string, tf.Tensor>, lr: number): void {
    this.t++;
    const bc1 = 1 - Math.pow(this.beta1, this.t);
    const bc2 = 1 - Math.pow(this.beta2, this.t);
    tf.tidy(() => {
      for (const p of this.vars) {
        const g = grads[p.name];
        if (!g) continue;
        const m = this.m.get(p)!;
        const v = this.v.get(p)!;
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), this.eps));
        const decayed = p.rank >= 2 && this.weightDecay > 0 ? tf.mul(p, 1 - lr * this.weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      }
    });
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}

/** Linear warmup over `warmup` steps, then cosine decay from `lr` to `minLr` at step `total`. */
export function cosineLr(step: number, total: number, lr: number, warmup: number, minLr = 0): number {
  if (step < warmup) return (lr * (step + 1)) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * progress));
}
