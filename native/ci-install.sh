#!/usr/bin/env bash
# CI hook (called from .ci/run): installs what native/build.sh needs from Debian and builds
# native/build/libpetal.so. Safe to re-run: apt-get skips installed packages and build.sh
# skips an up-to-date library.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# oneDNN provides conv, sgemm and the OpenMP runtime; OpenBLAS is not needed.
need=(libdnnl-dev gcc g++)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
"$here/build.sh"
