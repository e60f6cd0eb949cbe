// Blocked fp32 GEMM in the usual three-level scheme: C is walked in NC-wide column panels, K in
// KC-deep slices and M in MC-tall row blocks. For each slice the B panel and the A block are copied
// ("packed") into contiguous strips matching the micro-kernel's register tile (MR x NR), so the
// micro-kernel reads both operands sequentially whatever the transposes and leading dimensions
// were. The packed A block lives in L2 and one packed B strip in L1 while the micro-kernel sweeps
// them.
//
// Threads split C into a grid of rectangles, each a complete serial GEMM with its own packing
// buffers: no synchronization inside a product, at the price of packing the shared operand once
// per grid row or column (cheap next to the arithmetic once a rectangle is a few tiles wide).
#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

constexpr int64_t kKc = 256;          // depth of a packed slice: one B strip (KC x NR) fits L1
constexpr int64_t kMcStrips = 24;     // MC = 24 * MR rows: a packed A block of ~150 KB stays in L2
constexpr int64_t kNc = 3072;         // width of a packed B panel (~3 MB, shared L3)
constexpr int64_t kMaxTile = 6 * 16;  // largest MR * NR of any micro-kernel
// Below this many flops per thread, waking another thread costs more than it saves.
constexpr double kMinFlopsPerThread = 1 << 20;
constexpr int64_t kGemvBlock = 1024;  // outputs accumulated at once by the column-major gemv

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
int64_t round_up(int64_t a, int64_t b) {
  return ceil_div(a, b) * b;
}

// C(tile) = alpha * A(strip) * B(strip) + beta * C(tile) for one MR x NR tile; beta == 0 must not
// read C. `a` holds kc groups of MR values, `b` kc groups of NR values (64-byte aligned).
using KernelFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                          float alpha, float beta);
using DotFn = float (*)(const float* x, const float* y, int64_t n);
using AxpyFn = void (*)(float alpha, const float* x, float* y, int64_t n);
// Packs a depth x width panel of a matrix X into strips of W columns (see pack_strips).
using PackFn = void (*)(bool transposed, const float* x, int64_t ld, int64_t depth, int64_t width,
                        float* dst);

struct MicroKernel {
  int64_t mr;
  int64_t nr;
  KernelFn kernel;
  PackFn pack_a;  // pack_strips<mr>
  PackFn pack_b;  // pack_strips<nr>
  DotFn dot;
  AxpyFn axpy;
};

template <int64_t W>
inline void copy_fixed(float* __restrict dst, const float* __restrict src) {
  for (int64_t j = 0; j < W; ++j) dst[j] = src[j];
}

// Copies X[0:depth, 0:width] into strips of W columns: strip s holds, for each p, the W values
// X(p, s * W + j), zero past column `width`. X(p, j) is x[p * ld + j], or x[j * ld + p] when
// `transposed`. Both GEMM operands are packed this way: B as X = op(B), A as X = op(A)^T. W is a
// compile-time constant so that full strips copy with fixed-size vector moves.
template <int64_t W>
void pack_strips(bool transposed, const float* x, int64_t ld, int64_t depth, int64_t width,
                 float* dst) {
  const int64_t full = width / W, cols = width % W;  // full strips, then a partial one
  if (cols != 0) std::fill(dst + full * W * depth, dst + (full + 1) * W * depth, 0.0f);
  if (!transposed) {
    // Walk X row by row so the reads stream through memory (strip by strip, every read would
    // touch a new row and defeat the hardware prefetcher).
    for (int64_t p = 0; p < depth; ++p) {
      const float* src = x + p * ld;
      float* out = dst + p * W;
      for (int64_t s = 0; s < full; ++s) copy_fixed<W>(out + s * W * depth, src + s * W);
      for (int64_t j = 0; j < cols; ++j) out[full * W * depth + j] = src[full * W + j];
    }
    return;
  }
  // Column j of X is contiguous: walk p in the outer loop so the writes stay sequential.
  for (int64_t s = 0; s <= full; ++s) {
    const int64_t n = s < full ? W : cols;
    if (n == 0) break;
    const float* rows[W];
    for (int64_t j = 0; j < n; ++j) rows[j] = x + (s * W + j) * ld;
    float* out = dst + s * W * depth;
    if (n == W) {
      for (int64_t p = 0; p < depth; ++p) {
        for (int64_t j = 0; j < W; ++j) out[p * W + j] = rows[j][p];
      }
    } else {
      for (int64_t p = 0; p < depth; ++p) {
        for (int64_t j = 0; j < n; ++j) out[p * W + j] = rows[j][p];
      }
    }
  }
}

