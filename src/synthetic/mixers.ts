/**
 * The sequence mixers of the MQAR comparison behind one small interface, so a model can stack any of them.
 *
 *   attention  plain causal softmax attention with RoPE (the paper's "QCAttn")          src/modules/causal-attention.ts
 *   dmattn     Dynamic Mask Attention of the library core, keep_window_size = K          src/modules/dmattn.ts
 *   ssd        Mamba-2 State Space Duality, state size N (default 64)                    src/modules/ssd.ts
 *   linear     linear attention with Based's Taylor feature map + short conv (no window)  src/modules/linear-attention.ts
 */
import { tf } from '../backend';
import { DynamicMaskAttention } from '../modules/dmattn';
import { SSD } from '../modules/ssd';
import { TaylorLinearAttention } from '../modules/linear-attention';
import { CausalAttention } from '../modules/causal-attention';
import { Module } from '../modules/module';

export const MIXER_KINDS = ['attention', 'dmattn', 'ssd', 'linear'] as const;
export type MixerKind = (typeof MIXER_KINDS)[number];

/** A token mixer: [batch, seq, dModel] -> [batch, seq, dModel], a Module (its own trainable variables). */
export interface SequenceMixer extends Module {
  apply(x: tf.Tensor3D): tf.Tensor3D;
}

/** DMAttn behind the mixer interface (its parameters under its own names). */
class DMAttnMixer extends Module implements SequenceMixer {
  constructor(private readonly attn: DynamicMaskAttention) {
    super();
    this.module('', attn);
  }
  apply(x: tf.Tensor3D): tf.Tensor3D {
    return this.attn.apply(x) as tf.Tensor3D;
  }
}

export interface MixerOptions {
  dModel: number;
  /** Attention heads for attention / dmattn (default 1, as Zoology's MQAR attention). */
  numHeads?: number;
  /** dmattn: keys kept per query row (the authors' MQAR script uses the number of kv pairs). */
  keepWindowSize?: number;
  /** ssd: state size N (default 64). */
  dState?: number;
  /** ssd: chunk length of the scan (default 64). */
  chunkSize?: number;
  /** ssd: RoPE on B/C as the Cheems SSD (default false). */
  ssdRope?: boolean;
  seed?: number;
}

export function isMixerKind(s: string): s is MixerKind {
  return (MIXER_KINDS as readonly string[]).includes(s);
}

export function createMixer(kind: MixerKind, o: MixerOptions): SequenceMixer {
  switch (kind) {
    case 'attention':
      return new CausalAttention({ dModel: o.dModel, numHeads: o.numHeads, seed: o.seed });
    case 'dmattn': {
      if (o.keepWindowSize === undefined) throw new Error('dmattn mixer: keepWindowSize is required (use the number of kv pairs)');
      return new DMAttnMixer(new DynamicMaskAttention({ hiddenSize: o.dModel, numHeads: o.numHeads ?? 1, keepWindowSize: o.keepWindowSize, seed: o.seed }));
    }
    case 'ssd':
      return new SSD({ dModel: o.dModel, dState: o.dState, chunkSize: o.chunkSize, rope: o.ssdRope, seed: o.seed });
    case 'linear':
      return new TaylorLinearAttention({ dModel: o.dModel, seed: o.seed });
    default:
      throw new Error(`unknown mixer '${kind as string}'; choose one of ${MIXER_KINDS.join(', ')}`);
  }
}
