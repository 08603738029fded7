#!/usr/bin/env bash
# The GPU check (issue 21): on a GPU machine with no network, from the bundle `pnpm bundle:gpu` makes
# (out/gpu-bundle.tar.gz, < 64 MiB; this script is its gpu-bundle/gpu-check.sh). In under 8 minutes it prints, as
# JSON lines (also collected in gpu-check.jsonl next to it):
#   machine   GPUs (nvidia-smi), driver, cores
#   adapter   the WebGPU adapter Dawn picked (vendor, architecture, description, software or hardware)
#   matmul    a 4096x4096 fp32 matmul on webgpu, TFLOP/s (checked: ones @ ones must give 4096 everywhere)
#   train / decode   `wm bench` on webgpu for doge-tiny, doge-20m and cheems-tiny (tokens/s, kernels per step,
#             µs per kernel), then doge-20m training on wasm (this machine's CPU) for the 10x goal
#   pytorch   where python3 has torch with CUDA: the same presets through the PyTorch reference (torch-ref/, from
#             ../shared/bench), fp32 and bf16 autocast, in the same run
# Usage:  tar xzf gpu-bundle.tar.gz && bash gpu-bundle/gpu-check.sh          (the real check)
#         bash gpu-bundle/gpu-check.sh --smoke   (tiny sizes; runs on Mesa's software adapter, for testing the script)
# Nothing is installed: a missing Vulkan loader is unpacked from debs/ into the bundle, and a missing NVIDIA Vulkan
# ICD file is written into the bundle when the driver's libGLX_nvidia.so.0 is there.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SMOKE=0
for a in "$@"; do
  case "$a" in
    --smoke) SMOKE=1 ;;
    *) echo "gpu-check: unknown argument '$a' (usage: gpu-check.sh [--smoke])" >&2; exit 2 ;;
  esac
done
OUT="${GPU_CHECK_OUT:-$HERE/gpu-check.jsonl}"
: > "$OUT"
T0=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET_S:-450}   # stop starting new steps after this many seconds (the limit is 480)
emit() { printf '%s\n' "$1" | tee -a "$OUT"; }
note() { echo "gpu-check: $*" >&2; }
elapsed() { echo $(( $(date +%s) - T0 )); }
esc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n' ' '; }
left() { [ "$(elapsed)" -lt "$BUDGET" ] || { emit "{\"check\":\"skipped\",\"what\":\"$1\",\"why\":\"time budget ${BUDGET}s used\"}"; return 1; }; }

NODE="$HERE/node/bin/node"
[ -x "$NODE" ] || NODE="$(command -v node || true)"
if [ -z "$NODE" ]; then emit '{"check":"error","stage":"node","message":"no node: the bundle was made with --no-node and this machine has none"}'; exit 1; fi

gpus="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | paste -sd';' || true)"
emit "{\"check\":\"machine\",\"host\":\"$(esc "$(hostname)")\",\"cores\":$(nproc),\"gpus\":\"$(esc "${gpus:-none (no nvidia-smi)}")\",\"node\":\"$("$NODE" --version)\",\"smoke\":$SMOKE}"

