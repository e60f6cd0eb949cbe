// Convolution kernels. 1-D and 2-D convolutions in float32 / float16 / bfloat16 run on the
// conv2d_nchw core (a 1-D one as a 2-D one of height 1; 16-bit floats through float32 copies,
// rounded once); 3-D convolutions, float64 and the integer types run a direct loop, which
// accumulates floats in double and integers with wrap-around (as PyTorch's integer kernels do).
#include <array>
#include <type_traits>
#include <vector>

#include "base/element_cast.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/linalg_internal.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

// The geometry of a batched convolution, spatial dims padded in front to three (size 1).
struct ConvGeometry {
  int64_t batch = 0, in_channels = 0, out_channels = 0, groups = 1, spatial = 0;
  bool transposed = false;
  std::array<int64_t, 3> in{1, 1, 1}, kernel{1, 1, 1}, out{1, 1, 1};
  std::array<int64_t, 3> stride{1, 1, 1}, pad{0, 0, 0}, dilation{1, 1, 1}, out_pad{0, 0, 0};
};

struct ConvLists {
  std::vector<int64_t> stride, padding, dilation, output_padding;
  bool transposed = false;
  int64_t groups = 1;
};

// A list of 1 or `spatial` values (inference checked which), written into the last dims of `dst`.
void place(const std::vector<int64_t>& values, int64_t spatial, std::array<int64_t, 3>& dst) {
  for (int64_t d = 0; d < spatial; ++d) {
    dst[3 - spatial + d] = values.size() == 1 ? values[0] : values[d];
  }
}

ConvGeometry make_geometry(const Tensor& input, const Tensor& weight, const Tensor& out,
                           const ConvLists& lists) {
  ConvGeometry g;
  g.spatial = input.dim() - 2;
  g.batch = input.size(0);
  g.in_channels = input.size(1);
  g.out_channels = out.size(1);
  g.groups = lists.groups;
  g.transposed = lists.transposed;
  for (int64_t d = 0; d < g.spatial; ++d) {
    g.in[3 - g.spatial + d] = input.size(d + 2);
    g.kernel[3 - g.spatial + d] = weight.size(d + 2);
    g.out[3 - g.spatial + d] = out.size(d + 2);
  }
  place(lists.stride, g.spatial, g.stride);
  place(lists.padding, g.spatial, g.pad);
  place(lists.dilation, g.spatial, g.dilation);
  if (g.transposed) place(lists.output_padding, g.spatial, g.out_pad);
  return g;
}

Result<Tensor> as_float32(const Tensor& t) {
  return t.dtype() == DType::kFloat32 ? t.contiguous() : t.to(DType::kFloat32);
}

// 1-D and 2-D float convolutions on the conv2d_nchw core.
Status float_conv(const ConvGeometry& g, const Tensor& input, const Tensor& weight,
                  const Tensor* bias, const Tensor& out) {
  KILN_ASSIGN_OR_RETURN(Tensor in32, as_float32(input));
  KILN_ASSIGN_OR_RETURN(Tensor w32, as_float32(weight));
  Tensor b32;
  if (bias) {
    KILN_ASSIGN_OR_RETURN(b32, as_float32(*bias));
  }
  Tensor out32 = out;
  if (out.dtype() != DType::kFloat32) {
    KILN_ASSIGN_OR_RETURN(out32, Tensor::empty(DType::kFloat32, out.sizes()));
  }
  const float* pb = bias ? b32.data<float>() : nullptr;
  if (g.transposed) {
    ConvTranspose2dParams p{g.batch,        g.in_channels, g.in[1],       g.in[2],
                            g.out_channels, g.kernel[1],   g.kernel[2],   g.stride[1],
                            g.stride[2],    g.pad[1],      g.pad[2],      g.out_pad[1],
                            g.out_pad[2],   g.dilation[1], g.dilation[2], g.groups};
    conv_transpose2d_nchw(p, in32.data<float>(), w32.data<float>(), pb, out32.data<float>());
  } else {
    Conv2dParams p{g.batch,     g.in_channels, g.in[1],       g.in[2],     g.out_channels,
                   g.kernel[1], g.kernel[2],   g.stride[1],   g.stride[2], g.pad[1],
                   g.pad[2],    g.dilation[1], g.dilation[2], g.groups};
    conv2d_nchw(p, in32.data<float>(), w32.data<float>(), pb, out32.data<float>());
  }
  if (out32.raw_data() != out.raw_data()) KILN_RETURN_IF_ERROR(Tensor(out).copy_from(out32));
  return ok_status();
}