// ---- portable micro-kernel (plain C++; the fixed-size inner loops vectorize with SSE2) ----------

constexpr int64_t kPortableMr = 4;
constexpr int64_t kPortableNr = 8;

void kernel_portable(int64_t kc, const float* __restrict a, const float* __restrict b,
                     float* __restrict c, int64_t ldc, float alpha, float beta) {
  float acc[kPortableMr][kPortableNr] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int64_t i = 0; i < kPortableMr; ++i) {
      const float ai = a[i];
      for (int64_t j = 0; j < kPortableNr; ++j) acc[i][j] += ai * b[j];
    }
    a += kPortableMr;
    b += kPortableNr;
  }
  for (int64_t i = 0; i < kPortableMr; ++i) {
    float* row = c + i * ldc;
    for (int64_t j = 0; j < kPortableNr; ++j) {
      const float v = alpha * acc[i][j];
      row[j] = beta == 0.0f ? v : v + beta * row[j];
    }
  }
}

float dot_portable(const float* x, const float* y, int64_t n) {
  // Eight partial sums: independent chains the compiler can keep in one vector register.
  float part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int64_t j = 0; j < 8; ++j) part[j] += x[i + j] * y[i + j];
  }
  float sum =
      ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

void axpy_portable(float alpha, const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

constexpr MicroKernel kPortableKernel{
    kPortableMr,  kPortableNr,  kernel_portable, pack_strips<kPortableMr>, pack_strips<kPortableNr>,
    dot_portable, axpy_portable};

// ---- AVX2 + FMA micro-kernel: a 6 x 16 tile held in 12 ymm accumulators ------------------------

#if defined(__x86_64__) || defined(__i386__)
#define KILN_GEMM_HAS_AVX2 1

__attribute__((target("avx2,fma"))) inline void avx2_store_row(float* c, __m256 lo, __m256 hi,
                                                               __m256 alpha, float beta) {
  lo = _mm256_mul_ps(lo, alpha);
  hi = _mm256_mul_ps(hi, alpha);
  if (beta != 0.0f) {
    const __m256 vb = _mm256_set1_ps(beta);
    lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), lo);
    hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), hi);
  }
  _mm256_storeu_ps(c, lo);
  _mm256_storeu_ps(c + 8, hi);
}

__attribute__((target("avx2,fma"))) void kernel_avx2(int64_t kc, const float* a, const float* b,
                                                     float* c, int64_t ldc, float alpha,
                                                     float beta) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    __m256 ai = _mm256_broadcast_ss(a);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
    a += 6;
    b += 16;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  avx2_store_row(c, c00, c01, va, beta);
  avx2_store_row(c + ldc, c10, c11, va, beta);
  avx2_store_row(c + 2 * ldc, c20, c21, va, beta);
  avx2_store_row(c + 3 * ldc, c30, c31, va, beta);
  avx2_store_row(c + 4 * ldc, c40, c41, va, beta);
  avx2_store_row(c + 5 * ldc, c50, c51, va, beta);
}

__attribute__((target("avx2,fma"))) float dot_avx2(const float* x, const float* y, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
  }
  const __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  float sum = _mm_cvtss_f32(q);
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

__attribute__((target("avx2,fma"))) void axpy_avx2(float alpha, const float* x, float* y,
                                                   int64_t n) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    _mm256_storeu_ps(y + i + 8,
                     _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8)));
  }
  for (; i < n; ++i) y[i] += alpha * x[i];
}

constexpr MicroKernel kAvx2Kernel{6,        16,       kernel_avx2, pack_strips<6>, pack_strips<16>,
                                  dot_avx2, axpy_avx2};

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}
#else
bool cpu_has_avx2() {
  return false;
}
#endif

const MicroKernel& select_kernel(GemmIsa isa) {
#ifdef KILN_GEMM_HAS_AVX2
  if (isa != GemmIsa::kPortable && cpu_has_avx2()) return kAvx2Kernel;
#endif
  return kPortableKernel;
}

// ---- workspace ----------------------------------------------------------------------------------

// A growable 64-byte-aligned float buffer.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  ~AlignedBuffer() { release(); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  float* reserve(int64_t count) {
    if (count > capacity_) {
      release();
      data_ = static_cast<float*>(
          ::operator new (static_cast<size_t>(count) * sizeof(float), std::align_val_t{64}));
      capacity_ = count;
    }
    return data_;
  }

 private:
  void release() {
    if (data_ != nullptr) ::operator delete (data_, std::align_val_t{64});
    data_ = nullptr;
    capacity_ = 0;
  }

  float* data_ = nullptr;
  int64_t capacity_ = 0;
};

