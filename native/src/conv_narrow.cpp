// Convolutions with at most 4 output channels, direct in NHWC: a generator's RGB layer
// (16 → 3 channels at 64×64 in the default recipe) and a critic's one-channel score.
// oneDNN's blocked kernels pad 3 channels to a block of 16 and its plain-layout kernel is
// an im2col gemm: on the default recipe this one layer took a quarter of the convolution
// time, forward and both gradients, plus the reorders of its 3-channel tensors.
//
// Each output is a sum over taps and channels, vectorised along the input channels.
//   forward:        y[n, oh, ow, o] = Σ_{kh, kw, c} x[n, ih, iw, c] · f[kh, kw, c, o]
//   backward data:  dx[n, ih, iw, c] = Σ_{kh, kw, o} dy[n, oh, ow, o] · f[kh, kw, c, o]
//   backward filter: df[kh, kw, c, o] = Σ_{n, oh, ow} x[n, ih, iw, c] · dy[n, oh, ow, o]
// with ih = oh · sh − pt + kh (dilation 1). Forward and backward data write each output
// from one thread in a fixed order; the filter gradient sums per sample (float per output
// row, then double) and folds the samples in order: no result depends on the thread count.
#include "common.hpp"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

// The parameter block of conv.cpp (ConvParams), by field.
struct Shape {
  int64_t n, h, w, c, kh, kw, oc, oh, ow, sh, sw, dh, dw, pt, pl;
  explicit Shape(const int *p)
      : n(p[0]), h(p[1]), w(p[2]), c(p[3]), kh(p[4]), kw(p[5]), oc(p[6]), oh(p[7]), ow(p[8]),
        sh(p[9]), sw(p[10]), dh(p[11]), dw(p[12]), pt(p[13]), pl(p[14]) {}
  int64_t taps() const { return kh * kw; }
};

constexpr int kLanes = 8;  // floats per AVX2 vector

int threads_for(const Shape &s) {
  const double flops = 2.0 * s.n * s.oh * s.ow * s.oc * s.taps() * s.c;
  return flops < (1 << 24) ? 1 : omp_get_max_threads();
}

inline __m256 load(const float *p) { return _mm256_loadu_ps(p); }
inline __m256 fma(__m256 a, __m256 b, __m256 c) { return _mm256_fmadd_ps(a, b, c); }
inline float lane_sum(__m256 v) {
  alignas(32) float l[kLanes];
  _mm256_store_ps(l, v);
  float sum = 0.f;
  for (int i = 0; i < kLanes; ++i) sum += l[i];
  return sum;
}

// f [taps, c, O] → [taps, O, c]: each output channel's weights contiguous in c.
std::vector<float> by_output(const Shape &s, const float *f) {
  const int64_t O = s.oc, C = s.c;
  std::vector<float> t(static_cast<size_t>(s.taps() * O * C));
  for (int64_t k = 0; k < s.taps(); ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t o = 0; o < O; ++o) t[(k * O + o) * C + c] = f[(k * C + c) * O + o];
  return t;
}

// One output pixel's O values: Σ over its taps of x's channels · the tap's weights.
template <int O>
void forward_pixel(const Shape &s, const float *x, const float *w, int64_t n, int64_t oh, int64_t ow,
                   float *yp) {
  const int64_t C = s.c, vec = C / kLanes * kLanes;
  __m256 acc[O];
  float tail[O] = {};
  for (int o = 0; o < O; ++o) acc[o] = _mm256_setzero_ps();
  for (int64_t kh = 0; kh < s.kh; ++kh) {
    const int64_t ih = oh * s.sh - s.pt + kh;
    if (ih < 0 || ih >= s.h) continue;
    for (int64_t kw = 0; kw < s.kw; ++kw) {
      const int64_t iw = ow * s.sw - s.pl + kw;
      if (iw < 0 || iw >= s.w) continue;
      const float *xp = x + ((n * s.h + ih) * s.w + iw) * C;
      const float *wp = w + (kh * s.kw + kw) * O * C;
      for (int64_t c = 0; c < vec; c += kLanes) {
        const __m256 xv = load(xp + c);
        for (int o = 0; o < O; ++o) acc[o] = fma(xv, load(wp + o * C + c), acc[o]);
      }
      for (int64_t c = vec; c < C; ++c)
        for (int o = 0; o < O; ++o) tail[o] += xp[c] * wp[o * C + c];
    }
  }
  for (int o = 0; o < O; ++o) yp[o] = lane_sum(acc[o]) + tail[o];
}

