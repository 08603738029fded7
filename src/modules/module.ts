/**
 * The one protocol every layer of the library is written on (a small torch.nn.Module):
 *
 *   class MLP extends Module {
 *     constructor(init: Init, H: number, I: number) {
 *       super();
 *       this.gate = this.param('gate_proj.weight', [I, H], 'normal', init);   // HF name, relative to the module
 *       this.norm = this.module('norm', new RMSNorm(init, H, 1e-6));          // child: its names get 'norm.'
 *     }
 *   }
 *   model.parameters()        // Map<HF name, tf.Variable>, e.g. 'model.layers.0.mlp.gate_proj.weight'
 *   model.loadState(tensors)  // assign a checkpoint's tensors by name (strict: missing/unexpected/shape errors)
 *   model.dispose()           // one walk over the tree: every Variable and every cached tensor, once
 *
 * Ownership rule (the whole library follows it):
 *  - A module owns its Variables and the tensors it caches (weight transposes, RoPE tables); `dispose()` frees them.
 *  - A call (`apply`, `forward`) never disposes its inputs; the tensors it returns belong to the caller.
 *  - Inner calls do not open their own `tf.tidy`: the public entry point (a model's `forward`, a standalone
 *    module's `apply`) tidies once, so intermediates die there and the results are kept.
 *
 * Initial values come from a seeded host RNG (`Init`), drawn in registration order, so a seed gives the same weights
 * on every backend.
 */
import { tf } from '../tf';
import { Rng, clearWeightCache, makeVariable } from '../ops';

export type InitKind = 'normal' | 'zeros' | 'ones';

/** Where initial values come from: a seeded RNG and the std of 'normal' weights (0 = all zeros, e.g. before loading). */
export interface Init {
  rng: Rng;
  std: number;
}

/** Options every standalone module accepts for its initialisation. */
export interface InitOptions {
  /** Seed of the host RNG (default 0). */
  seed?: number;
  /** Std of the normal init of Linear/Embedding weights (HF initializer_range, default 0.02). */
  initializerRange?: number;
}

export function makeInit(opts: InitOptions = {}): Init {
  return { rng: new Rng(opts.seed ?? 0), std: opts.initializerRange ?? 0.02 };
}

export interface LoadStateOptions {
  /** true (default): every parameter must be present, no unknown tensor, shapes equal. */
  strict?: boolean;
  /** Names of checkpoint tensors that are not parameters and are skipped silently (e.g. rotary buffers). */
  ignore?: RegExp;
  /** Prefix of error messages (the checkpoint folder or file). */
  source?: string;
}

export interface LoadStateResult {
  loaded: string[];
  missing: string[];
  unexpected: string[];
}

export class Module {
  /** Parameters and children in registration order (parameters() keeps it, so checkpoints and optimizers do too). */
  private readonly entries: Array<{ name: string; param?: tf.Variable; child?: Module }> = [];
  /** Tensors this module caches (not parameters); freed by dispose(). */
  private readonly cached = new Set<{ dispose(): void }>();

  /** Register a new Variable under `name` (relative HF name), drawn from `init`. */
  protected param(name: string, shape: number[], kind: InitKind, init: Init): tf.Variable {
    const n = shape.reduce((a, b) => a * b, 1);
    const values = kind === 'normal' ? init.rng.normalArray(n, init.std) : new Float32Array(n).fill(kind === 'ones' ? 1 : 0);
    const v = makeVariable(values, shape, name);
    return this.shareParam(name, v);
  }

  /** Register a new Variable with given initial values (a fixed init such as SSD's A = -(h + 1)). */
  protected paramFromValues(name: string, shape: number[], values: Float32Array): tf.Variable {
    return this.shareParam(name, makeVariable(values, shape, name));
  }

  /** Register a new Variable initialised from a tensor (which this module takes ownership of and disposes). */
  protected paramFromTensor(name: string, init: tf.Tensor): tf.Variable {
    const v = makeVariable(Float32Array.from(init.dataSync()), init.shape, name);
    init.dispose();
    return this.shareParam(name, v);
  }

  /** Register an existing Variable (owned elsewhere in the tree, or adopted) under `name`. */
  protected shareParam(name: string, v: tf.Variable): tf.Variable {
    if (this.entries.some((e) => e.name === name)) throw new Error(`module: '${name}' registered twice`);
    this.entries.push({ name, param: v });
    return v;
  }

  /** Register a child; its parameter names get `name + '.'` (name '' merges them into this module's names). */
  protected module<M extends Module>(name: string, child: M): M {
    if (name !== '' && this.entries.some((e) => e.name === name)) throw new Error(`module: '${name}' registered twice`);
    this.entries.push({ name, child });
    return child;
  }

  /** Register a cache-like resource (anything with dispose()) freed with the module. */
  protected own<T extends { dispose(): void }>(resource: T): T {
    this.cached.add(resource);
    return resource;
  }

