// Elementwise and reduction kernels on flat float32 buffers: vectorised loops, on
// petal::ew_threads() threads (see common.hpp for why the default is one). tfjs's cpu
// kernels run these in JS and compute broadcast indices per element; on the 4-16 M
// element activations of a GAN step that costs seconds.
// Broadcasting is described by the JS side as out[outer, mid, inner] with the broadcast
// operand b[outer, 1, inner] (mid = 1: same shape; outer = inner = 1: scalar).
// Sizes cross the FFI as int (a float32 typed array stays far below 2^31 elements) and
// are widened to int64_t for index arithmetic.
#include "common.hpp"

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <vector>
#include <omp.h>

namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;
// Work is handed out in chunks (rows or elements, 64 Ki-ish) rather than one static half per
// thread: on a 2-core box shared with other processes a descheduled thread then delays
// one chunk, not half the op.
constexpr int kChunk = 1 << 16;
inline int row_chunk(int64_t row_len) { return static_cast<int>(std::max<int64_t>(1, kChunk / std::max<int64_t>(1, row_len))); }

enum Binary { ADD, SUB, MUL, DIV, SQDIFF, MAX, MIN, RSUB, RDIV, POW, RPOW };

template <int OP>
inline float bin(float a, float b) {
  if constexpr (OP == ADD) return a + b;
  if constexpr (OP == SUB) return a - b;
  if constexpr (OP == MUL) return a * b;
  if constexpr (OP == DIV) return a / b;
  if constexpr (OP == SQDIFF) return (a - b) * (a - b);
  if constexpr (OP == MAX) return a > b ? a : b;
  if constexpr (OP == MIN) return a < b ? a : b;
  if constexpr (OP == RSUB) return b - a;
  if constexpr (OP == RDIV) return b / a;
  if constexpr (OP == POW) return std::pow(a, b);
  if constexpr (OP == RPOW) return std::pow(b, a);
  return 0.f;
}

template <int OP, typename Out, typename F>
void broadcast_loop(const float *a, const float *b, Out *out, int64_t outer, int64_t mid, int64_t inner, F f) {
  const int64_t rows = outer * mid;
  if (inner == 1 && mid > 1 && mid < kParallelMin) {
    // b is one value per outer index and the mid rows are short ([N·H·W, C] against
    // [N·H·W, 1]): one pass over all of out, no parallel region per row (entering one
    // per outer index cost ~0.5 µs each: 70 ms for a [32·64·64, 3] operand).
#pragma omp parallel for if (rows >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, row_chunk(mid))
    for (int64_t o = 0; o < outer; ++o) {
      const float bv = b[o];
      const float *ao = a + o * mid;
      Out *oo = out + o * mid;
      for (int64_t i = 0; i < mid; ++i) oo[i] = f(ao[i], bv);
    }
    return;
  }
  if (inner == 1 && mid > 1) {
    // b is one value per outer index (scalar when outer == 1): split the long mid axis.
    for (int64_t o = 0; o < outer; ++o) {
      const float bv = b[o];
      const float *ao = a + o * mid;
      Out *oo = out + o * mid;
#pragma omp parallel for if (mid >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, kChunk)
      for (int64_t i = 0; i < mid; ++i) oo[i] = f(ao[i], bv);
    }
    return;
  }
#pragma omp parallel for if (rows * inner >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, row_chunk(inner))
  for (int64_t r = 0; r < rows; ++r) {
    const float *br = b + (r / mid) * inner;
    const float *ar = a + r * inner;
    Out *orow = out + r * inner;
    for (int64_t i = 0; i < inner; ++i) orow[i] = f(ar[i], br[i]);
  }
}

template <int OP>
void binary_op(const float *a, const float *b, float *out, int64_t outer, int64_t mid, int64_t inner) {
  broadcast_loop<OP>(a, b, out, outer, mid, inner, [](float x, float y) { return bin<OP>(x, y); });
}

enum Compare { GT, GE, LT, LE, EQ, NE };

template <int OP>
inline uint8_t cmp(float a, float b) {
  if constexpr (OP == GT) return a > b;
  if constexpr (OP == GE) return a >= b;
  if constexpr (OP == LT) return a < b;
  if constexpr (OP == LE) return a <= b;
  if constexpr (OP == EQ) return a == b;
  return a != b;
}

