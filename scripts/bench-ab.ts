/**
 * In-process A/B of the wasm kernel patches (src/runtime/wasm-patches.ts) on whole training steps: steps alternate
 * between the plain tfjs-backend-wasm kernels and the patched ones, so both see the same machine load.
 *
 *   npx tsx scripts/bench-ab.ts [--presets doge-tiny,...] [--kernels BatchMatMul,GatherV2] [--rounds 5]
 *
 * `--kernels` names the patches under test (default: all); the other patches stay on in both arms. With
 * `--baseline previous`, BatchMatMul's plain arm is the patch this project had before (main until this branch:
 * transpose explicitly, then the plain kernel; batched products still on the naive loop). Prints per arm the
 * minimum and median step time, as CPU time of the process (robust to other jobs when WM_WASM_THREADS=1) and wall
 * time, and the ratio plain / patched.
 *
 * `--baseline xnnpack` instead compares the native BLAS path of BatchMatMul (arm "patched", src/runtime/native-blas.ts)
 * with the XNNPACK path of the same patch (arm "plain"); every other patch stays on in both arms.
 */
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { originalWasmKernels, setWasmNativeBlas, wasmNativeBlas } from '../src/runtime/wasm-patches';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const SHAPES: Record<string, [number, number]> = { 'doge-tiny': [8, 256], 'doge-tiny-moe': [8, 256], 'doge-20m': [4, 512] };

function randomIds(B: number, T: number, V: number): tf.Tensor2D {
  let s = 1;
  const a = new Int32Array(B * T);
  for (let i = 0; i < a.length; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s % V; }
  return tf.tensor2d(a, [B, T], 'int32');
}

/** The BatchMatMul patch before this work: transposed operands transposed explicitly, then the plain kernel. */
function previousBatchMatMul(orig: tf.KernelConfig): tf.KernelConfig {
  const transpose = tf.getKernel('Transpose', 'wasm')!;
  return {
    ...orig,
    kernelFunc: (args) => {
      const { inputs, backend, attrs } = args as unknown as {
        inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; backend: { disposeData(id: object): void }; attrs: { transposeA: boolean; transposeB: boolean };
      };
      if (!attrs.transposeA && !attrs.transposeB) return orig.kernelFunc(args);
      const swapLast = (x: tf.TensorInfo): tf.TensorInfo => {
        const r = x.shape.length;
        const perm = Array.from({ length: r }, (_, i) => i);
        perm[r - 2] = r - 1;
        perm[r - 1] = r - 2;
        return transpose.kernelFunc({ inputs: { x }, backend, attrs: { perm } } as never) as tf.TensorInfo;
      };
      const a = attrs.transposeA ? swapLast(inputs.a) : inputs.a;
      const b = attrs.transposeB ? swapLast(inputs.b) : inputs.b;
      const out = orig.kernelFunc({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } } as never);
      if (a !== inputs.a) backend.disposeData(a.dataId);
      if (b !== inputs.b) backend.disposeData(b.dataId);
      return out;
    },
  };
}

const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  await loadBackend({ backend: 'wasm' });
  const kernels = arg('kernels', [...originalWasmKernels.keys()].join(',')).split(',');
  const rounds = Number(arg('rounds', '5'));
  const patched = new Map(kernels.map((k) => {
    const cfg = tf.getKernel(k, 'wasm');
    if (!cfg || !originalWasmKernels.has(k)) throw new Error(`bench-ab: '${k}' is not a patched wasm kernel (${[...originalWasmKernels.keys()].join(', ')})`);
    return [k, cfg];
  }));
  const plainOf = new Map(kernels.map((k) => [k, originalWasmKernels.get(k)!]));
  if (arg('baseline', 'plain') === 'previous' && plainOf.has('BatchMatMul')) plainOf.set('BatchMatMul', previousBatchMatMul(plainOf.get('BatchMatMul')!));
  const nativeAB = arg('baseline', 'plain') === 'xnnpack';
  const blas = wasmNativeBlas();
  if (nativeAB && !blas) throw new Error('bench-ab --baseline xnnpack: the native BLAS is not in use (see the backend line)');
  const use = (arm: 'plain' | 'patched') => {
    if (nativeAB) { setWasmNativeBlas(arm === 'plain' ? null : blas); return; }
    for (const k of kernels) {
      tf.unregisterKernel(k, 'wasm');
      tf.registerKernel(arm === 'plain' ? plainOf.get(k)! : patched.get(k)!);
    }
  };
  for (const preset of arg('presets', 'doge-tiny').split(',')) {
    const [B, T] = SHAPES[preset];
    const model = new DogeForCausalLM(DogeConfig.preset(preset), { seed: 0 });
    const ids = randomIds(B, T, model.config.vocab_size);
    const step = (): { cpu: number; wall: number; loss: number } => {
      const c0 = cpuMs(), w0 = performance.now();
      const { value, grads } = model.variableGrads(() => model.forward({ inputIds: ids, labels: ids, training: true, lossOnly: true }).loss!);
      const loss = value.dataSync()[0];
      value.dispose();
      for (const g of grads.values()) g.dispose();
      return { cpu: cpuMs() - c0, wall: performance.now() - w0, loss };
    };
    const res: Record<'plain' | 'patched', { cpu: number[]; wall: number[]; loss: number }> = {
      plain: { cpu: [], wall: [], loss: 0 }, patched: { cpu: [], wall: [], loss: 0 },
    };
    for (const arm of ['plain', 'patched'] as const) { use(arm); step(); } // warm-up both
    for (let r = 0; r < rounds; r++) {
      for (const arm of (r % 2 ? ['patched', 'plain'] : ['plain', 'patched']) as ('plain' | 'patched')[]) {
        use(arm);
        const s = step();
        res[arm].cpu.push(s.cpu); res[arm].wall.push(s.wall); res[arm].loss = s.loss;
      }
    }
    use('patched');
    const line = (arm: 'plain' | 'patched') => `${arm.padEnd(8)} CPU min ${Math.min(...res[arm].cpu).toFixed(0)} median ${median(res[arm].cpu).toFixed(0)} ms | wall min ${Math.min(...res[arm].wall).toFixed(0)} median ${median(res[arm].wall).toFixed(0)} ms | loss ${res[arm].loss}`;
    console.log(`\n${preset} ${B}x${T} forward+backward, ${nativeAB ? 'native BLAS (patched) vs XNNPACK (plain) BatchMatMul' : `patches under test: ${kernels.join(', ')}`} (${rounds} rounds)`);
    console.log(line('plain'));
    console.log(line('patched'));
    console.log(`speed-up (plain / patched): CPU min ${(Math.min(...res.plain.cpu) / Math.min(...res.patched.cpu)).toFixed(2)}x, median ${(median(res.plain.cpu) / median(res.patched.cpu)).toFixed(2)}x; wall median ${(median(res.plain.wall) / median(res.patched.wall)).toFixed(2)}x`);
    ids.dispose();
    model.dispose();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
