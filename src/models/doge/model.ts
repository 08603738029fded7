/**
 * DogeForCausalLM with Hugging Face semantics (spec sections 3-6), on TensorFlow.js.
 *
 *   const model = new DogeForCausalLM(DogeConfig.preset('doge-tiny'), { seed: 0 });
 *   const { logits, loss } = model.forward({ inputIds, labels });     // int32 [B, T] tensors
 *   const grads = tf.variableGrads(() => model.forward({ inputIds, labels, training: true }).loss!, [...model.parameters().values()]);
 *   model.generate([[1, 2, 3]], { maxNewTokens: 20 });
 *
 * Layer (spec 4.5):  h = input_residual * h + Attn(RMSNorm(h));  h = post_attention_residual * h + MLP|CDMoE(RMSNorm(h))
 * Written on the Module protocol (src/modules/module.ts): `parameters()` maps HF names to tf.Variables, `loadState`
 * assigns a checkpoint, `dispose()` frees everything. Tied embeddings: only `model.embed_tokens.weight` exists and
 * also serves as lm_head.
 */
import { tf } from '../../tf';
import { Module, makeInit, variableGradsByName, type Init, type LoadStateOptions, type LoadStateResult } from '../../modules/module';
import { RMSNorm } from '../../modules/rmsnorm';
import { RotaryEmbedding } from '../../modules/rope';
import { MLP } from '../../modules/mlp';
import { DynamicMaskAttention, buildMaskBias, type LayerCache, type MaskBias } from '../../modules/dmattn';
import { CDMoE, cdmoeAuxLoss, type RouterLayout } from '../../modules/cdmoe';
import { Embedding } from '../../modules/embedding';
import {
  boundedCacheFor, finishCall, forwardInChunks, inferenceChunk, newKeyMask, setupCall, type CacheModeInput, type CausalLMInput,
} from '../causal-lm';
import { isRecordingGradients } from '../../ops';
import { checkConfigAgainstCheckpoint, loadPretrainedInto, writeCheckpointFolder } from '../checkpoint';
import { DogeConfig } from './config';
import { embeddingName, fromLegacyName, legacyAttentionOptions, legacyConfigJSON, renameTensors, toLegacyName, type LegacyOptions } from './legacy';
import { generate, type GenerateOptions } from '../../generation/generate';

export interface DogeModelOptions {
  /** Seed of the weight initialisation (default 0). */
  seed?: number;
  /** CDMoE router layout: 'token' (default, causal) or 'hf' (reproduces HF's flat-buffer reading). */
  routerLayout?: RouterLayout;
  /** Internal: skip random init (weights are overwritten right after, e.g. when loading). */
  initWeights?: boolean;
}

/** KV cache of a DogeForCausalLM: one LayerCache per layer plus the 2D key mask seen so far. */
export interface DogeCache {
  layers: LayerCache[];
  /** Number of cached key slots (P). */
  length: number;
  /** Row-major [B, P] key mask (1 = real token) or null when nothing is padded (a bounded cache folds it into d). */
  mask: Int32Array | null;
  /** At most keep_window_size keys per kv head and layer (src/modules/dmattn-cache.ts); absent: every key. */
  bounded?: boolean;
}

export interface ForwardInput extends CausalLMInput, CacheModeInput {
  /** Return per-layer dynamic masks, attention probabilities and selected experts. */
  outputAttentions?: boolean;
  /** Use and extend this cache (incremental decoding); the returned `cache` holds the new tensors. */
  cache?: DogeCache | null;
  /** Return a cache (for generation). */
  useCache?: boolean;
  /** Internal (the chunked inference forward): return the final-norm hidden states [B, T, H] as `logits`. */
  hiddenOnly?: boolean;
}

export interface ForwardOutput {
  logits: tf.Tensor; // [B, T, V]
  loss?: tf.Scalar;
  /** Per layer exp(A * softplus(dt_proj(v))) for every key: [B, nkv, S]. */
  dynamicMasks?: tf.Tensor[];
  /** Per layer attention probabilities [B, nh, T, S]. */
  attentions?: tf.Tensor[];
  /** MoE only, per layer: selected expert ids int32 [B*T, k] (descending score) and their routing weights. */
  expertIds?: tf.Tensor[];
  expertWeights?: tf.Tensor[];
  /** MoE only, per layer router logits [2, B*T, K] (HF layout). */
  routerLogits?: tf.Tensor[];
  /** MoE with config.output_router_logits: HF's load-balancing loss (already added to `loss` x router_aux_loss_coef). */
  auxLoss?: tf.Scalar;
  cache?: DogeCache;
}