template <int OP>
void compare_op(const float *a, const float *b, uint8_t *out, int64_t outer, int64_t mid, int64_t inner) {
  broadcast_loop<OP>(a, b, out, outer, mid, inner, [](float x, float y) { return cmp<OP>(x, y); });
}

enum Unary { RELU, LEAKY, TANH, SIGMOID, EXP, LOG, SQRT, RSQRT, SQUARE, NEG, ABS, STEP, RECIP, ELU, RELU6 };

// tanh as Eigen's (and TensorFlow's) rational approximation: x·P(x²)/Q(x²) on x clamped to
// ±7.9053, x itself below 4e-4. Max |error| 3.3e-7 against tanh in float64 (checked over
// [-12, 12]); NaN stays NaN. Unlike std::tanh (a libm call per element) it vectorises: the
// generator's last layer and the GRU run 1–2 M tanh per step.
inline float fast_tanh(float x) {
  const float c = 7.90531110763549805f;
  const float xc = x < -c ? -c : (x > c ? c : x);
  const float x2 = xc * xc;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  const float r = xc * p / q;
  return std::fabs(x) < 4e-4f ? x : r;
}

template <int OP>
inline float un(float x, float alpha) {
  if constexpr (OP == RELU) return x < 0.f ? 0.f : x;  // NaN passes, as in tfjs
  if constexpr (OP == LEAKY) {
    const float scaled = alpha * x;  // computed unconditionally so the loop vectorises
    return x < 0.f ? scaled : x;
  }
#ifdef PETAL_LIBM_TANH  // for A/B against the libm tanh (g++ -DPETAL_LIBM_TANH)
  if constexpr (OP == TANH) return std::tanh(x);
#else
  if constexpr (OP == TANH) return fast_tanh(x);
#endif
  if constexpr (OP == SIGMOID) return 1.f / (1.f + std::exp(-x));
  if constexpr (OP == EXP) return std::exp(x);
  if constexpr (OP == LOG) return std::log(x);
  if constexpr (OP == SQRT) return std::sqrt(x);
  if constexpr (OP == RSQRT) return 1.f / std::sqrt(x);
  if constexpr (OP == SQUARE) return x * x;
  if constexpr (OP == NEG) return -x;
  if constexpr (OP == ABS) return std::fabs(x);
  // tfjs Step: NaN stays NaN, x > 0 -> 1, else alpha.
  if constexpr (OP == STEP) return std::isnan(x) ? x : (x > 0.f ? 1.f : alpha);
  if constexpr (OP == RECIP) return 1.f / x;
  if constexpr (OP == ELU) return x >= 0.f ? x : std::expm1(x);
  if constexpr (OP == RELU6) return x < 0.f ? 0.f : (x > 6.f ? 6.f : x);
  return 0.f;
}

template <int OP>
void unary_op(const float *x, float *out, int64_t n, float alpha) {
#pragma omp parallel for if (n >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, kChunk)
  for (int64_t i = 0; i < n; ++i) out[i] = un<OP>(x[i], alpha);
}

}  // namespace

#define CASE(T, NAME, FN, ...) \
  case NAME:                   \
    FN<NAME>(__VA_ARGS__);     \
    return petal::OK;

// out = a (op) b with b broadcast as [outer, 1, inner] against out [outer, mid, inner].
PETAL_API int petal_binary(int op, const float *a, const float *b, float *out, int outer, int mid, int inner) {
  switch (op) {
    CASE(Binary, ADD, binary_op, a, b, out, outer, mid, inner)
    CASE(Binary, SUB, binary_op, a, b, out, outer, mid, inner)
    CASE(Binary, MUL, binary_op, a, b, out, outer, mid, inner)
    CASE(Binary, DIV, binary_op, a, b, out, outer, mid, inner)
    CASE(Binary, SQDIFF, binary_op, a, b, out, outer, mid, inner)
    CASE(Binary, MAX, binary_op, a, b, out, outer, mid, inner)
    CASE(Binary, MIN, binary_op, a, b, out, outer, mid, inner)
    CASE(Binary, RSUB, binary_op, a, b, out, outer, mid, inner)
    CASE(Binary, RDIV, binary_op, a, b, out, outer, mid, inner)
    CASE(Binary, POW, binary_op, a, b, out, outer, mid, inner)
    CASE(Binary, RPOW, binary_op, a, b, out, outer, mid, inner)
    default:
      return petal::UNSUPPORTED;
  }
}