// Packing buffers, one pair per thread so concurrent products never share them.
struct Workspace {
  AlignedBuffer packed_a;
  AlignedBuffer packed_b;
};

Workspace& thread_workspace() {
  thread_local Workspace workspace;
  return workspace;
}

// ---- one product --------------------------------------------------------------------------------

struct GemmArgs {
  bool trans_a;
  bool trans_b;
  int64_t m, n, k;
  float alpha;
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  float beta;
  float* c;
  int64_t ldc;
  const float* row_bias;  // m values or null
  const float* col_bias;  // n values or null

  // Address of op(A)(i, p) and op(B)(p, j).
  const float* a_at(int64_t i, int64_t p) const {
    return trans_a ? a + p * lda + i : a + i * lda + p;
  }
  const float* b_at(int64_t p, int64_t j) const {
    return trans_b ? b + j * ldb + p : b + p * ldb + j;
  }
};

// c[i, j] += row_bias[i] + col_bias[j] over rows x cols (either bias may be null).
void add_bias(float* c, int64_t ldc, int64_t rows, int64_t cols, const float* row_bias,
              const float* col_bias) {
  for (int64_t i = 0; i < rows; ++i) {
    float* __restrict row = c + i * ldc;
    if (row_bias != nullptr) {
      const float r = row_bias[i];
      for (int64_t j = 0; j < cols; ++j) row[j] += r;
    }
    if (col_bias != nullptr) {
      for (int64_t j = 0; j < cols; ++j) row[j] += col_bias[j];
    }
  }
}

// Runs the micro-kernel over an mc x nc block of C from packed operands. Edge tiles go through a
// full-size scratch tile so the micro-kernel never needs bounds checks. The biases (offset to the
// block, null after the first K slice) are added while each tile is still in L1.
void macro_kernel(const MicroKernel& uk, int64_t mc, int64_t nc, int64_t kc, const float* pa,
                  const float* pb, float* c, int64_t ldc, float alpha, float beta,
                  const float* row_bias, const float* col_bias) {
  const bool has_bias = row_bias != nullptr || col_bias != nullptr;
  alignas(64) float tile[kMaxTile];
  for (int64_t jr = 0; jr < nc; jr += uk.nr) {
    const int64_t cols = std::min(uk.nr, nc - jr);
    const float* b_strip = pb + jr * kc;
    for (int64_t ir = 0; ir < mc; ir += uk.mr) {
      const int64_t rows = std::min(uk.mr, mc - ir);
      const float* a_strip = pa + ir * kc;
      float* ct = c + ir * ldc + jr;
      if (rows == uk.mr && cols == uk.nr) {
        uk.kernel(kc, a_strip, b_strip, ct, ldc, alpha, beta);
      } else {
        uk.kernel(kc, a_strip, b_strip, tile, uk.nr, alpha, 0.0f);
        for (int64_t i = 0; i < rows; ++i) {
          float* row = ct + i * ldc;
          const float* t = tile + i * uk.nr;
          for (int64_t j = 0; j < cols; ++j) row[j] = beta == 0.0f ? t[j] : t[j] + beta * row[j];
        }
      }
      if (has_bias) {
        add_bias(ct, ldc, rows, cols, row_bias == nullptr ? nullptr : row_bias + ir,
                 col_bias == nullptr ? nullptr : col_bias + jr);
      }
    }
  }
}

// The whole product on the calling thread. Requires m, n, k >= 1.
void gemm_serial(const MicroKernel& uk, const GemmArgs& g) {
  // Equal slices of K and panels of N rather than a short remainder.
  const int64_t kc_max = ceil_div(g.k, ceil_div(g.k, kKc));
  const int64_t mc_max = std::min(uk.mr * kMcStrips, round_up(g.m, uk.mr));
  const int64_t nc_max = round_up(ceil_div(g.n, ceil_div(g.n, kNc)), uk.nr);
  Workspace& ws = thread_workspace();
  float* pa = ws.packed_a.reserve(mc_max * kc_max);
  float* pb = ws.packed_b.reserve(nc_max * kc_max);
  for (int64_t jc = 0; jc < g.n; jc += nc_max) {
    const int64_t nc = std::min(nc_max, g.n - jc);
    for (int64_t pc = 0; pc < g.k; pc += kc_max) {
      const int64_t kc = std::min(kc_max, g.k - pc);
      uk.pack_b(g.trans_b, g.b_at(pc, jc), g.ldb, kc, nc, pb);
      // Later slices accumulate onto what the first one wrote (bias included).
      const bool first = pc == 0;
      const float beta = first ? g.beta : 1.0f;
      const float* col_bias = first && g.col_bias != nullptr ? g.col_bias + jc : nullptr;
      for (int64_t ic = 0; ic < g.m; ic += mc_max) {
        const int64_t mc = std::min(mc_max, g.m - ic);
        const float* row_bias = first && g.row_bias != nullptr ? g.row_bias + ic : nullptr;
        uk.pack_a(!g.trans_a, g.a_at(ic, pc), g.lda, kc, mc, pa);
        macro_kernel(uk, mc, nc, kc, pa, pb, g.c + ic * g.ldc + jc, g.ldc, g.alpha, beta, row_bias,
                     col_bias);
      }
    }
  }
}

