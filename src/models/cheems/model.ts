/**
 * CheemsForCausalLM (cheems-spec sections 3-6): the paper's hybrid. Every layer is a sequence transformation (SSD
 * with RoPE on B and C, or, every attn_layer_period-th layer, seed-era Dynamic Mask Attention) and a state
 * transformation (SwiGLU MLP or multi-head product-key CDMoE), each as pre-RMSNorm -> block -> weighted residual:
 *
 *   h = post_sequence_residual * h + Mixer(RMSNorm(h))      Mixer = SSD | DMAttn
 *   h = post_state_residual    * h + FF(RMSNorm(h))         FF    = MLP | CDMoE
 *
 * One rotary table per call serves both mixers (attention rotates q/k, the SSD rotates C/B).
 *
 *   const model = new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny'), { seed: 0 });
 *   const { logits, loss } = model.forward({ inputIds, labels });       // int32 [B, T] tensors
 *   model.generate([[1, 2, 3]], { maxNewTokens: 20 });                    // SSD states + KV caches
 */
import { tf } from '../../tf';
import { Module, Scale, makeInit, variableGradsByName, type Init } from '../../modules/module';
import { RMSNorm } from '../../modules/rmsnorm';
import { RotaryEmbedding } from '../../modules/rope';
import { MLP } from '../../modules/mlp';
import { DynamicMaskAttention, buildMaskBias, type LayerCache, type MaskBias } from '../../modules/dmattn';
import { CDMoE } from '../../modules/cdmoe';
import { Embedding } from '../../modules/embedding';
import { SSDMixer } from '../../modules/ssd-mixer';
import {
  boundedCacheFor, finishCall, forwardInChunks, inferenceChunk, newKeyMask, setupCall, type CacheModeInput, type CausalLMInput,
} from '../causal-lm';
import { isRecordingGradients } from '../../ops';
import { checkConfigAgainstCheckpoint, loadPretrainedInto, writeCheckpointFolder } from '../checkpoint';
import { generate, type GenerateOptions } from '../../generation/generate';
import { CheemsConfig } from './config';

export interface CheemsModelOptions {
  /** Seed of the weight initialisation (default 0). */
  seed?: number;
  /** Internal: skip random init (weights are overwritten right after, e.g. when loading). */
  initWeights?: boolean;
}

/** Decoding cache of an SSD layer: its state after the last token. */
export interface SSDLayerCache {
  state: tf.Tensor; // [B, nh, hd (x dim p), hd (B/C dim n)]
}

/** Cache of a CheemsForCausalLM: per layer an SSD state or a KV cache, plus the key mask seen so far. */
export interface CheemsCache {
  layers: Array<SSDLayerCache | LayerCache>;
  /** Number of positions seen (P). */
  length: number;
  /** Row-major [B, P] key mask (1 = real token) or null when nothing is padded (a bounded cache folds it into d). */
  mask: Int32Array | null;
  /** Attention layers keep at most keep_window_size keys per kv head (src/modules/dmattn-cache.ts). */
  bounded?: boolean;
}

export interface CheemsForwardInput extends CausalLMInput, CacheModeInput {
  /** Return per-layer hidden states (outputs of each decoder layer, before the final norm). */
  outputHiddenStates?: boolean;
  /** Return dynamic masks (attention layers), final SSD states (SSD layers) and selected experts (CDMoE). */
  outputAttentions?: boolean;
  cache?: CheemsCache | null;
  useCache?: boolean;
  /** Override config.ssd_chunk_size for this call (the function does not depend on it). */
  ssdChunkSize?: number;
  /** Internal (the chunked inference forward): return the final-norm hidden states [B, T, H] as `logits`. */
  hiddenOnly?: boolean;
}

export interface CheemsForwardOutput {
  logits: tf.Tensor; // [B, T, V]
  loss?: tf.Scalar;
  /** Per layer [B, T, H]. */
  hiddenStates?: tf.Tensor[];
  /** Per layer: [B, nh, S] for attention layers, null for SSD layers. */
  dynamicMasks?: Array<tf.Tensor | null>;
  /** Per layer: [B, nh, hd, hd] for SSD layers, null for attention layers. */
  ssdStates?: Array<tf.Tensor | null>;
  /**
   * outputAttentions without a cache or padding, per layer [B, nh, T, T]: the matrix each head mixes the tokens with.
   * Attention layers: the attention probabilities. SSD layers: M = L ∘ C Bᵀ ∘ dt, the SSD written as attention
   * (y = M x per head; the state space duality).
   */
  attentions?: tf.Tensor[];
  /** With `attentions`, one entry per SSD layer (in layer order): the decay L [B, nh, T, T], L[t, s] = exp(A Σ dt). */
  ssdDecays?: tf.Tensor[];
  /** CDMoE only, per layer: int32 [B*T, heads, experts per head], descending score. */
  expertIds?: tf.Tensor[];
  cache?: CheemsCache;
}

