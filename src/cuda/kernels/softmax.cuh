// softmax / log_softmax along one dim, and attention's in-place masked softmax. Statistics in
// fp32. Schedules (chosen on the host from the row length n and the row layout):
//   kRowWarp (n <= 1024): a warp per row;
//   kRowBlock (n <= 8 * blockDim.x) and kRowLong: a block per row;
//   kColumn: a thread per row, for rows whose elements are strided apart while neighbouring rows
//     are adjacent (softmax over C of NCHW), so loads stay coalesced across threads.
// Warp and block rows are held in registers, read and written as 16-byte packs, when contiguous
// and aligned (warp rows of <= 256 elements also when not); other rows stream through the cache
// twice with online max/sum statistics. The variants are few on purpose: each one costs NVRTC
// time at every engine build.
namespace kiln_softmax {

using kiln_lib::neg_inf;

enum { kRowWarp = 0, kRowBlock = 1, kRowLong = 2, kColumn = 3 };

// The value softmax sees for element e of a row loaded as x: x itself.
struct Plain {
  __device__ __forceinline__ float operator()(float x, i64) const { return x; }
};

// Attention: x * scale + mask, with keys past `limit` (causal) or masked by a false bool masked
// out (-inf). M is the mask's element type; `mask` points at this row's first key.
template <typename M>
struct Masked {
  const M* mask;
  i64 mask_stride;
  float scale;
  i64 limit;
  __device__ __forceinline__ float operator()(float x, i64 j) const {
    if (j > limit) return neg_inf();
    const M m = mask[j * mask_stride];
    if constexpr (kiln_lib::Same<M, bool>::value) {
      return m ? x * scale : neg_inf();
    } else {
      return x * scale + to_float(m);
    }
  }
};
struct Unmasked {
  float scale;
  i64 limit;
  __device__ __forceinline__ float operator()(float x, i64 j) const {
    return j > limit ? neg_inf() : x * scale;
  }
};

// A row of n elements, thread `tid` of `nthreads` holding P of them: chunk c is the V elements
// from (c * nthreads + tid) * V. V > 1 only when the row is contiguous, n % V == 0 and both rows
// are aligned to V elements. kZeroMasked: a row whose values are all -inf writes zeros (attention);
// otherwise it gives NaN, as PyTorch's softmax does.
template <typename In, typename Out, bool kLog, bool kZeroMasked, int P, int V, bool kBlock,
          class Fn>
__device__ __forceinline__ void cached_row(const In* x, i64 xs, Out* y, i64 ys, int n, int tid,
                                           int nthreads, float* scratch, const Fn& fn) {
  float v[P];
#pragma unroll
  for (int c = 0; c < P / V; ++c) {
    const int e = (c * nthreads + tid) * V;
    if (e < n) {
      if constexpr (V > 1) {
        kiln_lib::load_pack<In, V>(x + e, v + c * V);
      } else {
        v[c] = to_float(x[(i64)e * xs]);
      }
#pragma unroll
      for (int k = 0; k < V; ++k) v[c * V + k] = fn(v[c * V + k], e + k);
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) v[c * V + k] = neg_inf();
    }
  }
  float m = neg_inf();
#pragma unroll
  for (int p = 0; p < P; ++p) m = fmaxf(m, v[p]);
  m = kiln_lib::row_max<kBlock>(m, scratch);
  if (kZeroMasked && m == neg_inf()) {
#pragma unroll
    for (int p = 0; p < P; ++p) v[p] = 0.0f;
  } else {
    float s = 0.0f;
#pragma unroll
    for (int p = 0; p < P; ++p) {
      const float d = v[p] - m;
      const float ex = __expf(d);
      s += ex;
      v[p] = kLog ? d : ex;
    }
    s = kiln_lib::row_sum<kBlock>(s, scratch);
    const float log_s = kLog ? logf(s) : 0.0f, inv_s = kLog ? 0.0f : 1.0f / s;
#pragma unroll
    for (int p = 0; p < P; ++p) v[p] = kLog ? v[p] - log_s : v[p] * inv_s;
  }
#pragma unroll
  for (int c = 0; c < P / V; ++c) {
    const int e = (c * nthreads + tid) * V;
    if (e < n) {
      if constexpr (V > 1) {
        kiln_lib::store_pack<Out, V>(y + e, v + c * V);
      } else {
        y[(i64)e * ys] = kiln_lib::convert<Out>(v[c]);
      }
    }
  }
}

