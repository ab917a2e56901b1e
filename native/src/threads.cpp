// petal::adaptive_threads (common.hpp, PETAL_EW_THREADS=auto): OpenMP's thread count for the
// memory-bound maps while the rest of the machine is idle, one while other processes keep a
// core busy.
#include "common.hpp"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace {

// Jiffies of the whole machine (busy, total) from /proc/stat's first line.
bool machine_jiffies(uint64_t &busy, uint64_t &total) {
  FILE *f = std::fopen("/proc/stat", "r");
  if (!f) return false;
  unsigned long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int got = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                              &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (got < 5) return false;
  total = 0;
  for (auto x : v) total += x;
  busy = total - v[3] - v[4];  // minus idle and iowait
  return true;
}

// This process's jiffies (utime + stime of all its threads) from /proc/self/stat.
bool own_jiffies(uint64_t &used) {
  FILE *f = std::fopen("/proc/self/stat", "r");
  if (!f) return false;
  char buf[1024];
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // Fields after the command name (which may hold spaces) start past the last ')'.
  const char *p = nullptr;
  for (size_t i = 0; i < n; ++i)
    if (buf[i] == ')') p = buf + i;
  if (!p) return false;
  unsigned long long utime = 0, stime = 0;
  // state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
  if (std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return false;
  used = utime + stime;
  return true;
}

std::atomic<int> current{1};
std::atomic<int64_t> next_check_ns{0};
std::mutex sampling;
uint64_t last_busy = 0, last_total = 0, last_own = 0;
bool have_last = false;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int petal::adaptive_threads() {
  const int64_t t = now_ns();
  if (t < next_check_ns.load(std::memory_order_relaxed)) return current.load(std::memory_order_relaxed);
  std::unique_lock<std::mutex> lock(sampling, std::try_to_lock);
  if (!lock.owns_lock()) return current.load(std::memory_order_relaxed);
  next_check_ns.store(t + 200000000, std::memory_order_relaxed);
  uint64_t busy = 0, total = 0, own = 0;
  // OpenMP's thread count as configured (OMP_NUM_THREADS, which libpetal's loader sets to
  // the core count), not omp_get_max_threads(): a small convolution may have set that to 1.
  static const int max_threads = [] {
    const char *v = std::getenv("OMP_NUM_THREADS");
    const int n = v ? std::atoi(v) : 0;
    return n > 0 ? n : omp_get_num_procs();
  }();
  if (max_threads <= 1 || !machine_jiffies(busy, total) || !own_jiffies(own)) {
    current.store(1, std::memory_order_relaxed);
    return 1;
  }
  if (have_last && total > last_total) {
    const double cores = static_cast<double>(omp_get_num_procs());
    const double span = static_cast<double>(total - last_total);  // jiffies summed over cores
    double others = static_cast<double>(busy - last_busy) - static_cast<double>(own - last_own);
    others = others < 0 ? 0 : others;
    const double others_cores = others / span * cores;
    const int was = current.load(std::memory_order_relaxed);
    const int next = others_cores < 0.35 ? max_threads : (others_cores > 0.65 ? 1 : was);
    current.store(next, std::memory_order_relaxed);
  }
  last_busy = busy;
  last_total = total;
  last_own = own;
  have_last = true;
  return current.load(std::memory_order_relaxed);
}

// The thread count the maps use now (1 or OpenMP's), for tests and the bench.
PETAL_API int petal_ew_threads() { return petal::ew_threads(); }

// OpenMP's thread count for the calling thread's parallel regions from now on (its own
// nthreads ICV: a Deno worker's setting leaves the other threads' alone); n <= 0 only
// asks. Returns the count before. Data-parallel training gives each replica's thread its
// share of the cores this way (pipeline/replicas.ts).
PETAL_API int petal_set_threads(int n) {
  const int before = omp_get_max_threads();
  if (n > 0) omp_set_num_threads(n);
  return before;
}