/** What one forward pass shares with every layer. */
interface CheemsLayerContext {
  cos: tf.Tensor;
  sinSigned: tf.Tensor;
  maskBias: MaskBias | null;
  keep: tf.Tensor | null;
  segments: number[][] | null;
  chunkSize: number;
  training: boolean;
  seed: { next: number };
  outputAttentions: boolean;
  ties: 'torch' | 'recent';
  bounded?: { start: number; newMask: Int32Array | null };
}

interface CheemsLayerRecord {
  cache: SSDLayerCache | LayerCache;
  dynamicMask: tf.Tensor | null;
  ssdState: tf.Tensor | null;
  expertIds?: tf.Tensor;
  /** outputAttentions without a cache: the matrix the layer mixes tokens with [B, nh, T, T] (and, SSD, its decay L). */
  mixing?: tf.Tensor;
  ssdDecay?: tf.Tensor;
}

export class CheemsDecoderLayer extends Module {
  readonly kind: 'attn' | 'ssd';
  readonly preSequenceNorm: RMSNorm;
  readonly mixer: SSDMixer | DynamicMaskAttention;
  readonly postSequenceResidual: Scale;
  readonly preStateNorm: RMSNorm;
  readonly feedForward: MLP | CDMoE;
  readonly postStateResidual: Scale;

  constructor(init: Init, private readonly c: CheemsConfig, kind: 'attn' | 'ssd') {
    super();
    const H = c.hidden_size;
    this.kind = kind;
    this.preSequenceNorm = this.module('pre_sequence_layernorm', new RMSNorm(init, H, c.rms_norm_eps));
    this.mixer = kind === 'ssd'
      ? this.module('ssd', new SSDMixer({ hiddenSize: H, numHeads: c.num_attention_heads, bias: c.hidden_bias, chunkSize: c.ssd_chunk_size }, init))
      : this.module('attn', new DynamicMaskAttention({
        hiddenSize: H, numHeads: c.num_attention_heads, numKvHeads: c.num_key_value_heads, attentionBias: c.hidden_bias,
        attentionDropout: c.attention_dropout, qkNorm: false, keepWindowSize: c.keep_window_size, dynamicMaskHeads: 'query', aInit: 'ones',
        dynamicMaskBias: c.dynamic_mask_bias, dynamicMaskSelect: c.dynamic_mask_select, dynamicMaskType: c.dynamic_mask_type,
      }, init));
    this.postSequenceResidual = this.module('post_sequence_residual', new Scale(init, H));
    this.preStateNorm = this.module('pre_state_layernorm', new RMSNorm(init, H, c.rms_norm_eps));
    this.feedForward = this.module('feed_forward', c.is_moe
      ? new CDMoE({
        hiddenSize: H, intermediateSize: c.intermediate_size, numExperts: c.num_cdmoe_experts, router: 'product-keys',
        numHeads: c.num_cdmoe_heads, numExpertsPerTok: c.num_cdmoe_experts_per_head, retrievalSize: c.expert_retrieval_size,
        mlpBias: c.hidden_bias,
      }, init)
      : new MLP(init, { hiddenSize: H, intermediateSize: c.intermediate_size, bias: c.hidden_bias }));
    this.postStateResidual = this.module('post_state_residual', new Scale(init, H));
  }

