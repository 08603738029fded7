/**
 * Per-kernel profile of one training step (forward and backward separately) on the current backend.
 *
 *   npx tsx scripts/bench-profile.ts [--presets doge-tiny,doge-tiny-moe,doge-20m] [--top 15] [--json FILE]
 *
 * For each preset: tf.profile of the forward pass alone (training mode, with the loss), then of forward + backward;
 * backward = the second minus the first, per kernel name. BatchMatMul kernels also get their FLOPs (2*M*N*K from the
 * kernel's input shapes and transpose attributes are not visible, so from the output shape and the shared dimension)
 * and the achieved GFLOP/s. Kernel times are wall time per kernel (synchronous wasm kernels), so on a shared machine
 * compare shares and ratios within one run, not absolute numbers.
 */
import * as fs from 'node:fs';
import { tf, loadBackend } from '../src/runtime/backend';
import { useCpuClock } from './cpu-clock';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { wasmKernelStats, type MatMulStat } from '../src/runtime/wasm-patches';

interface KernelStat { ms: number; calls: number; flops: number }
type Profile = Map<string, KernelStat>;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const CASES: Record<string, { batch: number; seqLen: number }> = {
  'doge-tiny': { batch: 8, seqLen: 256 },
  'doge-tiny-moe': { batch: 8, seqLen: 256 },
  'doge-20m': { batch: 4, seqLen: 512 },
};

function randomIds(B: number, T: number, V: number, seed: number): tf.Tensor2D {
  let s = seed >>> 0;
  const a = new Int32Array(B * T);
  for (let i = 0; i < a.length; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; a[i] = s % V; }
  return tf.tensor2d(a, [B, T], 'int32');
}

/** FLOPs of a BatchMatMul from its input and output shapes: 2 * batch * M * N * K, K = the shared dimension. */
function matmulFlops(inShapes: number[][], outShape: number[]): number {
  const a = inShapes[0], b = inShapes[1];
  if (!a || !b || !outShape) return 0;
  const out = outShape.reduce((x, y) => x * y, 1);
  const [M, N] = outShape.slice(-2);
  // K is the dimension of a's last two not equal to M (or, for square cases, either); same for b.
  const a2 = a.slice(-2), b2 = b.slice(-2);
  let K = a2[0] === M ? a2[1] : a2[0];
  if (a2[0] === M && a2[1] === M) K = b2[0] === N ? b2[1] : b2[0];
  return 2 * out * K;
}

async function profileOf(f: () => void): Promise<{ prof: Profile; wallMs: number }> {
  const t0 = performance.now();
  const info = await tf.profile(() => { f(); return tf.scalar(0); });
  const wallMs = performance.now() - t0;
  const prof: Profile = new Map();
  for (const k of info.kernels) {
    if (k.name === 'unnamed scope') continue; // tf.customGrad ops: their inner kernels are listed on their own
    const ms = k.kernelTimeMs as number;
    const s = prof.get(k.name) ?? { ms: 0, calls: 0, flops: 0 };
    s.ms += ms;
    s.calls += 1;
    if (k.name === 'BatchMatMul' || k.name === '_FusedMatMul') s.flops += matmulFlops(k.inputShapes as number[][], k.outputShapes[0] as number[]);
    prof.set(k.name, s);
  }
  return { prof, wallMs };
}

function subtract(all: Profile, part: Profile): Profile {
  const out: Profile = new Map();
  for (const [k, s] of all) {
    const p = part.get(k) ?? { ms: 0, calls: 0, flops: 0 };
    out.set(k, { ms: s.ms - p.ms, calls: s.calls - p.calls, flops: s.flops - p.flops });
  }
  return out;
}