// Whether rows at x and y can be read and written as packs of V.
template <typename In, typename Out, int V>
__device__ __forceinline__ bool packable(const In* x, i64 xs, const Out* y, i64 ys, i64 n) {
  return V > 1 && xs == 1 && ys == 1 && n % V == 0 && (u64)x % (V * sizeof(In)) == 0 &&
         (u64)y % (V * sizeof(Out)) == 0;
}
// The pack for P elements per thread: at most 16 bytes on either side.
template <typename In, typename Out, int P>
struct Pack {
  static constexpr int kBytes = sizeof(In) > sizeof(Out) ? sizeof(In) : sizeof(Out);
  static constexpr int value = 16 / kBytes < P ? 16 / kBytes : P;
};

// Online softmax statistics: m the running max, s the sum of exp(x - m). -inf adds nothing;
// NaN and +inf make s NaN, so the row comes out NaN as in PyTorch.
__device__ __forceinline__ void online_add(float& m, float& s, float v) {
  if (v > m) {
    s = s * __expf(m - v) + __expf(v - v);
    m = v;
  } else if (v != neg_inf()) {
    s += __expf(v - m);
  }
}
__device__ __forceinline__ void online_merge(float& m, float& s, float m2, float s2) {
  const float top = fmaxf(m, m2);
  s = top == neg_inf() ? s + s2 : s * __expf(m - top) + s2 * __expf(m2 - top);
  m = top;
}
__device__ __forceinline__ void warp_merge(float& m, float& s) {
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, mask);
    const float s2 = __shfl_xor_sync(0xffffffffu, s, mask);
    online_merge(m, s, m2, s2);
  }
}

// Writes row element e from its value v and the row's statistics.
template <typename Out, bool kLog>
__device__ __forceinline__ Out finish(float v, float m, float log_s, float inv_s) {
  return kiln_lib::convert<Out>(kLog ? v - m - log_s : __expf(v - m) * inv_s);
}

// Thread `tid` of `nthreads` (a warp, or the block when kBlock) streams the row twice: online
// statistics, then the writes. A thread per row when nthreads == 1 (kColumn).
template <typename In, typename Out, bool kLog, bool kZeroMasked, bool kBlock, class Fn>
__device__ void streamed_row(const In* x, i64 xs, Out* y, i64 ys, i64 n, int tid, int nthreads,
                             float* scratch, const Fn& fn) {
  float m = neg_inf(), s = 0.0f;
  for (i64 e = tid; e < n; e += nthreads) online_add(m, s, fn(to_float(x[e * xs]), e));
  if (nthreads > 1) warp_merge(m, s);
  if constexpr (kBlock) {
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) {
      scratch[threadIdx.x >> 5] = m;
      scratch[32 + (threadIdx.x >> 5)] = s;
    }
    __syncthreads();
    m = lane < warps ? scratch[lane] : neg_inf();
    s = lane < warps ? scratch[32 + lane] : 0.0f;
    warp_merge(m, s);
  }
  const bool zero = kZeroMasked && m == neg_inf();
  const float log_s = logf(s), inv_s = 1.0f / s;
  for (i64 e = tid; e < n; e += nthreads) {
    y[e * ys] = zero ? kiln_lib::convert<Out>(0.0f)
                     : finish<Out, kLog>(fn(to_float(x[e * xs]), e), m, log_s, inv_s);
  }
}

// A warp's row: in registers when packable or short, else streamed.
template <typename In, typename Out, bool kLog, bool kZeroMasked, class Fn>
__device__ __forceinline__ void warp_row(const In* x, i64 xs, Out* y, i64 ys, int n, const Fn& fn) {
  const int lane = threadIdx.x & 31;
  constexpr int kShort = Pack<In, Out, 8>::value, kLong = Pack<In, Out, 32>::value;
  if (n <= 256 && packable<In, Out, kShort>(x, xs, y, ys, n)) {
    cached_row<In, Out, kLog, kZeroMasked, 8, kShort, false>(x, xs, y, ys, n, lane, 32, nullptr,
                                                             fn);
  } else if (n <= 256) {
    cached_row<In, Out, kLog, kZeroMasked, 8, 1, false>(x, xs, y, ys, n, lane, 32, nullptr, fn);
  } else if (packable<In, Out, kLong>(x, xs, y, ys, n)) {
    cached_row<In, Out, kLog, kZeroMasked, 32, kLong, false>(x, xs, y, ys, n, lane, 32, nullptr,
                                                             fn);
  } else {
    streamed_row<In, Out, kLog, kZeroMasked, false>(x, xs, y, ys, n, lane, 32, nullptr, fn);
  }
}