template <typename T>
using ConvAcc = std::conditional_t<std::is_integral_v<T>, uint64_t, double>;

template <typename T>
ConvAcc<T> conv_acc(T v) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<uint64_t>(static_cast<int64_t>(v));
  } else {
    return static_cast<double>(static_cast<ComputeType<T>>(v));
  }
}

template <typename T>
T from_acc(ConvAcc<T> v) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(v);
  } else {
    return element_cast<T>(v);
  }
}

int64_t volume(const std::array<int64_t, 3>& a) {
  return a[0] * a[1] * a[2];
}

// One output plane (batch n, channel oc) of a direct convolution.
template <typename T>
void direct_plane(const ConvGeometry& g, const T* in, const T* w, const T* bias, int64_t n,
                  int64_t oc, T* out) {
  const int64_t ocpg = g.out_channels / g.groups, icpg = g.in_channels / g.groups;
  const int64_t group = oc / ocpg, in_plane = volume(g.in), taps = volume(g.kernel);
  const ConvAcc<T> init = bias ? conv_acc(bias[oc]) : ConvAcc<T>(0);
  int64_t o = 0;
  for (int64_t od = 0; od < g.out[0]; ++od) {
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      for (int64_t ow = 0; ow < g.out[2]; ++ow, ++o) {
        ConvAcc<T> acc = init;
        for (int64_t icg = 0; icg < icpg; ++icg) {
          const T* src = in + (n * g.in_channels + group * icpg + icg) * in_plane;
          const T* wk = w + (oc * icpg + icg) * taps;
          for (int64_t kd = 0; kd < g.kernel[0]; ++kd) {
            const int64_t id = od * g.stride[0] - g.pad[0] + kd * g.dilation[0];
            if (id < 0 || id >= g.in[0]) continue;
            for (int64_t kh = 0; kh < g.kernel[1]; ++kh) {
              const int64_t ih = oh * g.stride[1] - g.pad[1] + kh * g.dilation[1];
              if (ih < 0 || ih >= g.in[1]) continue;
              for (int64_t kw = 0; kw < g.kernel[2]; ++kw) {
                const int64_t iw = ow * g.stride[2] - g.pad[2] + kw * g.dilation[2];
                if (iw < 0 || iw >= g.in[2]) continue;
                acc += conv_acc(src[(id * g.in[1] + ih) * g.in[2] + iw]) *
                       conv_acc(wk[(kd * g.kernel[1] + kh) * g.kernel[2] + kw]);
              }
            }
          }
        }
        out[o] = from_acc<T>(acc);
      }
    }
  }
}

// One output plane of a direct transposed convolution: every input pixel scatters into it.
template <typename T>
void direct_transposed_plane(const ConvGeometry& g, const T* in, const T* w, const T* bias,
                             int64_t n, int64_t oc, T* out) {
  const int64_t ocpg = g.out_channels / g.groups, icpg = g.in_channels / g.groups;
  const int64_t group = oc / ocpg, in_plane = volume(g.in), taps = volume(g.kernel);
  std::vector<ConvAcc<T>> acc(volume(g.out), bias ? conv_acc(bias[oc]) : ConvAcc<T>(0));
  for (int64_t icg = 0; icg < icpg; ++icg) {
    const int64_t ic = group * icpg + icg;
    const T* src = in + (n * g.in_channels + ic) * in_plane;
    const T* wk = w + (ic * ocpg + oc % ocpg) * taps;
    for (int64_t i = 0; i < in_plane; ++i) {
      const int64_t id = i / (g.in[1] * g.in[2]), ih = i / g.in[2] % g.in[1], iw = i % g.in[2];
      const ConvAcc<T> v = conv_acc(src[i]);
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t kd = t / (g.kernel[1] * g.kernel[2]), kh = t / g.kernel[2] % g.kernel[1];
        const int64_t od = id * g.stride[0] - g.pad[0] + kd * g.dilation[0];
        const int64_t oh = ih * g.stride[1] - g.pad[1] + kh * g.dilation[1];
        const int64_t ow = iw * g.stride[2] - g.pad[2] + (t % g.kernel[2]) * g.dilation[2];
        if (od < 0 || od >= g.out[0] || oh < 0 || oh >= g.out[1] || ow < 0 || ow >= g.out[2]) {
          continue;
        }
        acc[(od * g.out[1] + oh) * g.out[2] + ow] += v * conv_acc(wk[t]);
      }
    }
  }
  for (size_t o = 0; o < acc.size(); ++o) out[o] = from_acc<T>(acc[o]);
}

