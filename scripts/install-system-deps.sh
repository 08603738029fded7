#!/usr/bin/env bash
# System packages for the notebook tests, from Debian (run as root; .ci/run calls it before `pnpm install`):
#   - Jupyter (nbconvert, nbclient, jupyter_client, ipykernel, jupyter_core) to execute the notebooks through
#     the real tslab kernel, which `scripts/notebooks.mjs` registers from node_modules after `pnpm install`;
#   - python3-plotly, so a local JupyterLab can render plotly MIME bundles (not needed by the tests);
#   - chromium (+ a font) for the headless render check (driven by playwright-core);
#   - tmux, which drives `wm chat` in a real terminal in tests/chat.test.ts;
#   - libopenblas0-pthread (OpenBLAS, loaded at run time by the native matmul addon native/wm_blas.c) and gcc +
#     libc6-dev to build that addon (scripts/build-native.mjs; Node's headers come with the nodejs package);
#   - Mesa's EGL/OpenGL (libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri): the software WebGPU adapter that the webgpu
#     tests run on where there is no GPU (src/runtime/webgpu.ts); libvulkan1, the Vulkan loader Dawn drives GPUs with.
# Idempotent and fast: when every package is already installed it only runs one dpkg-query.
#
# `pnpm test` runs it first: as root it installs what is missing; as another user it stops at once with the exact
# command to run; on a system without dpkg (not Debian/Ubuntu) it checks for the programs and says what to install.
set -euo pipefail
SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"

PACKAGES=(
  jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel jupyter-core
  python3-plotly
  chromium fonts-dejavu-core
  libopenblas0-pthread gcc libc6-dev
  libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri libvulkan1
  tmux
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  # Not Debian: the tests need the programs, however they were installed.
  need=()
  command -v jupyter >/dev/null 2>&1 && jupyter nbconvert --version >/dev/null 2>&1 || need+=("Jupyter with nbconvert, nbclient and ipykernel (e.g. pip install nbconvert nbclient ipykernel)")
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=("Chromium (a 'chromium' or 'chromium-browser' on PATH)")
  command -v tmux >/dev/null 2>&1 || need+=("tmux")
  if [ "${#need[@]}" -eq 0 ]; then
    echo "install-system-deps: no dpkg; jupyter nbconvert and chromium found"
    exit 0
  fi
  echo "install-system-deps: the notebook and browser tests need: ${need[*]}. Install them, then run pnpm test again." >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-system-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: the notebook, browser and webgpu tests need Debian packages that are missing: ${missing[*]}" >&2
  echo "install-system-deps: run this once, then pnpm test again:" >&2
  echo "    sudo bash $SELF" >&2
  exit 1
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-system-deps: done"
