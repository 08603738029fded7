#!/usr/bin/env bash
# Side-by-side speed against the fp32 PyTorch reference, in one run on one machine (run it on an idle machine):
#   1. `pnpm bench` (this project, default backend), one process per preset and bench so each row's peak heap and
#      RSS are its own: training on every core (WM_WASM_THREADS, default nproc), decoding on 1 thread like
#      `wm generate` (DECODE_THREADS); the records are merged into out/bench/ours.json
#   2. the PyTorch reference scripts (../shared/bench by default; BENCH_REF=DIR to point elsewhere) for the same
#      presets, with as many threads as ours, each printing one JSON line (collected in out/bench/torch.jsonl)
#   3. the ratio table (ours / PyTorch), also written to out/bench/ratios.md
# Usage: scripts/bench-vs-torch.sh [--presets doge-tiny,doge-tiny-moe,doge-20m] [--steps N]
# Needs /usr/bin/python3 with torch and OpenBLAS as the system BLAS (see the reference's README); the script
# prints which BLAS is selected so a slow reference BLAS is visible in the log.
set -euo pipefail
cd "$(dirname "$0")/.."
REF="${BENCH_REF:-/work/shared/bench}"
PY="${BENCH_PYTHON:-/usr/bin/python3}"
OUT=out/bench
# both sides on every core unless told otherwise (our automatic choice drops to 1 thread when the machine is busy)
export WM_WASM_THREADS="${WM_WASM_THREADS:-$(nproc)}"
mkdir -p "$OUT"
PRESETS="doge-tiny,doge-tiny-moe,doge-20m"
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --presets) PRESETS="$2"; shift 2 ;;
    --steps) EXTRA+=(--steps "$2"); shift 2 ;;
    *) echo "bench-vs-torch: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -d "$REF" ] || { echo "bench-vs-torch: PyTorch reference not found at $REF (set BENCH_REF)" >&2; exit 1; }

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (should be near 0)"
update-alternatives --display libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep -m1 'link currently points to' || echo "(could not query the BLAS alternative)"

echo "== ours: pnpm bench, one process per preset ($PRESETS) ${EXTRA[*]:-}"
node scripts/build-native.mjs   # the native BLAS addon (no-op when up to date; says why when it cannot build)
pnpm -s build
parts=()
for p in ${PRESETS//,/ }; do
  node dist/cli/wm.js bench --only train --presets "$p" --json "$OUT/ours-$p-train.json" ${EXTRA[@]+"${EXTRA[@]}"}
  # decoding with the thread count `wm generate` uses by default (1: many small ops; DECODE_THREADS to change);
  # the big lm_head products on as many OpenBLAS threads as PyTorch gets (WM_DECODE_THREADS, instead of `auto`)
  WM_DECODE_THREADS="${WM_DECODE_THREADS:-$WM_WASM_THREADS}" WM_WASM_THREADS="${DECODE_THREADS:-1}" node dist/cli/wm.js bench --only decode --presets "$p" --json "$OUT/ours-$p-decode.json"
  parts+=("$OUT/ours-$p-train.json" "$OUT/ours-$p-decode.json")
done
node -e "
const fs = require('fs');
const parts = process.argv.slice(1).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const merged = { ...parts[0], records: parts.flatMap((p) => p.records) };
fs.writeFileSync('$OUT/ours.json', JSON.stringify(merged, null, 1) + '\\n');
" "${parts[@]}"
THREADS=$(node -e "const j=require('./$OUT/ours.json'); console.log(j.threads || 1)")
# which path ran our matrix products (wasm+openblas = native BLAS addon; plain wasm = XNNPACK; WM_NATIVE_BLAS=0 forces XNNPACK)
echo "== ours ran on: $(node -e "const j=require('./$OUT/ours.json'); console.log(j.backend + ' (matmuls: ' + (j.matmul || 'n/a') + ')')")"

echo "== PyTorch reference ($REF, $THREADS threads)"
: > "$OUT/torch.jsonl"
for p in ${PRESETS//,/ }; do
  ref="${p#doge-}"                # the reference names doge-tiny 'tiny', doge-tiny-moe 'tiny-moe'
  [ "$p" = doge-20m ] && ref=doge-20m
  # a preset the reference does not define (cheems-tiny: the PyTorch Cheems needs CUDA kernels) gets no ratio
  if ! grep -Eq "[\"']$ref[\"']" "$REF/bench_train.py"; then echo "(no PyTorch reference preset '$ref' for $p: no ratio)"; continue; fi
  "$PY" "$REF/bench_train.py" "$ref" "$THREADS" | sed "s/^{/{\"bench\":\"train\",\"ours\":\"$p\",/" | tee -a "$OUT/torch.jsonl"
  "$PY" "$REF/bench_generate.py" "$ref" "$THREADS" | sed "s/^{/{\"bench\":\"decode\",\"ours\":\"$p\",/" | tee -a "$OUT/torch.jsonl"
done

echo "== ratios (ours / PyTorch, same machine, same run)"
node scripts/bench-ratios.mjs "$OUT/ours.json" "$OUT/torch.jsonl" | tee "$OUT/ratios.md"
