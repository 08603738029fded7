/**
 * `wm mqar`: the MQAR comparison of the paper (Dynamic Mask Attention vs plain attention vs SSD).
 *
 *   wm mqar --preset cpu --out runs/mqar-cpu            # CPU grid: smoke setting, 4 mixers, d 64/128, 3 seeds (~34 min measured; <= 72 min by its budgets)
 *   wm mqar --preset paper --out runs/mqar-paper        # the paper's grid, for a GPU (WM_BACKEND=tensorflow-gpu)
 *   wm mqar --mixers attention,dmattn,ssd --seq-lens 64,128 --kv-pairs L/4 --d-models 32,64,128 \
 *           --lrs 1e-3,3e-3 --epochs 8 --train-examples 4000 --test-examples 500 --out DIR
 *
 * Writes DIR/results.jsonl (one JSON object per cell and seed, with its accuracy curve) and DIR/mqar.html (the
 * comparison and the curves), prints a line per curve point and per epoch.
 */
import { loadBackend } from '../runtime/backend';
import { formatMqarTable, runMqarGrid, validateGrid, type MqarGridOptions } from '../synthetic/grid';
import type { MixerKind } from '../synthetic/mixers';
import { mqarRecipe } from '../synthetic/recipe';

/**
 * Named grids. Explicit flags override preset values; training fields a preset leaves unset come from the recipe
 * (`--recipe`, default `tuned`, src/synthetic/recipe.ts).
 */
export const MQAR_PRESETS: Record<string, Omit<MqarGridOptions, 'outDir'>> = {
  /**
   * The CPU comparison: Zoology's smoke setting (V 256, L 64, K 4, zero filler, 10k / 1k examples, batch 64), the
   * four mixers at d 64 and 128, three seeds each, the tuned recipe. Every run stops at 0.99, after 800 steps or at
   * 180 s (then evaluates): attention reached 0.99 after 240-420 steps and DMAttn (full window until 0.99, then
   * shrinking to 2K keys over 300 steps) after 560-700 on every seed (the 2026-12-06 re-pin, docs/mqar-recipe.md);
   * SSD runs into the budget. At most 24 x 180 s = 72 min; ~40-50 min expected on a quiet machine (attention ~1 min, DMAttn 2-3 min per
   * run; the earlier 110 s / 500-step budget cut most width-128 runs on the loaded machine, and would cut every
   * DMAttn curriculum). results.jsonl records why each run stopped (`stopped`) and after how many steps.
   */
  cpu: {
    mixers: ['attention', 'dmattn', 'ssd', 'linear'],
    seqLens: [64],
    kvPairs: 4,
    vocabSize: 256,
    randomNonQueries: false,
    dModels: [64, 128],
    seeds: [0, 1, 2],
    trainExamples: 10_000,
    testExamples: 1_000,
    batchSize: 64,
    evalEvery: 20,
    maxSteps: 800,
    timeBudgetSeconds: 180,
  },
  /**
   * The paper's figure: L 256..2048, K = L/4, d 32..256, V = L+1, random fillers, 250k / 1k examples, the lr sweep
   * of the paper's range, 64 epochs, SSD state 128; the tuned recipe otherwise (DMAttn's window ends at 2K keys;
   * for the paper's own top-K add `--keep-window K`, for no top-k `--recipe full-window`).
   */
  paper: {
    mixers: ['attention', 'dmattn', 'ssd', 'linear'],
    seqLens: [256, 512, 1024, 2048],
    kvPairs: 'L/4',
    vocabSize: 'L+1',
    randomNonQueries: true,
    dModels: [32, 64, 128, 256],
    lrs: [1e-4, 2e-4, 4e-4, 1e-3],
    epochs: 64,
    trainExamples: 250_000,
    testExamples: 1_000,
    batchSize: 64,
    dState: 128,
  },
  /** Zoology's smoke test (V 256, L 64, K 4, zero filler, 10k / 1k examples, batch 64) at d 64 and 128, one seed, for every mixer. */
  smoke: {
    mixers: ['attention', 'dmattn', 'ssd', 'linear'],
    seqLens: [64],
    kvPairs: 4,
    vocabSize: 256,
    randomNonQueries: false,
    dModels: [64, 128],
    trainExamples: 10_000,
    testExamples: 1_000,
    batchSize: 64,
  },
};

