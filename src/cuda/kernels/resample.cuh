// Resampling: upsample (nearest, nearest-exact, (bi)linear), col2im, and p-norm distances (cdist,
// pdist). Index arithmetic, weights and reduction orders are those of PyTorch's CUDA kernels
// (UpSample.cuh, UpSampleBilinear2d.cu, im2col.cuh, DistanceKernel.cu), in fp32 whatever the
// storage type, so results match eager's on the same GPU. Contract: kernel_library_resample.h.
namespace kiln_resample {

using kiln_lib::convert;

// --- upsampling -------------------------------------------------------------------------------

// The host's UpsampleArgs (kernel_library_resample.cc): PyTorch's source-per-destination scales,
// already computed in float as eager computes them on the host.
struct UpsampleArgs {
  float scale_h, scale_w;
  int identity_h, identity_w;  // nearest: dims that map each index to itself
  int copy;                    // linear: input and output sizes equal, an exact copy
  int align_corners;
  int channels_last;           // number outputs with C innermost
  int pad_;
};

// Output element `linear` as (n, c, oh, ow), numbered with C innermost for channels-last outputs
// so that neighbouring threads write neighbouring elements.
template <typename Idx>
__device__ __forceinline__ void coordinates(Idx linear, Idx channels, Idx out_h, Idx out_w,
                                            bool channels_last, i64& n, i64& c, i64& oh, i64& ow) {
  if (channels_last) {
    c = (i64)(linear % channels);
    linear /= channels;
    ow = (i64)(linear % out_w);
    linear /= out_w;
    oh = (i64)(linear % out_h);
    n = (i64)(linear / out_h);
  } else {
    ow = (i64)(linear % out_w);
    linear /= out_w;
    oh = (i64)(linear % out_h);
    linear /= out_h;
    c = (i64)(linear % channels);
    n = (i64)(linear / channels);
  }
}

// PyTorch's nearest_neighbor_(exact_)compute_source_index.
template <int kMode>
__device__ __forceinline__ i64 nearest_source(float scale, i64 dst, i64 in) {
  const float f = kMode == 1 ? floorf(((float)dst + 0.5f) * scale) : floorf((float)dst * scale);
  const i64 src = (i64)f;
  return src < in - 1 ? src : in - 1;
}

// PyTorch's area_pixel_compute_source_index (not cubic: clamped at 0).
__device__ __forceinline__ float linear_source(float scale, i64 dst, bool align_corners) {
  if (align_corners) return scale * (float)dst;
  const float src = scale * ((float)dst + 0.5f) - 0.5f;
  return src < 0.0f ? 0.0f : src;
}

// The two taps along one dim and the second's weight. Where eager would read past the input (a
// scale given with an output_size it does not fit), the index stays at the last element.
struct Taps {
  i64 i0, i1;
  float l0, l1;
};
__device__ __forceinline__ Taps linear_taps(float scale, i64 dst, i64 in, bool align_corners) {
  const float src = linear_source(scale, dst, align_corners);
  Taps t;
  const i64 i = (i64)src;
  t.l1 = src - (float)i;
  t.l0 = 1.0f - t.l1;
  t.i0 = i < in - 1 ? i : in - 1;
  t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
  return t;
}

// in [N, C, H, W] and out [N, C, Ho, Wo], any strides; 1-D resizes come as H = Ho = 1 with
// kDims 1 (no row taps: a row of weight 1 would turn 0 * inf into NaN where eager's has none).
// kMode: 0 nearest, 1 nearest-exact, 2 linear.
template <int kMode, int kDims, typename T, typename Idx>
__device__ void upsample_loop(const KTensor& in, const KTensor& out, const UpsampleArgs& a,
                              Idx total) {
  const T* x = ktensor_ptr<T>(in);
  T* y = ktensor_ptr<T>(out);
  const i64 in_h = in.sizes[2], in_w = in.sizes[3];
  const Idx channels = (Idx)out.sizes[1], out_h = (Idx)out.sizes[2], out_w = (Idx)out.sizes[3];
  for (Idx linear = (Idx)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (Idx)gridDim.x * blockDim.x) {
    i64 n, c, oh, ow;
    coordinates<Idx>(linear, channels, out_h, out_w, a.channels_last != 0, n, c, oh, ow);
    const T* plane = x + n * in.strides[0] + c * in.strides[1];
    const i64 hs = in.strides[2], ws = in.strides[3];
    T* dst = y + n * out.strides[0] + c * out.strides[1] + oh * out.strides[2] +
             ow * out.strides[3];
    if constexpr (kMode != 2) {
      // A copy of the chosen element: NaN and inf stay where they are.
      const i64 h = kDims == 1 || a.identity_h ? oh : nearest_source<kMode>(a.scale_h, oh, in_h);
      const i64 w = a.identity_w ? ow : nearest_source<kMode>(a.scale_w, ow, in_w);
      *dst = plane[h * hs + w * ws];
    } else if (a.copy) {
      *dst = plane[oh * hs + ow * ws];
    } else {
      // Every tap is read, weight 0 or not, in eager's order: 0 * inf and 0 * NaN give NaN
      // where eager's do.
      const Taps tw = linear_taps(a.scale_w, ow, in_w, a.align_corners != 0);
      if constexpr (kDims == 1) {
        const float v = tw.l0 * to_float(plane[tw.i0 * ws]) + tw.l1 * to_float(plane[tw.i1 * ws]);
        *dst = convert<T>(v);
      } else {
        const Taps th = linear_taps(a.scale_h, oh, in_h, a.align_corners != 0);
        const T* r0 = plane + th.i0 * hs;
        const T* r1 = plane + th.i1 * hs;
        const float v =
            th.l0 * (tw.l0 * to_float(r0[tw.i0 * ws]) + tw.l1 * to_float(r0[tw.i1 * ws])) +
            th.l1 * (tw.l0 * to_float(r1[tw.i0 * ws]) + tw.l1 * to_float(r1[tw.i1 * ws]));
        *dst = convert<T>(v);
      }
    }
  }
}

template <int kMode, int kDims, typename T>
__device__ void upsample(const KTensor& in, const KTensor& out, const UpsampleArgs& a, i64 total) {
  if (total < 2147483648LL) {
    upsample_loop<kMode, kDims, T, unsigned int>(in, out, a, (unsigned int)total);
  } else {
    upsample_loop<kMode, kDims, T, u64>(in, out, a, (u64)total);
  }
}

// --- col2im -----------------------------------------------------------------------------------

// The host's Col2imWindow.
struct Col2imWindow {
  i64 kh, kw, dh, dw, ph, pw, sh, sw;
  i64 cols_h, cols_w;  // the patch grid: L = cols_h * cols_w
};

// columns [N, C * kh * kw, L] and out [N, C, H, W], any strides. Each output pixel gathers the
// patch entries that cover it, in PyTorch's order (patch rows, then columns), summing in fp32: no
// atomics, so the result is deterministic.
template <typename T>
__device__ void col2im(const KTensor& cols, const KTensor& out, const Col2imWindow& k, i64 total) {
  const T* x = ktensor_ptr<T>(cols);
  T* y = ktensor_ptr<T>(out);
  const i64 channels = out.sizes[1], height = out.sizes[2], width = out.sizes[3];
  const i64 extent_h = (k.kh - 1) * k.dh + 1, extent_w = (k.kw - 1) * k.dw + 1;
  for (i64 linear = (i64)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (i64)gridDim.x * blockDim.x) {
    const i64 w = linear % width;
    const i64 h = (linear / width) % height;
    const i64 c = (linear / (width * height)) % channels;
    const i64 n = linear / (width * height * channels);
    const i64 w_im = w + k.pw, h_im = h + k.ph;
    const i64 w_col_start = w_im < extent_w ? 0 : (w_im - extent_w) / k.sw + 1;
    const i64 w_col_end = min(w_im / k.sw + 1, k.cols_w);
    const i64 h_col_start = h_im < extent_h ? 0 : (h_im - extent_h) / k.sh + 1;
    const i64 h_col_end = min(h_im / k.sh + 1, k.cols_h);
    const T* base = x + n * cols.strides[0];
    float sum = 0.0f;
    for (i64 h_col = h_col_start; h_col < h_col_end; ++h_col) {
      for (i64 w_col = w_col_start; w_col < w_col_end; ++w_col) {
        i64 h_k = h_im - h_col * k.sh, w_k = w_im - w_col * k.sw;
        if (h_k % k.dh == 0 && w_k % k.dw == 0) {
          h_k /= k.dh;
          w_k /= k.dw;
          const i64 row = (c * k.kh + h_k) * k.kw + w_k;
          const i64 col = h_col * k.cols_w + w_col;
          sum += to_float(base[row * cols.strides[1] + col * cols.strides[2]]);
        }
      }
    }
    y[n * out.strides[0] + c * out.strides[1] + h * out.strides[2] + w * out.strides[3]] =
        convert<T>(sum);
  }
}

// --- p-norm distances -------------------------------------------------------------------------

// kNorm: 0 zero (count of differing entries), 1 one, 2 two, 3 inf, 4 general p, 5 two as
// sqrt(|a|^2 + |b|^2 - 2 a.b) (eager's matrix-product form). As in eager's kernels: p = 0 counts
// a NaN difference as differing, and p = inf skips NaN (a comparison that is false); the others
// propagate it.
template <int kNorm>
__device__ __forceinline__ void dist_inc(float& agg, float diff, float p) {
  if constexpr (kNorm == 0) {
    agg += diff != 0.0f ? 1.0f : 0.0f;
  } else if constexpr (kNorm == 1) {
    agg += diff;
  } else if constexpr (kNorm == 2) {
    agg += diff * diff;
  } else if constexpr (kNorm == 3) {
    if (diff > agg) agg = diff;
  } else {
    agg += powf(diff, p);
  }
}
template <int kNorm>
__device__ __forceinline__ float dist_combine(float agg, float other) {
  if constexpr (kNorm == 3) {
    return other > agg ? other : agg;
  } else {
    return agg + other;
  }
}
template <int kNorm>
__device__ __forceinline__ float dist_finish(float agg, float p) {
  if constexpr (kNorm == 2) {
    return sqrtf(agg);
  } else if constexpr (kNorm == 4) {
    return powf(agg, 1.0f / p);
  } else {
    return agg;
  }
}

inline constexpr int kDistThreads = 256;

// PyTorch's BlockReduce over 256 threads: shuffle down within each warp, then the first warp
// combines the warp results. Thread 0 ends with the total. `shared` holds 8 floats; the leading
// barrier lets consecutive calls share it.
template <int kNorm>
__device__ __forceinline__ float dist_block_reduce(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = dist_combine<kNorm>(v, __shfl_down_sync(0xffffffffu, v, offset));
  }
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = (int)threadIdx.x < kDistThreads / 32 ? shared[lane] : 0.0f;
  if (warp == 0) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
      v = dist_combine<kNorm>(v, __shfl_down_sync(0xffffffffu, v, offset));
    }
  }
  return v;
}