  forward(h: tf.Tensor, ctx: CheemsLayerContext, cache: SSDLayerCache | LayerCache | undefined): { h: tf.Tensor; record: CheemsLayerRecord } {
    // sequence transformation: SSD (state carried token to token) or DMAttn (every key, dynamic mask)
    const x = this.preSequenceNorm.apply(h);
    let mixed: tf.Tensor;
    let record: CheemsLayerRecord;
    if (this.mixer instanceof SSDMixer) {
      this.mixer.chunkSize = ctx.chunkSize;
      const r = this.mixer.forward(x, {
        cos: ctx.cos, sinSigned: ctx.sinSigned, keep: ctx.keep, segments: ctx.segments,
        state: cache ? (cache as SSDLayerCache).state : null,
      });
      mixed = r.out;
      record = { cache: { state: r.state }, ssdState: r.state, dynamicMask: null };
      if (ctx.outputAttentions && !cache && !ctx.segments && !ctx.keep) {
        // the same layer in its quadratic form: y = (L ∘ C Bᵀ)(dt ∘ x), the SSD side of the duality
        const m = this.mixer.matrixForm(x, { cos: ctx.cos, sinSigned: ctx.sinSigned });
        record.mixing = m.M;
        record.ssdDecay = m.L;
      }
    } else {
      const a = this.mixer.forward(x, {
        cos: ctx.cos, sinSigned: ctx.sinSigned, maskBias: ctx.maskBias, cache: cache as LayerCache | undefined,
        training: ctx.training, dropoutSeed: ctx.seed.next++, outputAttentions: ctx.outputAttentions,
        ties: ctx.ties, bounded: ctx.bounded,
      });
      mixed = a.out;
      record = { cache: a.cache, ssdState: null, dynamicMask: ctx.outputAttentions ? a.cache.d : null };
      if (ctx.outputAttentions && !cache) record.mixing = a.probs;
    }
    h = tf.add(this.postSequenceResidual.apply(h), this.dropout(mixed, ctx));
    // state transformation: per token
    const y = this.preStateNorm.apply(h);
    let ff: tf.Tensor;
    if (this.feedForward instanceof CDMoE) {
      const r = this.feedForward.apply(y, { outputRouting: ctx.outputAttentions });
      ff = r.out;
      record.expertIds = r.expertIds;
    } else {
      ff = this.feedForward.apply(y);
    }
    h = tf.add(this.postStateResidual.apply(h), this.dropout(ff, ctx));
    return { h, record };
  }

  private dropout(x: tf.Tensor, ctx: CheemsLayerContext): tf.Tensor {
    return ctx.training && this.c.hidden_dropout > 0 ? tf.dropout(x, this.c.hidden_dropout, undefined, ctx.seed.next++) : x;
  }
}

/** The seed's CheemsModel: word_embed, layers, final_layernorm (the `model.` prefix). */
export class CheemsModel extends Module {
  readonly embed: Embedding;
  readonly layers: CheemsDecoderLayer[] = [];
  readonly finalNorm: RMSNorm;

  constructor(init: Init, c: CheemsConfig, zeroPadRow: boolean) {
    super();
    this.embed = this.module('word_embed', new Embedding(init, c.vocab_size, c.hidden_size, c.pad_token_id));
    if (zeroPadRow) this.embed.zeroPaddingRow();
    c.layersType.forEach((kind, i) => this.layers.push(this.module(`layers.${i}`, new CheemsDecoderLayer(init, c, kind))));
    this.finalNorm = this.module('final_layernorm', new RMSNorm(init, c.hidden_size, c.rms_norm_eps));
  }
}

export class CheemsForCausalLM extends Module {
  readonly config: CheemsConfig;
  readonly model: CheemsModel;
  readonly lmHead: tf.Variable; // [V, H] (the embedding itself when tied)
  readonly rotary: RotaryEmbedding;
  /** Positions stay P + t under left padding (spec D11), so generate passes none. */
  readonly positionsFollowMask = false;

  constructor(config: CheemsConfig, options: CheemsModelOptions = {}) {
    super();
    if (!(config instanceof CheemsConfig)) config = new CheemsConfig(config as never);
    config.checkBuildable(); // a model that cannot fit is refused before the first allocation
    this.config = config;
    const c = config;
    const initWeights = options.initWeights ?? true;
    const init = makeInit({ seed: options.seed ?? 0, initializerRange: initWeights ? c.initializer_range : 0 });
    this.model = this.module('model', new CheemsModel(init, c, initWeights && c.pad_token_id !== null));
    this.lmHead = c.tie_word_embeddings ? this.model.embed.weight : this.param('lm_head.weight', [c.vocab_size, c.hidden_size], 'normal', init);
    const rs = c.rope_scaling;
    this.rotary = this.own(new RotaryEmbedding({
      headDim: c.headDim, theta: c.rope_theta, ropeType: rs?.rope_type ?? 'default', factor: rs?.factor,
      maxPositionEmbeddings: c.max_position_embeddings,
    }));
  }

  get layers(): CheemsDecoderLayer[] { return this.model.layers; }