const USAGE = `usage: wm mqar [--preset cpu|paper|smoke] [options] --out DIR
  --recipe tuned|full-window|first
                         training defaults: the measured recipe (tuned, default: DMAttn ends at a top-k window of
                         2K keys), the same without top-k (full-window: DMAttn keep window L, A 0) or this project's
                         first one
                         (first: plain init, q/k norm on, lrs 1e-3,3e-3, 4 epochs); flags below override single fields
  --mixers LIST          attention,dmattn,ssd,linear
  --seq-lens LIST        sequence lengths, e.g. 64,128
  --kv-pairs EXPR        key-value pairs: a number or an expression in L (default L/4)
  --vocab EXPR           vocabulary size: a number or an expression in L (default L+1)
  --d-models LIST        model widths, e.g. 32,64,128
  --lrs LIST             learning rates swept per cell (best kept), e.g. 1e-3,3e-3 (default the recipe's: 1e-3)
  --epochs N             epochs of the cosine schedule (early stop at --stop-accuracy, default 0.99; recipe: 10)
  --train-examples N     --test-examples N   --batch-size N   --seed N
  --zero-filler          filler 0 instead of random non-query tokens (Zoology's original task)
  --overwrite            replace the results.jsonl / mqar.html of an earlier grid in --out (default: refuse)
  --power-a A            power-law exponent of query placement (default 0.01)
  --d-state N            SSD state size (default 64)     --heads N   attention/dmattn heads (default 1)
  --keep-window EXPR     dmattn keep_window_size: K (the number of kv pairs), 2*K, L (no top-k) or an expression in L
  --keep-window-shrink N dmattn: the top-k window starts at L and shrinks linearly to --keep-window over N steps
                         (tuned: 300)
  --keep-window-start N dmattn: steps with the full window (no top-k) before the shrinking starts (replaces the
                         recipe's accuracy trigger)
  --keep-window-start-at ACC  dmattn: keep the full window until the test accuracy reaches ACC, then shrink (tuned: 0.99)
  --time-budget S        per-run time budget in seconds (training stops there, then evaluates)
  --max-steps N          per-run step budget (training stops there, then evaluates)
  --seeds LIST           run every cell once per seed (data + init), e.g. 0,1,2 (default: --seed, 0)
  --init scaled|plain    residual-writing projections: std 0.02/sqrt(2*layers) (scaled, tuned) or 0.02 (plain, first)
  --warmup F             linear warmup as a fraction of all steps (default 0.05)
  --weight-decay W       AdamW weight decay on matrices (default 0.1)
  --eval-every N         steps between points of the accuracy curve (default a quarter epoch)
  --qk-std X             attention/dmattn q and k projection std (default 0.02)
  --qk-norm on|off       dmattn q/k RMSNorm (tuned: off, first: on)
  --dmattn-a X           dmattn initial A (tuned: -1; full-window, first: 0)
  --dmattn-bias exp|linear  dmattn dynamic-mask bias: exp(A softplus(dt)) (HF, default) or A softplus(dt) (arXiv 2508.02124)
  --dt-std X             dmattn dt_proj weight std (default 0.02)`;

function parseList(s: string, flag: string): number[] {
  const out = s.split(',').map((x) => Number(x.trim()));
  if (out.some((x) => !Number.isFinite(x))) throw new Error(`${flag}: '${s}' is not a comma-separated list of numbers`);
  return out;
}

function parseNum(s: string | undefined, flag: string): number {
  const v = Number(s);
  if (s === undefined || !Number.isFinite(v)) throw new Error(`${flag}: expected a number, got '${s}'`);
  return v;
}

function parseOnOff(s: string, flag: string): boolean {
  if (s === 'on' || s === 'true') return true;
  if (s === 'off' || s === 'false') return false;
  throw new Error(`${flag}: expected on or off, got '${s}'`);
}

