/**
 * The host decoder of DogeForCausalLM: a one-token decoder beside the model (a speed trick, not the paper's math:
 * src/models/doge/model.ts stays the reference). `generate` prefills the prompt with `model.forward` as always, then
 * asks the runtime for a host decoder (host-decoders.ts; `loadBackend()` registers this one for model_type 'doge'
 * when the native BLAS loads), which runs every further token as plain loops over Float32Arrays plus native BLAS
 * matrix-vector products:
 *
 *   - the weights are read in place: Float32Array views of the model's tf.Variables in the wasm heap (no copy);
 *   - K, V and the dynamic mask d of every layer live in preallocated arrays [nkv, maxLength, hd] (no per-step concat);
 *   - every product (q/k/v, dt_proj, q.K^T, p.V, o_proj, the MLP, lm_head) is one cblas_sgemv of native/wm_blas.c.
 *
 * Why: on wasm a tfjs op costs ~5-10 us of JS and engine bookkeeping whatever its size, and one doge-20m token took
 * ~645 kernels (~6.6 ms of CPU, of which the products were ~2.8 ms). Here a token is the products plus ~0.1-0.3 ms.
 *
 * Same math as DogeDecoderLayer.forward with T = 1, batch 1, no padding (per layer, h [H]):
 *   x = RMSNorm(h);  q, k, v = Wq x, Wk x, Wv x;  q, k = RMSNorm_hd (q_norm * hd^-0.5, k_norm);  RoPE(position P)
 *   d_new = exp(A * softplus(dt_proj(v)));  M[c, j] = d[c, j] (sliding window: float32 min outside; keep_window top-k)
 *   o_h = softmax(q_h K_c^T + M)  V_c  (query head h = c * g + i);  h = input_residual * h + Wo o
 *   h = post_attention_residual * h + MLP|CDMoE(RMSNorm(h));   logits = lm_head RMSNorm(h)
 * Element-wise steps round to float32 where the tfjs kernels do (Math.fround), reductions sum in float64, so logits
 * agree with the tfjs path to ~1e-6 relative (tests/doge-fast-decode.test.ts).
 *
 * Bounded cache (a prefill cache with `bounded`, src/modules/dmattn-cache.ts): each layer keeps keep_window_size + 1
 * slots per kv head whatever the context; a step appends the new key, the top-k drops the slot with the smallest d
 * (among equal d the oldest key: the 'recent' rule of the tfjs bounded decoder), and that slot is overwritten by the
 * new key afterwards. Memory and time per token are then constant (`generate` decodes 20,000 tokens flat).
 *
 * No silent bypass: the tables below list every DynamicMaskAttention, CDMoE and MLP option and every DogeConfig field
 * with what this decoder does about it (mirrors it, or it cannot change a decoding step), and refuse the values it does
 * not mirror; the tables are typed by the option and field interfaces, so a new option does not compile until it is
 * listed here, and tests/doge-fast-decode-options.test.ts checks parity or refusal for every entry. A refusal (or another
 * backend, batch > 1, padding, dynamic RoPE past its range) means `model.forward` runs the steps instead;
 * `generate`'s `fastDecode: false` or WM_FAST_DECODE=0 turns the decoder off.
 *
 * Imports of models and modules are types only: the runtime reads them structurally and never runs their code.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { tf } from '../tf';
import { F32_MIN } from '../ops';
import { recentTopkIndices, torchTopkIndices } from '../ops/torch-topk';
import { wasmNativeBlas } from './wasm-patches';
import type { NativeBlas } from './native-blas';
import type { HostDecoderChoice, HostDecodingCache, TokenStepper } from './host-decoders';
import type { CDMoE, CDMoEOptions } from '../modules/cdmoe';
import type { MLP, MLPOptions } from '../modules/mlp';
import type { DynamicMaskAttention, DynamicMaskAttentionOptions, LayerCache } from '../modules/dmattn';
import type { DogeConfigFields } from '../models/doge/config';

const fr = Math.fround;

/** What the decoder reads of a decoder layer (DogeDecoderLayer; structural, so model.ts is not imported). */
export interface HostDecodableLayer {
  readonly inputNorm: { weight: tf.Variable };
  readonly attn: DynamicMaskAttention;
  readonly inputResidual: tf.Variable;
  readonly postNorm: { weight: tf.Variable };
  readonly mlp: MLP | CDMoE;
  readonly postResidual: tf.Variable;
}

/** What the decoder needs of the model (DogeForCausalLM has it). */
export interface HostDecodable {
  readonly config: DogeConfigFields & { readonly model_type: string; readonly extra: Record<string, unknown> };
  readonly layers: HostDecodableLayer[];
  readonly embed: { weight: tf.Variable };
  readonly norm: { weight: tf.Variable; eps: number };
  readonly lmHead: tf.Variable;
  readonly rotary: { readonly ropeType: string; readonly maxPositionEmbeddings: number; readonly inverseFrequencies: Float32Array };
}

