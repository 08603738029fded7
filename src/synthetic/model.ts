/**
 * The MQAR model: token embedding, numLayers x (RMSNorm -> mixer -> residual), final RMSNorm, LM head. No MLP,
 * as in Zoology's MQAR runs, so the mixers alone have to do the recall.
 * Logits are computed only at the labelled positions (the query keys): the LM head is the most expensive matmul at
 * large vocabularies and all other positions are ignored by the loss anyway.
 */
import { tf } from '../backend';
import { createMixer, type MixerKind, type MixerOptions, type SequenceMixer } from './mixers';
import { gatherRows, linear, ParamStore, rmsNorm } from './nn';

export interface MqarModelOptions extends Omit<MixerOptions, 'dModel' | 'seed'> {
  mixer: MixerKind;
  vocabSize: number;
  dModel: number;
  numLayers?: number;
  seed?: number;
}

export class MqarModel {
  readonly mixers: SequenceMixer[] = [];
  private readonly params: ParamStore;
  private readonly embed: tf.Variable;
  private readonly norms: tf.Variable[] = [];
  private readonly finalNorm: tf.Variable;
  private readonly lmHead: tf.Variable;

  constructor(readonly options: MqarModelOptions) {
    const { vocabSize: V, dModel: d } = options;
    const seed = options.seed ?? 0;
    const P = (this.params = new ParamStore(seed));
    this.embed = P.normal('embed_tokens.weight', [V, d], 0.02);
    for (let i = 0; i < (options.numLayers ?? 2); i++) {
      this.norms.push(P.add(`layers.${i}.norm.weight`, tf.ones([d])));
      this.mixers.push(createMixer(options.mixer, { ...options, dModel: d, seed: seed * 100 + i + 1 }));
    }
    this.finalNorm = P.add('norm.weight', tf.ones([d]));
    this.lmHead = P.normal('lm_head.weight', [d, V], 0.02);
  }

  /** All trainable variables, keyed by name. */
  parameters(): Map<string, tf.Variable> {
    const all = new Map(this.params.vars);
    this.mixers.forEach((m, i) => {
      for (const [k, v] of m.parameters()) all.set(`layers.${i}.mixer.${k}`, v);
    });
    return all;
  }

  numParameters(): number {
    let n = 0;
    for (const v of this.parameters().values()) n += v.size;
    return n;
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
        h = tf.add(h, m.apply(rmsNorm(h, this.norms[i]) as tf.Tensor3D)) as tf.Tensor3D;
      });
      const rows = gatherRows(tf.reshape(h, [B * T, d]) as tf.Tensor2D, positions); // [M, d]
      return linear(rmsNorm(rows, this.finalNorm), this.lmHead) as tf.Tensor2D; // [M, V]
    });
  }

  dispose(): void {
    this.params.dispose();
    for (const m of this.mixers) m.dispose();
  }
}
