/**
 * Where one cached decode token goes (batch 1, greedy), on the current backend:
 *
 *   WM_WASM_THREADS=1 npx tsx scripts/bench-decode-step.ts [--presets doge-20m,doge-tiny] [--tokens 128] [--top 12]
 *
 * Per preset: CPU ms per token of `generate` (prompt 32, process.cpuUsage, so a busy machine inflates it less than
 * wall time), with the fast decoder (src/runtime/doge-host-decoder.ts) and without it (WM_FAST_DECODE=0 path), then a
 * tf.profile of one cached step of the plain tfjs path: number of kernels, their summed CPU time, and the rest
 * (JS outside kernels: engine bookkeeping, tensor creation, the host-side logits copy).
 */
import { tf, loadBackend } from '../src/runtime/backend';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };

function perToken(model: DogeForCausalLM, prompt: number[][], tokens: number, fastDecode: boolean): { cpu: number; wall: number } {
  const run = () => model.generate(prompt, { maxNewTokens: tokens, eosTokenId: null, fastDecode });
  run(); // warm-up
  const res: { cpu: number; wall: number }[] = [];
  for (let r = 0; r < 3; r++) {
    const c0 = cpuMs(), t0 = performance.now();
    run();
    res.push({ cpu: (cpuMs() - c0) / tokens, wall: (performance.now() - t0) / tokens });
  }
  res.sort((a, b) => a.cpu - b.cpu);
  return res[1];
}

async function main(): Promise<void> {
  await loadBackend({ workload: 'inference' });
  const presets = arg('presets', 'doge-20m,doge-tiny,doge-tiny-moe').split(',');
  const tokens = Number(arg('tokens', '128'));
  const top = Number(arg('top', '12'));
  for (const preset of presets) {
    const model = new DogeForCausalLM(DogeConfig.preset(preset), { seed: 0 });
    const V = model.config.vocab_size;
    const prompt = [Array.from({ length: 32 }, (_, i) => (i * 37 + 5) % V)];
    const plain = perToken(model, prompt, tokens, false);
    const fast = perToken(model, prompt, tokens, true);
    // one cached step of the plain path at position ~96 (the middle of the bench's 32 + 128)
    const ids = [Array.from({ length: 96 }, (_, i) => (i * 37 + 5) % V)];
    const pre = model.forward({ inputIds: ids, useCache: true, logitsToKeep: 1 });
    pre.logits.dispose();
    const step = () => { const o = model.forward({ inputIds: [[7]], cache: pre.cache, useCache: true, logitsToKeep: 1 }); o.logits.dataSync(); o.logits.dispose(); for (const l of o.cache!.layers) { l.k.dispose(); l.v.dispose(); l.d.dispose(); } };
    step();
    const backend = tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> };
    const origTime = backend.time.bind(backend);
    backend.time = async (f: () => void) => { const c0 = cpuMs(); f(); return { kernelMs: cpuMs() - c0 }; };
    const c0 = cpuMs();
    const info = await tf.profile(() => { step(); return tf.scalar(0); });
    const profiledCpu = cpuMs() - c0;
    backend.time = origTime;
    const by = new Map<string, { ms: number; calls: number }>();
    let kernelMs = 0;
    for (const k of info.kernels) {
      const s = by.get(k.name) ?? { ms: 0, calls: 0 };
      s.ms += k.kernelTimeMs as number; s.calls++; kernelMs += k.kernelTimeMs as number;
      by.set(k.name, s);
    }
    const c1 = cpuMs();
    for (let i = 0; i < 20; i++) step();
    const unprofiled = (cpuMs() - c1) / 20;
    for (const l of pre.cache!.layers) { l.k.dispose(); l.v.dispose(); l.d.dispose(); }
    const rows = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top).map(([k, s]) => `${k} ${s.calls}x ${s.ms.toFixed(2)}ms`);
    console.log(JSON.stringify({
      preset, tokens, plain_cpu_ms_per_token: +plain.cpu.toFixed(3), plain_wall_ms_per_token: +plain.wall.toFixed(3),
      fast_cpu_ms_per_token: +fast.cpu.toFixed(3), fast_wall_ms_per_token: +fast.wall.toFixed(3),
      speedup_cpu: +(plain.cpu / fast.cpu).toFixed(2),
      step_cpu_ms_unprofiled: +unprofiled.toFixed(3), profiled_step_cpu_ms: +profiledCpu.toFixed(3),
      kernels: info.kernels.length, kernel_cpu_ms: +kernelMs.toFixed(3), top: rows,
    }));
    model.dispose();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
