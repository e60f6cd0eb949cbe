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

std::vector<Tap> taps(const ir::ResizeArgs& args, size_t d, int64_t in, int64_t out) {
  std::vector<Tap> result(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    Tap& t = result[o];
    if (args.mode != ir::ResizeMode::kLinear) {
      const float scale = scale_value(args.scales[d], in, out);
      int64_t src;
      if (in == out) {
        src = o;
      } else if (args.mode == ir::ResizeMode::kNearest) {
        src = out == 2 * in ? o >> 1
                            : static_cast<int64_t>(std::floor(static_cast<float>(o) * scale));
      } else {
        src = static_cast<int64_t>(std::floor((static_cast<float>(o) + 0.5f) * scale));
      }
      t = Tap{std::min(src, in - 1), 0, 1.0f, 0.0f};
      continue;
    }
    if (in == out) {
      t = Tap{o, o, 1.0f, 0.0f};
      continue;
    }
    float scale = args.align_corners
                      ? (out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f)
                      : scale_value(args.scales[d], in, out);
    float src = args.align_corners ? scale * static_cast<float>(o)
                                   : std::max(scale * (static_cast<float>(o) + 0.5f) - 0.5f, 0.0f);
    const int64_t i0 = static_cast<int64_t>(src);
    const int64_t i1 = i0 + (i0 < in - 1 ? 1 : 0);
    const float w1 = std::min(std::max(src - static_cast<float>(i0), 0.0f), 1.0f);
    t = Tap{i0, i1, 1.0f - w1, w1};
  }
  return result;
}

template <typename T>
void resize_planes(const T* in, T* out, int64_t planes, int64_t ih, int64_t iw, int64_t oh,
                   int64_t ow, const std::vector<Tap>& th, const std::vector<Tap>& tw) {
  parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* src = in + p * ih * iw;
      T* dst = out + p * oh * ow;
      for (int64_t y = 0; y < oh; ++y) {
        const Tap& ty = th[y];
        for (int64_t x = 0; x < ow; ++x) {
          const Tap& tx = tw[x];
          auto at = [&](int64_t r, int64_t c) { return static_cast<float>(src[r * iw + c]); };
          float v = ty.w0 * (tx.w0 * at(ty.i0, tx.i0) + tx.w1 * at(ty.i0, tx.i1));
          if (ty.w1 != 0.0f) v += ty.w1 * (tx.w0 * at(ty.i1, tx.i0) + tx.w1 * at(ty.i1, tx.i1));
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
  std::vector<Tap> th = two_d ? taps(args, 0, ih, oh) : std::vector<Tap>{Tap{0, 0, 1.0f, 0.0f}};
  std::vector<Tap> tw = taps(args, two_d ? 1 : 0, iw, ow);
  if (planes == 0) return ok_status();
  dispatch_dtype(input.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<T> || kIsReducedFloat<T>) {
      resize_planes(input.data<T>(), output.data<T>(), planes, ih, iw, oh, ow, th, tw);
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
