// Batch norm in training mode, fused with what follows it in G and D: the batch's own
// statistics, the affine part, an optional per-sample affine on top (G's conditional batch
// norm) and an activation, forward in one call and backward in one call. tfjs writes this as
// ~25 kernels forward and ~45 backward (moments, normalise, modulate, activate, and their
// gradients), each a pass over the activation and a fresh array; on the default recipe's
// thin layers the calls cost more than the arithmetic.
//
// x is [samples, rows_per_sample, C] (NHWC flattened); s and t, when given, are [samples, C].
//   mean, var = moments of x over samples and rows (biased variance, as tf.moments)
//   n = ((x − mean) · r) · gamma + beta,  r = 1 / sqrt(var + eps)
//   y = act(n · (1 + s) + t)   (s, t absent: y = act(n))
// act: 0 none, 1 relu, 2 leaky relu (alpha).
//
// Also a bias with its activation (petal_bias_act), for the layers without batch norm.
//
// Sums are per sample and channel (float blocks of 32 rows folded into double), then folded
// over the samples in order: the result does not depend on the thread count.
#include "common.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#include <omp.h>

namespace {

enum Act { NONE = 0, RELU = 1, LEAKY = 2 };

constexpr int64_t kParallelMin = 1 << 15;

inline int threads_for(int64_t n, int64_t samples) {
  if (n < kParallelMin) return 1;
  return static_cast<int>(std::min<int64_t>(petal::ew_threads(), samples));
}

// acc[b·C + c] (+ acc2) = Σ over sample b's rows of f(row pointer, c): f fills one or two
// per-channel float values for a row; blocks of 32 rows go into double.
template <int K, typename F>
void per_sample_sums(int64_t samples, int64_t rows, int64_t C, int threads, double *acc, F f) {
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> blk(static_cast<size_t>(K * C));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < samples; ++b) {
      double *ab = acc + static_cast<size_t>(b) * K * C;
      for (int64_t k = 0; k < K * C; ++k) ab[k] = 0.0;
      for (int64_t r0 = 0; r0 < rows; r0 += 32) {
        const int64_t r1 = std::min(rows, r0 + 32);
        std::fill(blk.begin(), blk.end(), 0.f);
        for (int64_t r = r0; r < r1; ++r) f(b, b * rows + r, blk.data());
        for (int64_t k = 0; k < K * C; ++k) ab[k] += blk[k];
      }
    }
  }
}

inline float act_grad(int act, float y, float g, float alpha) {
  if (act == RELU) return y > 0.f ? g : 0.f;
  if (act == LEAKY) {
    const float scaled = alpha * g;
    return y > 0.f ? g : scaled;
  }
  return g;
}

}  // namespace

PETAL_API int petal_bn_act(const float *x, const float *gamma, const float *beta, const float *s, const float *t,
                           int samples_, int rows_, int channels, int act, float alpha, float eps, float *y,
                           float *mean, float *var) {
  const int64_t samples = samples_, rows = rows_, C = channels;
  if (samples <= 0 || rows <= 0 || C <= 0 || act < NONE || act > LEAKY) return petal::UNSUPPORTED;
  if ((s == nullptr) != (t == nullptr)) return petal::UNSUPPORTED;
  const int64_t n = samples * rows * C;
  const double count = static_cast<double>(samples * rows);
  const int threads = threads_for(n, samples);
  std::vector<double> acc(static_cast<size_t>(samples * C));
  // Mean, then the variance about it (two passes, as tf.moments).
  per_sample_sums<1>(samples, rows, C, threads, acc.data(), [&](int64_t, int64_t row, float *blk) {
    const float *xr = x + row * C;
    for (int64_t c = 0; c < C; ++c) blk[c] += xr[c];
  });
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t b = 0; b < samples; ++b) sum += acc[b * C + c];
    mean[c] = static_cast<float>(sum / count);
  }
  per_sample_sums<1>(samples, rows, C, threads, acc.data(), [&](int64_t, int64_t row, float *blk) {
    const float *xr = x + row * C;
    for (int64_t c = 0; c < C; ++c) {
      const float d = xr[c] - mean[c];
      blk[c] += d * d;
    }
  });
  std::vector<float> r(C);
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t b = 0; b < samples; ++b) sum += acc[b * C + c];
    var[c] = static_cast<float>(sum / count);
    r[c] = 1.f / std::sqrt(var[c] + eps);
  }
  const float *rr = r.data();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < samples; ++b) {
    std::vector<float> m(C, 1.f), a(C, 0.f);
    if (s) {
      for (int64_t c = 0; c < C; ++c) {
        m[c] = 1.f + s[b * C + c];
        a[c] = t[b * C + c];
      }
    }
    for (int64_t row = b * rows; row < (b + 1) * rows; ++row) {
      const float *xr = x + row * C;
      float *yr = y + row * C;
      for (int64_t c = 0; c < C; ++c) {
        const float nv = (xr[c] - mean[c]) * rr[c] * gamma[c] + beta[c];
        const float o = nv * m[c] + a[c];
        const float scaled = alpha * o;
        yr[c] = act == NONE ? o : (o > 0.f ? o : (act == RELU ? 0.f : scaled));
      }
    }
  }
  return petal::OK;
}

