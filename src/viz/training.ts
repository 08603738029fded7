/**
 * Loss curves, static and live. The live plot redraws one notebook output in place while a training loop
 * in the library runs (pass `plot.push` as the loop's logging callback).
 */
import { lineFigure, type Series } from './basic';
import type { Figure } from './figure';
import { liveFigure, type ShowOptions } from './show';

export interface LossCurveOptions {
  title?: string;
  yTitle?: string;
  logY?: boolean;
  height?: number;
  /** Exponential moving average weight for an extra smoothed line per series (0 = none, default 0). */
  smooth?: number;
  /** Markers on the points (default: for series of at most 40 points, so a single eval point is visible). */
  markers?: boolean;
  /**
   * Horizontal reference lines (e.g. a unigram baseline: the loss to beat), dashed across the steps drawn and never
   * smoothed.
   */
  baselines?: { name: string; value: number }[];
}

/** Exponential moving average with bias correction (like TensorBoard's smoothing). */
export function ema(values: ArrayLike<number>, weight: number): number[] {
  if (weight < 0 || weight >= 1) throw new Error(`ema: weight must be in [0, 1), got ${weight}`);
  const out: number[] = [];
  let m = 0;
  for (let i = 0; i < values.length; i++) {
    m = weight * m + (1 - weight) * values[i];
    out.push(m / (1 - weight ** (i + 1)));
  }
  return out;
}

/** Plotly's default colours: series i of a loss figure gets COLORS[i], its smoothed line the same colour. */
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/**
 * Loss against step for one or more runs (e.g. train and validation). With `smooth`, each series also gets its
 * moving average in the same colour: the raw values thin and faint, the smoothed line bold, one legend group per run.
 */
export function lossCurveFigure(series: Series[], options: LossCurveOptions = {}): Figure {
  const all: Series[] = [];
  for (const s of series) {
    all.push(s);
    if (options.smooth) all.push({ name: `${s.name} (smoothed)`, x: s.x, y: ema(s.y, options.smooth) });
  }
  const fig = lineFigure(all, {
    title: options.title ?? 'loss',
    xTitle: 'step',
    yTitle: options.yTitle ?? 'loss',
    logY: options.logY,
    height: options.height,
    markers: options.markers,
  });
  const per = options.smooth ? 2 : 1;
  fig.data.forEach((trace, i) => {
    const color = COLORS[Math.floor(i / per) % COLORS.length];
    const smoothed = per === 2 && i % 2 === 1;
    Object.assign(trace, { legendgroup: series[Math.floor(i / per)].name, line: { color, width: smoothed ? 2.5 : per === 2 ? 1 : 2 } });
    if (per === 2 && !smoothed) Object.assign(trace, { opacity: 0.4, marker: { color, size: 4 } });
  });
  const xs = series.flatMap((s) => Array.from(s.x));
  const [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1];
  (options.baselines ?? []).forEach((b, k) => {
    if (!Number.isFinite(b.value)) throw new Error(`lossCurveFigure: baseline '${b.name}' must be a finite number, got ${b.value}`);
    const color = COLORS[(series.length + k) % COLORS.length];
    fig.data.push({ type: 'scatter', mode: 'lines', name: b.name, x: [x0, x1], y: [b.value, b.value], line: { color, width: 1.5, dash: 'dash' } });
  });
  return fig;
}

export interface LiveLossPlot {
  /** Record one value; redraws at most every `minIntervalMs` (and always on `close`). */
  push(step: number, value: number, series?: string): void;
  /** Add a horizontal reference line (LossCurveOptions.baselines), e.g. the unigram baseline's loss. */
  baseline(name: string, value: number): void;
  /** The recorded series. */
  readonly series: Series[];
  /** The current figure. */
  figure(): Figure;
  /** Final redraw; outside tslab writes the figure to an HTML file and returns its path. */
  close(options?: ShowOptions): string | undefined;
}

/**
 * A loss plot that updates in place in a tslab cell. Outside tslab it only records (and `close` writes a
 * file), so the same code runs in scripts.
 */
export function liveLossPlot(options: LossCurveOptions & { minIntervalMs?: number } = {}): LiveLossPlot {
  const live = liveFigure();
  const byName = new Map<string, { name: string; x: number[]; y: number[] }>();
  const minInterval = options.minIntervalMs ?? 1000;
  let lastDraw = 0;
  const baselines = [...(options.baselines ?? [])];
  const figure = () => lossCurveFigure([...byName.values()], { ...options, baselines });
  return {
    push(step, value, series = 'train') {
      if (!Number.isFinite(step)) throw new Error(`liveLossPlot.push: step must be a finite number, got ${step}`);
      let s = byName.get(series);
      if (!s) byName.set(series, (s = { name: series, x: [], y: [] }));
      s.x.push(step);
      s.y.push(value);
      const now = Date.now();
      if (now - lastDraw >= minInterval) {
        lastDraw = now;
        live.update(figure());
      }
    },
    baseline(name, value) {
      if (!Number.isFinite(value)) throw new Error(`liveLossPlot.baseline: '${name}' must be a finite number, got ${value}`);
      baselines.push({ name, value });
    },
    get series() {
      return [...byName.values()];
    },
    figure,
    close(showOptions) {
      live.update(figure());
      return live.close(showOptions);
    },
  };
}