// Splits C into a tm x tn grid (tm * tn == threads) minimizing the largest rectangle's work:
// its area plus the packing it repeats, weighted as the cost of ~8 multiply-adds per packed value.
void choose_grid(const MicroKernel& uk, int64_t m, int64_t n, int threads, int64_t* tm,
                 int64_t* tn) {
  const int64_t m_tiles = ceil_div(m, uk.mr);
  const int64_t n_tiles = ceil_div(n, uk.nr);
  double best = -1.0;
  for (int64_t rows = 1; rows <= threads; ++rows) {
    if (threads % rows != 0) continue;
    const int64_t cols = threads / rows;
    if (rows > m_tiles || cols > n_tiles) continue;
    const double h = static_cast<double>(ceil_div(m_tiles, rows) * uk.mr);
    const double w = static_cast<double>(ceil_div(n_tiles, cols) * uk.nr);
    const double cost = h * w + 8.0 * (h + w);
    if (best < 0.0 || cost < best) {
      best = cost;
      *tm = rows;
      *tn = cols;
    }
  }
}

void gemm_parallel(const MicroKernel& uk, const GemmArgs& g, int threads) {
  int64_t tm = 0, tn = 0;
  choose_grid(uk, g.m, g.n, threads, &tm, &tn);
  if (tm == 0) {  // no factorization fits (tiny in one dimension): split the longer side only
    const int64_t m_tiles = ceil_div(g.m, uk.mr), n_tiles = ceil_div(g.n, uk.nr);
    tm = m_tiles >= n_tiles ? std::min<int64_t>(threads, m_tiles) : 1;
    tn = m_tiles >= n_tiles ? 1 : std::min<int64_t>(threads, n_tiles);
  }
  const int64_t m_tiles = ceil_div(g.m, uk.mr), n_tiles = ceil_div(g.n, uk.nr);
  parallel_for(0, tm * tn, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t ti = t / tn, tj = t % tn;
      const int64_t i0 = m_tiles * ti / tm * uk.mr;
      const int64_t i1 = std::min(g.m, m_tiles * (ti + 1) / tm * uk.mr);
      const int64_t j0 = n_tiles * tj / tn * uk.nr;
      const int64_t j1 = std::min(g.n, n_tiles * (tj + 1) / tn * uk.nr);
      if (i0 >= i1 || j0 >= j1) continue;
      GemmArgs sub = g;
      sub.m = i1 - i0;
      sub.n = j1 - j0;
      sub.a = g.a_at(i0, 0);
      sub.b = g.b_at(0, j0);
      sub.c = g.c + i0 * g.ldc + j0;
      if (g.row_bias != nullptr) sub.row_bias = g.row_bias + i0;
      if (g.col_bias != nullptr) sub.col_bias = g.col_bias + j0;
      gemm_serial(uk, sub);
    }
  });
}

// ---- degenerate shapes --------------------------------------------------------------------------

// C = beta * C, for products with nothing to accumulate (k == 0 or alpha == 0).
void scale_c(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    float* row = g.c + i * g.ldc;
    if (g.beta == 0.0f) {
      std::fill(row, row + g.n, 0.0f);
    } else if (g.beta != 1.0f) {
      for (int64_t j = 0; j < g.n; ++j) row[j] *= g.beta;
    }
  }
}