// Through the storage type and back: the roundings eager's unfused ops make.
template <typename T>
__device__ __forceinline__ float stored(float v) {
  return to_float(convert<T>(v));
}

// The distance between row a and row b (m elements, strides as and bs), on a block of 256
// threads, each thread taking every 256th element as eager's kernel does. Valid in thread 0.
template <int kNorm, typename T>
__device__ float row_distance(const T* a, i64 as, const T* b, i64 bs, i64 m, float p,
                              float* shared) {
  if constexpr (kNorm == 5) {
    // eager: cat([-2 a, |a|^2, 1]) . cat([b, 1, |b|^2]) as one matrix product, each operand of
    // the product rounded to T (x.mul(-2), x.pow(2).sum(-1)), then clamp_min(0) and sqrt on T.
    float ab = 0.0f, aa = 0.0f, bb = 0.0f;
    for (i64 k = threadIdx.x; k < m; k += kDistThreads) {
      const float x = to_float(a[k * as]), y = to_float(b[k * bs]);
      ab += stored<T>(x * -2.0f) * y;
      aa += stored<T>(x * x);
      bb += stored<T>(y * y);
    }
    ab = dist_block_reduce<1>(ab, shared);
    aa = dist_block_reduce<1>(aa, shared);
    bb = dist_block_reduce<1>(bb, shared);
    float squared = stored<T>(ab + stored<T>(aa) + stored<T>(bb));
    if (!(squared > 0.0f) && squared == squared) squared = 0.0f;
    return sqrtf(squared);
  } else {
    float agg = 0.0f;
    for (i64 k = threadIdx.x; k < m; k += kDistThreads) {
      dist_inc<kNorm>(agg, fabsf(to_float(a[k * as]) - to_float(b[k * bs])), p);
    }
    return dist_finish<kNorm>(dist_block_reduce<kNorm>(agg, shared), p);
  }
}

