/**
 * A very small causal LM with the DogeForCausalLM interface, for the trainer tests (not a test file itself):
 * embedding -> one residual tanh layer (with bias) -> dropout -> RMS-free scale ("norm") -> tied LM head.
 * Parameter names follow HF conventions so the weight-decay grouping is exercised.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../src/runtime/backend';
import { saveSafetensors } from '../src/io/safetensors';
import { gatherRows } from '../src/ops';
import type { CausalLM } from '../src/train';

export class StandInLM implements CausalLM {
  private readonly params = new Map<string, tf.Variable>();
  constructor(readonly vocab: number, readonly hidden: number, seed = 1, readonly dropout = 0) {
    const init = (shape: number[], s: number) => tf.variable(tf.randomNormal(shape, 0, 0.02 * 10, 'float32', seed * 100 + s));
    this.params.set('model.embed_tokens.weight', init([vocab, hidden], 1));
    this.params.set('model.layers.0.mlp.up_proj.weight', init([hidden, hidden], 2));
    this.params.set('model.layers.0.mlp.up_proj.bias', tf.variable(tf.zeros([hidden])));
    this.params.set('model.norm.weight', tf.variable(tf.ones([hidden])));
  }

  parameters(): Map<string, tf.Variable> {
    return this.params;
  }

  forward(args: { inputIds: tf.Tensor; labels?: tf.Tensor; training?: boolean; numItemsInBatch?: number; dropoutSeed?: number }): { logits: tf.Tensor; loss?: tf.Tensor } {
    const p = (n: string) => this.params.get(n)!;
    const [B, T] = args.inputIds.shape;
    const emb = p('model.embed_tokens.weight');
    let h = tf.reshape(gatherRows(emb, tf.reshape(args.inputIds, [-1])), [B * T, this.hidden]); // [B*T, H]
    const up = tf.add(tf.matMul(h, p('model.layers.0.mlp.up_proj.weight'), false, true), p('model.layers.0.mlp.up_proj.bias'));
    let z = tf.tanh(up);
    if (args.training && this.dropout > 0) z = tf.dropout(z, this.dropout, undefined, args.dropoutSeed);
    h = tf.mul(tf.add(h, z), p('model.norm.weight'));
    const logits = tf.reshape(tf.matMul(h, emb, false, true), [B, T, this.vocab]); // [B, T, V]
    if (!args.labels) return { logits };
    const shifted = tf.reshape(tf.slice(logits, [0, 0, 0], [B, T - 1, this.vocab]), [B * (T - 1), this.vocab]);
    const target = tf.reshape(tf.slice(args.labels, [0, 1], [B, T - 1]), [-1]);
    const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(shifted), tf.oneHot(target, this.vocab))));
    const loss = tf.div(nll, args.numItemsInBatch ?? B * (T - 1));
    return { logits, loss };
  }

  savePretrained(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ vocab_size: this.vocab, hidden_size: this.hidden }));
    saveSafetensors(path.join(dir, 'model.safetensors'), this.params);
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

/** Deterministic synthetic token rows with learnable structure (each token mostly predicts the next). */
export function syntheticRows(numRows: number, seqLen: number, vocab: number, seed = 7): Int32Array[] {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: numRows }, () => {
    const row = new Int32Array(seqLen);
    row[0] = Math.floor(rand() * vocab);
    for (let t = 1; t < seqLen; t++) row[t] = rand() < 0.8 ? (row[t - 1] * 3 + 1) % vocab : Math.floor(rand() * vocab);
    return row;
  });
}

/** A simple resumable loader over rows: a seeded shuffle per epoch, position = rows consumed. */
export class RowLoader {
  position: number;
  constructor(private readonly rows: Int32Array[], private readonly batchSize: number, private readonly seed: number, position = 0) {
    this.position = position;
  }
  private order(epoch: number): number[] {
    let s = (this.seed * 7919 + epoch) >>> 0;
    const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const idx = this.rows.map((_, i) => i);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [idx[i], idx[j]] = [idx[j], idx[i]];
    }
    return idx;
  }
  next(): Int32Array[] {
    const out: Int32Array[] = [];
    for (let k = 0; k < this.batchSize; k++) {
      const epoch = Math.floor(this.position / this.rows.length);
      out.push(this.rows[this.order(epoch)[this.position % this.rows.length]]);
      this.position++;
    }
    return out;
  }
}