// Four neighbouring output pixels (ow … ow + 3) whose taps all fall inside the row: the
// weights are loaded once for the four, and 4 · O independent sums hide the FMA latency.
template <int O>
void forward_block(const Shape &s, const float *x, const float *w, int64_t n, int64_t oh, int64_t ow,
                   float *yp) {
  constexpr int P = 4;
  const int64_t C = s.c;
  __m256 acc[P][O];
  for (int p = 0; p < P; ++p)
    for (int o = 0; o < O; ++o) acc[p][o] = _mm256_setzero_ps();
  for (int64_t kh = 0; kh < s.kh; ++kh) {
    const int64_t ih = oh * s.sh - s.pt + kh;
    if (ih < 0 || ih >= s.h) continue;
    for (int64_t kw = 0; kw < s.kw; ++kw) {
      const float *xp = x + ((n * s.h + ih) * s.w + ow * s.sw - s.pl + kw) * C;
      const float *wp = w + (kh * s.kw + kw) * O * C;
      for (int64_t c = 0; c < C; c += kLanes) {
        __m256 wv[O];
        for (int o = 0; o < O; ++o) wv[o] = load(wp + o * C + c);
        for (int p = 0; p < P; ++p) {
          const __m256 xv = load(xp + p * s.sw * C + c);
          for (int o = 0; o < O; ++o) acc[p][o] = fma(xv, wv[o], acc[p][o]);
        }
      }
    }
  }
  for (int p = 0; p < P; ++p)
    for (int o = 0; o < O; ++o) yp[p * O + o] = lane_sum(acc[p][o]);
}

template <int O>
void forward(const Shape &s, const float *x, const float *f, float *y) {
  const std::vector<float> wt = by_output(s, f);
  // Output columns whose taps all fall inside the input row: [lo, hi).
  const int64_t lo = std::min(s.ow, (s.pl + s.sw - 1) / s.sw);
  const int64_t last = s.w + s.pl - s.kw;  // the last column's first tap, times the stride
  const int64_t hi = last < 0 ? lo : std::max(lo, std::min(s.ow, last / s.sw + 1));
  const bool blocks = s.c % kLanes == 0;
#pragma omp parallel for num_threads(threads_for(s)) schedule(static)
  for (int64_t row = 0; row < s.n * s.oh; ++row) {
    const int64_t n = row / s.oh, oh = row % s.oh;
    float *yr = y + row * s.ow * O;
    int64_t ow = 0;
    for (; ow < lo; ++ow) forward_pixel<O>(s, x, wt.data(), n, oh, ow, yr + ow * O);
    if (blocks)
      for (; ow + 4 <= hi; ow += 4) forward_block<O>(s, x, wt.data(), n, oh, ow, yr + ow * O);
    for (; ow < s.ow; ++ow) forward_pixel<O>(s, x, wt.data(), n, oh, ow, yr + ow * O);
  }
}

// A tap's output index along one axis for input index i, or −1 where the tap does not
// reach i (off the stride's grid or outside the output).
inline int64_t source(int64_t i, int64_t k, int64_t stride, int64_t pad, int64_t out) {
  const int64_t t = i + pad - k;
  if (t < 0 || t % stride != 0) return -1;
  const int64_t o = t / stride;
  return o < out ? o : -1;
}

// The output index each input index i meets through tap k along one axis, or −1 (off the
// stride's grid or outside the output): [i · taps + k].
std::vector<int64_t> sources(int64_t in, int64_t taps, int64_t stride, int64_t pad, int64_t out) {
  std::vector<int64_t> t(static_cast<size_t>(in * taps));
  for (int64_t i = 0; i < in; ++i)
    for (int64_t k = 0; k < taps; ++k) t[i * taps + k] = source(i, k, stride, pad, out);
  return t;
}

