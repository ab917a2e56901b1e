#!/usr/bin/env bash
# Runs the test suite (or the deno test arguments given) on a libpetal built with
# AddressSanitizer and UndefinedBehaviorSanitizer (native/build.sh --sanitize).
#
#   native/sanitize.sh                      # the whole suite
#   native/sanitize.sh tests/native_kernels_test.ts
#
# deno is not instrumented, so libasan must be loaded first (LD_PRELOAD), with
# libstdc++ beside it: without it ASan's interceptor aborts on the first C++ exception
# (sharp throws some). The browser test keeps LD_PRELOAD from chromium. Any report
# aborts the run (exit non-zero) and is printed with its stack.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/build.sh" --sanitize
asan="$(g++ -print-file-name=libasan.so)"
ubsan="$(g++ -print-file-name=libubsan.so)"
stdcxx="$(g++ -print-file-name=libstdc++.so.6)"
cd "$here/.."
# detect_leaks=0: V8 and deno keep allocations for the process's life by design.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PETAL_NATIVE_LIB="$here/build/sanitize/libpetal.so"
if (($#)); then args=("$@"); else args=(--parallel tests/); fi
# --unstable-webgpu as `deno task test` has it (deno.json).
LD_PRELOAD="$asan $ubsan $stdcxx" deno test -A --unstable-webgpu "${args[@]}"