/** What one forward pass shares with every layer. */
interface LayerContext {
  cos: tf.Tensor;
  sinSigned: tf.Tensor;
  maskBias: MaskBias | null;
  training: boolean;
  /** Next dropout seed (advanced by each use). */
  seed: { next: number };
  outputRouting: boolean;
  outputAttentions: boolean;
  ties: 'torch' | 'recent';
  /** Bounded cache: index of the first new key and the new keys' mask. */
  bounded?: { start: number; newMask: Int32Array | null };
}

/** What a layer reports besides its output. */
interface LayerRecord {
  cache: LayerCache;
  dynamicMask?: tf.Tensor;
  probs?: tf.Tensor;
  routing?: { expertIds?: tf.Tensor; expertWeights?: tf.Tensor; routerLogits?: tf.Tensor };
}

/** Doge decoder layer (spec 4.5): h = input_residual * h + Attn(RMSNorm(h)); h = post_attention_residual * h + MLP|CDMoE(RMSNorm(h)). */
export class DogeDecoderLayer extends Module {
  readonly inputNorm: RMSNorm;
  readonly attn: DynamicMaskAttention;
  readonly inputResidual: tf.Variable;
  readonly postNorm: RMSNorm;
  readonly mlp: MLP | CDMoE;
  readonly postResidual: tf.Variable;

  constructor(init: Init, private readonly c: DogeConfig, routerLayout: RouterLayout) {
    super();
    this.inputNorm = this.module('input_layernorm', new RMSNorm(init, c.hidden_size, c.rms_norm_eps));
    this.attn = this.module('self_attn', new DynamicMaskAttention({
      hiddenSize: c.hidden_size, numHeads: c.num_attention_heads, numKvHeads: c.num_key_value_heads,
      keepWindowSize: c.keep_window_size, attentionBias: c.attention_bias, rmsNormEps: c.rms_norm_eps,
      attentionDropout: c.attention_dropout, dynamicMaskBias: c.dynamic_mask_bias, dynamicMaskSelect: c.dynamic_mask_select,
      dynamicMaskType: c.dynamic_mask_type, ...legacyAttentionOptions(c.legacy_layout),
    }, init));
    this.inputResidual = this.param('input_residual', [c.hidden_size], 'ones', init);
    this.postNorm = this.module('post_attention_layernorm', new RMSNorm(init, c.hidden_size, c.rms_norm_eps));
    this.mlp = this.module('mlp', c.is_moe
      ? new CDMoE({
        hiddenSize: c.hidden_size, intermediateSize: c.intermediate_size, numExperts: c.num_experts,
        numExpertsPerTok: c.num_experts_per_tok, normTopkProb: c.norm_topk_prob, mlpBias: c.mlp_bias, routerLayout,
      }, init)
      : new MLP(init, { hiddenSize: c.hidden_size, intermediateSize: c.intermediate_size, bias: c.mlp_bias }));
    this.postResidual = this.param('post_attention_residual', [c.hidden_size], 'ones', init);
  }

  forward(h: tf.Tensor, ctx: LayerContext, cache: LayerCache | undefined): { h: tf.Tensor; record: LayerRecord } {
    // sequence transformation: dynamic mask attention over the tokens
    const a = this.attn.forward(this.inputNorm.apply(h), {
      cos: ctx.cos, sinSigned: ctx.sinSigned, maskBias: ctx.maskBias, cache, training: ctx.training,
      dropoutSeed: ctx.seed.next++, outputAttentions: ctx.outputAttentions, ties: ctx.ties, bounded: ctx.bounded,
    });
    h = tf.add(tf.mul(this.inputResidual, h), this.dropout(a.out, ctx));
    // state transformation: MLP or CDMoE, per token
    const record: LayerRecord = { cache: a.cache, dynamicMask: a.dynamicMask, probs: a.probs };
    let m: tf.Tensor;
    if (this.mlp instanceof CDMoE) {
      const r = this.mlp.apply(this.postNorm.apply(h), { outputRouting: ctx.outputRouting });
      m = r.out;
      record.routing = r;
    } else {
      m = this.mlp.apply(this.postNorm.apply(h));
    }
    h = tf.add(tf.mul(this.postResidual, h), this.dropout(m, ctx));
    return { h, record };
  }