export function parseMqarArgs(argv: string[]): MqarGridOptions {
  const flags = new Map<string, string>();
  const bools = new Set(['--zero-filler', '--random-non-queries', '--overwrite', '--help', '-h']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (bools.has(a)) {
      flags.set(a, 'true');
      continue;
    }
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}'\n${USAGE}`);
    const [k, inline] = a.split('=', 2);
    const v = inline ?? argv[++i];
    if (v === undefined) throw new Error(`${k} needs a value`);
    flags.set(k, v);
  }
  if (flags.has('--help') || flags.has('-h')) throw Object.assign(new Error(USAGE), { usage: true });
  const presetName = flags.get('--preset');
  if (presetName !== undefined && !MQAR_PRESETS[presetName]) {
    throw new Error(`--preset: unknown preset '${presetName}'; choose one of ${Object.keys(MQAR_PRESETS).join(', ')}`);
  }
  const base = presetName ? MQAR_PRESETS[presetName] : undefined;
  const recipeName = flags.get('--recipe');
  if (recipeName !== undefined) mqarRecipe(recipeName); // unknown names fail here, naming the choices
  const known = new Set(['--preset', '--mixers', '--seq-lens', '--kv-pairs', '--vocab', '--d-models', '--lrs', '--epochs',
    '--train-examples', '--test-examples', '--batch-size', '--seed', '--zero-filler', '--random-non-queries', '--power-a',
    '--d-state', '--heads', '--keep-window', '--time-budget', '--stop-accuracy', '--out', '--layers', '--seeds', '--init', '--warmup',
    '--weight-decay', '--eval-every', '--qk-std', '--recipe', '--max-steps', '--qk-norm', '--dmattn-a', '--dmattn-bias', '--dt-std', '--overwrite', '--keep-window-shrink', '--keep-window-start',
    '--keep-window-start-at']);
  for (const k of flags.keys()) if (!known.has(k)) throw new Error(`unknown option ${k}\n${USAGE}`);

  const need = <T>(v: T | undefined, flag: string): T => {
    if (v === undefined) throw new Error(`${flag} is required (or use --preset cpu|paper|smoke)`);
    return v;
  };
  const get = (k: string) => flags.get(k);
  const expr = (s: string | undefined): string | number | undefined => (s === undefined ? undefined : /^\d+$/.test(s) ? Number(s) : s);
  const o: MqarGridOptions = {
    mixers: need(get('--mixers')?.split(',').map((s) => s.trim()) as MixerKind[] | undefined ?? base?.mixers, '--mixers'),
    seqLens: need(get('--seq-lens') ? parseList(get('--seq-lens')!, '--seq-lens') : base?.seqLens, '--seq-lens'),
    kvPairs: expr(get('--kv-pairs')) ?? base?.kvPairs ?? 'L/4',
    vocabSize: expr(get('--vocab')) ?? base?.vocabSize ?? 'L+1',
    dModels: need(get('--d-models') ? parseList(get('--d-models')!, '--d-models') : base?.dModels, '--d-models'),
    lrs: get('--lrs') ? parseList(get('--lrs')!, '--lrs') : base?.lrs,
    epochs: get('--epochs') ? parseNum(get('--epochs'), '--epochs') : base?.epochs,
    recipe: (get('--recipe') as MqarGridOptions['recipe']) ?? base?.recipe,
    trainExamples: get('--train-examples') ? parseNum(get('--train-examples'), '--train-examples') : base?.trainExamples ?? 10_000,
    testExamples: get('--test-examples') ? parseNum(get('--test-examples'), '--test-examples') : base?.testExamples ?? 1_000,
    batchSize: get('--batch-size') ? parseNum(get('--batch-size'), '--batch-size') : base?.batchSize ?? 64,
    randomNonQueries: get('--zero-filler') ? false : get('--random-non-queries') ? true : base?.randomNonQueries ?? true,
    powerA: get('--power-a') ? parseNum(get('--power-a'), '--power-a') : base?.powerA,
    dState: get('--d-state') ? parseNum(get('--d-state'), '--d-state') : base?.dState,
    keepWindowSize: expr(get('--keep-window')) ?? base?.keepWindowSize,
    keepWindowShrinkSteps: get('--keep-window-shrink') ? parseNum(get('--keep-window-shrink'), '--keep-window-shrink') : base?.keepWindowShrinkSteps,
    keepWindowShrinkStart: get('--keep-window-start') ? parseNum(get('--keep-window-start'), '--keep-window-start') : base?.keepWindowShrinkStart,
    keepWindowShrinkAtAccuracy: get('--keep-window-start-at') ? parseNum(get('--keep-window-start-at'), '--keep-window-start-at') : base?.keepWindowShrinkAtAccuracy,
    numHeads: get('--heads') ? parseNum(get('--heads'), '--heads') : base?.numHeads,
    numLayers: get('--layers') ? parseNum(get('--layers'), '--layers') : base?.numLayers,
    timeBudgetSeconds: get('--time-budget') ? parseNum(get('--time-budget'), '--time-budget') : base?.timeBudgetSeconds,
    maxSteps: get('--max-steps') ? parseNum(get('--max-steps'), '--max-steps') : base?.maxSteps,
    stopAccuracy: get('--stop-accuracy') ? parseNum(get('--stop-accuracy'), '--stop-accuracy') : base?.stopAccuracy,
    seed: get('--seed') ? parseNum(get('--seed'), '--seed') : base?.seed ?? 0,
    seeds: get('--seeds') ? parseList(get('--seeds')!, '--seeds') : get('--seed') ? undefined : base?.seeds,
    init: (get('--init') as MqarGridOptions['init']) ?? base?.init,
    warmupFraction: get('--warmup') ? parseNum(get('--warmup'), '--warmup') : base?.warmupFraction,
    weightDecay: get('--weight-decay') ? parseNum(get('--weight-decay'), '--weight-decay') : base?.weightDecay,
    evalEvery: get('--eval-every') ? parseNum(get('--eval-every'), '--eval-every') : base?.evalEvery,
    qkStd: get('--qk-std') ? parseNum(get('--qk-std'), '--qk-std') : base?.qkStd,
    qkNorm: get('--qk-norm') ? parseOnOff(get('--qk-norm')!, '--qk-norm') : base?.qkNorm,
    dmattnA: get('--dmattn-a') ? parseNum(get('--dmattn-a'), '--dmattn-a') : base?.dmattnA,
    dmattnBias: get('--dmattn-bias') ? dmattnBiasArg(get('--dmattn-bias')!) : base?.dmattnBias,
    dtProjStd: get('--dt-std') ? parseNum(get('--dt-std'), '--dt-std') : base?.dtProjStd,
    outDir: need(get('--out'), '--out'),
    overwrite: get('--overwrite') === 'true',
  };
  return o;
}

