// The gradient of an embedding lookup (tf.gather over axis 0): tfjs's UnsortedSegmentSum.
// tfjs's cpu kernel builds it from one-hot masks, which costs segments × ids × row: on a
// real vocabulary (5,400 words) and a batch of captions that was two minutes a step. Here
// each id's row is added once into its segment: ids × row.
#include "common.hpp"

#include <cstdint>

// out[segments, row] += x[i, :] for each i < n with 0 <= ids[i] < segments; out must come
// zeroed. Ids outside [0, segments) are dropped, as tfjs does.
PETAL_API int petal_segment_sum(const float *x, const int32_t *ids, float *out, int n, int row,
                                int segments) {
  if (n < 0 || row < 0 || segments < 0) return petal::UNSUPPORTED;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t s = ids[i];
    if (s < 0 || s >= segments) continue;
    const float *src = x + i * row;
    float *dst = out + static_cast<int64_t>(s) * row;
    for (int64_t c = 0; c < row; ++c) dst[c] += src[c];
  }
  return petal::OK;
}