/**
 * What the decoder does about one option or field:
 *  - 'mirrored': the decoder computes with it as the module does (reading the module's field, live);
 *  - 'init': it only sets initial values, which the decoder reads back as weights;
 *  - 'training': it acts only in training (dropout, auxiliary losses), never in `generate`;
 *  - 'generate': `generate` itself uses it (stopping, the cache switch), not the forward pass;
 *  - 'standalone': only a standalone module's `apply` uses it; inside a model the model supplies it.
 * `refuse` names what the decoder does not mirror (then `model.forward` runs the steps).
 */
export interface Mirror<T> {
  readonly use: 'mirrored' | 'init' | 'training' | 'generate' | 'standalone';
  readonly refuse?: (x: T, c: DogeConfigFields) => string | null;
}

const mirrored = { use: 'mirrored' } as const;
const init = { use: 'init' } as const;
const training = { use: 'training' } as const;

/** Every DynamicMaskAttention option. */
export const DMATTN_OPTIONS: { readonly [K in keyof DynamicMaskAttentionOptions]-?: Mirror<DynamicMaskAttention> } = {
  hiddenSize: { use: 'mirrored', refuse: (a, c) => (a.hiddenSize === c.hidden_size ? null : `attention hidden size ${a.hiddenSize} differs from hidden_size ${c.hidden_size}`) },
  numHeads: { use: 'mirrored', refuse: (a, c) => (a.numHeads === c.num_attention_heads ? null : `attention with ${a.numHeads} heads, config num_attention_heads ${c.num_attention_heads}`) },
  numKvHeads: { use: 'mirrored', refuse: (a, c) => (a.numKvHeads === c.num_key_value_heads ? null : `attention with ${a.numKvHeads} kv heads, config num_key_value_heads ${c.num_key_value_heads}`) },
  headDim: { use: 'mirrored', refuse: (a, c) => (a.headDim === c.hidden_size / c.num_attention_heads ? null : `attention head_dim ${a.headDim} differs from the model's RoPE head size`) },
  keepWindowSize: mirrored,
  attentionBias: mirrored,
  rmsNormEps: mirrored,
  attentionDropout: training,
  qkNorm: { use: 'mirrored', refuse: (a) => (a.qkNorm ? null : 'attention without q/k norm') },
  useRope: { use: 'standalone' },
  ropeTheta: { use: 'standalone' },
  maxPositionEmbeddings: { use: 'standalone' },
  dynamicMaskHeads: mirrored,
  // 'linear' skips the exp; with one query every key is at or before it, so 'key' selects what 'row' does
  dynamicMaskBias: mirrored,
  dynamicMaskSelect: mirrored,
  dynamicMaskType: { use: 'mirrored', refuse: (a) => (a.dynamicMaskType === 'topk' ? null : `dynamic_mask_type '${a.dynamicMaskType}'`) },
  aInit: init,
  seed: init,
  initializerRange: init,
};

/** Every CDMoE option. */
export const CDMOE_OPTIONS: { readonly [K in keyof CDMoEOptions]-?: Mirror<CDMoE> } = {
  hiddenSize: mirrored,
  intermediateSize: mirrored,
  numExperts: mirrored,
  numExpertsPerTok: mirrored,
  normTopkProb: mirrored,
  mlpBias: mirrored,
  // with one token both layouts read X = R[:K], Y = R[K:]
  routerLayout: mirrored,
  router: { use: 'mirrored', refuse: (m) => (m.router === 'gate' ? null : 'CDMoE with product-key router') },
  // product-keys only (refused above); the 'gate' router has one head and no retrieval size
  numHeads: { use: 'mirrored', refuse: (m) => (m.router === 'gate' ? null : 'CDMoE with product-key heads') },
  retrievalSize: { use: 'mirrored', refuse: (m) => (m.router === 'gate' ? null : 'CDMoE with product-key retrieval') },
  seed: init,
  initializerRange: init,
};

/** Every MLP option. */
export const MLP_OPTIONS: { readonly [K in keyof MLPOptions]-?: Mirror<MLP> } = {
  hiddenSize: mirrored,
  intermediateSize: mirrored,
  bias: mirrored,
};