  /** Gradients of `lossFn` w.r.t. every parameter, keyed by HF name. The caller disposes value and grads. */
  variableGrads(lossFn: () => tf.Scalar): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
    return variableGradsByName(this.parameters(), lossFn);
  }

  /**
   * Causal-LM forward pass (HF causal loss; with a cache it continues every SSD state and KV cache). Without gradients
   * each layer's buffers are freed after the layer, and a long input runs in chunks through the cache (../causal-lm.ts).
   */
  forward(input: CheemsForwardInput): CheemsForwardOutput {
    const c = this.config;
    const chunk = this.inferenceChunkOf(input);
    if (chunk) {
      return tf.tidy(() => {
        const call = setupCall(input, input.cache ?? null, c.vocab_size, this.rotary);
        const attnLayers = c.layersType.filter((k) => k === 'attn').length;
        const full = !(input.cache?.bounded || (input.useCache && input.cacheMode === 'bounded' && c.keep_window_size !== null));
        const kvBytesPerToken = full ? 4 * attnLayers * (2 * c.num_key_value_heads * c.headDim + c.num_attention_heads) : 0; // k, v, d per query head
        const sizes = { vocabSize: c.vocab_size, hiddenSize: c.hidden_size, kvBytesPerToken };
        const out = forwardInChunks(input, call, chunk, this.lmHead, sizes, (part) => {
          const o = this.forward({ ...part, ssdChunkSize: input.ssdChunkSize, hiddenOnly: true });
          return { h: o.logits, cache: o.cache! };
        }, disposeCheemsCache);
        return out as unknown as tf.TensorContainer;
      }) as unknown as CheemsForwardOutput;
    }
    return tf.tidy(() => {
      const call = setupCall(input, input.cache ?? null, c.vocab_size, this.rotary);
      const { B, T, P, mask, docs, rope } = call;
      const cache = input.cache ?? null;
      const hasAttn = c.layersType.includes('attn');
      const bounded = boundedCacheFor(input, cache, this.boundedCacheObstacle(docs !== null), !hasAttn || c.keep_window_size === null);
      const newMask = bounded ? newKeyMask(mask, B, T, P) : null;
      const ctx: CheemsLayerContext = {
        cos: rope.cos, sinSigned: rope.sinSigned,
        // a bounded cache: the mask of the new keys only (its cached slots are all visible, see dmattn-cache.ts)
        maskBias: !hasAttn ? null : bounded ? buildMaskBias(B, T, 0, newMask, null) : buildMaskBias(B, T, P, mask, null, docs),
        ties: bounded ? 'recent' : input.topkTies ?? 'torch', bounded: bounded ? { start: P, newMask } : undefined,
        keep: newTokenMask(mask, B, T, P), segments: docs ? documentStarts(docs, B, T, P) : null,
        chunkSize: input.ssdChunkSize ?? c.ssd_chunk_size, training: !!input.training, seed: { next: input.dropoutSeed ?? 0 },
        outputAttentions: !!input.outputAttentions,
      };

      let h = this.model.embed.apply(call.ids); // [B, T, H]
      const records: CheemsLayerRecord[] = [];
      const hidden: tf.Tensor[] = [];
      // without gradients a layer's buffers ([heads, T, S] scores and masks, SSD chunks) die with the layer
      const layerTidy = !isRecordingGradients();
      for (let i = 0; i < this.layers.length; i++) {
        const run = () => this.layers[i].forward(h, ctx, cache?.layers[i]);
        const r = layerTidy ? (tf.tidy(() => run() as unknown as tf.TensorContainer) as unknown as ReturnType<typeof run>) : run();
        h = r.h;
        records.push(r.record);
        if (input.outputHiddenStates) hidden.push(h);
      }
      if (input.hiddenOnly) {
        const out: CheemsForwardOutput = { logits: this.model.finalNorm.apply(h) };
        if (rope.owned) { rope.cos.dispose(); rope.sinSigned.dispose(); }
        out.cache = { layers: records.map((r) => r.cache), length: P + T, mask: ctx.bounded ? null : mask };
        if (ctx.bounded) out.cache.bounded = true;
        return out as unknown as tf.TensorContainer;
      }
      const out: CheemsForwardOutput = finishCall(this.model.finalNorm.apply(h), this.lmHead, input, call);
      if (input.outputHiddenStates) out.hiddenStates = hidden;
      if (input.outputAttentions) {
        out.dynamicMasks = records.map((r) => r.dynamicMask);
        out.ssdStates = records.map((r) => r.ssdState);
        if (c.is_moe) out.expertIds = records.map((r) => r.expertIds!);
        if (records.every((r) => r.mixing)) {
          out.attentions = records.map((r) => r.mixing!);
          out.ssdDecays = records.filter((r) => r.ssdDecay).map((r) => r.ssdDecay!);
        }
      }
      if (input.useCache || cache) {
        // the SSD layers read the key mask only through `keep` (new tokens), so a bounded cache needs none
        out.cache = { layers: records.map((r) => r.cache), length: P + T, mask: bounded ? null : mask };
        if (bounded) out.cache.bounded = true;
      }
      if (rope.owned) { rope.cos.dispose(); rope.sinSigned.dispose(); }
      return out as unknown as tf.TensorContainer;
    }) as unknown as CheemsForwardOutput;
  }

  /** Query rows per chunk of an inference forward over a long input, or null for one pass (see ../causal-lm.ts). */
  private inferenceChunkOf(input: CheemsForwardInput): number | null {
    const c = this.config;
    if (input.training || input.hiddenOnly || input.outputAttentions || input.outputHiddenStates || input.documentIds !== undefined || isRecordingGradients()) return null;
    if (!c.layersType.includes('attn')) return null;
    const shape = input.inputIds instanceof tf.Tensor ? input.inputIds.shape : [input.inputIds.length, input.inputIds[0]?.length ?? 0];
    const bounded = !!input.cache?.bounded || (!!input.useCache && input.cacheMode === 'bounded' && c.keep_window_size !== null && !this.boundedCacheObstacle());
    const g = c.num_attention_heads / c.num_key_value_heads;
    return inferenceChunk(shape[0]!, shape[1]!, input.cache?.length ?? 0, 8 * c.num_attention_heads, bounded ? g * c.keep_window_size! : Infinity);
  }

  /** Why a bounded decoding cache would not be exact for this model's attention layers (null: it is). */
  boundedCacheObstacle(packed = false): string | null {
    if (packed) return 'documentIds (packed rows)';
    const attn = this.layers.find((l) => l.kind === 'attn');
    return attn ? (attn.mixer as DynamicMaskAttention).boundedCacheObstacle() : null;
  }

  /** Greedy / sampled generation with SSD states and KV caches; returns prompt + new tokens per row. See src/generation. */
  generate(inputIds: number[][] | tf.Tensor, options: GenerateOptions = {}): number[][] {
    return generate<CheemsCache>(this, inputIds, options);
  }

  /** Write config.json + model.safetensors (the seed's names, F32) atomically. */
  savePretrained(dir: string): void {
    writeCheckpointFolder(dir, this.config.toJSON(), this.parameters() as Map<string, tf.Tensor>);
  }

  /** Open a Cheems folder (single or sharded safetensors; F32/F16/BF16). Errors name the file or tensor. */
  static fromPretrained(dir: string): CheemsForCausalLM {
    const config = CheemsConfig.fromPretrained(dir);
    checkConfigAgainstCheckpoint(dir, config, 'model.word_embed.weight'); // before anything is allocated
    return loadPretrainedInto(dir, new CheemsForCausalLM(config, { initWeights: false }), config.tie_word_embeddings ? 'model.word_embed.weight' : null);
  }
}

