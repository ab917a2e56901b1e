#!/usr/bin/env bash
# Builds native/build/libpetal.so from native/src (oneDNN + OpenMP). Idempotent: the
# library is rebuilt only when a source file or this script is newer than it.
# Needs: g++, libdnnl-dev (oneDNN 2.x). Install them with native/ci-install.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/build/libpetal.so"
mkdir -p "$here/build"
# One build at a time: parallel test processes (or tasks) that find the library missing
# all call this; the first builds, the others wait here and then find it up to date.
exec 9>"$here/build/.lock"
flock 9
if [[ -f "$out" ]] && [[ -z "$(find "$here/src" "$here/build.sh" -newer "$out" -print -quit)" ]]; then
  echo "libpetal up to date: $out"
  exit 0
fi
if [[ ! -f /usr/include/oneapi/dnnl/dnnl.hpp ]]; then
  echo "oneDNN headers missing: run native/ci-install.sh (apt-get install libdnnl-dev)" >&2
  exit 1
fi
# -march=haswell: AVX2 + FMA for the elementwise loops (oneDNN dispatches its own ISA at
# run time). -fopenmp links libgomp, the same OpenMP runtime Debian's oneDNN uses.
# -fno-trapping-math lets GCC if-convert (and so vectorise) select-style loops like
# leaky relu; nothing here relies on floating-point exception flags.
CXXFLAGS=(-O3 -march=haswell -mtune=znver3 -fno-trapping-math -std=c++17 -fPIC -fopenmp
  -fvisibility=hidden -Wall -Wextra)
tmp="$out.tmp.$$"
g++ "${CXXFLAGS[@]}" -shared -o "$tmp" "$here"/src/*.cpp -ldnnl
mv "$tmp" "$out"
echo "built $out"
