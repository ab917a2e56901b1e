// (Batch)MatMul on oneDNN's sgemm (row-major, threaded by OpenMP inside oneDNN).
#include "common.hpp"

#include <cstdint>
#include <omp.h>

// c[b] = op(a[b]) @ op(b[b]) for b < batch, with per-operand batch strides (0 broadcasts
// one matrix across the batch, as tfjs does for a batch dim of 1).
// Shapes per batch: a [M, K] ([K, M] when trans_a), b [K, N] ([N, K] when trans_b), c [M, N].
PETAL_API int petal_batch_matmul(const float *a, const float *b, float *c, int batch, int m, int n, int k,
                                 int trans_a, int trans_b, int stride_a, int stride_b) {
  // Small products (an RNN step, a text projection) finish in microseconds: waking the
  // second thread and meeting it at the barrier costs more, and far more when another
  // process holds that core. They run on one thread; large ones on all.
  const double flops = 2.0 * m * n * k;
  const int saved = omp_get_max_threads();
  const bool small = flops < (1 << 24);
  if (small) omp_set_num_threads(1);
  const dnnl_dim_t lda = trans_a ? m : k;
  const dnnl_dim_t ldb = trans_b ? k : n;
  for (int i = 0; i < batch; ++i) {
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a + static_cast<int64_t>(i) * stride_a, lda,
                                  b + static_cast<int64_t>(i) * stride_b, ldb, 0.0f, c + static_cast<int64_t>(i) * m * n, n);
    if (st != dnnl_success) {
      if (small) omp_set_num_threads(saved);
      return petal::DNNL_FAILED;
    }
  }
  if (small) omp_set_num_threads(saved);
  return petal::OK;
}
