/**
 * The MQAR model: token embedding, numLayers x (RMSNorm -> mixer -> residual), final RMSNorm, LM head. No MLP,
 * as in Zoology's MQAR runs, so the mixers alone have to do the recall.
 * Logits are computed only at the labelled positions (the query keys): the LM head is the most expensive matmul at
 * large vocabularies and all other positions are ignored by the loss anyway.
 */
import { tf } from '../tf';
import { createMixer, type MixerKind, type MixerOptions, type SequenceMixer } from './mixers';
import { gatherRows, linear } from '../ops';
import { Module, makeInit } from '../modules/module';
import { rmsNorm } from '../modules/rmsnorm';

export interface MqarModelOptions extends Omit<MixerOptions, 'dModel' | 'seed'> {
  mixer: MixerKind;
  vocabSize: number;
  dModel: number;
  numLayers?: number;
  seed?: number;
}

export class MqarModel extends Module {
  readonly mixers: SequenceMixer[] = [];
  private readonly embed: tf.Variable;
  private readonly norms: tf.Variable[] = [];
  private readonly finalNorm: tf.Variable;
  private readonly lmHead: tf.Variable;

  constructor(readonly options: MqarModelOptions) {
    const { vocabSize: V, dModel: d } = options;
    super();
    const seed = options.seed ?? 0;
    const init = makeInit({ seed });
    this.embed = this.param('embed_tokens.weight', [V, d], 'normal', init);
    for (let i = 0; i < (options.numLayers ?? 2); i++) {
      this.norms.push(this.param(`layers.${i}.norm.weight`, [d], 'ones', init));
      this.mixers.push(createMixer(options.mixer, { ...options, dModel: d, seed: seed * 100 + i + 1 }));
    }
    this.finalNorm = this.param('norm.weight', [d], 'ones', init);
    this.lmHead = this.param('lm_head.weight', [V, d], 'normal', init); // torch layout [V, d]
    // mixers last: parameters() lists the model's own tensors first, as before
    this.mixers.forEach((m, i) => this.module(`layers.${i}.mixer`, m));
  }

  /**
   * What each attention layer reads for one sequence: per layer [heads][query][key] probabilities (the input of layer
   * i is the residual stream after layers 0..i-1, as in logitsAt). Throws for mixers without attention (ssd, linear).
   */
  attentionMaps(ids: ArrayLike<number>): number[][][][] {
    return this.perLayer(ids, 'attentionProbs', (t) => (t.arraySync() as number[][][][])[0]);
  }

  /** DMAttn only: each layer's dynamic mask d for one sequence, [layer][mask head][key]. */
  dynamicMasks(ids: ArrayLike<number>): number[][][] {
    return this.perLayer(ids, 'dynamicMask', (t) => (t.arraySync() as number[][][])[0]);
  }

  private perLayer<R>(ids: ArrayLike<number>, what: 'attentionProbs' | 'dynamicMask', read: (t: tf.Tensor) => R): R[] {
    const T = ids.length;
    const d = this.options.dModel;
    const out: R[] = [];
    tf.tidy(() => {
      let h = tf.reshape(gatherRows(this.embed as tf.Tensor2D, tf.tensor1d(Array.from(ids), 'int32')), [1, T, d]) as tf.Tensor3D;
      this.mixers.forEach((m, i) => {
        if (!m[what]) throw new Error(`MqarModel: the ${this.options.mixer} mixer has no ${what}`);
        const x = rmsNorm(h, this.norms[i], 1e-6) as tf.Tensor3D;
        out.push(read(what === 'attentionProbs' ? m.attentionProbs!(x) : m.dynamicMask!(x)));
        h = tf.add(h, m.apply(x)) as tf.Tensor3D;
      });
    });
    return out;
  }

  /**
   * inputIds int32 [B, T]; positions: flat indices b*T + t of the rows to score -> logits [positions.length, V].
   */
  logitsAt(inputIds: tf.Tensor2D, positions: tf.Tensor1D): tf.Tensor2D {
    return tf.tidy(() => {
      const [B, T] = inputIds.shape;
      const d = this.options.dModel;
      let h = tf.reshape(gatherRows(this.embed as tf.Tensor2D, tf.reshape(inputIds, [-1]) as tf.Tensor1D), [B, T, d]) as tf.Tensor3D;
      this.mixers.forEach((m, i) => {
        h = tf.add(h, m.apply(rmsNorm(h, this.norms[i], 1e-6) as tf.Tensor3D)) as tf.Tensor3D;
      });
      const rows = gatherRows(tf.reshape(h, [B * T, d]) as tf.Tensor2D, positions); // [M, d]
      return linear(rmsNorm(rows, this.finalNorm, 1e-6), this.lmHead) as tf.Tensor2D; // [M, V]
    });
  }
}