/** keep[b, t] = mask[b, P + t] as [B, T, 1] (the SSD zeroes padded inputs), or null when nothing is padded. */
function newTokenMask(mask: Int32Array | null, B: number, T: number, P: number): tf.Tensor | null {
  if (!mask) return null;
  const S = P + T;
  const keep = new Float32Array(B * T);
  let any = false;
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
    keep[b * T + t] = mask[b * S + P + t] ? 1 : 0;
    if (!keep[b * T + t]) any = true;
  }
  return any ? tf.tensor3d(keep, [B, T, 1]) : null;
}

/** Per row, the new-token positions where another document starts (packed rows; the SSD restarts its state there). */
function documentStarts(docs: Int32Array, B: number, T: number, P: number): number[][] {
  const S = P + T;
  return Array.from({ length: B }, (_, b) => {
    const starts: number[] = [];
    for (let t = 0; t < T; t++) {
      const prev = P + t - 1;
      if (prev >= 0 && docs[b * S + prev] !== docs[b * S + P + t]) starts.push(t);
    }
    return starts;
  });
}

/** Frees a decoding cache's tensors (the chunked inference forward drops each chunk's cache with it). */
export function disposeCheemsCache(cache: CheemsCache | null | undefined): void {
  if (cache) tf.dispose(cache.layers as unknown as tf.TensorContainer);
}
