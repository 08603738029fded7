/**
 * The one argument parser of every `wm` command.
 *
 *   const SPEC = defineCommand({
 *     name: 'wm generate',
 *     usage: 'usage: wm generate --model DIR ...',
 *     options: {
 *       model: { type: 'string', required: true },
 *       'max-new-tokens': { type: 'int', min: 0, default: 50 },
 *       'top-p': { type: 'number', min: 0, max: 1, minExclusive: true },
 *       'no-stream': { type: 'boolean' },
 *       input: { type: 'string', multiple: true },
 *     },
 *   });
 *   const args = parseCommandArgs(SPEC, argv);
 *   if (args.help) { console.log(SPEC.usage); return; }
 *   args.values['max-new-tokens']  // number
 *
 * What every command gets from it: `--key value` and `--key=value`; `--help` / `-h` anywhere; misspelled options
 * are errors with "did you mean --x?"; numbers are checked (integer, range) with a message naming the option; a
 * missing value, an empty string for a required value, and a repeated single-valued option are errors. All errors
 * are `UsageError`s (the `wm` entry point prints them and exits with code 2). Commands that take free-form options
 * (`wm pretrain --max-steps 5` overrides any config key) set `passThrough: true` and read `args.rest`.
 */
import { closestName } from '../names';

export type OptionType = 'string' | 'boolean' | 'number' | 'int';

export interface OptionSpec {
  type: OptionType;
  /** May be given many times; the value is an array. */
  multiple?: boolean;
  /** Must be given (checked after --help, so `--help` always works). */
  required?: boolean;
  /** Value when the option is absent (not applied to `multiple` options). */
  default?: string | number | boolean;
  /** Numbers only: inclusive bounds (exclusive with minExclusive / maxExclusive). */
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
  /** Strings only: the allowed values. */
  choices?: readonly string[];
  /** Strings only: the value may be omitted (`--resume` alone gives `true`, `--resume DIR` gives 'DIR'). */
  optionalValue?: boolean;
  /** Single-letter alias (`-o`). */
  short?: string;
}

export interface CommandSpec {
  /** For messages: `wm generate`. */
  name: string;
  usage: string;
  options: Record<string, OptionSpec>;
  /** How many positional arguments are accepted (default 0). */
  positionals?: { min?: number; max?: number; name?: string };
  /** Unknown `--key value` pairs are collected into `rest` instead of being errors. */
  passThrough?: boolean;
}

export type OptionValue = string | number | boolean | string[] | number[] | true;

export interface ParsedArgs {
  /** `--help` or `-h` was given: print the usage and stop (nothing else was validated). */
  help: boolean;
  values: Record<string, OptionValue | undefined>;
  positionals: string[];
  /** passThrough only: the unknown options, `{ 'max-steps': '5' }`. */
  rest: Record<string, string>;
}

/** A mistake in the command line (exit code 2, the message names the option). */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Identity helper that keeps the literal types of a spec. */
export function defineCommand<T extends CommandSpec>(spec: T): T {
  return spec;
}

function convert(spec: CommandSpec, key: string, opt: OptionSpec, text: string): string | number {
  const fail = (what: string) => new UsageError(`${spec.name}: --${key} ${what}, got '${text}'`);
  if (opt.type === 'string') {
    if (opt.choices && !opt.choices.includes(text)) throw fail(`must be one of ${opt.choices.join(', ')}`);
    return text;
  }
  const v = text.trim() === '' ? NaN : Number(text);
  if (!Number.isFinite(v)) throw fail(opt.type === 'int' ? 'must be an integer' : 'must be a number');
  if (opt.type === 'int' && !Number.isInteger(v)) throw fail('must be an integer');
  if (opt.min !== undefined && (opt.minExclusive ? v <= opt.min : v < opt.min)) throw fail(`must be ${opt.minExclusive ? '>' : '>='} ${opt.min}`);
  if (opt.max !== undefined && (opt.maxExclusive ? v >= opt.max : v > opt.max)) throw fail(`must be ${opt.maxExclusive ? '<' : '<='} ${opt.max}`);
  return v;
}