  /** Every (HF name, Variable) of the tree, depth first in registration order; a shared Variable appears once. */
  namedParameters(prefix = ''): Array<[string, tf.Variable]> {
    const out: Array<[string, tf.Variable]> = [];
    const seen = new Set<tf.Variable>();
    const walk = (m: Module, p: string) => {
      for (const e of m.entries) {
        if (e.param) { if (!seen.has(e.param)) { seen.add(e.param); out.push([p + e.name, e.param]); } }
        else walk(e.child!, e.name === '' ? p : `${p}${e.name}.`);
      }
    };
    walk(this, prefix);
    return out;
  }

  /** Map of every parameter by HF name. */
  parameters(): Map<string, tf.Variable> {
    return new Map(this.namedParameters());
  }

  numParameters(): number {
    let n = 0;
    for (const [, v] of this.namedParameters()) n += v.size;
    return n;
  }

  /**
   * Assign checkpoint tensors by name (the one loading path: fromPretrained, resume, init-from). The tensors stay the
   * caller's. Strict mode checks everything before assigning anything, so a bad checkpoint leaves the module as it was.
   */
  loadState(tensors: Map<string, tf.Tensor>, opts: LoadStateOptions = {}): LoadStateResult {
    const result = assignState(this.parameters(), tensors, opts);
    this.clearCaches();
    return result;
  }

  /** Drop derived tensors (e.g. transposed weights) after the Variables changed outside an optimizer step. */
  clearCaches(): void {
    clearWeightCache(this.namedParameters().map(([, v]) => v));
    this.onClearCaches();
    for (const e of this.entries) e.child?.clearCaches();
  }

  /** Hook for modules with derived tensors of their own (called by clearCaches and dispose). */
  protected onClearCaches(): void {}

  /** Free every Variable and cached tensor of the tree (each once). */
  dispose(): void {
    const vars = this.namedParameters().map(([, v]) => v);
    clearWeightCache(vars);
    const walk = (m: Module) => {
      m.onClearCaches();
      for (const r of m.cached) r.dispose();
      m.cached.clear();
      for (const e of m.entries) if (e.child) walk(e.child);
    };
    walk(this);
    for (const v of vars) if (!v.isDisposed) v.dispose();
  }
}

/**
 * What `Module.loadState` does to its parameters, for any map of HF name -> Variable (also models that are not
 * Modules, such as the trainer tests' stand-in). Strict mode checks everything before assigning anything.
 */
export function assignState(params: Map<string, tf.Variable>, tensors: Map<string, tf.Tensor>, opts: LoadStateOptions = {}): LoadStateResult {
  const strict = opts.strict ?? true;
  const src = opts.source ? `${opts.source}: ` : '';
  const missing = [...params.keys()].filter((n) => !tensors.has(n));
  const unexpected = [...tensors.keys()].filter((n) => !params.has(n) && !(opts.ignore && opts.ignore.test(n)));
  if (strict && missing.length) {
    throw new Error(`${src}checkpoint is missing tensor '${missing[0]}'${missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''}`);
  }
  if (strict && unexpected.length) throw new Error(`${src}unexpected tensor '${unexpected[0]}' in the checkpoint (not a parameter of this config)`);
  for (const [name, v] of params) {
    const t = tensors.get(name);
    if (!t) continue;
    if (t.shape.length !== v.shape.length || t.shape.some((d, i) => d !== v.shape[i])) {
      throw new Error(`${src}tensor '${name}' has shape [${t.shape}] but the config needs [${v.shape}]`);
    }
    if (t.dtype !== 'float32') throw new Error(`${src}tensor '${name}' has dtype ${t.dtype}, expected a floating type`);
  }
  const loaded: string[] = [];
  for (const [name, v] of params) {
    const t = tensors.get(name);
    if (!t) continue;
    v.assign(t);
    loaded.push(name);
  }
  return { loaded, missing, unexpected };
}

/** tf.variableGrads keys gradients by tfjs Variable name; this re-keys them by HF name. */
export function gradientsByName(params: Map<string, tf.Variable>, grads: tf.NamedTensorMap): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, v] of params) if (grads[v.name]) out.set(name, grads[v.name]);
  return out;
}

/** Loss value and gradients of every parameter by HF name. The caller disposes both. */
export function variableGradsByName(params: Map<string, tf.Variable>, lossFn: () => tf.Scalar): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const { value, grads } = tf.variableGrads(lossFn, [...params.values()]);
  return { value, grads: gradientsByName(params, grads) };
}

/** A learned per-channel weight with a `.weight` (Cheems' residual weights; Doge stores them bare). */
export class Scale extends Module {
  readonly weight: tf.Variable;
  constructor(init: Init, size: number, name = 'weight') {
    super();
    this.weight = this.param(name, [size], 'ones', init);
  }
  apply(x: tf.Tensor): tf.Tensor {
    return tf.mul(this.weight, x);
  }
}
