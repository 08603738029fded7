/**
 * The sequence mixers of the MQAR comparison behind one small interface, so a model can stack any of them.
 *
 *   attention  plain causal softmax attention with RoPE (the paper's "QCAttn")          src/modules/causal-attention.ts
 *   dmattn     Dynamic Mask Attention of the library core, keep_window_size = K          src/modules/dmattn.ts
 *   ssd        Mamba-2 State Space Duality, state size N (default 64)                    src/modules/ssd.ts
 *   linear     linear attention with Based's Taylor feature map + short conv (no window)  src/modules/linear-attention.ts
 */
import { tf } from '../tf';
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
  /** Attention mixers only: the attention probabilities [batch, heads, query, key] of x. */
  attentionProbs?(x: tf.Tensor3D): tf.Tensor4D;
  /** DMAttn only: the dynamic mask d [batch, mask heads, key] of x. */
  dynamicMask?(x: tf.Tensor3D): tf.Tensor3D;
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
  attentionProbs(x: tf.Tensor3D): tf.Tensor4D {
    return this.attn.attentionProbs(x);
  }
  dynamicMask(x: tf.Tensor3D): tf.Tensor3D {
    return this.attn.dynamicMaskOf(x);
  }
  /** Keys kept per query from the next step on (the shrinking-window curriculum of trainMqar). */
  setKeepWindowSize(n: number): void {
    this.attn.keepWindowSize = n;
  }
}

/** The mixers whose top-k window a curriculum can change (DMAttn). */
export function hasKeepWindow(m: SequenceMixer): m is SequenceMixer & { setKeepWindowSize(n: number): void } {
  return m instanceof DMAttnMixer;
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
  /**
   * Std of the projection that writes into the residual stream (attention out_proj, dmattn o_proj, ssd / linear
   * out_proj). Default 0.02, the same as every other matrix; the MQAR recipe passes 0.02 / sqrt(2 * layers) (GPT-2's
   * and Zoology's depth-scaled init), see src/synthetic/recipe.ts.
   */
  outProjStd?: number;
  /** attention / dmattn: std of the query and key projections (default 0.02). */
  qkStd?: number;
  /** dmattn: per-head q/k RMSNorm (default true, as HF Doge). */
  qkNorm?: boolean;
  /** dmattn: initial value of A, the per-head scale of the dynamic mask (default 0, as HF Doge). */
  dmattnA?: number;
  /** dmattn: the dynamic mask's bias, 'exp' (HF, default) or 'linear' (A softplus(dt), arXiv 2508.02124). */
  dmattnBias?: 'exp' | 'linear';
  /** dmattn: std of the dt_proj weight (default 0.02, as every matrix). */
  dtProjStd?: number;
  seed?: number;
}

export function isMixerKind(s: string): s is MixerKind {
  return (MIXER_KINDS as readonly string[]).includes(s);
}

/** The std every module initialises its matrices with (HF initializer_range). */
const MODULE_STD = 0.02;

export function createMixer(kind: MixerKind, o: MixerOptions): SequenceMixer {
  const mixer = buildMixer(kind, o);
  // The init options are applied after construction, so the modules keep one constructor (and their seeded draws):
  // a normal(0, 0.02) matrix times s is a normal(0, 0.02 s) matrix; A is a constant.
  const p = mixer.parameters();
  const outName = { attention: 'out_proj.weight', dmattn: 'o_proj.weight', ssd: 'out_proj.weight', linear: 'out_proj.weight' }[kind];
  if (kind !== 'attention' && o.outProjStd !== undefined && o.outProjStd !== MODULE_STD) scaleVariable(p.get(outName)!, o.outProjStd / MODULE_STD);
  if (o.qkStd !== undefined && o.qkStd !== MODULE_STD) {
    const f = o.qkStd / MODULE_STD;
    if (kind === 'attention') {
      // qkv_proj [3d, d] (torch layout): the first 2d rows are q and k
      const w = p.get('qkv_proj.weight')!;
      const d = w.shape[1]!;
      tf.tidy(() => w.assign(tf.concat([tf.mul(tf.slice(w, [0, 0], [2 * d, d]), f), tf.slice(w, [2 * d, 0], [d, d])], 0)));
    } else if (kind === 'dmattn') {
      scaleVariable(p.get('q_proj.weight')!, f);
      scaleVariable(p.get('k_proj.weight')!, f);
    }
  }
  if (kind === 'dmattn') {
    if (o.dtProjStd !== undefined && o.dtProjStd !== MODULE_STD) scaleVariable(p.get('dt_proj.weight')!, o.dtProjStd / MODULE_STD);
    if (o.dmattnA !== undefined && o.dmattnA !== 0) {
      const A = p.get('A')!;
      tf.tidy(() => A.assign(tf.fill(A.shape, o.dmattnA!))); // tidy: assign copies, the filled tensor would leak
    }
  }
  return mixer;
}

function scaleVariable(v: tf.Variable, s: number): void {
  tf.tidy(() => v.assign(tf.mul(v, s)));
}

function buildMixer(kind: MixerKind, o: MixerOptions): SequenceMixer {
  switch (kind) {
    case 'attention':
      return new CausalAttention({ dModel: o.dModel, numHeads: o.numHeads, seed: o.seed, outProjStd: o.outProjStd });
    case 'dmattn': {
      if (o.keepWindowSize === undefined) throw new Error('dmattn mixer: keepWindowSize is required (use the number of kv pairs)');
      return new DMAttnMixer(new DynamicMaskAttention({ hiddenSize: o.dModel, numHeads: o.numHeads ?? 1, keepWindowSize: o.keepWindowSize, qkNorm: o.qkNorm, seed: o.seed, dynamicMaskBias: o.dmattnBias }));
    }
    case 'ssd':
      return new SSD({ dModel: o.dModel, dState: o.dState, chunkSize: o.chunkSize, rope: o.ssdRope, seed: o.seed });
    case 'linear':
      return new TaylorLinearAttention({ dModel: o.dModel, seed: o.seed });
    default:
      throw new Error(`unknown mixer '${kind as string}'; choose one of ${MIXER_KINDS.join(', ')}`);
  }
}