/** Every DogeConfig field (config.extra, HF's generic keys, is kept for writing back and read by no forward pass). */
export const DOGE_CONFIG_FIELDS: { readonly [K in keyof DogeConfigFields]-?: Mirror<DogeConfigFields> } = {
  vocab_size: mirrored,
  hidden_size: mirrored,
  intermediate_size: mirrored,
  num_hidden_layers: mirrored,
  hidden_dropout: training,
  hidden_act: { use: 'mirrored', refuse: (_, c) => (c.hidden_act === 'silu' || c.hidden_act === 'swish' ? null : `hidden_act ${c.hidden_act}`) },
  initializer_range: init,
  rms_norm_eps: mirrored,
  use_cache: { use: 'generate' },
  tie_word_embeddings: mirrored,
  // through model.rotary (its frequencies; dynamic RoPE is refused past max_position_embeddings)
  max_position_embeddings: mirrored,
  rope_parameters: { use: 'mirrored', refuse: (_, c) => (c.rope_parameters.rope_type === 'default' || c.rope_parameters.rope_type === 'dynamic' ? null : `rope_type ${c.rope_parameters.rope_type}`) },
  num_attention_heads: mirrored,
  num_key_value_heads: mirrored,
  attention_bias: mirrored,
  attention_dropout: training,
  mlp_bias: mirrored,
  sliding_window: mirrored,
  keep_window_size: mirrored,
  dynamic_mask_bias: mirrored,
  dynamic_mask_select: mirrored,
  dynamic_mask_type: { use: 'mirrored', refuse: (_, c) => (c.dynamic_mask_type === 'topk' ? null : `dynamic_mask_type '${c.dynamic_mask_type}'`) },
  is_moe: mirrored,
  num_experts: mirrored,
  num_experts_per_tok: mirrored,
  norm_topk_prob: mirrored,
  output_router_logits: training,
  router_aux_loss_coef: training,
  // the embedding's padding row: zeroed at init and kept out of its gradient; a plain row lookup when decoding
  pad_token_id: init,
  bos_token_id: { use: 'generate' },
  eos_token_id: { use: 'generate' },
  // the older SmallDoge layouts have no q/k norm (and 2503 no top-k), which this decoder does not mirror
  legacy_layout: { use: 'mirrored', refuse: (_, c) => (c.legacy_layout === null ? null : `legacy layout '${c.legacy_layout}'`) },
};

/** Config properties that are not fields of DogeConfigFields: model_type (this decoder's key) and extra (HF's generic keys). */
const CONFIG_OTHER = new Set(['model_type', 'extra']);

interface WasmHeapBackend { typedArrayFromHeap(t: tf.TensorInfo): Float32Array }

/** Views of one MLP's weights. */
interface MlpViews { gate: Float32Array; up: Float32Array; down: Float32Array; gateB: Float32Array | null; upB: Float32Array | null; downB: Float32Array | null }

interface LayerViews {
  inNorm: Float32Array; postNorm: Float32Array; inRes: Float32Array; postRes: Float32Array;
  q: Float32Array; k: Float32Array; v: Float32Array; qB: Float32Array | null; kB: Float32Array | null; vB: Float32Array | null;
  A: Float32Array; dt: Float32Array; dtB: Float32Array | null; o: Float32Array; oB: Float32Array | null;
  qNorm: Float32Array; kNorm: Float32Array;
  mlp: MlpViews;
  router: Float32Array | null; downEmbed: Float32Array | null; upEmbed: Float32Array | null;
}

/** A layer's CDMoE, or null for a plain MLP (structural: the runtime does not import the module classes). */
function cdmoeOf(mlp: MLP | CDMoE): CDMoE | null {
  return 'shared' in mlp ? mlp : null;
}

/** The first refusal of a table's rules for `x`, or null. */
function refusal<T>(table: Record<string, Mirror<T>>, x: T, c: DogeConfigFields): string | null {
  for (const rule of Object.values(table)) {
    const why = rule.refuse?.(x, c);
    if (why) return why;
  }
  return null;
}

/** Why the host decoder does not mirror this model (its config and every layer's modules), or null when it does. */
export function dogeModelRefusal(model: HostDecodable): string | null {
  const c = model.config;
  for (const k of Object.keys(c)) if (!(k in DOGE_CONFIG_FIELDS) && !CONFIG_OTHER.has(k)) return `config field '${k}' is not mirrored by the host decoder`;
  const why = refusal(DOGE_CONFIG_FIELDS, c, c);
  if (why) return why;
  if (model.layers.length !== c.num_hidden_layers) return `${model.layers.length} layers, config num_hidden_layers ${c.num_hidden_layers}`;
  for (const layer of model.layers) {
    const moe = cdmoeOf(layer.mlp);
    const r = refusal(DMATTN_OPTIONS, layer.attn, c)
      ?? (moe ? refusal(CDMOE_OPTIONS, moe, c) ?? refusal(MLP_OPTIONS, moe.shared, c) : refusal(MLP_OPTIONS, layer.mlp as MLP, c));
    if (r) return r;
    if (!!moe !== c.is_moe) return `layer ${moe ? 'CDMoE' : 'MLP'} with is_moe ${c.is_moe}`;
  }
  return null;
}

/** Why the host decoder does not apply to this model / cache / length, or null when it does. */
export function dogeHostDecoderUnsupported(model: HostDecodable, cache: HostDecodingCache, maxLength: number): string | null {
  if (tf.getBackend() !== 'wasm') return `backend is ${tf.getBackend()}, not wasm`;
  if (!wasmNativeBlas()) return 'no native BLAS on the wasm backend';
  if (cache.mask) return 'padded batch';
  const l0 = cache.layers[0] as LayerCache | undefined;
  if (!l0 || l0.k.shape[0] !== 1) return 'batch is not 1';
  const r = model.rotary;
  if (r.ropeType !== 'default' && maxLength > r.maxPositionEmbeddings) return 'dynamic RoPE beyond max_position_embeddings';
  return dogeModelRefusal(model);
}

