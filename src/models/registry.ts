/**
 * The model registry, in the style of Hugging Face's Auto classes: each causal LM of the library registers its
 * config.json `model_type`, its config class, its model class, its preset names and a one-line description;
 * `loadCausalLM`, `createCausalLM`, `buildModelConfig` (src/models/auto.ts), the CLI (pretrain / sft / dpo / eval /
 * generate) and the bench look models up here instead of switching on names.
 *
 *   registerModel({ modelType: 'toy', description: 'Toy: ...', configClass: ToyConfig, modelClass: ToyForCausalLM,
 *                   presets: ['toy-tiny'], describe: (c) => `Toy, ${c.num_hidden_layers} layers` });
 *
 * Registering has no import side effect: the built-in models (Doge, Cheems) are registered the first time the
 * registry is read (`ensureBuiltins`), and another model registers with one explicit `registerModel` call.
 */
import type { tf } from '../tf';
import type { LoadStateOptions, LoadStateResult } from '../modules/module';
import type { GenerateOptions } from '../generation/generate';
import type { CausalLMInput } from './causal-lm';
import { DogeConfig, PRESET_NAMES } from './doge/config';
import { DogeForCausalLM } from './doge/model';
import { CheemsConfig, CHEEMS_PRESET_NAMES } from './cheems/config';
import { CheemsForCausalLM } from './cheems/model';

/** What the library needs of every model config (HF config.json fields + serialisation). */
export interface CausalLMConfig {
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  max_position_embeddings: number;
  bos_token_id: number | null;
  eos_token_id: number | null;
  pad_token_id: number | null;
  toJSON(): Record<string, unknown>;
}

/**
 * What every registered causal LM provides: the Trainer's `CausalLM` (forward with labels, parameters, loadState,
 * savePretrained), generation's `GenerativeModel` (generate) and the Module bookkeeping (numParameters, dispose).
 */
export interface CausalLMModel<C extends CausalLMConfig = CausalLMConfig> {
  readonly config: C;
  forward(input: CausalLMInput): { logits: tf.Tensor; loss?: tf.Scalar };
  generate(inputIds: number[][] | tf.Tensor, options?: GenerateOptions): number[][];
  parameters(): Map<string, tf.Variable>;
  loadState(tensors: Map<string, tf.Tensor>, opts?: LoadStateOptions): LoadStateResult;
  savePretrained(dir: string): void;
  numParameters(): number;
  dispose(): void;
}

/** Options every model constructor / loader accepts (a model ignores those that do not apply to it). */
export interface CausalLMOptions {
  seed?: number;
  /** CDMoE routing layout of Doge MoE ('token' or 'hf'); other models ignore it. */
  routerLayout?: 'token' | 'hf';
  /** Doge: older SmallDoge checkpoint layouts load converted (default); false refuses them. Others ignore it. */
  legacy?: boolean;
}

/** A model's config class: `new C(fields)`, `C.fromPretrained(dir)`, `C.preset(name, overrides)`. */
export interface ConfigClass<C extends CausalLMConfig> {
  new (fields: Record<string, unknown>): C;
  fromPretrained(dir: string): C;
  preset(name: string, overrides?: Record<string, unknown>): C;
  /**
   * The input names the config reads (its fields, aliases, legacy names): a recipe's model section may give only these
   * (plus preset / model_type / init_from / router_layout). Without it a recipe's fields are checked when the config
   * is built.
   */
  readonly FIELD_NAMES?: readonly string[];
}

/** A model class: `new M(config, { seed })` (fresh init) and `M.fromPretrained(dir)`. */
export interface ModelClass<C extends CausalLMConfig, M extends CausalLMModel<C>> {
  new (config: C, options?: CausalLMOptions): M;
  fromPretrained(dir: string, options?: CausalLMOptions): M;
}

export interface ModelRegistration<C extends CausalLMConfig = CausalLMConfig, M extends CausalLMModel<C> = CausalLMModel<C>> {
  /** config.json `model_type`. */
  modelType: string;
  /** One line for listings (`wm pretrain --help`, docs). */
  description: string;
  configClass: ConfigClass<C>;
  modelClass: ModelClass<C, M>;
  /** Preset names `configClass.preset` knows; a preset name picks its model. */
  presets: readonly string[];
  /** One line about a config, for progress output (default: layers and width). */
  describe?(config: C): string;
}