// The gradients of petal_bn_act with respect to x, gamma, beta, s and t, given dy (of y) and
// the forward's y, mean and var. The statistics are the batch's own, so dx carries their
// gradient:  dx = gamma · r · (dn − Σdn / N − x̂ · Σ(dn · x̂) / N),  dn = dL/dn, x̂ = (x − mean)·r.
// ds and dt (s, t given) are Σ over each sample's rows of g · n and g, g = dL/d(pre-activation).
PETAL_API int petal_bn_act_grad(const float *x, const float *y, const float *dy, const float *mean,
                                const float *var, const float *gamma, const float *beta, const float *s,
                                int samples_, int rows_, int channels, int act, float alpha, float eps, float *dx,
                                float *dgamma, float *dbeta, float *ds, float *dt) {
  const int64_t samples = samples_, rows = rows_, C = channels;
  if (samples <= 0 || rows <= 0 || C <= 0 || act < NONE || act > LEAKY) return petal::UNSUPPORTED;
  if (s && (!ds || !dt)) return petal::UNSUPPORTED;
  const int64_t n = samples * rows * C;
  const double count = static_cast<double>(samples * rows);
  const int threads = threads_for(n, samples);
  std::vector<float> r(C);
  for (int64_t c = 0; c < C; ++c) r[c] = 1.f / std::sqrt(var[c] + eps);
  const float *rr = r.data();
  // Per sample: Σdn, Σdn·x̂, and with s also Σg·n and Σg.
  const int K = s ? 4 : 2;
  std::vector<double> acc(static_cast<size_t>(samples * K * C));
  auto row_sums = [&](int64_t b, int64_t row, float *blk) {
    const float *xr = x + row * C, *yr = y + row * C, *dr = dy + row * C;
    const float *sb = s ? s + b * C : nullptr;
    for (int64_t c = 0; c < C; ++c) {
      const float g = act_grad(act, yr[c], dr[c], alpha);
      const float xh = (xr[c] - mean[c]) * rr[c];
      float dn = g;
      if (sb) {
        blk[2 * C + c] += g * (xh * gamma[c] + beta[c]);
        blk[3 * C + c] += g;
        dn = g * (1.f + sb[c]);
      }
      blk[c] += dn;
      blk[C + c] += dn * xh;
    }
  };
  if (s) {
    per_sample_sums<4>(samples, rows, C, threads, acc.data(), row_sums);
  } else {
    per_sample_sums<2>(samples, rows, C, threads, acc.data(), row_sums);
  }
  std::vector<float> k1(C), k2(C), k3(C);
  for (int64_t c = 0; c < C; ++c) {
    double sdn = 0, sdnx = 0;
    for (int64_t b = 0; b < samples; ++b) {
      const double *ab = acc.data() + static_cast<size_t>(b) * K * C;
      sdn += ab[c];
      sdnx += ab[C + c];
      if (s) {
        ds[b * C + c] = static_cast<float>(ab[2 * C + c]);
        dt[b * C + c] = static_cast<float>(ab[3 * C + c]);
      }
    }
    dbeta[c] = static_cast<float>(sdn);
    dgamma[c] = static_cast<float>(sdnx);
    // dx = k1 · dn − k2 − x̂ · k3
    k1[c] = gamma[c] * rr[c];
    k2[c] = static_cast<float>(gamma[c] * rr[c] * sdn / count);
    k3[c] = static_cast<float>(gamma[c] * rr[c] * sdnx / count);
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t b = 0; b < samples; ++b) {
    const float *sb = s ? s + b * C : nullptr;
    for (int64_t row = b * rows; row < (b + 1) * rows; ++row) {
      const float *xr = x + row * C, *yr = y + row * C, *dr = dy + row * C;
      float *out = dx + row * C;
      for (int64_t c = 0; c < C; ++c) {
        const float g = act_grad(act, yr[c], dr[c], alpha);
        const float dn = sb ? g * (1.f + sb[c]) : g;
        const float xh = (xr[c] - mean[c]) * rr[c];
        out[c] = k1[c] * dn - k2[c] - xh * k3[c];
      }
    }
  }
  return petal::OK;
}

