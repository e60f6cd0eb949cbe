// CPU reference kernels for the upsample ops: nearest, nearest-exact and (bi)linear, following
// PyTorch's index arithmetic (float scales, the same clamping) so results match it bit for bit.
#include <cmath>

#include "base/element_cast.h"
#include "ir/infer/resize.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

// For one output index along one dim: the two source indices and their weights.
struct Tap {
  int64_t i0, i1;
  float w0, w1;
};

float scale_value(std::optional<double> scale, int64_t in, int64_t out) {
  return scale && *scale > 0 ? static_cast<float>(1.0 / *scale)
                             : static_cast<float>(in) / static_cast<float>(out);
}

// The source index of each output index along one dim, for nearest and nearest-exact.
std::vector<int64_t> nearest_sources(const ir::ResizeArgs& args, size_t d, int64_t in,
                                     int64_t out) {
  std::vector<int64_t> result(static_cast<size_t>(out));
  const float scale = scale_value(args.scales[d], in, out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t src;
    if (in == out) {
      src = o;
    } else if (args.mode == ir::ResizeMode::kNearest) {
      src =
          out == 2 * in ? o >> 1 : static_cast<int64_t>(std::floor(static_cast<float>(o) * scale));
    } else {
      src = static_cast<int64_t>(std::floor((static_cast<float>(o) + 0.5f) * scale));
    }
    result[o] = std::min(src, in - 1);
  }
  return result;
}

// Linear taps, as PyTorch computes them: when in == out both taps are the output's own index;
// otherwise the second is the next index (the same one at the last). Every output reads both, even
// a tap of weight 0, so a 0 * inf or 0 * NaN makes NaN where eager's does.
std::vector<Tap> linear_taps(const ir::ResizeArgs& args, size_t d, int64_t in, int64_t out) {
  std::vector<Tap> result(static_cast<size_t>(out));
  if (in == out) {
    for (int64_t o = 0; o < out; ++o) result[o] = Tap{o, o, 1.0f, 0.0f};
    return result;
  }
  const float scale =
      args.align_corners
          ? (out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f)
          : scale_value(args.scales[d], in, out);
  for (int64_t o = 0; o < out; ++o) {
    const float src = args.align_corners
                          ? scale * static_cast<float>(o)
                          : std::max(scale * (static_cast<float>(o) + 0.5f) - 0.5f, 0.0f);
    const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
    const int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
    const float w1 = std::min(std::max(src - static_cast<float>(i0), 0.0f), 1.0f);
    result[o] = Tap{i0, i1, 1.0f - w1, w1};
  }
  return result;
}

// Nearest modes copy the chosen element: no arithmetic, so a NaN or inf stays where it is.
template <typename T>
void nearest_planes(const T* in, T* out, int64_t planes, int64_t ih, int64_t iw, int64_t oh,
                    int64_t ow, const std::vector<int64_t>& sh, const std::vector<int64_t>& sw) {
  parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* src = in + p * ih * iw;
      T* dst = out + p * oh * ow;
      for (int64_t y = 0; y < oh; ++y) {
        const T* row = src + sh[y] * iw;
        for (int64_t x = 0; x < ow; ++x) dst[y * ow + x] = row[sw[x]];
      }
    }
  });
}

// Each output reads all its taps, even those of weight 0, in PyTorch's order (the row's taps
// first, then the rows'), so 0 * inf and 0 * NaN give NaN where eager's do.
template <typename T>
void linear_planes(const T* in, T* out, int64_t planes, int64_t ih, int64_t iw, int64_t oh,
                   int64_t ow, const std::vector<Tap>& th, const std::vector<Tap>& tw) {
  const bool two_d = !th.empty();
  parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* src = in + p * ih * iw;
      T* dst = out + p * (two_d ? oh : 1) * ow;
      for (int64_t y = 0; y < (two_d ? oh : 1); ++y) {
        for (int64_t x = 0; x < ow; ++x) {
          const Tap& tx = tw[x];
          auto row = [&](int64_t r) {
            return tx.w0 * static_cast<float>(src[r * iw + tx.i0]) +
                   tx.w1 * static_cast<float>(src[r * iw + tx.i1]);
          };
          const float v = two_d ? th[y].w0 * row(th[y].i0) + th[y].w1 * row(th[y].i1) : row(0);
          dst[y * ow + x] = element_cast<T>(v);
        }
      }
    }
  });
}

Status resize(ir::OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(ir::ResizeArgs args, ir::resize_args(ctx));
  KILN_ASSIGN_OR_RETURN(Tensor input, ctx.tensor(0).contiguous());
  Tensor& output = ctx.output_tensor(0);
  const bool two_d = args.output_size.size() == 2;
  const int64_t ih = two_d ? input.size(2) : 1, iw = input.size(input.dim() - 1);
  const int64_t oh = two_d ? args.output_size[0] : 1, ow = args.output_size.back();
  const int64_t planes = input.size(0) * input.size(1);
  if (planes == 0 || oh == 0 || ow == 0) return ok_status();
  if (args.mode != ir::ResizeMode::kLinear) {
    const std::vector<int64_t> sh =
        two_d ? nearest_sources(args, 0, ih, oh) : std::vector<int64_t>{0};
    const std::vector<int64_t> sw = nearest_sources(args, two_d ? 1 : 0, iw, ow);
    dispatch_dtype(input.dtype(), [&]<typename T>() {
      nearest_planes(input.data<T>(), output.data<T>(), planes, ih, iw, oh, ow, sh, sw);
    });
    return ok_status();
  }
  // A 1-D resize has no row taps (not a single row of weight 1, which would add 0 * inf).
  const std::vector<Tap> th = two_d ? linear_taps(args, 0, ih, oh) : std::vector<Tap>{};
  const std::vector<Tap> tw = linear_taps(args, two_d ? 1 : 0, iw, ow);
  dispatch_dtype(input.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<T> || kIsReducedFloat<T>) {
      linear_planes(input.data<T>(), output.data<T>(), planes, ih, iw, oh, ow, th, tw);
    }
  });
  return ok_status();
}

}  // namespace

Status register_resize_kernels(ir::OpFunctionTable& table) {
  for (ir::OpKey key :
       {ir::OpKey::aten_upsample_nearest1d_vec, ir::OpKey::aten_upsample_nearest2d_vec,
        ir::OpKey::aten__upsample_nearest_exact1d_vec,
        ir::OpKey::aten__upsample_nearest_exact2d_vec, ir::OpKey::aten_upsample_linear1d_vec,
        ir::OpKey::aten_upsample_bilinear2d_vec, ir::OpKey::aten_upsample_nearest1d_default,
        ir::OpKey::aten_upsample_nearest2d_default,
        ir::OpKey::aten__upsample_nearest_exact1d_default,
        ir::OpKey::aten__upsample_nearest_exact2d_default,
        ir::OpKey::aten_upsample_linear1d_default, ir::OpKey::aten_upsample_bilinear2d_default}) {
    KILN_RETURN_IF_ERROR(table.add(key, resize));
  }
  return ok_status();
}

}  // namespace kiln::cpu