// Matrix-vector product y = alpha * M x + beta * y (y strided by incy, `rows` long), where
// M(i, p) = mat[i * ld + p] when `row_major` and mat[p * ld + i] otherwise. Packing would cost as
// much as the product here, so the matrix is streamed once in its stored order.
void gemv(const MicroKernel& uk, bool row_major, int64_t rows, int64_t k, float alpha,
          const float* mat, int64_t ld, const float* x, float beta, float* y, int64_t incy) {
  const int64_t grain = std::max<int64_t>(16, ceil_div(int64_t{1} << 15, k));
  parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    float acc[kGemvBlock];
    for (int64_t i0 = lo; i0 < hi; i0 += kGemvBlock) {
      const int64_t len = std::min(kGemvBlock, hi - i0);
      if (row_major) {
        for (int64_t i = 0; i < len; ++i) acc[i] = uk.dot(mat + (i0 + i) * ld, x, k);
      } else {
        std::fill(acc, acc + len, 0.0f);
        for (int64_t p = 0; p < k; ++p) uk.axpy(x[p], mat + p * ld + i0, acc, len);
      }
      for (int64_t i = 0; i < len; ++i) {
        float* out = y + (i0 + i) * incy;
        *out = beta == 0.0f ? alpha * acc[i] : alpha * acc[i] + beta * *out;
      }
    }
  });
}

// m == 1 or n == 1: a matrix-vector product over whichever side is longer.
void gemv_product(const MicroKernel& uk, const GemmArgs& g) {
  std::vector<float> x(static_cast<size_t>(g.k));
  if (g.m == 1) {  // c[0, :] = op(B)^T op(A)[0, :]
    for (int64_t p = 0; p < g.k; ++p) x[p] = *g.a_at(0, p);
    gemv(uk, g.trans_b, g.n, g.k, g.alpha, g.b, g.ldb, x.data(), g.beta, g.c, 1);
  } else {  // c[:, 0] = op(A) op(B)[:, 0]
    for (int64_t p = 0; p < g.k; ++p) x[p] = *g.b_at(p, 0);
    gemv(uk, !g.trans_a, g.m, g.k, g.alpha, g.a, g.lda, x.data(), g.beta, g.c, g.ldc);
  }
}

void sgemm_impl(const MicroKernel& uk, const GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0 || g.alpha == 0.0f || g.m == 1 || g.n == 1) {
    if (g.k <= 0 || g.alpha == 0.0f) {
      scale_c(g);
    } else {
      gemv_product(uk, g);
    }
    // A second pass is fine here: C is a vector, or nothing else touched it.
    add_bias(g.c, g.ldc, g.m, g.n, g.row_bias, g.col_bias);
    return;
  }
  int threads = in_parallel_region() ? 1 : default_thread_pool().num_threads();
  const double flops = 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * g.k;
  threads =
      static_cast<int>(std::clamp(flops / kMinFlopsPerThread, 1.0, static_cast<double>(threads)));
  if (threads <= 1) {
    gemm_serial(uk, g);
  } else {
    gemm_parallel(uk, g, threads);
  }
}

}  // namespace

bool gemm_isa_supported(GemmIsa isa) {
  return isa != GemmIsa::kAvx2 || cpu_has_avx2();
}

void sgemm_with(const SgemmExtras& extras, bool trans_a, bool trans_b, int64_t m, int64_t n,
                int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                float beta, float* c, int64_t ldc) {
  const float* row_bias = extras.bias_kind == GemmBias::kPerRow ? extras.bias : nullptr;
  const float* col_bias = extras.bias_kind == GemmBias::kPerColumn ? extras.bias : nullptr;
  sgemm_impl(select_kernel(extras.isa), GemmArgs{trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                                                 beta, c, ldc, row_bias, col_bias});
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  sgemm_impl(select_kernel(GemmIsa::kAuto), GemmArgs{trans_a, trans_b, m, n, k, alpha, a, lda, b,
                                                     ldb, beta, c, ldc, nullptr, nullptr});
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t m, int64_t n, int64_t k,
                   float alpha, const float* a, int64_t lda, int64_t stride_a, const float* b,
                   int64_t ldb, int64_t stride_b, float beta, float* c, int64_t ldc,
                   int64_t stride_c) {
  if (batch <= 0) return;
  const MicroKernel& uk = select_kernel(GemmIsa::kAuto);
  auto run = [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      sgemm_impl(uk,
                 GemmArgs{trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b,
                          ldb, beta, c + i * stride_c, ldc, nullptr, nullptr});
    }
  };
  const int64_t threads = default_thread_pool().num_threads();
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * k;
  // Whole products per thread need no repeated packing; prefer them unless the batch splits
  // unevenly and each product is big enough to split well by itself.
  const bool by_batch =
      batch % threads == 0 || batch >= 4 * threads || flops < threads * 4 * kMinFlopsPerThread;
  if (by_batch && !in_parallel_region()) {
    parallel_for(0, batch, 1, run);
  } else {
    run(0, batch);
  }
}

}  // namespace kiln::cpu
