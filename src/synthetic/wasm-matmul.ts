/**
 * Speed fix for the tfjs wasm backend (4.22): BatchMatMul with transposeA or transposeB is ~10x slower than an
 * explicit Transpose followed by a plain matmul (measured here: [4096,64]^T x [4096,192] 45 ms vs 3.6 ms), and every
 * matmul gradient and every `x W^T` hits it. The fix now lives in src/ops (`installWasmBatchMatMulFix`, installed when
 * src/ops is imported); this name stays for the MQAR code and notebooks that call it. Idempotent, no-op off wasm.
 */
import { installWasmBatchMatMulFix } from '../ops';

export function installWasmMatMulFix(): boolean {
  return installWasmBatchMatMulFix();
}