// Batch norm in eval mode (running statistics), folded by the caller with everything after
// it into a per-sample, per-channel affine: y = act(x · a + b) over x [samples, rows, C],
// a and b [samples, C]. G's conditional batch norm and ReLU, and the classifiers' batch norm
// and ReLU, at inference.
PETAL_API int petal_affine_act(const float *x, const float *a, const float *b, float *y, int samples_,
                               int rows_, int channels, int act, float alpha) {
  const int64_t samples = samples_, rows = rows_, C = channels;
  if (samples <= 0 || rows <= 0 || C <= 0 || act < NONE || act > LEAKY) return petal::UNSUPPORTED;
  const int threads = threads_for(samples * rows * C, samples);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t s = 0; s < samples; ++s) {
    const float *as = a + s * C, *bs = b + s * C;
    for (int64_t row = s * rows; row < (s + 1) * rows; ++row) {
      const float *xr = x + row * C;
      float *yr = y + row * C;
      for (int64_t c = 0; c < C; ++c) {
        const float o = xr[c] * as[c] + bs[c];
        const float scaled = alpha * o;
        yr[c] = act == NONE ? o : (o > 0.f ? o : (act == RELU ? 0.f : scaled));
      }
    }
  }
  return petal::OK;
}

// y = act(x + bias) over x [rows, C], bias [C]: a conv's bias and its activation in one pass
// (D's first layer and its text projection; tfjs writes leaky relu as 5 kernels).
PETAL_API int petal_bias_act(const float *x, const float *bias, float *y, int rows_, int channels, int act,
                             float alpha) {
  const int64_t rows = rows_, C = channels;
  if (rows <= 0 || C <= 0 || act < NONE || act > LEAKY) return petal::UNSUPPORTED;
  const int threads = rows * C >= kParallelMin ? petal::ew_threads() : 1;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * C;
    float *yr = y + r * C;
    for (int64_t c = 0; c < C; ++c) {
      const float o = xr[c] + bias[c];
      const float scaled = alpha * o;
      yr[c] = act == NONE ? o : (o > 0.f ? o : (act == RELU ? 0.f : scaled));
    }
  }
  return petal::OK;
}

// Its gradients from y and dy: dx = dy · act'(y), dbias = Σ over rows of dx (float blocks of
// 32 rows folded into double, in row order).
PETAL_API int petal_bias_act_grad(const float *y, const float *dy, float *dx, float *dbias, int rows_,
                                  int channels, int act, float alpha) {
  const int64_t rows = rows_, C = channels;
  if (rows <= 0 || C <= 0 || act < NONE || act > LEAKY) return petal::UNSUPPORTED;
  std::vector<double> acc(C, 0.0);
  std::vector<float> blk(C);
  for (int64_t r0 = 0; r0 < rows; r0 += 32) {
    const int64_t r1 = std::min(rows, r0 + 32);
    std::fill(blk.begin(), blk.end(), 0.f);
    for (int64_t r = r0; r < r1; ++r) {
      const float *yr = y + r * C, *dr = dy + r * C;
      float *out = dx + r * C;
      for (int64_t c = 0; c < C; ++c) {
        out[c] = act_grad(act, yr[c], dr[c], alpha);
        blk[c] += out[c];
      }
    }
    for (int64_t c = 0; c < C; ++c) acc[c] += blk[c];
  }
  for (int64_t c = 0; c < C; ++c) dbias[c] = static_cast<float>(acc[c]);
  return petal::OK;
}
