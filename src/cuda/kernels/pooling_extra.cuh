// 3-D pooling (max with indices, average, adaptive average) and the backward ops of 2-D pooling,
// over [N, C, D, H, W] views with any strides: the host views 2-D tensors with D = 1 and unbatched
// ones with N = 1 (kernel_library_pooling_extra.h). One thread per output element; the backward
// kernels are gathers, one thread per input element summing the windows that hold it, so they
// need no atomics and add in a fixed order (deterministic). Elements are numbered with C innermost
// when the tensor the thread writes is channels-last (C stride 1), else with W innermost, so
// neighbouring threads touch neighbouring elements. Window rules are PyTorch's CUDA kernels'.
namespace kiln_pool3 {

// Per spatial dim (depth, height, width): kernel, stride, padding, dilation.
struct Window {
  i64 k[3], s[3], p[3], d[3];
  i64 divisor_override;  // 0: none
  int count_include_pad;
  int pad_;
};

// Element `linear` of t's [N, C, D, H, W] index space as coordinates.
template <typename Idx>
__device__ __forceinline__ void unravel(Idx linear, const KTensor& t, bool channels_last,
                                        i64 (&at)[5]) {
  const Idx C = (Idx)t.sizes[1], D = (Idx)t.sizes[2], H = (Idx)t.sizes[3], W = (Idx)t.sizes[4];
  if (channels_last) {
    at[1] = (i64)(linear % C);
    linear /= C;
  }
  at[4] = (i64)(linear % W);
  linear /= W;
  at[3] = (i64)(linear % H);
  linear /= H;
  at[2] = (i64)(linear % D);
  linear /= D;
  if (!channels_last) {
    at[1] = (i64)(linear % C);
    linear /= C;
  }
  at[0] = (i64)linear;
}

__device__ __forceinline__ i64 offset_of(const KTensor& t, const i64 (&at)[5]) {
  return at[0] * t.strides[0] + at[1] * t.strides[1] + at[2] * t.strides[2] +
         at[3] * t.strides[3] + at[4] * t.strides[4];
}

// x rounded to T and back: PyTorch's `scalar_t / int` rounds the quotient to a 16-bit type.
template <typename T>
__device__ __forceinline__ float through(float x) {
  return kiln_lib::convert<float>(kiln_lib::convert<T>(x));
}

// PyTorch's adaptive windows: [floor(a * c / b), ceil((a + 1) * c / b)).
__device__ __forceinline__ i64 adaptive_start(i64 a, i64 b, i64 c) {
  return (a / b) * c + ((a % b) * c) / b;
}
__device__ __forceinline__ i64 adaptive_end(i64 a, i64 b, i64 c) {
  return 1 + ((a + 1) * c - 1) / b;
}

// kKind: 0 max, 1 avg, 2 adaptive avg. `out` or `indices` may have null data: not written.
// Max: padding counts as -inf, a NaN wins (the last NaN of the window, as PyTorch's test
// `val > max || isnan(val)` gives), ties keep the first in window order; an index is the argmax's
// d * H * W + h * W + w in its input volume (the window's first in-bounds position when nothing
// beats -inf).
template <int kKind, typename T>
struct Forward {
  KTensor in, out, indices;
  Window win;
  bool channels_last;

