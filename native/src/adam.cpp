// One Adam update of a variable in one pass (issue 18): what tfjs's AdamOptimizer does in
// 14 kernels (each a fresh array), with the same float32 operations in the same order, so
// the result is bit for bit tfjs's: every step below is one correctly rounded float op,
// as each tfjs kernel is (contraction into FMAs is off for this file).
#pragma GCC optimize("fp-contract=off")
#include "common.hpp"

#include <cmath>
#include <cstdint>

// m' = m·b1 + g·(1−b1); v' = v·b2 + g²·(1−b2); x' = (m'/c1) / (sqrt(v'/c2) + eps) · (−lr) + x
// where c1 = 1 − b1^t, c2 = 1 − b2^t (tfjs's oneMinusAccBeta*), all as float32.
PETAL_API int petal_adam(const float *x, const float *m, const float *v, const float *g, float *x_out,
                         float *m_out, float *v_out, int n, float b1, float one_minus_b1, float b2,
                         float one_minus_b2, float c1, float c2, float eps, float neg_lr) {
  if (n < 0) return petal::UNSUPPORTED;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = m[i] * b1 + gi * one_minus_b1;
    const float vi = v[i] * b2 + (gi * gi) * one_minus_b2;
    const float step = (mi / c1) / (std::sqrt(vi / c2) + eps);
    x_out[i] = step * neg_lr + x[i];
    m_out[i] = mi;
    v_out[i] = vi;
  }
  return petal::OK;
}