// out (bool as uint8) = a (cmp) b, same broadcasting as petal_binary.
PETAL_API int petal_compare(int op, const float *a, const float *b, uint8_t *out, int outer, int mid,
                            int inner) {
  switch (op) {
    CASE(Compare, GT, compare_op, a, b, out, outer, mid, inner)
    CASE(Compare, GE, compare_op, a, b, out, outer, mid, inner)
    CASE(Compare, LT, compare_op, a, b, out, outer, mid, inner)
    CASE(Compare, LE, compare_op, a, b, out, outer, mid, inner)
    CASE(Compare, EQ, compare_op, a, b, out, outer, mid, inner)
    CASE(Compare, NE, compare_op, a, b, out, outer, mid, inner)
    default:
      return petal::UNSUPPORTED;
  }
}

PETAL_API int petal_unary(int op, const float *x, float *out, int n, float alpha) {
  switch (op) {
    CASE(Unary, RELU, unary_op, x, out, n, alpha)
    CASE(Unary, LEAKY, unary_op, x, out, n, alpha)
    CASE(Unary, TANH, unary_op, x, out, n, alpha)
    CASE(Unary, SIGMOID, unary_op, x, out, n, alpha)
    CASE(Unary, EXP, unary_op, x, out, n, alpha)
    CASE(Unary, LOG, unary_op, x, out, n, alpha)
    CASE(Unary, SQRT, unary_op, x, out, n, alpha)
    CASE(Unary, RSQRT, unary_op, x, out, n, alpha)
    CASE(Unary, SQUARE, unary_op, x, out, n, alpha)
    CASE(Unary, NEG, unary_op, x, out, n, alpha)
    CASE(Unary, ABS, unary_op, x, out, n, alpha)
    CASE(Unary, STEP, unary_op, x, out, n, alpha)
    CASE(Unary, RECIP, unary_op, x, out, n, alpha)
    CASE(Unary, ELU, unary_op, x, out, n, alpha)
    CASE(Unary, RELU6, unary_op, x, out, n, alpha)
    default:
      return petal::UNSUPPORTED;
  }
}

// out[i] = cond[i] ? a[i] : b[i] (tfjs Select with same-shape operands).
PETAL_API int petal_select(const uint8_t *cond, const float *a, const float *b, float *out, int n) {
#pragma omp parallel for if (n >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, kChunk)
  for (int64_t i = 0; i < n; ++i) out[i] = cond[i] ? a[i] : b[i];
  return petal::OK;
}

// tfjs FusedBatchNorm (inference formula; training-mode statistics come in as mean/var):
// out = (x - mean) * scale / sqrt(var + eps) + offset, per channel of the last axis.
// Each of mean/var/offset/scale has length 1 or `channels` (tfjs indexes them modulo length).
PETAL_API int petal_batchnorm(const float *x, const float *mean, int n_mean, const float *var, int n_var,
                              const float *offset, int n_offset, const float *scale, int n_scale, float eps,
                              float *out, int n, int channels) {
  std::vector<float> mul(channels), add(channels);
  for (int64_t c = 0; c < channels; ++c) {
    const float s = scale ? scale[c % n_scale] : 1.f;
    const float o = offset ? offset[c % n_offset] : 0.f;
    const float inv = 1.f / std::sqrt(var[c % n_var] + eps);
    mul[c] = s * inv;
    add[c] = o - mean[c % n_mean] * s * inv;
  }
  const int64_t rows = n / channels;
  const float *m = mul.data(), *ad = add.data();
#pragma omp parallel for if (n >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, row_chunk(channels))
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * channels;
    float *orow = out + r * channels;
    for (int64_t c = 0; c < channels; ++c) orow[c] = xr[c] * m[c] + ad[c];
  }
  return petal::OK;
}

enum Reduce { SUM, MEAN, RMAX, RMIN };