// x1 [B..., P, M] and x2 [B..., R, M] viewed with out's batch dims (stride 0 where broadcast);
// out [B..., P, R]; all any strides. One block per output element.
template <int kNorm, typename T>
__device__ void cdist(const KTensor& x1, const KTensor& x2, const KTensor& out, float p,
                      i64 total) {
  __shared__ float shared[kDistThreads / 32];
  const int rank = out.rank;
  const i64 rows2 = out.sizes[rank - 1], rows1 = out.sizes[rank - 2], m = x1.sizes[rank - 1];
  for (i64 o = blockIdx.x; o < total; o += gridDim.x) {
    const i64 j = o % rows2, i = (o / rows2) % rows1;
    i64 batch = o / (rows1 * rows2);
    i64 off1 = i * x1.strides[rank - 2], off2 = j * x2.strides[rank - 2];
    i64 off_out = i * out.strides[rank - 2] + j * out.strides[rank - 1];
    for (int d = rank - 3; d >= 0; --d) {
      const i64 at = batch % out.sizes[d];
      batch /= out.sizes[d];
      off1 += at * x1.strides[d];
      off2 += at * x2.strides[d];
      off_out += at * out.strides[d];
    }
    const float v = row_distance<kNorm, T>(ktensor_ptr<T>(x1) + off1, x1.strides[rank - 1],
                                           ktensor_ptr<T>(x2) + off2, x2.strides[rank - 1], m, p,
                                           shared);
    if (threadIdx.x == 0) ktensor_ptr<T>(out)[off_out] = convert<T>(v);
  }
}

// x [N, M], out [N (N - 1) / 2]: pair k is rows (i, j), i < j, in row-major order of the upper
// triangle; i from k as eager computes it (in double: fp32 loses it for large N).
template <int kNorm, typename T>
__device__ void pdist(const KTensor& x, const KTensor& out, float p, i64 total) {
  __shared__ float shared[kDistThreads / 32];
  const i64 n = x.sizes[0], m = x.sizes[1];
  const double n2 = (double)n - 0.5;
  const double n2_squared_minus_1 = n2 * n2 - 1.0;
  for (i64 k = blockIdx.x; k < total; k += gridDim.x) {
    const i64 i = (i64)(n2 - sqrt(n2_squared_minus_1 - 2.0 * (double)k));
    const i64 j = k - n * i + i * (i + 1) / 2 + i + 1;
    const T* rows = ktensor_ptr<T>(x);
    const float v = row_distance<kNorm, T>(rows + i * x.strides[0], x.strides[1],
                                           rows + j * x.strides[0], x.strides[1], m, p, shared);
    if (threadIdx.x == 0) ktensor_ptr<T>(out)[k * out.strides[0]] = convert<T>(v);
  }
}

}  // namespace kiln_resample