# Vulkan loader: the machine's, else the bundled .deb unpacked here (no root needed)
has_vulkan() { ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 ' || ls /usr/lib/x86_64-linux-gnu/libvulkan.so.1 /usr/lib64/libvulkan.so.1 >/dev/null 2>&1; }
if ! has_vulkan; then
  deb="$(ls "$HERE"/debs/libvulkan1_*.deb 2>/dev/null | head -1)"
  if [ -n "$deb" ] && command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$deb" "$HERE/sysroot" && export LD_LIBRARY_PATH="$HERE/sysroot/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    note "Vulkan loader unpacked from $(basename "$deb")"
  else note "no Vulkan loader and no bundled .deb (or no dpkg-deb): webgpu can only use a software adapter"; fi
fi
# NVIDIA Vulkan ICD: containers started without the `graphics` capability lack the JSON file; write one when the
# driver library is present
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && ! ls /etc/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  glx="$(ldconfig -p 2>/dev/null | grep -m1 -o '/[^ ]*libGLX_nvidia.so.0' || true)"
  if [ -n "$glx" ]; then
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3"}}\n' "$glx" > "$HERE/nvidia_icd.json"
    export VK_ICD_FILENAMES="$HERE/nvidia_icd.json"
    note "no Vulkan ICD file; wrote $HERE/nvidia_icd.json for $glx"
  elif [ -n "$gpus" ]; then note "NVIDIA GPU but no Vulkan ICD and no libGLX_nvidia.so.0: start the container with NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics"; fi
fi

export WM_BACKEND=webgpu
cd "$HERE"
if [ "$SMOKE" = 1 ]; then N=256; BENCH=(--steps 1 --batch 1 --seq-len 16 --new-tokens 4); TO=300; else N=4096; BENCH=(--steps 3); TO=100; fi

adapter="$(timeout 120 "$NODE" dist/cli/wm.js gpu-probe "$N" 2> "$HERE/gpu-probe.log")"
rc=$?
printf '%s\n' "$adapter" | grep '^{' | tee -a "$OUT"
[ $rc -eq 0 ] || emit "{\"check\":\"error\",\"stage\":\"gpu-probe\",\"rc\":$rc,\"log\":\"$(esc "$(tail -c 600 "$HERE/gpu-probe.log")")\"}"
software=$(printf '%s' "$adapter" | grep -c '"software":true' || true)
if [ "$software" != 0 ] && [ "$SMOKE" = 0 ]; then
  emit '{"check":"skipped","what":"webgpu bench","why":"only a software adapter (see adapter line); a GPU bench on it would take hours"}'
elif [ $rc -eq 0 ]; then
  for p in doge-tiny doge-20m cheems-tiny; do
    left "webgpu bench $p" || break
    timeout "$TO" "$NODE" dist/cli/wm.js bench --presets "$p" "${BENCH[@]}" 2> "$HERE/bench-$p.log" | grep '^{' | tee -a "$OUT"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || emit "{\"check\":\"error\",\"stage\":\"webgpu bench $p\",\"rc\":$rc,\"log\":\"$(esc "$(tail -c 600 "$HERE/bench-$p.log")")\"}"
  done
fi

# this machine's CPU on wasm, for the "10x our own wasm training" goal
if left "wasm bench doge-20m"; then
  WM_BACKEND=wasm timeout "$TO" "$NODE" dist/cli/wm.js bench --presets doge-20m --only train "${BENCH[@]}" 2> "$HERE/bench-wasm.log" | grep '^{' | tee -a "$OUT"
fi

PY="$(command -v python3 || true)"
if [ -n "$PY" ] && [ -d "$HERE/torch-ref" ] && "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  if left pytorch; then
    if [ "$SMOKE" = 1 ]; then presets=tiny; else presets=tiny,doge-20m; fi
    timeout 150 "$PY" "$HERE/gpu-torch-bench.py" "$HERE/torch-ref" "$presets" 2> "$HERE/torch.log" | tee -a "$OUT"
    [ "${PIPESTATUS[0]}" -eq 0 ] || emit "{\"check\":\"error\",\"stage\":\"pytorch\",\"log\":\"$(esc "$(tail -c 600 "$HERE/torch.log")")\"}"
  fi
else
  emit "{\"check\":\"skipped\",\"what\":\"pytorch\",\"why\":\"$( [ -z "$PY" ] && echo 'no python3' || { [ -d "$HERE/torch-ref" ] || echo 'no torch-ref in the bundle'; } || true)$( [ -n "$PY" ] && [ -d "$HERE/torch-ref" ] && echo 'no torch with CUDA' || true)\"}"
fi
emit "{\"check\":\"done\",\"elapsed_s\":$(elapsed),\"jsonl\":\"$(esc "$OUT")\"}"