// out[outer, inner] = reduce over the middle axis of x[outer, red, inner]. Sums accumulate
// in double: a BN statistic over 64x64x64 pixels is a sum of 262144 terms.
PETAL_API int petal_reduce(int op, const float *x, float *out, int outer, int red_, int inner) {
  const int64_t red = red_;
  if (op < SUM || op > RMIN || red <= 0) return petal::UNSUPPORTED;
  const bool is_sum = op == SUM || op == MEAN;
  if (inner == 1 && red < kParallelMin) {
    // Many short rows (a mean over C of [N, H, W, C]): no parallel region per row, the
    // same sums in the same order as the loop below.
    for (int64_t o = 0; o < outer; ++o) {
      const float *xo = x + o * red;
      double acc = is_sum ? 0.0 : xo[0];
      if (is_sum) {
        for (int64_t r = 0; r < red; ++r) acc += xo[r];
      } else {
        float best = xo[0];
        for (int64_t r = 1; r < red; ++r) best = op == RMAX ? std::fmax(best, xo[r]) : std::fmin(best, xo[r]);
        acc = best;
      }
      out[o] = static_cast<float>(op == MEAN ? acc / red : acc);
    }
    return petal::OK;
  }
  for (int64_t o = 0; o < outer; ++o) {
    const float *xo = x + o * red * inner;
    float *oo = out + o * inner;
    if (inner == 1) {
      double acc = is_sum ? 0.0 : xo[0];
#pragma omp parallel for if (red >= kParallelMin && petal::reduce_threads() > 1) num_threads(petal::reduce_threads()) reduction(+ : acc) schedule(dynamic, kChunk)
      for (int64_t r = 0; r < red; ++r) {
        if (is_sum) acc += xo[r];
      }
      if (!is_sum) {
        float best = xo[0];
        for (int64_t r = 1; r < red; ++r) best = op == RMAX ? std::fmax(best, xo[r]) : std::fmin(best, xo[r]);
        acc = best;
      }
      oo[0] = static_cast<float>(op == MEAN ? acc / red : acc);
      continue;
    }
    const int threads = red * inner >= kParallelMin ? petal::reduce_threads() : 1;
    std::vector<double> part(static_cast<size_t>(threads) * inner);
    std::vector<char> used(threads, 0);
    // Blocks of 64 rows handed out dynamically; each thread folds its blocks into its own
    // double accumulator (sums) or running extreme (max/min).
    const int64_t blocks = (red + 63) / 64;
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      double *acc = part.data() + static_cast<size_t>(t) * inner;
      std::vector<float> blk(inner);
#pragma omp for schedule(dynamic, 1)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t r0 = b * 64, r1 = std::min(red, r0 + 64);
        if (is_sum) {
          std::fill(blk.begin(), blk.end(), 0.f);
          for (int64_t r = r0; r < r1; ++r) {
            const float *xr = xo + r * inner;
            for (int64_t i = 0; i < inner; ++i) blk[i] += xr[i];
          }
          for (int64_t i = 0; i < inner; ++i) acc[i] += blk[i];
        } else {
          if (!used[t]) {
            for (int64_t i = 0; i < inner; ++i) acc[i] = xo[r0 * inner + i];
          }
          for (int64_t r = r0; r < r1; ++r) {
            const float *xr = xo + r * inner;
            for (int64_t i = 0; i < inner; ++i) acc[i] = op == RMAX ? std::fmax(acc[i], xr[i]) : std::fmin(acc[i], xr[i]);
          }
        }
        used[t] = 1;
      }
    }
    for (int64_t i = 0; i < inner; ++i) {
      double v = is_sum ? 0.0 : std::nan("");
      for (int t = 0; t < threads; ++t) {
        if (!used[t]) continue;
        const double p = part[static_cast<size_t>(t) * inner + i];
        v = is_sum ? v + p : (std::isnan(v) ? p : (op == RMAX ? std::fmax(v, p) : std::fmin(v, p)));
      }
      oo[i] = static_cast<float>(op == MEAN ? v / red : v);
    }
  }
  return petal::OK;
}