/** The host decoder for `model` continuing from `cache` (not disposed here), or null with the reason. */
export function createDogeHostDecoder(model: HostDecodable, cache: HostDecodingCache, maxLength: number): HostDecoderChoice {
  const reason = dogeHostDecoderUnsupported(model, cache, maxLength);
  if (reason) return { stepper: null, reason };
  return { stepper: new DogeHostDecoder(model, cache.layers as LayerCache[], cache.length, maxLength, wasmNativeBlas()!), reason: null };
}

class DogeHostDecoder implements TokenStepper {
  private readonly H: number;
  private readonly nh: number;
  private readonly nkv: number;
  private readonly nm: number;
  private readonly hd: number;
  private readonly V: number;
  /** Slots per kv head: maxLength, or keep_window_size + 1 with a bounded cache. */
  private readonly Smax: number;
  private P: number;
  /**
   * Bounded cache: slots in use per layer (the same for every kv head) and the sequence index of each slot [nkv, Smax];
   * `evict`: one mask per kv head, so the slot the top-k drops is overwritten. With per-query-head masks the kv head
   * holds the union of its heads' keys: the slots are kept and the top-k runs with the same 'recent' rule (exact, but
   * the slots grow by one per token).
   */
  private readonly bounded: { count: number[]; keys: Int32Array[]; evict: boolean } | null;
  private readonly kCache: Float32Array[]; // per layer [nkv, Smax, hd]
  private readonly vCache: Float32Array[]; // per layer [nkv, Smax, hd]
  private readonly dCache: Float32Array[]; // per layer [nm, Smax]
  private views: { layers: LayerViews[]; embed: Float32Array; norm: Float32Array; lmHead: Float32Array } | null = null;
  /** The tensors behind `views` and their data ids then (a variable.assign gives it a new id: views taken again). */
  private viewed: Array<{ t: tf.Tensor; id: object }> = [];
  private qScaled: Float32Array[] = []; // per layer q_norm * hd^-0.5 (float32, as the tfjs path folds it)
  private readonly invFreq: Float32Array;
  // scratch
  private readonly h: Float32Array;
  private readonly x: Float32Array;
  private readonly qkv: Float32Array;
  private readonly dt: Float32Array;
  private readonly oFlat: Float32Array;
  private readonly attnOut: Float32Array;
  private readonly mask: Float32Array;
  private readonly scores: Float32Array;
  private readonly gu: Float32Array[];
  private readonly act: Float32Array;
  private readonly mlpOut: Float32Array;
  private readonly moe: { R: Float32Array; shared: Float32Array } | null;

  constructor(private readonly model: HostDecodable, cache: LayerCache[], P: number, maxLength: number, private readonly blas: NativeBlas) {
    const c = model.config;
    const a0 = model.layers[0].attn;
    this.H = c.hidden_size; this.nh = a0.numHeads; this.nkv = a0.numKvHeads; this.nm = a0.maskHeads; this.hd = a0.headDim;
    this.V = c.vocab_size; this.P = P;
    const bounded = !!cache[0].keys;
    const evict = bounded && a0.maskHeads === a0.numKvHeads;
    const slots0 = Math.max(...cache.map((l) => l.k.shape[2]!));
    this.Smax = evict ? a0.keepWindowSize + 1 : bounded ? slots0 + Math.max(0, maxLength - P) + 1 : Math.max(maxLength, P + 1);
    this.bounded = bounded ? { count: [], keys: [], evict } : null;
    const { nkv, nm, hd, Smax, H, nh } = this;
    this.kCache = []; this.vCache = []; this.dCache = [];
    for (let i = 0; i < model.layers.length; i++) {
      const kc = new Float32Array(nkv * Smax * hd), vc = new Float32Array(nkv * Smax * hd), dc = new Float32Array(nm * Smax);
      const kh = cache[i].k.dataSync() as Float32Array, vh = cache[i].v.dataSync() as Float32Array, dh = cache[i].d.dataSync() as Float32Array;
      const S0 = cache[i].k.shape[2]!; // P, or the bounded cache's slots
      // [1, nkv, S0, hd] -> rows 0..S0-1 of each head's [Smax, hd] block
      for (let h = 0; h < nkv; h++) {
        kc.set(kh.subarray(h * S0 * hd, (h + 1) * S0 * hd), h * Smax * hd);
        vc.set(vh.subarray(h * S0 * hd, (h + 1) * S0 * hd), h * Smax * hd);
      }
      for (let h = 0; h < nm; h++) dc.set(dh.subarray(h * S0, (h + 1) * S0), h * Smax);
      this.kCache.push(kc); this.vCache.push(vc); this.dCache.push(dc);
      if (this.bounded) {
        const keys = new Int32Array(nkv * Smax);
        for (let h = 0; h < nkv; h++) keys.set(cache[i].keys!.subarray(h * S0, (h + 1) * S0), h * Smax);
        this.bounded.count.push(S0);
        this.bounded.keys.push(keys);
      }
    }
    this.invFreq = Float32Array.from(model.rotary.inverseFrequencies);
    const I = c.intermediate_size;
    this.h = new Float32Array(H); this.x = new Float32Array(H);
    this.qkv = new Float32Array((nh + 2 * nkv) * hd); this.dt = new Float32Array(nm);
    this.oFlat = new Float32Array(nh * hd); this.attnOut = new Float32Array(H);
    this.mask = new Float32Array(nm * Smax); this.scores = new Float32Array(Smax);
    this.gu = [new Float32Array(I), new Float32Array(I)]; this.act = new Float32Array(I); this.mlpOut = new Float32Array(H);
    const moe = model.layers.map((l) => cdmoeOf(l.mlp)).find((m) => m !== null);
    this.moe = moe ? { R: new Float32Array(2 * moe.K), shared: new Float32Array(H) } : null;
  }