  private dropout(x: tf.Tensor, ctx: LayerContext): tf.Tensor {
    return ctx.training && this.c.hidden_dropout > 0 ? tf.dropout(x, this.c.hidden_dropout, undefined, ctx.seed.next++) : x;
  }
}

/** HF DogeModel: embed_tokens, layers, norm (the `model.` prefix). */
export class DogeModel extends Module {
  readonly embed: Embedding;
  readonly layers: DogeDecoderLayer[] = [];
  readonly norm: RMSNorm;

  constructor(init: Init, c: DogeConfig, routerLayout: RouterLayout, zeroPadRow: boolean) {
    super();
    this.embed = this.module('embed_tokens', new Embedding(init, c.vocab_size, c.hidden_size, c.pad_token_id));
    if (zeroPadRow) this.embed.zeroPaddingRow(); // HF zeroes the padding row of embed_tokens at init
    for (let i = 0; i < c.num_hidden_layers; i++) this.layers.push(this.module(`layers.${i}`, new DogeDecoderLayer(init, c, routerLayout)));
    this.norm = this.module('norm', new RMSNorm(init, c.hidden_size, c.rms_norm_eps));
  }
}

export class DogeForCausalLM extends Module {
  readonly config: DogeConfig;
  routerLayout: RouterLayout;
  readonly model: DogeModel;
  readonly lmHead: tf.Variable; // [V, H] (the embedding itself when tied)
  readonly rotary: RotaryEmbedding;

  constructor(config: DogeConfig, options: DogeModelOptions = {}) {
    super();
    if (!(config instanceof DogeConfig)) config = new DogeConfig(config as never);
    config.checkBuildable(); // a model that cannot fit is refused before the first allocation
    this.config = config;
    const c = config;
    this.routerLayout = options.routerLayout ?? 'token';
    if (this.routerLayout !== 'token' && this.routerLayout !== 'hf') throw new Error(`routerLayout must be 'token' or 'hf', got '${this.routerLayout}'`);
    const initWeights = options.initWeights ?? true;
    // with init disabled every 'normal' weight starts at 0 (std 0) and is overwritten by the loader
    const init = makeInit({ seed: options.seed ?? 0, initializerRange: initWeights ? c.initializer_range : 0 });
    this.model = this.module('model', new DogeModel(init, c, this.routerLayout, initWeights && c.pad_token_id !== null));
    this.lmHead = c.tie_word_embeddings ? this.embed.weight : this.param('lm_head.weight', [c.vocab_size, c.hidden_size], 'normal', init);
    const rp = c.rope_parameters;
    this.rotary = this.own(new RotaryEmbedding({
      headDim: c.headDim, theta: rp.rope_theta, ropeType: rp.rope_type, factor: rp.factor, maxPositionEmbeddings: c.max_position_embeddings,
    }));
    for (const l of this.layers) if (l.mlp instanceof CDMoE) l.mlp.routerLayout = this.routerLayout;
  }

  get embed(): Embedding { return this.model.embed; }
  get layers(): DogeDecoderLayer[] { return this.model.layers; }
  get norm(): RMSNorm { return this.model.norm; }

