// fp32 matrix multiplication for the CPU backend, on raw row-major buffers.
//
// The caller owns every buffer; the functions keep no pointer after returning. C must not overlap A
// or B. Work is spread over default_thread_pool(); the functions may be called from several threads
// at once, and from inside a parallel_for chunk (they then run on the calling thread alone).
// Each thread keeps its packing buffers (a few MiB at most) between calls.
#pragma once

#include <cstdint>

namespace kiln::cpu {

// C = alpha * op(A) * op(B) + beta * C, all row-major, where op(A) is m x k (A is m x k, or k x m
// when trans_a), op(B) is k x n (B is k x n, or n x k when trans_b) and C is m x n.
// lda / ldb / ldc are the distances in elements between consecutive rows of the stored matrices.
// When beta == 0, C is written without being read (NaN or uninitialized contents are fine); when
// alpha == 0 or k == 0, A and B are not read and C becomes beta * C.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// `batch` independent sgemm calls; problem i uses a + i * stride_a, b + i * stride_b and
// c + i * stride_c (a stride of 0 shares one A or B across the batch; C blocks must not overlap).
// Spreads the batch over threads when that beats splitting each product.
void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                   float alpha, const float* a, int64_t lda, int64_t stride_a, const float* b,
                   int64_t ldb, int64_t stride_b, float beta, float* c, int64_t ldc,
                   int64_t stride_c);

// Which micro-kernel sgemm uses. kAuto picks the fastest one the CPU supports; the others exist so
// tests can check every code path on machines that have them.
enum class GemmIsa { kAuto, kPortable, kAvx2 };

// Whether `isa` can run on this CPU (kAuto and kPortable always can).
bool gemm_isa_supported(GemmIsa isa);

// Where SgemmExtras::bias applies: one value per row of C (m values, e.g. a convolution's output
// channels) or per column (n values, e.g. a linear layer's output features).
enum class GemmBias { kNone, kPerRow, kPerColumn };

struct SgemmExtras {
  GemmBias bias_kind = GemmBias::kNone;
  const float* bias = nullptr;  // read only; needed unless bias_kind is kNone
  // Falls back to kPortable when the chosen micro-kernel is not supported.
  GemmIsa isa = GemmIsa::kAuto;
};

// sgemm plus a bias, added as each block of C is first written (no extra pass over C):
// C = alpha * op(A) * op(B) + bias + beta * C.
void sgemm_with(const SgemmExtras& extras, bool trans_a, bool trans_b, int64_t m, int64_t n,
                int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                float beta, float* c, int64_t ldc);

}  // namespace kiln::cpu