// tfjs Tile for float32: out has shape in_shape[d] * reps[d]; rank <= 8.
PETAL_API int petal_tile(const float *x, float *out, int rank, const int *in_shape, const int *reps) {
  if (rank < 1 || rank > 8) return petal::UNSUPPORTED;
  int64_t out_shape[8], in_stride[8];
  int64_t rows = 1;
  for (int d = 0; d < rank; ++d) out_shape[d] = static_cast<int64_t>(in_shape[d]) * reps[d];
  in_stride[rank - 1] = 1;
  for (int d = rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * in_shape[d + 1];
  for (int d = 0; d < rank - 1; ++d) rows *= out_shape[d];
  const int64_t in_last = in_shape[rank - 1], out_last = out_shape[rank - 1];
#pragma omp parallel for if (rows * out_last >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, row_chunk(out_last))
  for (int64_t r = 0; r < rows; ++r) {
    // Decompose the row index into output coordinates, wrap each into the input.
    int64_t rem = r, src = 0;
    for (int d = rank - 2; d >= 0; --d) {
      const int64_t coord = rem % out_shape[d];
      rem /= out_shape[d];
      src += (coord % in_shape[d]) * in_stride[d];
    }
    const float *srow = x + src;
    float *orow = out + r * out_last;
    for (int64_t i = 0; i < out_last; i += in_last) std::memcpy(orow + i, srow, sizeof(float) * in_last);
  }
  return petal::OK;
}

// tfjs Slice for float32 (non-contiguous case; the JS side keeps tfjs's zero-copy path for
// contiguous slices): out = x[begin : begin + size], rank <= 8, copied row by row.
PETAL_API int petal_slice(const float *x, float *out, int rank, const int *shape, const int *begin,
                          const int *size) {
  if (rank < 1 || rank > 8) return petal::UNSUPPORTED;
  int64_t stride[8];
  stride[rank - 1] = 1;
  for (int d = rank - 2; d >= 0; --d) stride[d] = stride[d + 1] * shape[d + 1];
  int64_t rows = 1;
  for (int d = 0; d < rank - 1; ++d) rows *= size[d];
  const int64_t inner = size[rank - 1];
#pragma omp parallel for if (rows * inner >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, row_chunk(inner))
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, src = begin[rank - 1];
    for (int d = rank - 2; d >= 0; --d) {
      src += (rem % size[d] + begin[d]) * stride[d];
      rem /= size[d];
    }
    std::memcpy(out + r * inner, x + src, sizeof(float) * inner);
  }
  return petal::OK;
}

// tfjs Transpose for float32, rank <= 8: out[i0..] = x[perm-ed index], copied row by row of
// the output (the last output axis walks x with stride in_stride[perm[rank - 1]]).
PETAL_API int petal_transpose(const float *x, float *out, int rank, const int *shape, const int *perm) {
  if (rank < 1 || rank > 8) return petal::UNSUPPORTED;
  int64_t in_stride[8], out_shape[8], src_stride[8];
  in_stride[rank - 1] = 1;
  for (int d = rank - 2; d >= 0; --d) in_stride[d] = in_stride[d + 1] * shape[d + 1];
  int64_t rows = 1;
  for (int d = 0; d < rank; ++d) {
    if (perm[d] < 0 || perm[d] >= rank) return petal::UNSUPPORTED;
    out_shape[d] = shape[perm[d]];
    src_stride[d] = in_stride[perm[d]];
    if (d < rank - 1) rows *= out_shape[d];
  }
  const int64_t inner = out_shape[rank - 1], step = src_stride[rank - 1];
#pragma omp parallel for if (rows * inner >= kParallelMin && petal::ew_threads() > 1) num_threads(petal::ew_threads()) schedule(dynamic, row_chunk(inner))
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, src = 0;
    for (int d = rank - 2; d >= 0; --d) {
      src += (rem % out_shape[d]) * src_stride[d];
      rem /= out_shape[d];
    }
    float *orow = out + r * inner;
    if (step == 1) {
      std::memcpy(orow, x + src, sizeof(float) * inner);
    } else {
      for (int64_t i = 0; i < inner; ++i) orow[i] = x[src + i * step];
    }
  }
  return petal::OK;
}

// Concat's copy of one input: dst[o * width + offset + i] = src[o * row + i], o < outer,
// i < row. tfjs's nearest up-sampling concatenates [B·H·W, 1, C] views: tens of thousands
// of rows of a few floats, where one TypedArray.set per row costs more than the copy.
PETAL_API int petal_copy_rows(const float *src, float *dst, int outer, int row, int width, int offset) {
  if (outer < 0 || row < 0 || offset < 0 || offset + row > width) return petal::UNSUPPORTED;
  for (int64_t o = 0; o < outer; ++o) {
    std::memcpy(dst + o * int64_t(width) + offset, src + o * int64_t(row), sizeof(float) * row);
  }
  return petal::OK;
}