  /** OpenBLAS threads for the lm_head product (decodeHeadThreads, fixed per decoder). */
  private readonly headThreads = decodeHeadThreads();

  get length(): number { return this.P; }

  dispose(): void {
    this.views = null;
  }

  /**
   * Heap views of every weight; taken again when the wasm heap grew (its old buffer is then detached, length 0) or
   * a weight was assigned since (e.g. by an onToken callback): its data then lives elsewhere.
   */
  private weights(): NonNullable<DogeHostDecoder['views']> {
    if (this.views && this.views.embed.length !== 0 && this.viewed.every((v) => v.t.dataId === v.id && !v.t.isDisposed)) return this.views;
    const be = tf.backend() as unknown as WasmHeapBackend;
    this.viewed = [];
    const view = (t: tf.Tensor | null | undefined): Float32Array | null => {
      if (!t) return null;
      if (t.isDisposed) throw new Error('host decoder: a weight of the model was disposed');
      this.viewed.push({ t, id: t.dataId });
      return be.typedArrayFromHeap(t);
    };
    const need = (t: tf.Tensor | null | undefined): Float32Array => view(t)!;
    const mlpViews = (m: MLP): MlpViews => ({ gate: need(m.gateW), up: need(m.upW), down: need(m.downW), gateB: view(m.gateB), upB: view(m.upB), downB: view(m.downB) });
    const layers = this.model.layers.map((l): LayerViews => {
      const a = l.attn;
      const moe = cdmoeOf(l.mlp);
      return {
        inNorm: need(l.inputNorm.weight), postNorm: need(l.postNorm.weight), inRes: need(l.inputResidual), postRes: need(l.postResidual),
        q: need(a.qW), k: need(a.kW), v: need(a.vW), qB: view(a.qB), kB: view(a.kB), vB: view(a.vB),
        A: need(a.A), dt: need(a.dtW), dtB: view(a.dtB), o: need(a.oW), oB: view(a.oB),
        qNorm: need(a.qNormW), kNorm: need(a.kNormW),
        mlp: mlpViews(moe ? moe.shared : (l.mlp as MLP)),
        router: moe ? need(moe.routerW) : null, downEmbed: moe ? need(moe.downEmbed) : null, upEmbed: moe ? need(moe.upEmbed) : null,
      };
    });
    this.views = { layers, embed: need(this.model.embed.weight), norm: need(this.model.norm.weight), lmHead: need(this.model.lmHead) };
    const scale = 1 / Math.sqrt(this.hd);
    this.qScaled = layers.map((l) => l.qNorm.map((w) => fr(w * scale)));
    return this.views;
  }

  /** y[M] = W[M, K] x (+ b), W row-major (torch Linear layout). */
  private linear(W: Float32Array, x: Float32Array, y: Float32Array, b: Float32Array | null): void {
    this.blas.sgemv(W, x, y, 1, y.length, x.length, 0, 0, 0);
    if (b) for (let i = 0; i < y.length; i++) y[i] = fr(y[i] + b[i]);
  }

