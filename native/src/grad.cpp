// Fused backward kernels. tfjs writes these gradients as chains of elementwise ops, each a
// full pass over the activation plus a fresh allocation; and its batch-norm gradient keeps
// two activation-sized temporaries alive until the whole backward pass ends. One pass each
// here, same formulas.
#include "common.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#include <omp.h>

namespace {
constexpr int64_t kParallelMin = 1 << 15;
// Work is handed out in chunks (rows or elements, 64 Ki-ish) rather than one static half per
// thread: on a 2-core box shared with other processes a descheduled thread then delays
// one chunk, not half the op.
constexpr int kChunk = 1 << 16;
}

// Gradient of relu (op 0: dy * step(x), NaN x gives NaN as tfjs's step does) and of leaky
// relu (op 1: x > 0 ? dy : alpha * dy, as tfjs's where(greater(x, 0), dy, dy * alpha)).
PETAL_API int petal_act_grad(int op, const float *x, const float *dy, float *out, int n_, float alpha) {
  const int64_t n = n_;
  if (op == 0) {
#pragma omp parallel for if (n >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, kChunk)
    for (int64_t i = 0; i < n; ++i) out[i] = dy[i] * (std::isnan(x[i]) ? x[i] : (x[i] > 0.f ? 1.f : 0.f));
    return petal::OK;
  }
  if (op == 1) {
#pragma omp parallel for if (n >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, kChunk)
    for (int64_t i = 0; i < n; ++i) {
      const float scaled = dy[i] * alpha;  // unconditional: lets the loop vectorise
      out[i] = x[i] > 0.f ? dy[i] : scaled;
    }
    return petal::OK;
  }
  return petal::UNSUPPORTED;
}

// Gradients of tfjs FusedBatchNorm with per-channel (rank-1) mean/variance/scale over the
// last axis of x [rows, channels], matching tfjs's fusedBatchNormGradConfig:
//   dx = dy * scale * r,  r = 1 / sqrt(var + eps)
//   dmean = -r * scale * Σdy,  dvar = -0.5 r³ * scale * Σdy(x - mean)
//   dscale = r * Σdy(x - mean),  doffset = Σdy      (Σ over rows, in double)
// scale may be null (tfjs uses 1).
PETAL_API int petal_batchnorm_grad(const float *x, const float *dy, const float *mean, const float *var,
                                   const float *scale, float eps, int n_, int channels, float *dx, float *dmean,
                                   float *dvar, float *dscale, float *doffset) {
  const int64_t n = n_, C = channels;
  if (C <= 0 || n % C != 0) return petal::UNSUPPORTED;
  const int64_t rows = n / C;
  std::vector<float> r(C), k(C);
  for (int64_t c = 0; c < C; ++c) {
    r[c] = 1.f / std::sqrt(var[c] + eps);
    k[c] = r[c] * (scale ? scale[c] : 1.f);
  }
  const int threads = n >= kParallelMin ? petal::reduce_threads() : 1;
  std::vector<double> acc(static_cast<size_t>(threads) * 2 * C, 0.0);
  const int64_t blocks = (rows + 31) / 32;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    double *s1 = acc.data() + static_cast<size_t>(t) * 2 * C, *s2 = s1 + C;
    std::vector<float> b1(C), b2(C);
    // Blocks of 32 rows, handed out dynamically: float partial sums (vectorise) folded
    // into this thread's double accumulators.
#pragma omp for schedule(dynamic, 4)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * 32, r1 = std::min(rows, r0 + 32);
      for (int64_t c = 0; c < C; ++c) b1[c] = b2[c] = 0.f;
      for (int64_t row = r0; row < r1; ++row) {
        const float *xr = x + row * C, *dr = dy + row * C;
        float *ox = dx + row * C;
        for (int64_t c = 0; c < C; ++c) {
          const float d = dr[c];
          b1[c] += d;
          b2[c] += d * (xr[c] - mean[c]);
          ox[c] = d * k[c];
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        s1[c] += b1[c];
        s2[c] += b2[c];
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) {
    double sdy = 0, sdx = 0;
    for (int t = 0; t < threads; ++t) {
      sdy += acc[static_cast<size_t>(t) * 2 * C + c];
      sdx += acc[static_cast<size_t>(t) * 2 * C + C + c];
    }
    const double sc = scale ? scale[c] : 1.0, rc = r[c];
    dmean[c] = static_cast<float>(-rc * sc * sdy);
    dvar[c] = static_cast<float>(-0.5 * rc * rc * rc * sc * sdx);
    dscale[c] = static_cast<float>(rc * sdx);
    doffset[c] = static_cast<float>(sdy);
  }
  return petal::OK;
}