// A block's row: in registers (8 elements a thread) when packable and short enough, else
// streamed.
template <typename In, typename Out, bool kLog, bool kZeroMasked, class Fn>
__device__ __forceinline__ void block_row(const In* x, i64 xs, Out* y, i64 ys, i64 n,
                                          float* scratch, const Fn& fn) {
  constexpr int kPack = Pack<In, Out, 8>::value;
  if (n <= 8 * (i64)blockDim.x && packable<In, Out, kPack>(x, xs, y, ys, n)) {
    cached_row<In, Out, kLog, kZeroMasked, 8, kPack, true>(x, xs, y, ys, (int)n, threadIdx.x,
                                                           blockDim.x, scratch, fn);
  } else {
    streamed_row<In, Out, kLog, kZeroMasked, true>(x, xs, y, ys, n, threadIdx.x, blockDim.x,
                                                   scratch, fn);
  }
}

// `in` and `out` view the rows (every dim but the softmax one, coalesced); n elements per row at
// strides xs and ys.
template <typename In, typename Out, bool kLog>
__device__ void softmax(const KTensor& in, const KTensor& out, i64 rows, i64 n, i64 xs, i64 ys,
                        int mode) {
  __shared__ float scratch[64];
  const Plain fn;
  const In* x0 = ktensor_ptr<In>(in);
  Out* y0 = ktensor_ptr<Out>(out);
  i64 xo, yo;
  if (mode == kColumn) {
    for (i64 r = (i64)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
         r += (i64)gridDim.x * blockDim.x) {
      kiln_lib::offsets2<u64>(in, out, (u64)r, xo, yo);
      streamed_row<In, Out, kLog, false, false>(x0 + xo, xs, y0 + yo, ys, n, 0, 1, nullptr, fn);
    }
  } else if (mode == kRowWarp) {
    const int warps = blockDim.x >> 5;
    for (i64 r = (i64)blockIdx.x * warps + (threadIdx.x >> 5); r < rows;
         r += (i64)gridDim.x * warps) {
      kiln_lib::offsets2<u64>(in, out, (u64)r, xo, yo);
      warp_row<In, Out, kLog, false>(x0 + xo, xs, y0 + yo, ys, (int)n, fn);
    }
  } else {
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
      kiln_lib::offsets2<u64>(in, out, (u64)r, xo, yo);
      block_row<In, Out, kLog, false>(x0 + xo, xs, y0 + yo, ys, n, scratch, fn);
    }
  }
}

template <typename T, bool kWarp, class Fn>
__device__ __forceinline__ void attention_row(T* x, i64 lk, float* scratch, const Fn& fn) {
  if constexpr (kWarp) {
    warp_row<T, T, false, true>(x, 1, x, 1, (int)lk, fn);
  } else {
    block_row<T, T, false, true>(x, 1, x, 1, lk, scratch, fn);
  }
}

// scores: contiguous [B, H, Lq, Lk] (rows = B * H * Lq), in place. mask: a 4-D view broadcast to
// the scores (stride 0 on broadcast dims); read only when kHasMask.
template <typename T, typename M, bool kHasMask, bool kWarp>
__device__ void attention_rows(T* scores, i64 rows, i64 heads, i64 lq, i64 lk, const KTensor& mask,
                               float scale, int causal, float* scratch) {
  const int warps = blockDim.x >> 5;
  const i64 first = kWarp ? (i64)blockIdx.x * warps + (threadIdx.x >> 5) : (i64)blockIdx.x;
  const i64 step = kWarp ? (i64)gridDim.x * warps : (i64)gridDim.x;
  for (i64 r = first; r < rows; r += step) {
    const i64 i = r % lq;
    const i64 limit = causal ? i : lk;  // top-left aligned, as PyTorch's is_causal
    if constexpr (kHasMask) {
      const i64 bh = r / lq, h = bh % heads, b = bh / heads;
      Masked<M> fn;
      fn.mask =
          ktensor_ptr<M>(mask) + b * mask.strides[0] + h * mask.strides[1] + i * mask.strides[2];
      fn.mask_stride = mask.strides[3];
      fn.scale = scale;
      fn.limit = limit;
      attention_row<T, kWarp>(scores + r * lk, lk, scratch, fn);
    } else {
      Unmasked fn;
      fn.scale = scale;
      fn.limit = limit;
      attention_row<T, kWarp>(scores + r * lk, lk, scratch, fn);
    }
  }
}

template <typename T, typename M, bool kHasMask>
__device__ void attention_softmax(char* data, i64 rows, i64 heads, i64 lq, i64 lk,
                                  const KTensor& mask, float scale, int causal, int mode) {
  __shared__ float scratch[64];
  T* scores = reinterpret_cast<T*>(data);
  if (mode == kRowWarp) {
    attention_rows<T, M, kHasMask, true>(scores, rows, heads, lq, lk, mask, scale, causal, scratch);
  } else {
    attention_rows<T, M, kHasMask, false>(scores, rows, heads, lq, lk, mask, scale, causal,
                                          scratch);
  }
}

}  // namespace kiln_softmax