export async function run(argv: string[]): Promise<void> {
  let options: MqarGridOptions;
  try {
    options = parseMqarArgs(argv);
  } catch (e) {
    if ((e as { usage?: boolean }).usage) {
      console.log((e as Error).message);
      return;
    }
    throw e;
  }
  validateGrid(options); // refuse impossible settings before loading anything
  await loadBackend();
  const t0 = Date.now();
  const rows = await runMqarGrid(options, {
    log: (line) => console.log(line),
    onEpoch: (e) =>
      console.log(
        `[${e.cell}/${e.cells}] ${e.mixer} L=${e.seq_len} d=${e.d_model} lr=${e.lr} epoch ${e.epoch}/${e.epochs} ` +
          `loss ${e.loss.toFixed(4)} acc ${e.accuracy.toFixed(3)} (${e.seconds.toFixed(1)} s)`,
      ),
    onEval: (p) =>
      console.log(`[${p.cell}/${p.cells}] ${p.mixer} L=${p.seq_len} d=${p.d_model} seed ${p.seed} lr=${p.lr} step ${p.step} ` +
        `loss ${Number.isFinite(p.loss) ? p.loss.toFixed(4) : '-'} acc ${p.accuracy.toFixed(3)} (${p.seconds.toFixed(1)} s)`),
    onCell: (r, cell, cells) =>
      console.log(`cell ${cell}/${cells} done: ${r.mixer} L=${r.seq_len} K=${r.kv_pairs} d=${r.d_model} seed ${r.seed} best lr ${r.lr} ` +
        `accuracy ${r.accuracy.toFixed(3)} after ${r.steps} steps in ${r.seconds.toFixed(1)} s; curve ` +
        r.curve.map((p) => `${p.step}:${p.accuracy.toFixed(2)}`).join(' ')),
  });
  console.log(`\n${formatMqarTable(rows)}\n`);
  console.log(`total ${((Date.now() - t0) / 1000).toFixed(1)} s; wrote ${options.outDir}/results.jsonl and ${options.outDir}/mqar.html`);
}

/** --dmattn-bias: 'exp' or 'linear'. */
function dmattnBiasArg(v: string): 'exp' | 'linear' {
  if (v !== 'exp' && v !== 'linear') throw new Error(`--dmattn-bias must be 'exp' or 'linear', got '${v}'`);
  return v;
}
