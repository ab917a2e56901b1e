#!/usr/bin/env bash
# Builds native/build/libpetal.so from native/src (oneDNN + OpenMP). Idempotent: the
# library is rebuilt only when a source file or this script is newer than it.
# Needs: g++, libdnnl-dev (oneDNN 2.x). Install them with native/ci-install.sh.
#
#   native/build.sh              # native/build/libpetal.so
#   native/build.sh --sanitize   # native/build/sanitize/libpetal.so, ASan + UBSan (see sanitize.sh)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# -march=haswell: AVX2 + FMA for the elementwise loops (oneDNN dispatches its own ISA at
# run time). -fopenmp links libgomp, the same OpenMP runtime Debian's oneDNN uses.
# -fno-trapping-math lets GCC if-convert (and so vectorise) select-style loops like
# leaky relu; nothing here relies on floating-point exception flags.
CXXFLAGS=(-O3 -march=haswell -mtune=znver3 -fno-trapping-math -std=c++17 -fPIC -fopenmp
  -fvisibility=hidden -Wall -Wextra)
dir="$here/build"
if [[ "${1:-}" == "--sanitize" ]]; then
  dir="$here/build/sanitize"
  # Every write of libpetal's own code is checked; -fno-sanitize-recover makes any report
  # fatal, so a clean run means no report at all.
  CXXFLAGS=(-O1 -g -march=haswell -std=c++17 -fPIC -fopenmp -fvisibility=hidden -Wall -Wextra
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
fi
out="$dir/libpetal.so"
mkdir -p "$dir"
# One build at a time: parallel test processes (or tasks) that find the library missing
# all call this; the first builds, the others wait here and then find it up to date.
exec 9>"$dir/.lock"
flock 9
if [[ -f "$out" ]] && [[ -z "$(find "$here/src" "$here/build.sh" -newer "$out" -print -quit)" ]]; then
  echo "libpetal up to date: $out"
  exit 0
fi
if [[ ! -f /usr/include/oneapi/dnnl/dnnl.hpp ]]; then
  echo "oneDNN headers missing: run native/ci-install.sh (apt-get install libdnnl-dev)" >&2
  exit 1
fi
tmp="$out.tmp.$$"
g++ "${CXXFLAGS[@]}" -shared -o "$tmp" "$here"/src/*.cpp -ldnnl
mv "$tmp" "$out"
echo "built $out"
