// Layer norm and RMS norm over contiguous rows of n elements, statistics in fp32: the mean, then
// the mean of squared deviations. Schedules:
//   kRowWarp (n <= 1024): a warp per row;
//   kRowBlock (n <= 8 * blockDim.x) and kRowLong: a block per row.
// Rows are held in registers and accessed (with weight and bias) as 16-byte packs where n and the
// pointers allow; other rows are read from memory three times (the later reads hit the cache).
// The variants are few on purpose: each one costs NVRTC time at every engine build.
namespace kiln_norm {

enum { kRowWarp = 0, kRowBlock = 1, kRowLong = 2 };

// A row's statistics, as every thread of the row holds them after the reductions.
struct RowStats {
  float mean, rstd;
};

template <typename T, bool kW, bool kB, bool kRms, int P, int V, bool kBlock>
__device__ __forceinline__ RowStats cached_row(const T* x, const T* w, const T* b, T* y, int n,
                                           float eps, int tid, int nthreads, float* scratch) {
  float v[P];
#pragma unroll
  for (int c = 0; c < P / V; ++c) {
    const int e = (c * nthreads + tid) * V;
    if (e < n) {
      kiln_lib::load_pack<T, V>(x + e, v + c * V);
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) v[c * V + k] = 0.0f;
    }
  }
  const float inv_n = 1.0f / (float)n;
  float mean = 0.0f;
  if constexpr (!kRms) {
    // Summed as deviations from the row's first element: a constant row then has exactly that
    // mean (and zero variance), as PyTorch's Welford gives, where sum * (1/n) may miss it by an
    // ulp that rsqrt(var + eps) would magnify.
    // (An infinite first element would turn the sum into inf - inf: then no shift, and an inf
    // gives the infinite mean eager's Welford gives.)
    float shift = to_float(x[0]);
    if (!(fabsf(shift) < __int_as_float(0x7f800000))) shift = 0.0f;
    float s = 0.0f;
#pragma unroll
    for (int c = 0; c < P / V; ++c) {
      if ((c * nthreads + tid) * V < n) {
#pragma unroll
        for (int k = 0; k < V; ++k) s += v[c * V + k] - shift;
      }
    }
    mean = shift + kiln_lib::row_sum<kBlock>(s, scratch) / (float)n;
  }
  float q = 0.0f;
#pragma unroll
  for (int c = 0; c < P / V; ++c) {
    if ((c * nthreads + tid) * V < n) {
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const float d = v[c * V + k] - mean;
        q += d * d;
      }
    }
  }
  const float rstd = rsqrtf(kiln_lib::row_sum<kBlock>(q, scratch) * inv_n + eps);
#pragma unroll
  for (int c = 0; c < P / V; ++c) {
    const int e = (c * nthreads + tid) * V;
    if (e < n) {
      float wv[V], bv[V], o[V];
      if constexpr (kW) kiln_lib::load_pack<T, V>(w + e, wv);
      if constexpr (kB) kiln_lib::load_pack<T, V>(b + e, bv);
#pragma unroll
      for (int k = 0; k < V; ++k) {
        float r = (v[c * V + k] - mean) * rstd;
        if constexpr (kW) r *= wv[k];
        if constexpr (kB) r += bv[k];
        o[k] = r;
      }
      kiln_lib::store_pack<T, V>(y + e, o);
    }
  }
  return RowStats{mean, rstd};
}

template <typename T, int V>
__device__ __forceinline__ bool packable(const T* x, const T* w, const T* b, const T* y, i64 n) {
  constexpr u64 kAlign = V * sizeof(T);
  return V > 1 && n % V == 0 && (u64)x % kAlign == 0 && (u64)y % kAlign == 0 &&
         (w == nullptr || (u64)w % kAlign == 0) && (b == nullptr || (u64)b % kAlign == 0);
}
template <typename T, int P>
struct Pack {
  static constexpr int value = 16 / (int)sizeof(T) < P ? 16 / (int)sizeof(T) : P;
};

