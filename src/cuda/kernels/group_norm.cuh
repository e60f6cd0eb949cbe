// Group norm, instance norm and training-mode batch norm: normalization over sets of elements that
// are not rows of memory. A block normalizes one set: `rows` channel planes of `plane` elements
// (the channels of a group of one sample; for batch norm, one channel of every sample), walked
// through any strides (NCHW or NHWC), reading the set three times (the later reads mostly hit
// the cache): the mean, the mean of squared deviations, then the output.
//
// The mean is pivot + mean(x - pivot) with the set's first element as the pivot, so a constant
// set has exactly its value as mean, exactly 0 variance, and normalizes to exactly 0 (then
// weight * 0 + bias), as PyTorch's Welford gives. Statistics in fp32, rstd = rsqrtf(var + eps)
// with the biased variance, as PyTorch's CUDA kernels. A set holding an inf or a NaN gets NaN
// statistics (so a NaN output), as kiln's CPU reference; batch norm's mean of a channel whose
// infinities share a sign is that infinity, as eager CUDA's; an empty set mean 0 and rstd NaN.
namespace kiln_group_norm {

#define KILN_GN_PLANE_DIMS 6

// Mirrored by GroupNormShape in kernel_library_group_norm.cc. Set b of the grid is
// (hi, lo) = (b / blocks_lo, b % blocks_lo); its element (row, p) lies at
// hi * x_hi + lo * x_lo + row * x_row + (p walked over the plane dims), and has channel
// lo * channel_lo + row * channel_row (for weight, bias and running statistics).
struct Shape {
  i64 blocks_hi, blocks_lo;
  i64 rows, plane;
  i64 channel_lo, channel_row;
  i64 x_hi, x_lo, x_row;
  i64 y_hi, y_lo, y_row;
  i64 stat_hi, stat_lo;
  i64 w_stride, b_stride, rm_stride, rv_stride;
  i64 plane_sizes[KILN_GN_PLANE_DIMS];
  i64 x_plane[KILN_GN_PLANE_DIMS];
  i64 y_plane[KILN_GN_PLANE_DIMS];
  int plane_dims;
  // Elements numbered with the row fastest (channels-last: neighbouring channels are adjacent);
  // else the plane fastest.
  int rows_inner;
  // x or y walks each set as one contiguous run (offset = element number).
  int x_flat, y_flat;
  // Batch norm: an infinite mean stays infinite (see group_norm).
  int infinite_mean;
};

// The element offset of plane position p.
__device__ __forceinline__ i64 plane_offset(const Shape& s, const i64* strides, i64 p) {
  if (s.plane_dims == 1) return p * strides[0];
  i64 offset = 0;
  for (int d = s.plane_dims - 1; d >= 0; --d) {
    const i64 size = s.plane_sizes[d];
    offset += (p % size) * strides[d];
    p /= size;
  }
  return offset;
}

__device__ __forceinline__ void row_and_position(const Shape& s, i64 e, i64& row, i64& p) {
  if (s.rows_inner) {
    row = e % s.rows;
    p = e / s.rows;
  } else {
    row = e / s.plane;
    p = e % s.plane;
  }
}

__device__ __forceinline__ i64 x_offset(const Shape& s, i64 e) {
  if (s.x_flat) return e;
  i64 row, p;
  row_and_position(s, e, row, p);
  return row * s.x_row + plane_offset(s, s.x_plane, p);
}

__device__ __forceinline__ bool finite(float v) { return fabsf(v) <= 3.402823466e38f; }

__device__ __forceinline__ float nan_value() { return __int_as_float(0x7fffffff); }

// One block per set (grid-stride). P: weight, bias and running statistics; S: the mean and rstd
// outputs (null when not wanted). With running statistics (instance norm without input
// statistics) nothing is reduced: each channel uses (x - running_mean) / sqrt(running_var + eps).
template <typename T, typename P, typename S>
__device__ void group_norm(const T* x, T* y, const Shape& s, const P* w, const P* b,
                           const P* running_mean, const P* running_var, S* mean_out,
                           S* rstd_out, float eps) {
  __shared__ float scratch[32];
  const i64 n = s.rows * s.plane;
  const int tid = threadIdx.x, nthreads = blockDim.x;
  for (i64 set = blockIdx.x; set < s.blocks_hi * s.blocks_lo; set += gridDim.x) {
    const i64 hi = set / s.blocks_lo, lo = set % s.blocks_lo;
    const T* xs = x + hi * s.x_hi + lo * s.x_lo;
    float mean = 0.0f, rstd = 0.0f;
    if (running_mean == nullptr) {
      if (n == 0) {
        rstd = nan_value();
      } else {
        // An infinite (or NaN) pivot would turn the sum into inf - inf; without one, an inf gives the
        // infinite mean eager's Welford gives.
        float pivot = to_float(xs[0]);
        if (!(fabsf(pivot) < __int_as_float(0x7f800000))) pivot = 0.0f;
        float sum = 0.0f;
        for (i64 e = tid; e < n; e += nthreads) sum += to_float(xs[x_offset(s, e)]) - pivot;
        mean = pivot + kiln_lib::block_sum(sum, scratch) / (float)n;
        float squares = 0.0f;
        for (i64 e = tid; e < n; e += nthreads) {
          const float d = to_float(xs[x_offset(s, e)]) - mean;
          squares += d * d;
        }
        const float var = kiln_lib::block_sum(squares, scratch) / (float)n;
        rstd = rsqrtf(var + eps);
        // Group and instance norm give a set holding an inf NaN statistics, as eager. Eager
        // CUDA's batch norm merges its per-thread means as (n_a * mean_a + n_b * mean_b) / n,
        // which keeps a one-signed infinity (-inf mean, NaN variance), as the pivoted sum does.
        if (!finite(mean) && !(s.infinite_mean && !isnan(mean))) mean = rstd = nan_value();
      }
      if (tid == 0) {
        const i64 at = hi * s.stat_hi + lo * s.stat_lo;
        if (mean_out) mean_out[at] = kiln_lib::convert<S>(mean);
        if (rstd_out) rstd_out[at] = kiln_lib::convert<S>(rstd);
      }
    }
    if (y == nullptr) continue;
    T* ys = y + hi * s.y_hi + lo * s.y_lo;
    for (i64 e = tid; e < n; e += nthreads) {
      i64 row, p;
      row_and_position(s, e, row, p);
      const i64 xo = s.x_flat ? e : row * s.x_row + plane_offset(s, s.x_plane, p);
      const i64 yo = s.y_flat ? e : row * s.y_row + plane_offset(s, s.y_plane, p);
      const i64 c = lo * s.channel_lo + row * s.channel_row;
      float m = mean, r = rstd;
      if (running_mean != nullptr) {
        m = to_float(running_mean[c * s.rm_stride]);
        r = 1.0f / sqrtf(to_float(running_var[c * s.rv_stride]) + eps);
      }
      // Centred first, so a constant set gives exactly 0 before the affine.
      float v = (to_float(xs[xo]) - m) * r;
      if (w) v *= to_float(w[c * s.w_stride]);
      if (b) v += to_float(b[c * s.b_stride]);
      ys[yo] = kiln_lib::convert<T>(v);
    }
    // The next set reuses scratch: block_sum's leading barrier orders it.
  }
}

}  // namespace kiln_group_norm
