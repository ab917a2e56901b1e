// The C allocator's policy for the process's large buffers. Every tensor a kernel makes
// here is a fresh JS ArrayBuffer, which V8 takes from glibc's malloc; by default glibc
// serves blocks of 128 KiB and more with a new mmap and unmaps them on free (raising that
// cut-off only after frees, and giving the heap's top back to the kernel past 128 KiB), so
// a training step faults in every activation's pages anew: measured on a 2M-float add,
// 5–8 ms with the defaults against 2–3 ms with blocks up to 32 MiB kept in the heap and
// the heap not trimmed below 1 GiB (45 thousand page faults against 180 thousand).
// petal_tune_allocator sets exactly that; PETAL_MALLOC=system leaves glibc's defaults.
#include "common.hpp"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

PETAL_API int petal_tune_allocator() {
  const char *v = std::getenv("PETAL_MALLOC");
  if (v && std::strcmp(v, "system") == 0) return 0;
#ifdef __GLIBC__
  // 32 MiB is the largest threshold glibc accepts on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
  const int mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 << 20);
  const int trim_ok = mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return mmap_ok == 1 && trim_ok == 1 ? 1 : 0;
#else
  return 0;
#endif
}
