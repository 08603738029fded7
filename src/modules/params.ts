/**
 * Parameter bookkeeping shared by the modules: every module owns a `Map<relativeName, tf.Variable>` whose names
 * follow Hugging Face (`q_proj.weight`, `A`, ...), so a model prefixes them (`model.layers.0.self_attn.`) to get
 * checkpoint names. Initial values come from a seeded host RNG, so a seed gives the same weights on every backend.
 */
import { tf } from '../backend';
import { Rng, makeVariable } from '../ops';

export type InitKind = 'normal' | 'zeros' | 'ones';

export class ParamStore {
  readonly map = new Map<string, tf.Variable>();
  constructor(private readonly rng: Rng, private readonly std: number) {}

  add(name: string, shape: number[], init: InitKind): tf.Variable {
    const n = shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    if (init === 'normal') values = this.rng.normalArray(n, this.std);
    else values = new Float32Array(n).fill(init === 'ones' ? 1 : 0);
    const v = makeVariable(values, shape, name);
    this.map.set(name, v);
    return v;
  }

  /** Sub-store view that prefixes names (`prefix + name`) but shares the RNG and the map. */
  child(prefix: string): ChildStore {
    return new ChildStore(this, prefix);
  }
}

export class ChildStore {
  constructor(private readonly root: ParamStore | ChildStore, private readonly prefix: string) {}
  add(name: string, shape: number[], init: InitKind): tf.Variable {
    return this.root.add(this.prefix + name, shape, init);
  }
  child(prefix: string): ChildStore {
    return new ChildStore(this, prefix);
  }
}

export type Store = ParamStore | ChildStore;

/** Options every standalone module accepts for its initialisation. */
export interface InitOptions {
  /** Seed of the host RNG (default 0). */
  seed?: number;
  /** Std of the normal init of Linear/Embedding weights (HF initializer_range, default 0.02). */
  initializerRange?: number;
}

export function standaloneStore(opts: InitOptions): ParamStore {
  return new ParamStore(new Rng(opts.seed ?? 0), opts.initializerRange ?? 0.02);
}