// Thread `tid` of `nthreads` (a warp, or the block when kBlock) reads the row from memory for
// each statistic and for the output.
template <typename T, bool kW, bool kB, bool kRms, bool kBlock>
__device__ RowStats streamed_row(const T* x, const T* w, const T* b, T* y, i64 n, float eps, int tid,
                             int nthreads, float* scratch) {
  const float inv_n = 1.0f / (float)n;
  float mean = 0.0f;
  if constexpr (!kRms) {
    float shift = to_float(x[0]);  // as in cached_row
    if (!(fabsf(shift) < __int_as_float(0x7f800000))) shift = 0.0f;
    float s = 0.0f;
    for (i64 e = tid; e < n; e += nthreads) s += to_float(x[e]) - shift;
    mean = shift + kiln_lib::row_sum<kBlock>(s, scratch) / (float)n;
  }
  float q = 0.0f;
  for (i64 e = tid; e < n; e += nthreads) {
    const float d = to_float(x[e]) - mean;
    q += d * d;
  }
  const float rstd = rsqrtf(kiln_lib::row_sum<kBlock>(q, scratch) * inv_n + eps);
  for (i64 e = tid; e < n; e += nthreads) {
    float r = (to_float(x[e]) - mean) * rstd;
    if constexpr (kW) r *= to_float(w[e]);
    if constexpr (kB) r += to_float(b[e]);
    y[e] = kiln_lib::convert<T>(r);
  }
  return RowStats{mean, rstd};
}

// native_layer_norm's mean and rstd outputs (one per row, S = float or the input's type), written
// by the row's first thread; null when nothing reads them.
template <typename S>
__device__ __forceinline__ void store_stats(S* mean_out, S* rstd_out, i64 r, RowStats s, int tid) {
  if (tid != 0) return;
  if (mean_out) mean_out[r] = kiln_lib::convert<S>(s.mean);
  if (rstd_out) rstd_out[r] = kiln_lib::convert<S>(s.rstd);
}

template <typename T, bool kW, bool kB, bool kRms, typename S = float>
__device__ void norm(const T* x, const T* w, const T* b, T* y, i64 rows, i64 n, float eps,
                     int mode, S* mean_out = nullptr, S* rstd_out = nullptr) {
  __shared__ float scratch[32];
  constexpr int kShort = Pack<T, 8>::value, kLong = Pack<T, 32>::value;
  if (mode == kRowWarp) {
    const int warps = blockDim.x >> 5, lane = threadIdx.x & 31;
    for (i64 r = (i64)blockIdx.x * warps + (threadIdx.x >> 5); r < rows;
         r += (i64)gridDim.x * warps) {
      const T* xr = x + r * n;
      T* yr = y + r * n;
      RowStats s;
      if (n <= 256 && packable<T, kShort>(xr, w, b, yr, n)) {
        s = cached_row<T, kW, kB, kRms, 8, kShort, false>(xr, w, b, yr, (int)n, eps, lane, 32,
                                                          nullptr);
      } else if (packable<T, kLong>(xr, w, b, yr, n)) {
        s = cached_row<T, kW, kB, kRms, 32, kLong, false>(xr, w, b, yr, (int)n, eps, lane, 32,
                                                          nullptr);
      } else {
        s = streamed_row<T, kW, kB, kRms, false>(xr, w, b, yr, n, eps, lane, 32, nullptr);
      }
      store_stats<S>(mean_out, rstd_out, r, s, lane);
    }
  } else {  // kRowBlock, kRowLong
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
      const T* xr = x + r * n;
      T* yr = y + r * n;
      RowStats s;
      if (n <= 8 * (i64)blockDim.x && packable<T, kShort>(xr, w, b, yr, n)) {
        s = cached_row<T, kW, kB, kRms, 8, kShort, true>(xr, w, b, yr, (int)n, eps, threadIdx.x,
                                                         blockDim.x, scratch);
      } else {
        s = streamed_row<T, kW, kB, kRms, true>(xr, w, b, yr, n, eps, threadIdx.x, blockDim.x,
                                                scratch);
      }
      store_stats<S>(mean_out, rstd_out, r, s, threadIdx.x);
    }
  }
}

}  // namespace kiln_norm
