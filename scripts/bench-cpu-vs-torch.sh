#!/usr/bin/env bash
# Load-independent comparison with the PyTorch reference for a BUSY machine: CPU time of one full optimizer step with
# ONE thread on both sides (ours: `wm bench`'s step_cpu_ms with WM_WASM_THREADS=1; PyTorch: time.process_time()
# around the reference's own step from ../shared/bench/bench_train.py, torch.set_num_threads(1)). On an idle machine
# use scripts/bench-vs-torch.sh (wall-clock tokens/s with all cores) instead.
# Usage: scripts/bench-cpu-vs-torch.sh [--presets doge-tiny,doge-tiny-moe,doge-20m]
set -euo pipefail
cd "$(dirname "$0")/.."
REF="${BENCH_REF:-/work/shared/bench}"
PY="${BENCH_PYTHON:-/usr/bin/python3}"
OUT=out/bench
mkdir -p "$OUT"
PRESETS="doge-tiny,doge-tiny-moe,doge-20m"
[ "${1:-}" = --presets ] && PRESETS="$2"
[ -d "$REF" ] || { echo "bench-cpu-vs-torch: PyTorch reference not found at $REF (set BENCH_REF)" >&2; exit 1; }
pnpm -s build
echo "| preset | ours, 1 thread, CPU ms/step | PyTorch, 1 thread, CPU ms/step | ratio (speed) |"
echo "|---|---|---|---|"
for p in ${PRESETS//,/ }; do
  ref="${p#doge-}"
  [ "$p" = doge-20m ] && ref=doge-20m
  WM_WASM_THREADS=1 node dist/cli/wm.js bench --only train --presets "$p" --steps 3 --json "$OUT/cpu-ours-$p.json" > /dev/null 2>&1
  ours=$(node -e "const r=require('./$OUT/cpu-ours-$p.json').records[0]; console.log(Math.round(r.step_cpu_ms))")
  theirs=$(cd "$REF" && "$PY" - "$ref" <<'PYEOF'
import sys, time, torch
from doge_ref import Cfg, Doge
from bench_train import PRESETS
torch.set_num_threads(1); torch.manual_seed(0)
p = PRESETS[sys.argv[1]]; model = Doge(Cfg(**p["model"]))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
ids = torch.randint(0, p["model"]["vocab_size"], (p["batch"], p["seq"]))
def step():
    _, loss = model(ids, labels=ids); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad(set_to_none=True)
for _ in range(2): step()
ts = []
for _ in range(3):
    c0 = time.process_time(); step(); ts.append(time.process_time() - c0)
print(round(sorted(ts)[1] * 1000))
PYEOF
)
  echo "| $p | $ours | $theirs | $(node -e "console.log(($theirs / $ours).toFixed(2) + '×')") |"
done
