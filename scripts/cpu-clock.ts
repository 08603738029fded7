// Shared by the profiling scripts (bench-profile.ts, bench-mqar-step.ts).
import { tf } from '../src/runtime/backend';

/**
 * Kernel times as process CPU time (user + system, all threads) instead of wall time: on a machine shared with other
 * jobs a kernel's wall time includes the time it waited for a core, its CPU time does not (with 1 XNNPACK thread
 * CPU time = the kernel's time on an idle core; with 2 threads it is the sum over both). WM_PROFILE_CLOCK=wall keeps
 * tfjs' wall-time clock. Call after loadBackend (it replaces the active backend's timer).
 */
export function useCpuClock(): void {
  if (process.env.WM_PROFILE_CLOCK === 'wall') return;
  const backend = tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> };
  backend.time = async (f: () => void) => {
    const u0 = process.cpuUsage();
    f();
    const u = process.cpuUsage(u0);
    return { kernelMs: (u.user + u.system) / 1000 };
  };
}