template <typename T>
Status direct_conv(const ConvGeometry& g, const Tensor& input, const Tensor& weight,
                   const Tensor* bias, const Tensor& out) {
  KILN_ASSIGN_OR_RETURN(Tensor in, input.contiguous());
  KILN_ASSIGN_OR_RETURN(Tensor w, weight.contiguous());
  Tensor b;
  if (bias) {
    KILN_ASSIGN_OR_RETURN(b, bias->contiguous());
  }
  const T* pin = in.data<T>();
  const T* pw = w.data<T>();
  const T* pb = bias ? b.data<T>() : nullptr;
  T* pout = out.data<T>();
  const int64_t plane = volume(g.out);
  parallel_for(0, g.batch * g.out_channels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const int64_t n = p / g.out_channels, oc = p % g.out_channels;
      if (g.transposed) {
        direct_transposed_plane(g, pin, pw, pb, n, oc, pout + p * plane);
      } else {
        direct_plane(g, pin, pw, pb, n, oc, pout + p * plane);
      }
    }
  });
  return ok_status();
}

// input [N, C, spatial...] (batched), out its contiguous output.
Status run_convolution(const Tensor& input, const Tensor& weight, const Tensor* bias,
                       const ConvLists& lists, const Tensor& out) {
  if (out.numel() == 0) return ok_status();
  const ConvGeometry g = make_geometry(input, weight, out, lists);
  const DType dtype = out.dtype();
  const bool float_core = g.spatial <= 2 && (dtype == DType::kFloat32 || dtype == DType::kFloat16 ||
                                             dtype == DType::kBFloat16);
  if (float_core) return float_conv(g, input, weight, bias, out);
  Status status = internal_error("convolution on ", dtype_name(dtype), " tensors");
  dispatch_dtype(dtype, [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool>) status = direct_conv<T>(g, input, weight, bias, out);
  });
  return status;
}

// conv{1,2,3}d and conv_transpose{1,2,3}d accept an unbatched input (one dim less than the weight).
Status run_maybe_unbatched(ir::OpContext& ctx, const ConvLists& lists) {
  const Tensor& input = ctx.tensor(0);
  const Tensor& weight = ctx.tensor(1);
  const Tensor* bias = ctx.optional_tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor& out = ctx.output_tensor(0);
  if (input.dim() == weight.dim()) return run_convolution(input, weight, bias, lists, out);
  Shape out_sizes = out.sizes();
  out_sizes.insert(out_sizes.begin(), 1);
  return run_convolution(unsqueeze_view(input, 0), weight, bias, lists,
                         reshape_contiguous(out, out_sizes));
}

}  // namespace

Status convolution_kernel(ir::OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor& weight = ctx.tensor(1);
  const Tensor* bias = ctx.optional_tensor(2);
  ConvLists lists{ctx.ints(3), ctx.ints(4),     ctx.ints(5),
                  ctx.ints(7), ctx.bool_arg(6), ctx.int_arg(8)};
  KILN_RETURN_IF_ERROR(ctx.error());
  return run_convolution(input, weight, bias, lists, ctx.output_tensor(0));
}

Status conv_nd_kernel(ir::OpContext& ctx) {
  return run_maybe_unbatched(
      ctx, ConvLists{ctx.ints(3), ctx.ints(4), ctx.ints(5), {0}, false, ctx.int_arg(6)});
}

Status conv_transpose_nd_kernel(ir::OpContext& ctx) {
  return run_maybe_unbatched(
      ctx, ConvLists{ctx.ints(3), ctx.ints(4), ctx.ints(7), ctx.ints(5), true, ctx.int_arg(6)});
}

}  // namespace kiln::cpu