/** Parse `argv` against `spec`; throws UsageError on anything it does not understand. */
export function parseCommandArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const out: ParsedArgs = { help: false, values: {}, positionals: [], rest: {} };
  if (argv.includes('--help') || argv.includes('-h')) return { ...out, help: true };
  const names = Object.keys(spec.options);
  const byShort = new Map(Object.entries(spec.options).filter(([, o]) => o.short).map(([k, o]) => [o.short!, k]));
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') { out.positionals.push(...argv.slice(i + 1)); break; }
    let key: string | undefined;
    let inline: string | undefined;
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      key = eq > 0 ? a.slice(2, eq) : a.slice(2);
      inline = eq > 0 ? a.slice(eq + 1) : undefined;
    } else if (/^-[A-Za-z]$/.test(a)) {
      key = byShort.get(a.slice(1));
      if (!key) throw new UsageError(`${spec.name}: unknown option '${a}'\n\n${spec.usage}`);
    } else {
      out.positionals.push(a);
      continue;
    }
    const opt = spec.options[key];
    const next = (): string | undefined => (inline !== undefined ? inline : i + 1 < argv.length && !argv[i + 1].startsWith('--') ? argv[++i] : undefined);
    if (!opt) {
      if (spec.passThrough) {
        const v = next();
        if (v === undefined) throw new UsageError(`${spec.name}: --${key} needs a value`);
        out.rest[key] = v;
        continue;
      }
      const best = closestName(key, names);
      throw new UsageError(`${spec.name}: unknown option --${key}${best ? ` (did you mean --${best}?)` : ''}; see '${spec.name} --help'`);
    }
    if (seen.has(key) && !opt.multiple) throw new UsageError(`${spec.name}: --${key} is given more than once`);
    seen.add(key);
    if (opt.type === 'boolean') {
      if (inline !== undefined && !['true', 'false'].includes(inline)) throw new UsageError(`${spec.name}: --${key} takes no value (or =true / =false), got '${inline}'`);
      out.values[key] = inline !== 'false';
      continue;
    }
    const text = next();
    if (text === undefined) {
      if (opt.optionalValue) { out.values[key] = true; continue; }
      throw new UsageError(`${spec.name}: --${key} needs a value`);
    }
    const v = convert(spec, key, opt, text);
    if (opt.multiple) ((out.values[key] ??= []) as (string | number)[]).push(v);
    else out.values[key] = v;
  }
  for (const [key, opt] of Object.entries(spec.options)) {
    if (out.values[key] === undefined && opt.default !== undefined && !opt.multiple) out.values[key] = opt.default;
    if (opt.required && (out.values[key] === undefined || out.values[key] === '')) {
      throw new UsageError(`${spec.name}: --${key} is required${out.values[key] === '' ? ' (got an empty value)' : ''}\n\n${spec.usage}`);
    }
  }
  const pmin = spec.positionals?.min ?? 0;
  const pmax = spec.positionals?.max ?? 0;
  if (out.positionals.length > pmax) {
    const extra = out.positionals[pmax];
    const hint = extra.startsWith('-') ? '' : pmax === 0 ? ' (options start with --)' : '';
    throw new UsageError(`${spec.name}: unexpected argument '${extra}'${hint}\n\n${spec.usage}`);
  }
  if (out.positionals.length < pmin) throw new UsageError(`${spec.name}: ${spec.positionals?.name ?? 'a positional argument'} is required\n\n${spec.usage}`);
  return out;
}

/** `'1,2,3'` -> [1, 2, 3]; empty lists and empty items (`1,,2`) are errors naming the option and the position. */
export function parseIntList(text: string, option: string, range?: { min?: number; max?: number }): number[] {
  if (text.trim() === '') throw new UsageError(`--${option} is empty; give comma-separated integers, e.g. 1,2,3`);
  return text.split(',').map((s, i) => {
    const t = s.trim();
    const v = t === '' ? NaN : Number(t);
    if (!Number.isInteger(v)) throw new UsageError(`--${option}: item ${i + 1} ${t === '' ? 'is empty' : `'${t}' is not an integer`} (give comma-separated integers, e.g. 1,2,3)`);
    if (range?.min !== undefined && v < range.min) throw new UsageError(`--${option}: item ${i + 1} (${v}) must be >= ${range.min}`);
    if (range?.max !== undefined && v > range.max) throw new UsageError(`--${option}: item ${i + 1} (${v}) must be <= ${range.max}`);
    return v;
  });
}

/** Typed accessors (the values are checked by the parser; these only narrow the types). */
export function str(args: ParsedArgs, key: string): string | undefined {
  const v = args.values[key];
  return typeof v === 'string' ? v : undefined;
}
export function num(args: ParsedArgs, key: string): number | undefined {
  const v = args.values[key];
  return typeof v === 'number' ? v : undefined;
}
export function flag(args: ParsedArgs, key: string): boolean {
  return args.values[key] === true;
}
export function strs(args: ParsedArgs, key: string): string[] {
  const v = args.values[key];
  return Array.isArray(v) ? v.map(String) : [];
}