// P neighbouring input pixels' gradients (P = 1, or 4 at stride 1 where every tap of the
// four lands in the output): Σ over the taps that read each of dy · the tap's weights, in
// channel blocks of 8 held in registers, the weights loaded once for the P pixels.
template <int O, int P>
void backward_data_pixels(const Shape &s, const float *dy, const float *w, const int64_t *oh_of,
                          const int64_t *ow_of, int64_t n, int64_t iw, float *out) {
  const int64_t C = s.c;
  for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
    const int64_t width = std::min<int64_t>(kLanes, C - c0);
    __m256 acc[P];
    float tail[P][kLanes] = {};
    for (int p = 0; p < P; ++p) acc[p] = _mm256_setzero_ps();
    for (int64_t kh = 0; kh < s.kh; ++kh) {
      const int64_t oh = oh_of[kh];
      if (oh < 0) continue;
      const float *drow = dy + (n * s.oh + oh) * s.ow * O;
      for (int64_t kw = 0; kw < s.kw; ++kw) {
        const int64_t ow = ow_of[iw * s.kw + kw];
        if (ow < 0) continue;
        const float *wp = w + (kh * s.kw + kw) * O * C + c0;
        for (int o = 0; o < O; ++o) {
          if (width == kLanes) {
            const __m256 wv = load(wp + o * C);
            for (int p = 0; p < P; ++p) acc[p] = fma(_mm256_set1_ps(drow[(ow + p) * O + o]), wv, acc[p]);
          } else {
            for (int p = 0; p < P; ++p)
              for (int64_t c = 0; c < width; ++c) tail[p][c] += drow[(ow + p) * O + o] * wp[o * C + c];
          }
        }
      }
    }
    for (int p = 0; p < P; ++p) {
      if (width == kLanes) {
        _mm256_storeu_ps(out + p * C + c0, acc[p]);
      } else {
        for (int64_t c = 0; c < width; ++c) out[p * C + c0 + c] = tail[p][c];
      }
    }
  }
}

template <int O>
void backward_data(const Shape &s, const float *dy, const float *f, float *dx) {
  const std::vector<float> wt = by_output(s, f);
  const std::vector<int64_t> oh_of = sources(s.h, s.kh, s.sh, s.pt, s.oh);
  const std::vector<int64_t> ow_of = sources(s.w, s.kw, s.sw, s.pl, s.ow);
  // Input columns every one of whose taps lands in the output (then, at stride 1, the tap
  // kw of column iw + p meets output column ow_of[iw, kw] + p).
  std::vector<char> whole(static_cast<size_t>(s.w));
  for (int64_t iw = 0; iw < s.w; ++iw) {
    whole[iw] = 1;
    for (int64_t kw = 0; kw < s.kw; ++kw) whole[iw] &= ow_of[iw * s.kw + kw] >= 0;
  }
#pragma omp parallel for num_threads(threads_for(s)) schedule(static)
  for (int64_t row = 0; row < s.n * s.h; ++row) {
    const int64_t n = row / s.h, ih = row % s.h;
    const int64_t *oh = oh_of.data() + ih * s.kh;
    float *xr = dx + row * s.w * s.c;
    for (int64_t iw = 0; iw < s.w;) {
      if (s.sw == 1 && iw + 4 <= s.w && whole[iw] && whole[iw + 3]) {
        backward_data_pixels<O, 4>(s, dy, wt.data(), oh, ow_of.data(), n, iw, xr + iw * s.c);
        iw += 4;
      } else {
        backward_data_pixels<O, 1>(s, dy, wt.data(), oh, ow_of.data(), n, iw, xr + iw * s.c);
        iw += 1;
      }
    }
  }
}

// Output columns [first, end) whose tap kw lands inside the input row.
inline void columns(const Shape &s, int64_t kw, int64_t &first, int64_t &end) {
  const int64_t lo = s.pl - kw, hi = s.w - 1 + s.pl - kw;  // ow · sw must be in [lo, hi]
  first = lo <= 0 ? 0 : (lo + s.sw - 1) / s.sw;
  end = hi < 0 ? 0 : std::min(s.ow, hi / s.sw + 1);
  if (end < first) end = first;
}

