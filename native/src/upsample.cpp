// Nearest ×2 up-sampling of NHWC float32 and its gradient, one pass each. The models write
// it as two concats of rank-3 views (stages/layers.ts), and its gradient as their slices
// and an add: 5 kernels and 5 fresh arrays each way, where one copy does.
#include "common.hpp"

#include <cstdint>
#include <cstring>

// y [B, 2H, 2W, C]: y[b, 2i + di, 2j + dj, :] = x[b, i, j, :].
PETAL_API int petal_upsample2x(const float *x, float *y, int B, int H, int W, int C) {
  if (B <= 0 || H <= 0 || W <= 0 || C <= 0) return petal::UNSUPPORTED;
  const int64_t c = C, w2 = 2 * static_cast<int64_t>(W) * c;
  for (int64_t r = 0; r < static_cast<int64_t>(B) * H; ++r) {
    const float *xr = x + r * W * c;
    float *top = y + 2 * r * w2;
    for (int64_t j = 0; j < W; ++j) {
      std::memcpy(top + 2 * j * c, xr + j * c, sizeof(float) * c);
      std::memcpy(top + (2 * j + 1) * c, xr + j * c, sizeof(float) * c);
    }
    std::memcpy(top + w2, top, sizeof(float) * w2);  // the second row of the pair
  }
  return petal::OK;
}

// dx [B, H, W, C] = the sum of each 2×2 block of dy [B, 2H, 2W, C], added as the ops'
// gradient adds it: (top-left + bottom-left) + (top-right + bottom-right).
PETAL_API int petal_upsample2x_grad(const float *dy, float *dx, int B, int H, int W, int C) {
  if (B <= 0 || H <= 0 || W <= 0 || C <= 0) return petal::UNSUPPORTED;
  const int64_t c = C, w2 = 2 * static_cast<int64_t>(W) * c;
  for (int64_t r = 0; r < static_cast<int64_t>(B) * H; ++r) {
    const float *top = dy + 2 * r * w2, *bottom = top + w2;
    float *out = dx + r * W * c;
    for (int64_t j = 0; j < W; ++j) {
      const float *tl = top + 2 * j * c, *tr = tl + c, *bl = bottom + 2 * j * c, *br = bl + c;
      float *o = out + j * c;
      for (int64_t k = 0; k < c; ++k) o[k] = (tl[k] + bl[k]) + (tr[k] + br[k]);
    }
  }
  return petal::OK;
}