const registry = new Map<string, ModelRegistration>();
let builtinsDone = false;

/** Register a model (or replace the registration of the same model_type). */
export function registerModel<C extends CausalLMConfig, M extends CausalLMModel<C>>(r: ModelRegistration<C, M>): void {
  ensureBuiltins();
  if (!/^[a-z][\w-]*$/.test(r.modelType)) throw new Error(`registerModel: model_type ${JSON.stringify(r.modelType)} must be a lowercase identifier`);
  for (const [type, other] of registry) {
    if (type === r.modelType) continue;
    const clash = r.presets.find((p) => other.presets.includes(p));
    if (clash) throw new Error(`registerModel(${r.modelType}): preset '${clash}' is already a preset of '${type}'`);
  }
  registry.set(r.modelType, r as unknown as ModelRegistration);
}

/** Remove a registration (tests that register a toy model clean up with it). */
export function unregisterModel(modelType: string): boolean {
  return registry.delete(modelType);
}

/** The built-in models, registered on first use of the registry (not when a module is imported). */
function ensureBuiltins(): void {
  if (builtinsDone) return;
  builtinsDone = true;
  registry.set('doge', {
    modelType: 'doge',
    description: 'Doge: Transformer decoder with Dynamic Mask Attention and Cross Domain MoE (HF DogeForCausalLM)',
    configClass: DogeConfig as unknown as ConfigClass<DogeConfig>,
    modelClass: DogeForCausalLM,
    presets: PRESET_NAMES,
    describe: (c: DogeConfig) => `Doge, ${c.num_hidden_layers} layers, hidden ${c.hidden_size}${c.is_moe ? `, MoE ${c.num_experts} experts top-${c.num_experts_per_tok}` : ''}`,
  } satisfies ModelRegistration<DogeConfig, DogeForCausalLM> as unknown as ModelRegistration);
  registry.set('cheems', {
    modelType: 'cheems',
    description: 'Cheems: SSD + Dynamic Mask Attention hybrid with Cross Domain MoE (the seed\'s CheemsForCausalLM)',
    configClass: CheemsConfig as unknown as ConfigClass<CheemsConfig>,
    modelClass: CheemsForCausalLM,
    presets: CHEEMS_PRESET_NAMES,
    describe: (c: CheemsConfig) => {
      const kinds = c.layersType;
      const attn = kinds.filter((k) => k === 'attn').length;
      return `Cheems, ${c.num_hidden_layers} layers (${kinds.length - attn} SSD, ${attn} DMAttn), hidden ${c.hidden_size}` +
        (c.is_moe ? `, CDMoE ${c.num_cdmoe_experts} experts, ${c.num_cdmoe_heads} heads x ${c.num_cdmoe_experts_per_head}` : '');
    },
  } satisfies ModelRegistration<CheemsConfig, CheemsForCausalLM> as unknown as ModelRegistration);
}

/** Every registration, in registration order (Doge first: the default model). */
export function registeredModels(): ModelRegistration[] {
  ensureBuiltins();
  return [...registry.values()];
}

/** The registration of a model_type; an unknown one is an error naming the registered types. */
export function modelRegistration(modelType: string, where = 'model_type'): ModelRegistration {
  ensureBuiltins();
  const r = registry.get(modelType);
  if (!r) throw new Error(`${where} ${JSON.stringify(modelType)} is not supported (registered: ${[...registry.keys()].join(', ')})`);
  return r;
}

/** The registration owning a preset name, or undefined. */
export function registrationOfPreset(preset: string): ModelRegistration | undefined {
  return registeredModels().find((r) => r.presets.includes(preset));
}

/** The registration of a config object (the one whose config class built it), or undefined. */
export function registrationOfConfig(config: object): ModelRegistration | undefined {
  return registeredModels().find((r) => config instanceof r.configClass);
}

/** Every preset name of every registered model. */
export function allPresets(): string[] {
  return registeredModels().flatMap((r) => [...r.presets]);
}