  step(token: number): Float32Array {
    const { H, hd, Smax, V } = this;
    if (!Number.isInteger(token) || token < 0 || token >= V) throw new Error(`host decoder: token id ${token} is outside the vocabulary [0, ${V})`);
    if (this.bounded ? !this.bounded.evict && this.bounded.count.some((n) => n >= Smax) : this.P >= Smax) throw new Error(`host decoder: cache is full (${Smax} positions)`);
    const w = this.weights();
    const c = this.model.config;
    const eps = c.rms_norm_eps;
    const P = this.P;
    const h = this.h;
    h.set(w.embed.subarray(token * H, (token + 1) * H));
    // RoPE at position P: cos, sin per frequency (same float32 angle as RotaryEmbedding.build)
    const half = hd / 2;
    const cos = new Float64Array(half), sin = new Float64Array(half);
    for (let i = 0; i < half; i++) { const a = fr(this.invFreq[i] * P); cos[i] = fr(Math.cos(a)); sin[i] = fr(Math.sin(a)); }

    for (let li = 0; li < this.model.layers.length; li++) {
      const L = w.layers[li];
      const layer = this.model.layers[li];
      // --- attention: h = input_residual * h + Attn(RMSNorm(h)) ---
      rmsNormInto(h, L.inNorm, eps, this.x, 0, H);
      this.attention(li, L, this.x, P, cos, sin, this.attnOut);
      for (let i = 0; i < H; i++) h[i] = fr(fr(L.inRes[i] * h[i]) + this.attnOut[i]);
      // --- MLP or CDMoE: h = post_attention_residual * h + MLP(RMSNorm(h)) ---
      rmsNormInto(h, L.postNorm, eps, this.x, 0, H);
      const moe = cdmoeOf(layer.mlp);
      if (moe) this.cdmoe(moe, L, this.x, this.mlpOut);
      else this.swiglu(L.mlp, this.x, this.mlpOut);
      for (let i = 0; i < H; i++) h[i] = fr(fr(L.postRes[i] * h[i]) + this.mlpOut[i]);
    }
    this.P = P + 1;
    rmsNormInto(h, w.norm, this.model.norm.eps, this.x, 0, H);
    const logits = new Float32Array(V);
    // [V] = lm_head [V, H] x; a large lm_head (doge-20m: 33.5 MB, beyond the last-level cache) is memory-bound, and
    // a second core's loads add bandwidth: it may run on this.headThreads OpenBLAS threads
    const base = this.blas.threads;
    const threaded = this.headThreads > 1 && V * H >= HEAD_THREADS_MIN;
    if (threaded) this.blas.setThreads(this.headThreads);
    try {
      this.blas.sgemv(w.lmHead, this.x, logits, 1, V, H, 0, 0, 0);
    } finally {
      if (threaded) this.blas.setThreads(base);
    }
    return logits;
  }

  /**
   * out[H] = o_proj(softmax(q K^T + M) V) for the token at position P with x = RMSNorm(h): projects q, k, v, applies
   * the q/k norms and RoPE, appends k, v and the dynamic-mask entry d to the layer's cache at slot P, then attends
   * over the S = P + 1 cached keys.
   */
  private attention(li: number, L: LayerViews, x: Float32Array, P: number, cos: Float64Array, sin: Float64Array, out: Float32Array): void {
    const { nh, nkv, nm, hd, Smax } = this;
    const layer = this.model.layers[li];
    const kc = this.kCache[li], vc = this.vCache[li], dc = this.dCache[li];
    // the new key goes to slot `at`: P, or after the bounded cache's slots in use
    const at = this.bounded ? this.bounded.count[li] : P;
    const g = nh / nkv, S = at + 1, half = hd / 2;
    const window = this.model.config.sliding_window;
    const qkv = this.qkv;
    const qPart = qkv.subarray(0, nh * hd), kPart = qkv.subarray(nh * hd, (nh + nkv) * hd), vPart = qkv.subarray((nh + nkv) * hd);
    this.linear(L.q, x, qPart, L.qB);
    this.linear(L.k, x, kPart, L.kB);
    this.linear(L.v, x, vPart, L.vB);
    const qs = this.qScaled[li];
    for (let hh = 0; hh < nh + nkv; hh++) {
      const isQ = hh < nh;
      const off = hh * hd;
      rmsNormInto(qkv, isQ ? qs : L.kNorm, layer.attn.eps, qkv, off, hd);
      // rotate_half: [x1, x2] -> [-x2, x1]; x * cos + rot(x) * sin, rounded like the tfjs kernels
      for (let i = 0; i < half; i++) {
        const x1 = qkv[off + i], x2 = qkv[off + half + i];
        qkv[off + i] = fr(fr(x1 * cos[i]) + fr(x2 * fr(-sin[i])));
        qkv[off + half + i] = fr(fr(x2 * cos[i]) + fr(x1 * sin[i]));
      }
    }
    // append the new key, value and dynamic-mask entry at slot `at`
    for (let cc = 0; cc < nkv; cc++) {
      kc.set(kPart.subarray(cc * hd, (cc + 1) * hd), (cc * Smax + at) * hd);
      vc.set(vPart.subarray(cc * hd, (cc + 1) * hd), (cc * Smax + at) * hd);
      if (this.bounded) this.bounded.keys[li][cc * Smax + at] = P;
    }
    this.linear(L.dt, vPart, this.dt, L.dtB);
    const exp = layer.attn.dynamicMaskBias === 'exp';
    for (let m = 0; m < nm; m++) { const a = fr(L.A[m] * softplus(this.dt[m])); dc[m * Smax + at] = exp ? fr(Math.exp(a)) : a; }
    // mask rows M[m, j] (j < S): d, float32 min outside the sliding window, then the keep_window top-k
    const M = this.mask;
    for (let m = 0; m < nm; m++) {
      for (let j = 0; j < S; j++) M[m * S + j] = window !== null && j <= P - window ? F32_MIN : dc[m * Smax + j];
    }
    const keep = layer.attn.keepWindowSize;
    // bounded: the top-k drops one slot per head, the smallest d (the oldest among equal d); the new key takes its place
    const evict = this.bounded?.evict && S > keep ? this.evictions(li, S) : null;
    if (evict) {
      for (let m = 0; m < nm; m++) M[m * S + evict[m]] = F32_MIN;
    } else if (S > keep) {
      // a bounded cache's slots are in sequence order: 'recent' ties as its tfjs decoder (dmattn-cache.ts)
      const idx = (this.bounded ? recentTopkIndices : torchTopkIndices)(M.subarray(0, nm * S), nm, S, keep);
      const kept = new Uint8Array(nm * S);
      for (let m = 0; m < nm; m++) for (let r = 0; r < keep; r++) kept[m * S + idx[m * keep + r]] = 1;
      for (let i = 0; i < nm * S; i++) if (!kept[i]) M[i] = F32_MIN;
    }
    const sc = this.scores.subarray(0, S);
    for (let cc = 0; cc < nkv; cc++) {
      const Kc = kc.subarray(cc * Smax * hd, (cc * Smax + S) * hd), Vc = vc.subarray(cc * Smax * hd, (cc * Smax + S) * hd);
      for (let i = 0; i < g; i++) {
        const head = cc * g + i;
        const q = qPart.subarray(head * hd, (head + 1) * hd);
        this.blas.sgemv(Kc, q, sc, 1, S, hd, 0, 0, 0); // [S] = K_c q
        const mrow = (nm === nkv ? cc : head) * S;
        let mx = -Infinity;
        for (let j = 0; j < S; j++) { const s = fr(sc[j] + M[mrow + j]); sc[j] = s; if (s > mx) mx = s; }
        let sum = 0;
        for (let j = 0; j < S; j++) { const e = Math.exp(sc[j] - mx); sc[j] = e; sum += e; }
        for (let j = 0; j < S; j++) sc[j] = fr(sc[j] / sum);
        this.blas.sgemv(Vc, sc, this.oFlat.subarray(head * hd, (head + 1) * hd), 1, hd, S, 1, 0, 0); // [hd] = V_c^T p
      }
    }
    this.linear(L.o, this.oFlat, out, L.oB);
    if (this.bounded) {
      if (evict) {
        // the new key (slot `at`) overwrites the evicted one; the slot count stays keep_window_size
        const keys = this.bounded.keys[li];
        for (let cc = 0; cc < nkv; cc++) {
          const e = evict[cc];
          if (e === at) continue;
          kc.copyWithin((cc * Smax + e) * hd, (cc * Smax + at) * hd, (cc * Smax + at + 1) * hd);
          vc.copyWithin((cc * Smax + e) * hd, (cc * Smax + at) * hd, (cc * Smax + at + 1) * hd);
          dc[cc * Smax + e] = dc[cc * Smax + at];
          keys[cc * Smax + e] = keys[cc * Smax + at];
        }
      } else {
        this.bounded.count[li] = S;
      }
    }
  }