  template <typename Idx>
  __device__ __forceinline__ void operator()(Idx linear) const {
    i64 at[5];
    unravel<Idx>(linear, out, channels_last, at);
    const T* plane = ktensor_ptr<T>(in) + at[0] * in.strides[0] + at[1] * in.strides[1];
    const i64 size[3] = {in.sizes[2], in.sizes[3], in.sizes[4]};
    const i64 stride[3] = {in.strides[2], in.strides[3], in.strides[4]};
    i64 lo[3], hi[3];
    float result;
    i64 argmax = 0;
    if constexpr (kKind == 0) {
      for (int i = 0; i < 3; ++i) {
        lo[i] = at[2 + i] * win.s[i] - win.p[i];
        hi[i] = min(lo[i] + (win.k[i] - 1) * win.d[i] + 1, size[i]);
        while (lo[i] < 0) lo[i] += win.d[i];
      }
      result = kiln_lib::neg_inf();
      argmax = (lo[0] * size[1] + lo[1]) * size[2] + lo[2];
      for (i64 z = lo[0]; z < hi[0]; z += win.d[0]) {
        for (i64 y = lo[1]; y < hi[1]; y += win.d[1]) {
          for (i64 x = lo[2]; x < hi[2]; x += win.d[2]) {
            const float v = kiln_lib::convert<float>(plane[z * stride[0] + y * stride[1] +
                                                           x * stride[2]]);
            if (v > result || v != v) {
              result = v;
              argmax = (z * size[1] + y) * size[2] + x;
            }
          }
        }
      }
    } else {
      i64 padded = 1;
      bool empty = false;
      for (int i = 0; i < 3; ++i) {
        if constexpr (kKind == 1) {
          const i64 start = at[2 + i] * win.s[i] - win.p[i];
          const i64 end = min(start + win.k[i], size[i] + win.p[i]);
          padded *= end - start;
          lo[i] = max(start, (i64)0);
          hi[i] = min(end, size[i]);
        } else {
          const i64 o = at[2 + i], outs = out.sizes[2 + i];
          lo[i] = adaptive_start(o, outs, size[i]);
          hi[i] = adaptive_end(o, outs, size[i]);
        }
        empty = empty || lo[i] >= hi[i];
      }
      float sum = 0.0f;
      for (i64 z = lo[0]; z < hi[0]; ++z) {
        for (i64 y = lo[1]; y < hi[1]; ++y) {
          for (i64 x = lo[2]; x < hi[2]; ++x) {
            sum += kiln_lib::convert<float>(plane[z * stride[0] + y * stride[1] + x * stride[2]]);
          }
        }
      }
      if (empty) {
        result = 0.0f;  // a window in the padding only (count_include_pad=False would give 0/0)
      } else if constexpr (kKind == 1) {
        const i64 divisor = win.divisor_override    ? win.divisor_override
                            : win.count_include_pad ? padded
                                                    : (hi[0] - lo[0]) * (hi[1] - lo[1]) *
                                                          (hi[2] - lo[2]);
        result = sum / (float)divisor;
      } else {
        result = sum / (float)(hi[0] - lo[0]) / (float)(hi[1] - lo[1]) / (float)(hi[2] - lo[2]);
      }
    }
    if (out.data) ktensor_ptr<T>(out)[offset_of(out, at)] = kiln_lib::convert<T>(result);
    if constexpr (kKind == 0) {
      if (indices.data) ktensor_ptr<i64>(indices)[offset_of(indices, at)] = argmax;
    }
  }
};

// The outputs whose windows span input position `pos` (padded coordinates) along one dim:
// [first, last) of those starting at or before it and ending after it.
__device__ __forceinline__ void windows_over(i64 pos, i64 span, i64 stride, i64 outs, i64& first,
                                             i64& last) {
  first = pos < span ? 0 : (pos - span) / stride + 1;
  last = min(pos / stride + 1, outs);
}

// avg_pool backward: grad_in[i] = sum over the windows holding i of grad_out / divisor, the
// divisor as in the forward pass.
template <typename T>
struct AvgBackward {
  KTensor grad_out, grad_in;
  Window win;
  bool channels_last;

  template <typename Idx>
  __device__ __forceinline__ void operator()(Idx linear) const {
    i64 at[5];
    unravel<Idx>(linear, grad_in, channels_last, at);
    const T* g = ktensor_ptr<T>(grad_out) + at[0] * grad_out.strides[0] +
                 at[1] * grad_out.strides[1];
    i64 first[3], last[3];
    for (int i = 0; i < 3; ++i) {
      windows_over(at[2 + i] + win.p[i], win.k[i], win.s[i], grad_out.sizes[2 + i], first[i],
                   last[i]);
    }
    float grad = 0.0f;
    for (i64 oz = first[0]; oz < last[0]; ++oz) {
      for (i64 oy = first[1]; oy < last[1]; ++oy) {
        for (i64 ox = first[2]; ox < last[2]; ++ox) {
          const i64 o[3] = {oz, oy, ox};
          i64 padded = 1, inside = 1;
          for (int i = 0; i < 3; ++i) {
            const i64 size = grad_in.sizes[2 + i];
            const i64 start = o[i] * win.s[i] - win.p[i];
            const i64 end = min(start + win.k[i], size + win.p[i]);
            padded *= end - start;
            inside *= min(end, size) - max(start, (i64)0);
          }
          const i64 divisor = win.divisor_override    ? win.divisor_override
                              : win.count_include_pad ? padded
                                                      : inside;
          const float term = kiln_lib::convert<float>(
              g[oz * grad_out.strides[2] + oy * grad_out.strides[3] + ox * grad_out.strides[4]]);
          grad += through<T>(term / through<T>((float)divisor));
        }
      }
    }
    ktensor_ptr<T>(grad_in)[offset_of(grad_in, at)] = kiln_lib::convert<T>(grad);
  }
};

// max_pool_with_indices backward: grad_in[i] = sum of grad_out over the windows holding i whose
// stored index names i. Indices that name no position of their window add nothing anywhere.
template <typename T>
struct MaxBackward {
  KTensor grad_out, indices, grad_in;
  Window win;
  bool channels_last;