// One output row's share of the filter gradient, added to r [taps, O, c]: per tap and
// channel block, Σ over the row's pixels of x · dy, in two interleaved sets of O sums held
// in registers (even and odd columns), added together at the end.
template <int O>
void backward_filter_row(const Shape &s, const float *x, const float *dy, int64_t n, int64_t oh, float *r) {
  const int64_t C = s.c;
  const float *drow = dy + (n * s.oh + oh) * s.ow * O;
  for (int64_t kh = 0; kh < s.kh; ++kh) {
    const int64_t ih = oh * s.sh - s.pt + kh;
    if (ih < 0 || ih >= s.h) continue;
    const float *xrow = x + (n * s.h + ih) * s.w * C;
    for (int64_t kw = 0; kw < s.kw; ++kw) {
      float *rp = r + (kh * s.kw + kw) * O * C;
      int64_t first, end;
      columns(s, kw, first, end);
      auto at = [&](int64_t ow) { return xrow + (ow * s.sw - s.pl + kw) * C; };
      for (int64_t c0 = 0; c0 < C; c0 += kLanes) {
        const int64_t width = std::min<int64_t>(kLanes, C - c0);
        if (width < kLanes) {
          for (int64_t ow = first; ow < end; ++ow)
            for (int o = 0; o < O; ++o)
              for (int64_t c = 0; c < width; ++c) rp[o * C + c0 + c] += drow[ow * O + o] * at(ow)[c0 + c];
          continue;
        }
        __m256 even[O], odd[O];
        for (int o = 0; o < O; ++o) even[o] = odd[o] = _mm256_setzero_ps();
        int64_t ow = first;
        for (; ow + 2 <= end; ow += 2) {
          const __m256 x0 = load(at(ow) + c0), x1 = load(at(ow + 1) + c0);
          for (int o = 0; o < O; ++o) {
            even[o] = fma(_mm256_set1_ps(drow[ow * O + o]), x0, even[o]);
            odd[o] = fma(_mm256_set1_ps(drow[(ow + 1) * O + o]), x1, odd[o]);
          }
        }
        if (ow < end) {
          const __m256 x0 = load(at(ow) + c0);
          for (int o = 0; o < O; ++o) even[o] = fma(_mm256_set1_ps(drow[ow * O + o]), x0, even[o]);
        }
        for (int o = 0; o < O; ++o) {
          float *t = rp + o * C + c0;
          _mm256_storeu_ps(t, _mm256_add_ps(load(t), _mm256_add_ps(even[o], odd[o])));
        }
      }
    }
  }
}

template <int O>
void backward_filter(const Shape &s, const float *x, const float *dy, float *df) {
  const int64_t C = s.c, K = s.taps() * O * C;  // per-sample sums, [taps, O, c]
  std::vector<double> per_sample(static_cast<size_t>(s.n * K));
#pragma omp parallel num_threads(threads_for(s))
  {
    std::vector<float> row_sums(static_cast<size_t>(K));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < s.n; ++n) {
      double *acc = per_sample.data() + n * K;
      for (int64_t oh = 0; oh < s.oh; ++oh) {
        std::fill(row_sums.begin(), row_sums.end(), 0.f);
        backward_filter_row<O>(s, x, dy, n, oh, row_sums.data());
        for (int64_t k = 0; k < K; ++k) acc[k] += row_sums[k];
      }
    }
  }
  for (int64_t k = 0; k < s.taps(); ++k)
    for (int o = 0; o < O; ++o)
      for (int64_t c = 0; c < C; ++c) {
        double sum = 0;
        for (int64_t n = 0; n < s.n; ++n) sum += per_sample[n * K + (k * O + o) * C + c];
        df[(k * C + c) * O + o] = static_cast<float>(sum);
      }
}

template <int O>
int dispatch(int kind, const Shape &s, const float *in0, const float *in1, float *out) {
  if (kind == 0) forward<O>(s, in0, in1, out);
  else if (kind == 1) backward_data<O>(s, in0, in1, out);
  else backward_filter<O>(s, in0, in1, out);
  return petal::OK;
}

}  // namespace

namespace petal {

bool narrow_conv(const int *params) {
  // PETAL_NARROW_CONV=0 leaves these convolutions to oneDNN (for A/B measurements).
  static const bool on = [] {
    const char *v = std::getenv("PETAL_NARROW_CONV");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  const Shape s(params);
  if (!on) return false;
  // The filter gradient keeps n · taps · oc · c doubles of per-sample sums.
  return s.oc >= 1 && s.oc <= 4 && s.dh == 1 && s.dw == 1 && s.taps() * s.oc * s.c <= (1 << 16);
}

int run_narrow_conv(int kind, const int *params, const float *in0, const float *in1, float *out) {
  const Shape s(params);
  if (!narrow_conv(params) || s.n <= 0 || s.c <= 0 || s.oh <= 0 || s.ow <= 0 || s.sh <= 0 ||
      s.sw <= 0)
    return UNSUPPORTED;
  try {
    switch (s.oc) {
      case 1: return dispatch<1>(kind, s, in0, in1, out);
      case 2: return dispatch<2>(kind, s, in0, in1, out);
      case 3: return dispatch<3>(kind, s, in0, in1, out);
      default: return dispatch<4>(kind, s, in0, in1, out);
    }
  } catch (const std::bad_alloc &) {
    return DNNL_FAILED;
  }
}

}  // namespace petal
