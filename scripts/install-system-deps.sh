#!/usr/bin/env bash
# System packages for the notebook tests, from Debian (run as root; .ci/run calls it before `pnpm install`):
#   - Jupyter (nbconvert, nbclient, jupyter_client, ipykernel, jupyter_core) to execute the notebooks through
#     the real tslab kernel, which `scripts/notebooks.mjs` registers from node_modules after `pnpm install`;
#   - python3-plotly, so a local JupyterLab can render plotly MIME bundles (not needed by the tests);
#   - chromium (+ a font) for the headless render check (driven by playwright-core).
# Idempotent and fast: when every package is already installed it only runs one dpkg-query.
set -euo pipefail

PACKAGES=(
  jupyter-nbconvert python3-nbclient jupyter-client python3-ipykernel jupyter-core
  python3-plotly
  chromium fonts-dejavu-core
)

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
  echo "install-system-deps: missing ${missing[*]}; run this script as root (apt-get install)" >&2
  exit 1
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-system-deps: done"