function table(title: string, p: Profile, top: number): Record<string, unknown>[] {
  const total = [...p.values()].reduce((a, s) => a + s.ms, 0);
  const rows = [...p.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top);
  console.log(`\n${title}: ${total.toFixed(0)} ms kernel time`);
  console.log('  kernel                    ms   share  calls   GFLOP  GFLOP/s');
  const out: Record<string, unknown>[] = [];
  for (const [name, s] of rows) {
    const gf = s.flops / 1e9;
    const rate = s.flops > 0 && s.ms > 0 ? gf / (s.ms / 1000) : 0;
    console.log(`  ${name.padEnd(22)} ${s.ms.toFixed(0).padStart(6)} ${(100 * s.ms / total).toFixed(1).padStart(6)}% ${String(s.calls).padStart(6)} ${s.flops ? gf.toFixed(2).padStart(7) : '       '} ${rate ? rate.toFixed(1).padStart(8) : ''}`);
    out.push({ kernel: name, ms: +s.ms.toFixed(2), share: +(s.ms / total).toFixed(4), calls: s.calls, gflop: +gf.toFixed(3), gflops: +rate.toFixed(2) });
  }
  return out;
}

/** BatchMatMul cases the wasm kernel patch handled (N/T = plain/transposed operand, batch of a/b), CPU time. */
function matmulTable(title: string, m: Map<string, MatMulStat>): void {
  if (m.size === 0) return;
  console.log(`  patched BatchMatMul cases, ${title}:`);
  for (const [k, s] of [...m.entries()].sort((x, y) => y[1].ms - x[1].ms)) {
    console.log(`    ${k.padEnd(22)} ${String(s.calls).padStart(5)} calls ${s.ms.toFixed(0).padStart(6)} ms (transposes ${s.transposeMs.toFixed(0)} ms) ${(s.flops / 1e9).toFixed(2)} GFLOP ${(s.flops / 1e6 / s.ms).toFixed(1)} GFLOP/s`);
  }
}

async function main(): Promise<void> {
  await loadBackend({ backend: process.env.WM_BACKEND ?? 'wasm' });
  useCpuClock();
  const presets = arg('presets', 'doge-tiny,doge-tiny-moe,doge-20m').split(',');
  const top = Number(arg('top', '15'));
  const jsonFile = arg('json', '');
  const results: Record<string, unknown>[] = [];
  for (const preset of presets) {
    const c = CASES[preset];
    if (!c) throw new Error(`bench-profile: unknown preset '${preset}' (choose from ${Object.keys(CASES).join(', ')})`);
    const model = new DogeForCausalLM(DogeConfig.preset(preset), { seed: 0 });
    const ids = randomIds(c.batch, c.seqLen, model.config.vocab_size, 1);
    const lossFn = () => model.forward({ inputIds: ids, labels: ids, training: true, lossOnly: true }).loss!;
    const fwd = () => tf.tidy(() => { lossFn().dataSync(); });
    const step = () => {
      const { value, grads } = model.variableGrads(lossFn);
      value.dataSync(); value.dispose();
      for (const g of grads.values()) g.dispose();
    };
    step(); // warm-up
    wasmKernelStats(true);
    const f = await profileOf(fwd);
    const mf = wasmKernelStats(true)!;
    const fb = await profileOf(step);
    const mfb = wasmKernelStats(false)!;
    const b = subtract(fb.prof, f.prof);
    console.log(`\n=== ${preset} ${c.batch}x${c.seqLen} (wall: forward ${f.wallMs.toFixed(0)} ms, forward+backward ${fb.wallMs.toFixed(0)} ms)`);
    const fr = table('forward', f.prof, top);
    const br = table('backward', b, top);
    matmulTable('forward', mf);
    matmulTable('forward+backward', mfb);
    results.push({ preset, batch: c.batch, seq_len: c.seqLen, forward_wall_ms: f.wallMs, step_wall_ms: fb.wallMs, forward: fr, backward: br });
    ids.dispose();
    model.dispose();
  }
  if (jsonFile) fs.writeFileSync(jsonFile, JSON.stringify(results, null, 1));
}

main().catch((e) => { console.error(e); process.exit(1); });
