// 2-D max / average / adaptive average pooling of [N, C, H, W] views with any strides, one thread
// per output element. Outputs are numbered with C innermost when the input is channels-last
// (C stride 1), else with W innermost, so neighbouring threads read neighbouring elements.
// Window rules are PyTorch's (see kernel_library.h).
namespace kiln_pool {

template <typename T>
struct AccOf {
  typedef float type;
};
template <>
struct AccOf<double> {
  typedef double type;
};

struct Window {
  i64 kh, kw, sh, sw, ph, pw, dh, dw;
  i64 divisor_override;
  int count_include_pad;
};

// Output element `linear` as (n, c, oh, ow).
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

// kKind: 0 max, 1 avg, 2 adaptive avg.
// `indices` (max only; data null when not wanted): int64 like out, each the argmax's h * W + w
// in its input plane, PyTorch's max_pool2d_with_indices convention (the window's first element
// when nothing beats -inf).
template <int kKind, typename T, typename Idx>
__device__ void pool_loop(const KTensor& in, const KTensor& out, const Window& win, Idx total,
                          bool channels_last, const KTensor& indices) {
  typedef typename AccOf<T>::type A;
  const T* x = ktensor_ptr<T>(in);
  T* y = ktensor_ptr<T>(out);
  const i64 in_h = in.sizes[2], in_w = in.sizes[3];
  const i64 hs = in.strides[2], ws = in.strides[3];
  const Idx channels = (Idx)in.sizes[1], out_h = (Idx)out.sizes[2], out_w = (Idx)out.sizes[3];
  for (Idx linear = (Idx)blockIdx.x * blockDim.x + threadIdx.x; linear < total;
       linear += (Idx)gridDim.x * blockDim.x) {
    i64 n, c, oh, ow;
    coordinates<Idx>(linear, channels, out_h, out_w, channels_last, n, c, oh, ow);
    const T* plane = x + n * in.strides[0] + c * in.strides[1];
    A result;
    i64 argmax = 0;
    if constexpr (kKind == 0) {
      i64 h0 = oh * win.sh - win.ph, w0 = ow * win.sw - win.pw;
      const i64 h1 = min(h0 + (win.kh - 1) * win.dh + 1, in_h);
      const i64 w1 = min(w0 + (win.kw - 1) * win.dw + 1, in_w);
      while (h0 < 0) h0 += win.dh;
      while (w0 < 0) w0 += win.dw;
      result = kiln_lib::convert<A>(kiln_lib::neg_inf());
      argmax = h0 * in_w + w0;
      for (i64 h = h0; h < h1; h += win.dh) {
        for (i64 w = w0; w < w1; w += win.dw) {
          const A v = kiln_lib::convert<A>(plane[h * hs + w * ws]);
          if (v > result || v != v) {
            result = v;
            argmax = h * in_w + w;
          }
        }
      }
    } else if constexpr (kKind == 1) {
      i64 h0 = oh * win.sh - win.ph, w0 = ow * win.sw - win.pw;
      i64 h1 = min(h0 + win.kh, in_h + win.ph), w1 = min(w0 + win.kw, in_w + win.pw);
      const i64 padded_count = (h1 - h0) * (w1 - w0);
      h0 = max(h0, (i64)0);
      w0 = max(w0, (i64)0);
      h1 = min(h1, in_h);
      w1 = min(w1, in_w);
      if (h0 >= h1 || w0 >= w1) {
        result = (A)0;
      } else {
        A sum = (A)0;
        for (i64 h = h0; h < h1; ++h) {
          for (i64 w = w0; w < w1; ++w) sum += kiln_lib::convert<A>(plane[h * hs + w * ws]);
        }
        const i64 divisor = win.divisor_override    ? win.divisor_override
                            : win.count_include_pad ? padded_count
                                                    : (h1 - h0) * (w1 - w0);
        result = sum / (A)divisor;
      }
    } else {
      const i64 h0 = (oh * in_h) / (i64)out_h, h1 = ((oh + 1) * in_h + (i64)out_h - 1) / (i64)out_h;
      const i64 w0 = (ow * in_w) / (i64)out_w, w1 = ((ow + 1) * in_w + (i64)out_w - 1) / (i64)out_w;
      A sum = (A)0;
      for (i64 h = h0; h < h1; ++h) {
        for (i64 w = w0; w < w1; ++w) sum += kiln_lib::convert<A>(plane[h * hs + w * ws]);
      }
      result = sum / (A)((h1 - h0) * (w1 - w0));
    }
    y[n * out.strides[0] + c * out.strides[1] + oh * out.strides[2] + ow * out.strides[3]] =
        kiln_lib::convert<T>(result);
    if constexpr (kKind == 0) {
      if (indices.data) {
        ktensor_ptr<i64>(indices)[n * indices.strides[0] + c * indices.strides[1] +
                                  oh * indices.strides[2] + ow * indices.strides[3]] = argmax;
      }
    }
  }
}

template <int kKind, typename T>
__device__ void pool(const KTensor& in, const KTensor& out, const Window& win, i64 total,
                     int channels_last, const KTensor& indices) {
  if (total < 2147483648LL) {
    pool_loop<kKind, T, unsigned int>(in, out, win, (unsigned int)total, channels_last != 0,
                                      indices);
  } else {
    pool_loop<kKind, T, u64>(in, out, win, (u64)total, channels_last != 0, indices);
  }
}
template <int kKind, typename T>
__device__ void pool(const KTensor& in, const KTensor& out, const Window& win, i64 total,
                     int channels_last) {
  KTensor none = {};
  pool<kKind, T>(in, out, win, total, channels_last, none);
}

}  // namespace kiln_pool
