/**
 * DogeForCausalLM with Hugging Face semantics (spec sections 3-6), on TensorFlow.js.
 *
 *   const model = new DogeForCausalLM(DogeConfig.preset('doge-tiny'), { seed: 0 });
 *   const { logits, loss } = model.forward({ inputIds, labels });     // int32 [B, T] tensors
 *   const grads = tf.variableGrads(() => model.forward({ inputIds, labels, training: true }).loss!, [...model.parameters().values()]);
 *   model.generate([[1, 2, 3]], { maxNewTokens: 20 });
 *
 * Layer (spec 4.5):  h = input_residual * h + Attn(RMSNorm(h));  h = post_attention_residual * h + MLP|CDMoE(RMSNorm(h))
 * Parameters are tf.Variables whose tfjs names are `wm<k>/<HF name>` (unique per process); `parameters()` maps the
 * HF names to them. Tied embeddings: only `model.embed_tokens.weight` exists and also serves as lm_head.
 */
import { tf } from '../../backend';
import { chunkedLmHeadLoss, clearWeightCache, crossEntropyLoss, linearT, Rng, weightT } from '../../ops';
import { ParamStore, type Store } from '../../modules/params';
import { RMSNorm } from '../../modules/rmsnorm';
import { RotaryEmbedding } from '../../modules/rope';
import { MLP } from '../../modules/mlp';
import { DynamicMaskAttention, buildMaskBias, type LayerCache } from '../../modules/dmattn';
import { CDMoE, cdmoeAuxLoss, type RouterLayout } from '../../modules/cdmoe';
import { Embedding } from '../../modules/embedding';
import { DogeConfig } from './config';
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
  /** Row-major [B, P] key mask (1 = real token) or null when nothing is padded. */
  mask: Int32Array | null;
}

export interface ForwardInput {
  inputIds: tf.Tensor | number[][]; // int32 [B, T]
  /** [B, T] (or [B, P + T] with a cache): 1 = real token, 0 = padding. */
  attentionMask?: tf.Tensor | number[][];
  labels?: tf.Tensor | number[][]; // int32 [B, T], -100 = ignored
  /** [B, T] position ids (default P + t); used for RoPE (packed rows restart them per document). */
  positionIds?: tf.Tensor | number[][];
  /**
   * [B, T] (or [B, P + T] with a cache) document id of every token of a packed row: a query attends only to keys at or
   * before it with the same document id (block-diagonal causal mask; keep_window_size's top-k then picks among those
   * keys), and a position whose next token starts another document is not a loss target. With `positionIds`
   * restarting per document this equals running the documents one by one.
   */
  documentIds?: tf.Tensor | number[][];
  training?: boolean;
  numItemsInBatch?: number;
  dropoutSeed?: number;
  /** Return per-layer dynamic masks, attention probabilities and selected experts. */
  outputAttentions?: boolean;
  /** Use and extend this cache (incremental decoding); the returned `cache` holds the new tensors. */
  cache?: DogeCache | null;
  /** Return a cache (for generation). */
  useCache?: boolean;
  /** Only compute logits for the last N positions. */
  logitsToKeep?: number;
  /**
   * Training: compute only the loss (requires labels). `logits` is then an empty [0] tensor. For large vocabularies
   * (batch * seq * vocab > 16M) the lm_head and the loss run in row chunks, so the full logits never exist.
   */
  lossOnly?: boolean;
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

class DecoderLayer {
  readonly inputNorm: RMSNorm;
  readonly attn: DynamicMaskAttention;
  readonly inputResidual: tf.Variable;
  readonly postNorm: RMSNorm;
  readonly mlp: MLP | CDMoE;
  readonly postResidual: tf.Variable;