  /** Per kv head (= mask head), the slot of the S in use with the smallest d, the oldest key among equal d. */
  private evictions(li: number, S: number): Int32Array {
    const { nkv, Smax } = this;
    const dc = this.dCache[li], keys = this.bounded!.keys[li];
    const out = new Int32Array(nkv);
    for (let cc = 0; cc < nkv; cc++) {
      let e = 0;
      for (let j = 1; j < S; j++) {
        const dj = dc[cc * Smax + j], de = dc[cc * Smax + e];
        if (dj < de || (dj === de && keys[cc * Smax + j] < keys[cc * Smax + e])) e = j;
      }
      out[cc] = e;
    }
    return out;
  }

  /** out[H] = down(silu(gate x) * up x). */
  private swiglu(m: MlpViews, x: Float32Array, out: Float32Array): void {
    const [gt, up] = this.gu;
    this.linear(m.gate, x, gt, m.gateB);
    this.linear(m.up, x, up, m.upB);
    const act = this.act;
    for (let i = 0; i < act.length; i++) { const v = gt[i]; act[i] = fr(fr(v * fr(1 / (1 + Math.exp(-v)))) * up[i]); }
    this.linear(m.down, act, out, m.downB);
  }

  /** out[H] = shared MLP + sum over the k selected experts of silu(down_embed[e] . x) * w_e * up_embed[e] (CDMoE.route). */
  private cdmoe(moe: CDMoE, L: LayerViews, x: Float32Array, out: Float32Array): void {
    const H = this.H, K = moe.K, k = moe.topK;
    const { R, shared } = this.moe!;
    this.swiglu(L.mlp, x, shared);
    this.blas.sgemv(L.router!, x, R, 1, 2 * K, H, 0, 0, 0); // [2K]; with one token both router layouts read X = R[:K], Y = R[K:]
    const k1 = Math.min(k, K);
    const ta = topIndices(R, 0, K, k1), tb = topIndices(R, K, K, k1);
    const grid = new Float32Array(k1 * k1);
    for (let i = 0; i < k1; i++) for (let j = 0; j < k1; j++) grid[i * k1 + j] = fr(R[ta[i]] + R[K + tb[j]]);
    const sel = topIndices(grid, 0, k1 * k1, k);
    const ids = new Int32Array(k), s = new Float64Array(k);
    let mx = -Infinity;
    for (let m = 0; m < k; m++) {
      const a = ta[Math.floor(sel[m] / k1)], b = tb[sel[m] % k1];
      ids[m] = a * K + b;
      s[m] = grid[sel[m]];
      if (s[m] > mx) mx = s[m];
    }
    let sum = 0;
    for (let m = 0; m < k; m++) { s[m] = Math.exp(s[m] - mx); sum += s[m]; }
    for (let m = 0; m < k; m++) s[m] = fr(s[m] / sum);
    if (moe.normTopkProb) { let t = 0; for (let m = 0; m < k; m++) t += s[m]; for (let m = 0; m < k; m++) s[m] = fr(s[m] / fr(t)); }
    const acc = new Float64Array(H);
    const de = L.downEmbed!, ue = L.upEmbed!;
    for (let m = 0; m < k; m++) {
      const row = ids[m] * H;
      let z = 0;
      for (let i = 0; i < H; i++) z += de[row + i] * x[i];
      const zf = fr(z);
      const zs = fr(fr(zf * fr(1 / (1 + Math.exp(-zf)))) * s[m]);
      for (let i = 0; i < H; i++) acc[i] += zs * ue[row + i];
    }
    for (let i = 0; i < H; i++) out[i] = fr(shared[i] + fr(acc[i]));
  }
}

