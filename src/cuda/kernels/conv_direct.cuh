// Direct convolutions: what cuDNN does not run (transposed convolutions with output_padding in
// float32 and in 1-D/3-D) and convolution_backward's three gradients. Contract:
// kernel_library_conv_direct.h. Every kernel gathers (no atomics), so results are deterministic;
// products are summed in fp32 whatever the storage type and rounded once.
//
// Tensors come as 5-D views [N, C, D, H, W] (a 1-D or 2-D convolution's missing spatial dims of
// size 1), the weight as [W0, W1, kD, kH, kW], any strides. A convolution pairs positions `a` of
// its strided side with positions `b` of its other side through each tap k:
//   b = a * stride - padding + k * dilation,
// `a` running over a plain convolution's output and a transposed one's input. W0 counts the
// channels of the a side (a plain convolution's output channels, a transposed one's input
// channels); the b side has W1 channels per group.
namespace kiln_conv_direct {

using kiln_lib::convert;

// The host's ConvWindow (kernel_library_conv_direct.cc).
struct ConvWindow {
  i64 stride[3], padding[3], dilation[3];
  i64 groups;
};

// floor(n / d) for d > 0 and any n.
__device__ __forceinline__ i64 floor_div(i64 n, i64 d) {
  const i64 q = n / d;
  return q * d > n ? q - 1 : q;
}

__device__ __forceinline__ i64 at5(const KTensor& t, i64 n, i64 c, i64 p0, i64 p1, i64 p2) {
  return n * t.strides[0] + c * t.strides[1] + p0 * t.strides[2] + p1 * t.strides[3] +
         p2 * t.strides[4];
}

// Element `linear` of t's row-major numbering as (n, c, p0, p1, p2).
__device__ __forceinline__ void coordinates(const KTensor& t, i64 linear, i64& n, i64& c,
                                            i64& p0, i64& p1, i64& p2) {
  p2 = linear % t.sizes[4];
  linear /= t.sizes[4];
  p1 = linear % t.sizes[3];
  linear /= t.sizes[3];
  p0 = linear % t.sizes[2];
  linear /= t.sizes[2];
  c = linear % t.sizes[1];
  n = linear / t.sizes[1];
}

// The b-side gather's test along one dim: tap k reaches b from a = (b + padding - k * dilation)
// / stride when that divides exactly and lands in [0, a_size).
__device__ __forceinline__ bool a_of(i64 b, i64 k, i64 stride, i64 padding, i64 dilation,
                                     i64 a_size, i64& a) {
  const i64 t = b + padding - k * dilation;
  if (t < 0 || t % stride != 0) return false;
  a = t / stride;
  return a < a_size;
}

// A transposed convolution (kTransposed, b side out: y[n, cb, b] sums, over the group's a-side
// channels and the taps that reach b, x[n, ca, a] * w[ca, cb % W1, k]) or a plain one (a side
// out: y[n, ca, a] sums, over the group's W1 b-side channels and the taps whose b lies inside x,
// x[n, cb, b] * w[ca, cb % W1, k]). One thread per output element. With a bias, the sum is
// rounded to T before the bias is added, as eager adds it to cuDNN's stored result.
template <bool kTransposed, typename T>
__device__ void conv(const KTensor& x, const KTensor& w, const KTensor& bias, const KTensor& y,
                     const ConvWindow win, i64 total) {
  const T* xp = ktensor_ptr<T>(x);
  const T* wp = ktensor_ptr<T>(w);
  T* yp = ktensor_ptr<T>(y);
  const i64 w0 = w.sizes[0], w1 = w.sizes[1];
  const i64 w0_per_group = w0 / win.groups;
  for (i64 linear = (i64)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (i64)gridDim.x * blockDim.x) {
    i64 n, c, o0, o1, o2;
    coordinates(y, linear, n, c, o0, o1, o2);
    float sum = 0.0f;
    if constexpr (kTransposed) {
      const i64 group = c / w1, c1 = c % w1;
      const i64 ca_begin = group * w0_per_group, ca_end = ca_begin + w0_per_group;
      for (i64 k0 = 0; k0 < w.sizes[2]; ++k0) {
        i64 a0;
        if (!a_of(o0, k0, win.stride[0], win.padding[0], win.dilation[0], x.sizes[2], a0)) continue;
        for (i64 k1 = 0; k1 < w.sizes[3]; ++k1) {
          i64 a1;
          if (!a_of(o1, k1, win.stride[1], win.padding[1], win.dilation[1], x.sizes[3], a1)) {
            continue;
          }
          for (i64 k2 = 0; k2 < w.sizes[4]; ++k2) {
            i64 a2;
            if (!a_of(o2, k2, win.stride[2], win.padding[2], win.dilation[2], x.sizes[4], a2)) {
              continue;
            }
            for (i64 ca = ca_begin; ca < ca_end; ++ca) {
              sum += to_float(xp[at5(x, n, ca, a0, a1, a2)]) *
                     to_float(wp[at5(w, ca, c1, k0, k1, k2)]);
            }
          }
        }
      }
    } else {
      const i64 group = c / w0_per_group;
      for (i64 k0 = 0; k0 < w.sizes[2]; ++k0) {
        const i64 b0 = o0 * win.stride[0] - win.padding[0] + k0 * win.dilation[0];
        if (b0 < 0 || b0 >= x.sizes[2]) continue;
        for (i64 k1 = 0; k1 < w.sizes[3]; ++k1) {
          const i64 b1 = o1 * win.stride[1] - win.padding[1] + k1 * win.dilation[1];
          if (b1 < 0 || b1 >= x.sizes[3]) continue;
          for (i64 k2 = 0; k2 < w.sizes[4]; ++k2) {
            const i64 b2 = o2 * win.stride[2] - win.padding[2] + k2 * win.dilation[2];
            if (b2 < 0 || b2 >= x.sizes[4]) continue;
            for (i64 c1 = 0; c1 < w1; ++c1) {
              sum += to_float(xp[at5(x, n, group * w1 + c1, b0, b1, b2)]) *
                     to_float(wp[at5(w, c, c1, k0, k1, k2)]);
            }
          }
        }
      }
    }
    T out = convert<T>(sum);
    if (bias.data != nullptr) {
      out = convert<T>(to_float(out) + to_float(ktensor_ptr<T>(bias)[c * bias.strides[0]]));
    }
    yp[at5(y, n, c, o0, o1, o2)] = out;
  }
}

// The a-side positions along one dim whose tap k lands inside the b side:
// 0 <= a * stride - padding + k * dilation < b_size, a in [0, a_size). Returns the count.
__device__ __forceinline__ i64 tap_range(i64 k, i64 stride, i64 padding, i64 dilation, i64 a_size,
                                         i64 b_size, i64& first) {
  const i64 shift = padding - k * dilation;
  i64 lo = -floor_div(-shift, stride);  // ceil(shift / stride)
  i64 hi = floor_div(b_size - 1 + shift, stride);
  if (lo < 0) lo = 0;
  if (hi > a_size - 1) hi = a_size - 1;
  first = lo;
  return hi >= lo ? hi - lo + 1 : 0;
}

inline constexpr int kWarpsPerBlock = 8;

// grad_weight[ca, c1, k] = sum over n and the a-side positions whose tap k lands inside the b
// side of a_side[n, ca, a] * b_side[n, group(ca) * W1 + c1, b]: a plain convolution's a side is
// grad_output and its b side the input, a transposed one's the other way round. A warp per
// weight element: lanes take every 32nd (n, a) pair, then a butterfly sum, so the order is fixed.
template <typename T>
__device__ void weight_grad(const KTensor& a_side, const KTensor& b_side, const KTensor& gw,
                            const ConvWindow win, i64 total) {
  const T* ap = ktensor_ptr<T>(a_side);
  const T* bp = ktensor_ptr<T>(b_side);
  T* gp = ktensor_ptr<T>(gw);
  const int lane = threadIdx.x & 31;
  const i64 w1 = gw.sizes[1], w0_per_group = gw.sizes[0] / win.groups;
  for (i64 e = (i64)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5); e < total;
       e += (i64)gridDim.x * kWarpsPerBlock) {
    i64 ca, c1, k0, k1, k2;
    coordinates(gw, e, ca, c1, k0, k1, k2);
    const i64 cb = (ca / w0_per_group) * w1 + c1;
    i64 f0, f1, f2;
    const i64 n0 = tap_range(k0, win.stride[0], win.padding[0], win.dilation[0],
                             a_side.sizes[2], b_side.sizes[2], f0);
    const i64 n1 = tap_range(k1, win.stride[1], win.padding[1], win.dilation[1],
                             a_side.sizes[3], b_side.sizes[3], f1);
    const i64 n2 = tap_range(k2, win.stride[2], win.padding[2], win.dilation[2],
                             a_side.sizes[4], b_side.sizes[4], f2);
    const i64 pairs = a_side.sizes[0] * n0 * n1 * n2;
    float sum = 0.0f;
    for (i64 i = lane; i < pairs; i += 32) {
      const i64 a2 = f2 + i % n2;
      const i64 a1 = f1 + (i / n2) % n1;
      const i64 a0 = f0 + (i / (n2 * n1)) % n0;
      const i64 n = i / (n2 * n1 * n0);
      const i64 b0 = a0 * win.stride[0] - win.padding[0] + k0 * win.dilation[0];
      const i64 b1 = a1 * win.stride[1] - win.padding[1] + k1 * win.dilation[1];
      const i64 b2 = a2 * win.stride[2] - win.padding[2] + k2 * win.dilation[2];
      sum += to_float(ap[at5(a_side, n, ca, a0, a1, a2)]) *
             to_float(bp[at5(b_side, n, cb, b0, b1, b2)]);
    }
    sum = kiln_lib::warp_sum(sum);
    if (lane == 0) gp[at5(gw, ca, c1, k0, k1, k2)] = convert<T>(sum);
  }
}

// grad_bias[c] = the sum of grad_output[n, c, ...] over the batch and space, a warp per channel
// as weight_grad.
template <typename T>
__device__ void bias_grad(const KTensor& gy, const KTensor& gb, i64 channels) {
  const T* yp = ktensor_ptr<T>(gy);
  T* bp = ktensor_ptr<T>(gb);
  const int lane = threadIdx.x & 31;
  const i64 s0 = gy.sizes[2], s1 = gy.sizes[3], s2 = gy.sizes[4];
  const i64 count = gy.sizes[0] * s0 * s1 * s2;
  for (i64 c = (i64)blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5); c < channels;
       c += (i64)gridDim.x * kWarpsPerBlock) {
    float sum = 0.0f;
    for (i64 i = lane; i < count; i += 32) {
      const i64 p2 = i % s2, p1 = (i / s2) % s1, p0 = (i / (s2 * s1)) % s0;
      const i64 n = i / (s2 * s1 * s0);
      sum += to_float(yp[at5(gy, n, c, p0, p1, p2)]);
    }
    sum = kiln_lib::warp_sum(sum);
    if (lane == 0) bp[c * gb.strides[0]] = convert<T>(sum);
  }
}

}  // namespace kiln_conv_direct