  constructor(store: Store, c: DogeConfig, routerLayout: RouterLayout) {
    this.inputNorm = new RMSNorm(store, 'input_layernorm.weight', c.hidden_size, c.rms_norm_eps);
    this.attn = new DynamicMaskAttention({
      hiddenSize: c.hidden_size, numHeads: c.num_attention_heads, numKvHeads: c.num_key_value_heads,
      keepWindowSize: c.keep_window_size, attentionBias: c.attention_bias, rmsNormEps: c.rms_norm_eps,
      attentionDropout: c.attention_dropout,
    }, store.child('self_attn.'));
    this.inputResidual = store.add('input_residual', [c.hidden_size], 'ones');
    this.postNorm = new RMSNorm(store, 'post_attention_layernorm.weight', c.hidden_size, c.rms_norm_eps);
    const mlpStore = store.child('mlp.');
    this.mlp = c.is_moe
      ? new CDMoE(mlpStore, {
        hiddenSize: c.hidden_size, intermediateSize: c.intermediate_size, numExperts: c.num_experts,
        numExpertsPerTok: c.num_experts_per_tok, normTopkProb: c.norm_topk_prob, mlpBias: c.mlp_bias, routerLayout,
      })
      : new MLP(mlpStore, { hiddenSize: c.hidden_size, intermediateSize: c.intermediate_size, bias: c.mlp_bias });
    this.postResidual = store.add('post_attention_residual', [c.hidden_size], 'ones');
  }
}

function toIntTensor(x: tf.Tensor | number[][], what: string): tf.Tensor {
  if (x instanceof tf.Tensor) {
    if (x.rank !== 2) throw new Error(`${what} must be a [batch, seq] tensor, got shape [${x.shape}]`);
    return x.dtype === 'int32' ? x : tf.cast(x, 'int32');
  }
  if (!Array.isArray(x) || x.length === 0 || !x.every((r) => Array.isArray(r) && r.length === x[0].length)) {
    throw new Error(`${what} must be a non-empty rectangular number[][] (or an int32 tensor)`);
  }
  return tf.tensor2d(x, [x.length, x[0].length], 'int32');
}

/** documentIds as a row-major [B, P + T] host array ([B, T] is accepted without a cache). */
function documentIdsHost(x: tf.Tensor | number[][], B: number, T: number, P: number): Int32Array {
  const t = toIntTensor(x, 'documentIds');
  const S = P + T;
  if (t.shape[0] !== B || t.shape[1] !== S) {
    throw new Error(`documentIds has shape [${t.shape}], expected [${B}, ${S}]`);
  }
  const host = Int32Array.from(t.dataSync() as Int32Array);
  if (t !== x) t.dispose();
  return host;
}

export class DogeForCausalLM {
  readonly config: DogeConfig;
  routerLayout: RouterLayout;
  readonly embed: Embedding;
  readonly layers: DecoderLayer[] = [];
  readonly norm: RMSNorm;
  readonly lmHead: tf.Variable; // [V, H] (the embedding itself when tied)
  readonly rotary: RotaryEmbedding;
  private readonly store: ParamStore;

  constructor(config: DogeConfig, options: DogeModelOptions = {}) {
    if (!(config instanceof DogeConfig)) config = new DogeConfig(config as never);
    this.config = config;
    const c = config;
    this.routerLayout = options.routerLayout ?? 'token';
    if (this.routerLayout !== 'token' && this.routerLayout !== 'hf') throw new Error(`routerLayout must be 'token' or 'hf', got '${this.routerLayout}'`);
    const init = options.initWeights ?? true;
    // with init disabled every 'normal' weight starts at 0 (std 0) and is overwritten by the loader
    this.store = new ParamStore(new Rng(options.seed ?? 0), init ? c.initializer_range : 0);
    const root = this.store;
    this.embed = new Embedding(root, 'model.embed_tokens.weight', c.vocab_size, c.hidden_size, c.pad_token_id);
    if (init && c.pad_token_id !== null) {
      // HF zeroes the padding row of embed_tokens at init
      const row = tf.tidy(() => {
        const mask = tf.reshape(tf.oneHot(tf.tensor1d([c.pad_token_id!], 'int32'), c.vocab_size), [c.vocab_size, 1]);
        return tf.mul(this.embed.weight, tf.sub(1, mask));
      });
      this.embed.weight.assign(row);
      row.dispose();
    }
    for (let i = 0; i < c.num_hidden_layers; i++) this.layers.push(new DecoderLayer(root.child(`model.layers.${i}.`), c, this.routerLayout));
    this.norm = new RMSNorm(root, 'model.norm.weight', c.hidden_size, c.rms_norm_eps);
    this.lmHead = c.tie_word_embeddings ? this.embed.weight : root.add('lm_head.weight', [c.vocab_size, c.hidden_size], 'normal');
    const rp = c.rope_parameters;
    this.rotary = new RotaryEmbedding({
      headDim: c.headDim, theta: rp.rope_theta, ropeType: rp.rope_type, factor: rp.factor, maxPositionEmbeddings: c.max_position_embeddings,
    });
    for (const l of this.layers) if (l.mlp instanceof CDMoE) l.mlp.routerLayout = this.routerLayout;
  }

