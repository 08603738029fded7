/**
 * The optional native BLAS for the wasm backend's matrix products (native/wm_blas.c, built by
 * scripts/build-native.mjs into native/build/wm_blas.node).
 *
 * Why: XNNPACK inside tfjs-backend-wasm is capped by wasm's 128-bit SIMD without FMA (~45 GFLOP/s per core on the
 * development machine); OpenBLAS with AVX2/FMA on the same core is ~1.5-2x faster. The addon receives Float32Array
 * views of the wasm heap and calls cblas_sgemm on their memory directly: no copy in or out.
 *
 * Selection: `WM_NATIVE_BLAS=0` (or `loadBackend({ nativeBlas: false })`) never loads it; `1`/true requires it
 * (loadBackend fails naming why it cannot load); unset/'auto' uses it when it loads. Only OpenBLAS or MKL is
 * accepted (the addon refuses a reference BLAS). `WM_BLAS_LIB=/path/libopenblas.so` tries only that library.
 *
 * This file depends on nothing of the library (node built-ins only).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The addon's functions (see native/wm_blas.c for the argument contract). */
export interface NativeBlas {
  /** for i < batch: C_i[M,N] = op(A_i) op(B_i) (row-major; strides in elements, 0 = broadcast; C_i = c + i*M*N) */
  sgemm(a: Float32Array, b: Float32Array, c: Float32Array, batch: number, M: number, N: number, K: number,
    transA: number, transB: number, strideA: number, strideB: number): void;
  /** for i < batch: y_i[M] = op(A_i) x_i, A_i stored [M, K] (trans 0) or [K, M] (trans 1); y_i = y + i*M */
  sgemv(a: Float32Array, x: Float32Array, y: Float32Array, batch: number, M: number, K: number, trans: number,
    strideA: number, strideX: number): void;
  setThreads(n: number): void;
  /** The thread count last given to setThreads (1 until then). */
  readonly threads: number;
  /** Which library loaded, and its build configuration (e.g. "OpenBLAS 0.3.21 ... Haswell MAX_THREADS=64"). */
  lib: string;
  config: string;
}

interface Addon {
  init(paths: string[]): { ok: true; lib: string; config: string } | { ok: false; reason: string };
  sgemm: NativeBlas['sgemm'];
  sgemv: NativeBlas['sgemv'];
  setThreads(n: number): void;
}

/** The built addon: same path from src/runtime (tsx) and dist/runtime (compiled). */
export const NATIVE_BLAS_ADDON = path.join(__dirname, '..', '..', 'native', 'build', 'wm_blas.node');

/** Libraries tried in order: OpenBLAS by its own names (pthread build first), then the BLAS alternative, then MKL. */
const BLAS_CANDIDATES = [
  'libopenblas.so.0', 'libopenblasp.so.0', 'libopenblas.so',
  '/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3', 'libblas.so.3',
  'libmkl_rt.so', 'libmkl_rt.so.2', 'libopenblas.dylib',
];

let loaded: NativeBlas | null | undefined;
let unavailableReason = '';

/**
 * Load the addon and a BLAS once per process. Returns null (and `nativeBlasUnavailableReason()` says why) when the
 * addon is not built or no acceptable BLAS is installed; never throws.
 */
export function loadNativeBlas(): NativeBlas | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (!fs.existsSync(NATIVE_BLAS_ADDON)) {
    unavailableReason = `addon not built (${path.relative(process.cwd(), NATIVE_BLAS_ADDON) || NATIVE_BLAS_ADDON} missing; run node scripts/build-native.mjs)`;
    return null;
  }
  let addon: Addon;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(NATIVE_BLAS_ADDON) as Addon;
  } catch (e) {
    unavailableReason = `addon failed to load (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`;
    return null;
  }
  const candidates = process.env.WM_BLAS_LIB ? [process.env.WM_BLAS_LIB] : BLAS_CANDIDATES;
  // OpenBLAS's idle worker threads spin for 2^28 cycles (~0.1 s) after each call before sleeping, taking a core
  // from the wasm threads between products; 2^20 (~0.4 ms) keeps them warm across back-to-back products only.
  // Read once when the library loads, so it is set before init.
  if (process.env.OPENBLAS_THREAD_TIMEOUT === undefined) process.env.OPENBLAS_THREAD_TIMEOUT = '20';
  const r = addon.init(candidates);
  if (!r.ok) {
    unavailableReason = `no OpenBLAS/MKL found (${r.reason.slice(0, 300)})`;
    return null;
  }
  let threads = 1;
  loaded = {
    sgemm: addon.sgemm, sgemv: addon.sgemv, lib: r.lib, config: r.config,
    setThreads: (n: number) => { threads = n; addon.setThreads(n); },
    get threads() { return threads; },
  };
  return loaded;
}

/** Why `loadNativeBlas()` returned null ('' when it loaded or was not tried). */
export function nativeBlasUnavailableReason(): string {
  return unavailableReason;
}

/** The WM_NATIVE_BLAS / option setting: 'auto' (use when it loads), 'on' (required) or 'off'. */
export function nativeBlasSetting(option: boolean | 'auto' | undefined, env = process.env.WM_NATIVE_BLAS): 'auto' | 'on' | 'off' {
  if (option === true) return 'on';
  if (option === false) return 'off';
  if (option === 'auto' || env === undefined || env === '' || env === 'auto') return 'auto';
  if (env === '1' || env === 'true' || env === 'on') return 'on';
  if (env === '0' || env === 'false' || env === 'off') return 'off';
  throw new Error(`WM_NATIVE_BLAS must be 0, 1 or auto, got '${env}'`);
}
