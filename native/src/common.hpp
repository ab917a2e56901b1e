// Shared helpers for libpetal: the oneDNN engine singleton and the C ABI status codes.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#define PETAL_API extern "C" __attribute__((visibility("default")))

namespace petal {

// Status codes returned over FFI. Anything but OK makes the JS side fall back to the
// tfjs cpu kernel, so an unsupported shape is slow, never wrong.
enum Status : int { OK = 0, UNSUPPORTED = 1, DNNL_FAILED = 2 };

// The engine and conv.cpp's convolution contexts (primitives, streams) live as long as
// the process and are never destroyed: at exit, static destructors run in reverse order of
// construction, and oneDNN's own statics (made lazily, after ours) would be gone before our
// objects that point into them ("corrupted size vs. prev_size" after a test file's last test).
inline dnnl::engine &engine() {
  static auto *e = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *e;
}

// PETAL_NATIVE_DEBUG=1 prints why a primitive could not be built (once per shape).
inline bool debug() {
  static const bool on = [] {
    const char *v = std::getenv("PETAL_NATIVE_DEBUG");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  return on;
}

// Threads for the reductions (sums, batch-norm gradient statistics): PETAL_EW_THREADS,
// default 1. With one thread their order of summation is fixed, so a run is bit for bit
// repeatable whatever else the machine does.
inline int reduce_threads() {
  static const int n = [] {
    const char *v = std::getenv("PETAL_EW_THREADS");
    const int t = v ? std::atoi(v) : 1;
    return t > 0 ? t : 1;
  }();
  return n;
}

// Threads for the memory-bound maps (elementwise ops, batch-norm apply, copies, layout
// reorders), whose results do not depend on the thread count: PETAL_EW_THREADS=N, default
// 1, or `auto` (issue 18): all of OpenMP's threads while the rest of the machine is idle, one
// while other processes keep a core busy (other processes' load = the machine's busy time in
// /proc/stat minus this process's own, sampled at most every 200 ms; below 0.35 cores: all
// threads, above 0.65: one). One is the default because a second thread did not pay on the
// default recipe even on an idle machine: 85.3 and 86.5 img/s on one thread against 78.8 and
// 75.1 on two (2026-12-01, load 1.3, passive waits; with OMP_WAIT_POLICY=ACTIVE, 76.5/79.7
// on one and 67.2/82.5 on two), and when another process holds the other core every OpenMP
// barrier waits for a scheduler tick (0.56 ms on one thread vs 8 ms on two for a 4 M-element
// leaky relu on the shared box).
int adaptive_threads();

// conv_narrow.cpp: convolutions with at most 4 output channels, direct in NHWC. `params`
// is conv.cpp's parameter block; `kind` 0 forward, 1 backward data, 2 backward filter.
bool narrow_conv(const int *params);
int run_narrow_conv(int kind, const int *params, const float *in0, const float *in1, float *out);

inline int ew_threads() {
  static const int fixed = [] {
    const char *v = std::getenv("PETAL_EW_THREADS");
    if (v && std::strcmp(v, "auto") == 0) return 0;
    const int t = v ? std::atoi(v) : 1;
    return t > 0 ? t : 1;
  }();
  return fixed ? fixed : adaptive_threads();
}

}  // namespace petal