  /** Every parameter under its HF name (tied: no lm_head.weight). */
  parameters(): Map<string, tf.Variable> {
    return new Map(this.store.map);
  }

  numParameters(): number {
    let n = 0;
    for (const v of this.store.map.values()) n += v.size;
    return n;
  }

  /**
   * Gradients of `lossFn` w.r.t. every parameter, keyed by HF name (tf.variableGrads keys by tfjs names).
   * The caller disposes the returned value and grads.
   */
  variableGrads(lossFn: () => tf.Scalar): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
    const params = this.parameters();
    const { value, grads } = tf.variableGrads(lossFn, [...params.values()]);
    const out = new Map<string, tf.Tensor>();
    for (const [name, v] of params) if (grads[v.name]) out.set(name, grads[v.name]);
    return { value, grads: out };
  }

  /** Causal-LM forward pass (HF DogeForCausalLM.forward). */
  forward(input: ForwardInput): ForwardOutput {
    const c = this.config;
    return tf.tidy(() => {
      const ids = toIntTensor(input.inputIds, 'inputIds');
      const [B, T] = ids.shape as [number, number];
      const idHost = ids.dataSync();
      for (let i = 0; i < idHost.length; i++) {
        if (idHost[i] < 0 || idHost[i] >= c.vocab_size || !Number.isInteger(idHost[i])) {
          throw new Error(`inputIds: token id ${idHost[i]} is outside the vocabulary [0, ${c.vocab_size})`);
        }
      }
      const cache = input.cache ?? null;
      const P = cache ? cache.length : 0;
      const S = P + T;

      // key mask [B, S] on the host (attention masks are small)
      let mask: Int32Array | null = null;
      if (input.attentionMask !== undefined) {
        const m = toIntTensor(input.attentionMask, 'attentionMask');
        const mh = m.dataSync() as Int32Array;
        if (m.shape[0] !== B || (m.shape[1] !== S && m.shape[1] !== T)) {
          throw new Error(`attentionMask has shape [${m.shape}], expected [${B}, ${S}]${P ? ` or [${B}, ${T}]` : ''}`);
        }
        if (m.shape[1] === S) mask = Int32Array.from(mh);
        else {
          // mask of the new tokens only: prepend the cached part
          mask = new Int32Array(B * S);
          for (let b = 0; b < B; b++) for (let j = 0; j < S; j++) {
            mask[b * S + j] = j < P ? (cache?.mask ? cache.mask[b * P + j] : 1) : mh[b * T + j - P];
          }
        }
      } else if (cache?.mask) {
        mask = new Int32Array(B * S);
        for (let b = 0; b < B; b++) for (let j = 0; j < S; j++) mask[b * S + j] = j < P ? cache.mask[b * P + j] : 1;
      }

      const rope = input.positionIds !== undefined
        ? this.rotary.tables(toIntTensor(input.positionIds, 'positionIds').dataSync(), B, T)
        : this.rotary.tables(P, B, T);
      const docs = input.documentIds !== undefined ? documentIdsHost(input.documentIds, B, T, P) : null;
      const maskBias = buildMaskBias(B, T, P, mask, c.sliding_window, docs);

      const training = !!input.training;
      let seed = input.dropoutSeed ?? 0;
      const drop = (x: tf.Tensor): tf.Tensor => (training && c.hidden_dropout > 0 ? tf.dropout(x, c.hidden_dropout, undefined, seed++) : x);

      const out: ForwardOutput = { logits: null as unknown as tf.Tensor };
      const want = !!input.outputAttentions;
      const wantAux = c.is_moe && c.output_router_logits;
      const auxLogits: tf.Tensor[] = [];
      if (want) { out.dynamicMasks = []; out.attentions = []; }
      if (want && c.is_moe) { out.expertIds = []; out.expertWeights = []; out.routerLogits = []; }
      const newLayers: LayerCache[] = [];

      let h = this.embed.apply(ids); // [B, T, H]
      for (let i = 0; i < this.layers.length; i++) {
        const layer = this.layers[i];
        const a = layer.attn.forward(layer.inputNorm.apply(h), {
          cos: rope.cos, sinSigned: rope.sinSigned, maskBias, cache: cache?.layers[i], training,
          dropoutSeed: seed++, outputAttentions: want,
        });
        newLayers.push(a.cache);
        if (want) { out.dynamicMasks!.push(a.dynamicMask!); out.attentions!.push(a.probs!); }
        h = tf.add(tf.mul(layer.inputResidual, h), drop(a.out));
        const x = layer.postNorm.apply(h);
        let m: tf.Tensor;
        if (layer.mlp instanceof CDMoE) {
          const r = layer.mlp.apply(x, { outputRouting: want || wantAux });
          m = r.out;
          if (wantAux) auxLogits.push(r.routerLogits!);
          if (want) { out.expertIds!.push(r.expertIds!); out.expertWeights!.push(r.expertWeights!); out.routerLogits!.push(r.routerLogits!); }
        } else {
          m = layer.mlp.apply(x);
        }
        h = tf.add(tf.mul(layer.postResidual, h), drop(m));
      }
      h = this.norm.apply(h);
      const keep = input.logitsToKeep && input.logitsToKeep < T ? input.logitsToKeep : T;
      if (keep < T) h = tf.slice(h, [0, T - keep, 0], [B, keep, c.hidden_size]);
      const fused = !!input.lossOnly && B * T * c.vocab_size > 16 * 1024 * 1024;
      if (input.lossOnly && input.labels === undefined) throw new Error('lossOnly needs labels');
      out.logits = fused ? tf.zeros([0]) : linearT(h, weightT([this.lmHead])); // [B, keep, V]

      if (input.labels !== undefined) {
        if (keep !== T) throw new Error('labels cannot be combined with logitsToKeep');
        const lab = toIntTensor(input.labels, 'labels');
        if (lab.shape[0] !== B || lab.shape[1] !== T) throw new Error(`labels has shape [${lab.shape}], expected [${B}, ${T}]`);
        const lh = lab.dataSync();
        // HF causal loss: target[t] = labels[t + 1], last position ignored
        const targets = new Int32Array(B * T).fill(-100);
        let count = 0;
        for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) {
          // packed rows: the first token of a document is not predicted from the previous document
          if (docs && docs[b * (P + T) + P + t + 1] !== docs[b * (P + T) + P + t]) continue;
          const v = lh[b * T + t + 1];
          targets[b * T + t] = v;
          if (v !== -100) count++;
        }
        const divisor = input.numItemsInBatch ?? count;
        out.loss = fused
          ? chunkedLmHeadLoss(tf.reshape(h, [B * T, c.hidden_size]) as tf.Tensor2D, this.lmHead as tf.Tensor2D, targets, divisor)
          : crossEntropyLoss(tf.reshape(out.logits, [B * T, c.vocab_size]) as tf.Tensor2D, targets, divisor);
        if (input.lossOnly && !fused) { out.logits = tf.zeros([0]); }
        if (wantAux) {
          const rowMask = mask && !cache ? mask : null; // [B, T] key mask = token mask without a cache
          out.auxLoss = cdmoeAuxLoss(auxLogits, c.num_experts, c.num_experts_per_tok, rowMask);
          out.loss = tf.add(out.loss, tf.mul(out.auxLoss, c.router_aux_loss_coef)) as tf.Scalar;
        }
      }
      if (input.useCache || cache) {
        let newMask: Int32Array | null = mask;
        if (!newMask && cache?.mask) newMask = null;
        out.cache = { layers: newLayers, length: S, mask: newMask };
      }
      if (rope.owned) { rope.cos.dispose(); rope.sinSigned.dispose(); }
      return out as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /** Greedy / sampled generation with the KV cache; returns prompt + new tokens per row. See src/generation. */
  generate(inputIds: number[][] | tf.Tensor, options: GenerateOptions = {}): number[][] {
    return generate(this, inputIds, options);
  }

  /** Write config.json + model.safetensors (HF names, F32) atomically. */
  savePretrained(dir: string): void {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { saveDogeCheckpoint } = require('./checkpoint') as typeof import('./checkpoint');
    saveDogeCheckpoint(this, dir);
  }

  static fromPretrained(dir: string, options: { routerLayout?: RouterLayout } = {}): DogeForCausalLM {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { loadDogeCheckpoint } = require('./checkpoint') as typeof import('./checkpoint');
    return loadDogeCheckpoint(dir, options);
  }

  dispose(): void {
    clearWeightCache(this.store.map.values());
    for (const v of this.store.map.values()) v.dispose();
    this.rotary.dispose();
  }
}

/** Dispose every tensor of a cache. */
export function disposeCache(cache: DogeCache | null | undefined): void {
  if (!cache) return;
  for (const l of cache.layers) { l.k.dispose(); l.v.dispose(); l.d.dispose(); }
}