  /**
   * Gradients of `lossFn` w.r.t. every parameter, keyed by HF name (tf.variableGrads keys by tfjs names).
   * The caller disposes the returned value and grads.
   */
  variableGrads(lossFn: () => tf.Scalar): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
    return variableGradsByName(this.parameters(), lossFn);
  }

  /**
   * Causal-LM forward pass (HF DogeForCausalLM.forward). Without gradients each layer's attention buffers are freed
   * after the layer, and a long input runs in chunks through the cache (see inferenceChunk in ../causal-lm.ts).
   */
  forward(input: ForwardInput): ForwardOutput {
    const c = this.config;
    const chunk = this.inferenceChunkOf(input);
    if (chunk) {
      return tf.tidy(() => {
        const call = setupCall(input, input.cache ?? null, c.vocab_size, this.rotary);
        const full = !(input.cache?.bounded || (input.useCache && input.cacheMode === 'bounded'));
        const kvBytesPerToken = full ? 4 * c.num_hidden_layers * c.num_key_value_heads * (2 * c.headDim + 1) : 0; // k, v, d
        const sizes = { vocabSize: c.vocab_size, hiddenSize: c.hidden_size, kvBytesPerToken };
        const out = forwardInChunks(input, call, chunk, this.lmHead, sizes, (part) => {
          const o = this.forward({ ...part, hiddenOnly: true });
          return { h: o.logits, cache: o.cache! };
        }, disposeCache);
        return out as unknown as tf.TensorContainer;
      }) as unknown as ForwardOutput;
    }
    return tf.tidy(() => {
      const call = setupCall(input, input.cache ?? null, c.vocab_size, this.rotary);
      const { B, T, P, mask, docs, rope } = call;
      const cache = input.cache ?? null;
      const wantAux = c.is_moe && c.output_router_logits;
      const bounded = boundedCacheFor(input, cache, this.boundedCacheObstacle(docs !== null));
      const newMask = bounded ? newKeyMask(mask, B, T, P) : null;
      const ctx: LayerContext = {
        cos: rope.cos, sinSigned: rope.sinSigned,
        // a bounded cache: the mask of the new keys only (its cached slots are all visible, see dmattn-cache.ts)
        maskBias: bounded ? buildMaskBias(B, T, 0, newMask, null) : buildMaskBias(B, T, P, mask, c.sliding_window, docs),
        training: !!input.training, seed: { next: input.dropoutSeed ?? 0 },
        outputAttentions: !!input.outputAttentions, outputRouting: !!input.outputAttentions || wantAux,
        ties: bounded ? 'recent' : input.topkTies ?? 'torch', bounded: bounded ? { start: P, newMask } : undefined,
      };

      let h = this.embed.apply(call.ids); // [B, T, H]
      const records: LayerRecord[] = [];
      // without gradients a layer's buffers ([heads, T, S] scores and masks) die with the layer
      const layerTidy = !isRecordingGradients();
      for (let i = 0; i < this.layers.length; i++) {
        const run = () => this.layers[i].forward(h, ctx, cache?.layers[i]);
        const r = layerTidy ? (tf.tidy(() => run() as unknown as tf.TensorContainer) as unknown as ReturnType<typeof run>) : run();
        h = r.h;
        records.push(r.record);
      }
      if (input.hiddenOnly) {
        const out: ForwardOutput = { logits: this.norm.apply(h) };
        if (rope.owned) { rope.cos.dispose(); rope.sinSigned.dispose(); }
        out.cache = { layers: records.map((r) => r.cache), length: P + T, mask: ctx.bounded ? null : mask };
        if (ctx.bounded) out.cache.bounded = true;
        return out as unknown as tf.TensorContainer;
      }
      const out: ForwardOutput = finishCall(this.norm.apply(h), this.lmHead, input, call);
      if (out.loss && wantAux) {
        const rowMask = mask && !cache ? mask : null; // [B, T] key mask = token mask without a cache
        out.auxLoss = cdmoeAuxLoss(records.map((r) => r.routing!.routerLogits!), c.num_experts, c.num_experts_per_tok, rowMask);
        out.loss = tf.add(out.loss, tf.mul(out.auxLoss, c.router_aux_loss_coef)) as tf.Scalar;
      }
      recordOutputs(out, records, !!input.outputAttentions, c.is_moe);
      if (input.useCache || cache) {
        out.cache = { layers: records.map((r) => r.cache), length: P + T, mask: bounded ? null : mask };
        if (bounded) out.cache.bounded = true;
      }
      if (rope.owned) { rope.cos.dispose(); rope.sinSigned.dispose(); }
      return out as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /** Query rows per chunk of an inference forward over a long input, or null for one pass (see ../causal-lm.ts). */
  private inferenceChunkOf(input: ForwardInput): number | null {
    if (input.training || input.hiddenOnly || input.outputAttentions || input.documentIds !== undefined || isRecordingGradients()) return null;
    const shape = input.inputIds instanceof tf.Tensor ? input.inputIds.shape : [input.inputIds.length, input.inputIds[0]?.length ?? 0];
    const c = this.config;
    const bounded = !!input.cache?.bounded || (!!input.useCache && input.cacheMode === 'bounded' && !this.boundedCacheObstacle());
    return inferenceChunk(shape[0]!, shape[1]!, input.cache?.length ?? 0, 3 * c.num_attention_heads + 5 * c.num_key_value_heads, bounded ? c.keep_window_size : Infinity);
  }

  /** Why a bounded decoding cache would not be exact for this model (null: it is). */
  boundedCacheObstacle(packed = false): string | null {
    if (this.config.sliding_window !== null) return `sliding_window ${this.config.sliding_window} (it expires keys that evicted others)`;
    if (packed) return 'documentIds (packed rows)';
    return this.layers[0]?.attn.boundedCacheObstacle() ?? null;
  }

  /** Greedy / sampled generation with the KV cache; returns prompt + new tokens per row. See src/generation. */
  generate(inputIds: number[][] | tf.Tensor, options: GenerateOptions = {}): number[][] {
    return generate<DogeCache>(this, inputIds, options);
  }

  /**
   * Write config.json + model.safetensors (HF names, F32) atomically; a model of an older SmallDoge layout
   * (config.legacy_layout) is written back in that layout, names and config keys (./legacy.ts).
   */
  savePretrained(dir: string): void {
    const layout = this.config.legacy_layout;
    if (layout === null) {
      writeCheckpointFolder(dir, this.config.toJSON(), this.parameters() as Map<string, tf.Tensor>);
      return;
    }
    writeCheckpointFolder(dir, legacyConfigJSON(this.config.toJSON(), layout), renameTensors(this.parameters() as Map<string, tf.Tensor>, (n) => toLegacyName(layout, n)));
  }

  /** Checkpoint tensors by name; those of an older layout arrive under its names (renamed here, not copied). */
  override loadState(tensors: Map<string, tf.Tensor>, opts?: LoadStateOptions): LoadStateResult {
    const layout = this.config.legacy_layout;
    return super.loadState(layout === null ? tensors : renameTensors(tensors, (n) => fromLegacyName(layout, n)), opts);
  }

  /**
   * Open an HF Doge folder (single or sharded safetensors; F32/F16/BF16). Errors name the file or tensor. The older
   * SmallDoge layouts load converted (./legacy.ts); `legacy: false` refuses them.
   */
  static fromPretrained(dir: string, options: { routerLayout?: RouterLayout } & LegacyOptions = {}): DogeForCausalLM {
    const config = DogeConfig.fromPretrained(dir, { legacy: options.legacy });
    const embed = embeddingName(config.legacy_layout);
    checkConfigAgainstCheckpoint(dir, config, embed); // before anything is allocated
    return loadPretrainedInto(dir, new DogeForCausalLM(config, { routerLayout: options.routerLayout, initWeights: false }), config.tie_word_embeddings ? embed : null);
  }
}

/** Per-layer extras the caller asked for (dynamic masks, attention maps, expert choices). */
function recordOutputs(out: ForwardOutput, records: LayerRecord[], attentions: boolean, moe: boolean): void {
  if (!attentions) return;
  out.dynamicMasks = records.map((r) => r.dynamicMask!);
  out.attentions = records.map((r) => r.probs!);
  if (moe) {
    out.expertIds = records.map((r) => r.routing!.expertIds!);
    out.expertWeights = records.map((r) => r.routing!.expertWeights!);
    out.routerLogits = records.map((r) => r.routing!.routerLogits!);
  }
}


/** Frees a decoding cache's tensors (the chunked inference forward drops each chunk's cache with it). */
export function disposeCache(cache: DogeCache | null | undefined): void {
  if (!cache) return;
  for (const l of cache.layers) { l.k.dispose(); l.v.dispose(); l.d.dispose(); }
}