/** lm_head products of at least this many weights (8 MB) may use more than one thread. */
const HEAD_THREADS_MIN = 2 * 1024 * 1024;

/**
 * OpenBLAS threads for a large lm_head product while decoding: WM_DECODE_THREADS=N, or 'auto' (default): 2 when
 * the machine has 2+ cores and no other task is running right now, else 1 (on a busy machine a second thread waits
 * for a core and is slower than one). `othersRunning`: runnable tasks besides this one (runningOtherTasks()).
 */
export function decodeHeadThreads(env = process.env.WM_DECODE_THREADS, cores = os.availableParallelism(), othersRunning = runningOtherTasks()): number {
  if (env !== undefined && env !== '' && env !== 'auto') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > 8) throw new Error(`WM_DECODE_THREADS must be 'auto' or an integer from 1 to 8, got '${env}'`);
    return n;
  }
  return cores >= 2 && othersRunning <= cores - 2 ? 2 : 1;
}

/**
 * Runnable tasks other than the reading one, now: the 4th field of /proc/loadavg ("running/total") minus 1. The
 * 1-minute load average would lag: right after a training run it still counts that run's threads. Elsewhere (no
 * /proc) the load average rounded, minus this process.
 */
export function runningOtherTasks(loadavgText?: string): number {
  let text = loadavgText;
  if (text === undefined) {
    try { text = fs.readFileSync('/proc/loadavg', 'utf8'); } catch { return Math.max(0, Math.round(os.loadavg()[0]) - 1); }
  }
  const m = /^\S+ \S+ \S+ (\d+)\/\d+/.exec(text);
  if (!m) throw new Error(`/proc/loadavg: cannot read the running/total field in '${text.trim()}'`);
  return Math.max(0, Number(m[1]) - 1);
}

/** y[off..off+n) = w * x / sqrt(mean(x^2) + eps) over x[off..off+n) (w indexed from 0; y may be x). */
function rmsNormInto(x: Float32Array, w: Float32Array, eps: number, y: Float32Array, off: number, n: number): void {
  let ss = 0;
  for (let i = 0; i < n; i++) { const v = x[off + i]; ss += v * v; }
  const r = fr(1 / Math.sqrt(fr(fr(ss / n) + eps)));
  for (let i = 0; i < n; i++) y[off + i] = fr(fr(x[off + i] * r) * w[i]);
}

/** softplus in float32 (log1p(exp(x)), linear for large x like the kernels). */
function softplus(x: number): number {
  return fr(x > 20 ? x : Math.log1p(Math.exp(x)));
}

/** Indices (relative to off) of the k largest of v[off..off+n), descending, ties to the lower index (tf.topk). */
function topIndices(v: Float32Array, off: number, n: number, k: number): Int32Array {
  const idx = new Int32Array(k).fill(-1);
  const val = new Float64Array(k).fill(-Infinity);
  let filled = 0;
  for (let j = 0; j < n; j++) {
    const x = v[off + j];
    if (filled === k && !(x > val[k - 1])) continue;
    let p = filled < k ? filled++ : k - 1;
    while (p > 0 && x > val[p - 1]) { val[p] = val[p - 1]; idx[p] = idx[p - 1]; p--; }
    val[p] = x; idx[p] = j;
  }
  return idx;
}