  template <typename Idx>
  __device__ __forceinline__ void operator()(Idx linear) const {
    i64 at[5];
    unravel<Idx>(linear, grad_in, channels_last, at);
    const T* g = ktensor_ptr<T>(grad_out) + at[0] * grad_out.strides[0] +
                 at[1] * grad_out.strides[1];
    const i64* idx = ktensor_ptr<i64>(indices) + at[0] * indices.strides[0] +
                     at[1] * indices.strides[1];
    const i64 flat = (at[2] * grad_in.sizes[3] + at[3]) * grad_in.sizes[4] + at[4];
    i64 first[3], last[3];
    for (int i = 0; i < 3; ++i) {
      windows_over(at[2 + i] + win.p[i], (win.k[i] - 1) * win.d[i] + 1, win.s[i],
                   grad_out.sizes[2 + i], first[i], last[i]);
    }
    float grad = 0.0f;
    for (i64 oz = first[0]; oz < last[0]; ++oz) {
      for (i64 oy = first[1]; oy < last[1]; ++oy) {
        for (i64 ox = first[2]; ox < last[2]; ++ox) {
          if (idx[oz * indices.strides[2] + oy * indices.strides[3] + ox * indices.strides[4]] ==
              flat) {
            grad += kiln_lib::convert<float>(g[oz * grad_out.strides[2] +
                                               oy * grad_out.strides[3] +
                                               ox * grad_out.strides[4]]);
          }
        }
      }
    }
    ktensor_ptr<T>(grad_in)[offset_of(grad_in, at)] = kiln_lib::convert<T>(grad);
  }
};

// adaptive_avg_pool backward: grad_in[i] = sum over the windows holding i of grad_out divided by
// each window extent in turn (rounded to T after each division, as PyTorch's `T / int`).
template <typename T>
struct AdaptiveBackward {
  KTensor grad_out, grad_in;
  bool channels_last;

  template <typename Idx>
  __device__ __forceinline__ void operator()(Idx linear) const {
    i64 at[5];
    unravel<Idx>(linear, grad_in, channels_last, at);
    const T* g = ktensor_ptr<T>(grad_out) + at[0] * grad_out.strides[0] +
                 at[1] * grad_out.strides[1];
    i64 first[3], last[3];
    for (int i = 0; i < 3; ++i) {
      const i64 ins = grad_in.sizes[2 + i], outs = grad_out.sizes[2 + i];
      first[i] = adaptive_start(at[2 + i], ins, outs);
      last[i] = min(adaptive_end(at[2 + i], ins, outs), outs);
    }
    float grad = 0.0f;
    for (i64 oz = first[0]; oz < last[0]; ++oz) {
      for (i64 oy = first[1]; oy < last[1]; ++oy) {
        for (i64 ox = first[2]; ox < last[2]; ++ox) {
          const i64 o[3] = {oz, oy, ox};
          float term = kiln_lib::convert<float>(
              g[oz * grad_out.strides[2] + oy * grad_out.strides[3] + ox * grad_out.strides[4]]);
          for (int i = 0; i < 3; ++i) {
            const i64 ins = grad_in.sizes[2 + i], outs = grad_out.sizes[2 + i];
            const i64 extent = adaptive_end(o[i], outs, ins) - adaptive_start(o[i], outs, ins);
            term = through<T>(term / (float)extent);
          }
          grad += term;
        }
      }
    }
    ktensor_ptr<T>(grad_in)[offset_of(grad_in, at)] = kiln_lib::convert<T>(grad);
  }
};

// A grid-stride loop over `total` elements, in 32-bit arithmetic where it fits.
template <typename Op>
__device__ __forceinline__ void run(const Op& op, i64 total) {
  if (total < 2147483648LL) {
    const unsigned int n = (unsigned int)total;
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
      op(i);
    }
  } else {
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (u64)total;
         i += (u64)gridDim.x * blockDim.x) {
      op(i);
    }
  }
}

}  // namespace kiln_pool3
