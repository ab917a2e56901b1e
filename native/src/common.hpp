// Shared helpers for libpetal: the oneDNN engine/stream singletons and the C ABI status codes.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>
#include <cstdio>
#include <cstdlib>

#define PETAL_API extern "C" __attribute__((visibility("default")))

namespace petal {

// Status codes returned over FFI. Anything but OK makes the JS side fall back to the
// tfjs cpu kernel, so an unsupported shape is slow, never wrong.
enum Status : int { OK = 0, UNSUPPORTED = 1, DNNL_FAILED = 2 };

inline dnnl::engine &engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

inline dnnl::stream &stream() {
  static dnnl::stream s(engine());
  return s;
}

// PETAL_NATIVE_DEBUG=1 prints why a primitive could not be built (once per shape).
inline bool debug() {
  static const bool on = [] {
    const char *v = std::getenv("PETAL_NATIVE_DEBUG");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  return on;
}

// Threads for the memory-bound elementwise kernels: PETAL_EW_THREADS, default 1. A second
// thread buys little bandwidth here, and when another process holds the other core an
// OpenMP barrier waits for a scheduler tick: measured 10x slower than one thread.
inline int ew_threads() {
  static const int n = [] {
    const char *v = std::getenv("PETAL_EW_THREADS");
    const int t = v ? std::atoi(v) : 1;
    return t > 0 ? t : 1;
  }();
  return n;
}

}  // namespace petal
