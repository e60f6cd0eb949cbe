// CPU reference kernel for grid_sampler_2d: samples input [N, C, H, W] at the grid's points
// [N, Ho, Wo, 2] (x, y in [-1, 1]) by bilinear, nearest or bicubic interpolation, with zeros,
// border or reflection padding, as eager's CPU kernel (GridSamplerKernel.cpp) does:
//
// - A grid value is unnormalized to a pixel coordinate, (g + 1) * (size - 1) / 2 with
//   align_corners, else (g + 1) * size / 2 - 0.5. Border padding clips it to [0, size - 1] (a
//   NaN to 0, an infinity to the nearer edge), reflection reflects it about the edges (pixel
//   centres with align_corners, else the image's borders; a non-finite value becomes NaN) and
//   then clips. Bicubic pads each tap instead of the point.
// - Taps outside the image read 0; every tap is multiplied by its weight and summed, so a NaN or
//   inf pixel under an in-image tap reaches the output even at weight 0, while one under no tap
//   does not, and a non-finite coordinate left after padding gives a NaN weight (a NaN output).
// Coordinates and sums are in float for float and 16-bit inputs (double for float64), rounded
// once to the output's dtype.
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "base/element_cast.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

enum class Interpolation : int64_t { kBilinear = 0, kNearest = 1, kBicubic = 2 };
enum class Padding : int64_t { kZeros = 0, kBorder = 1, kReflection = 2 };

template <typename C>
struct Axis {
  int64_t size = 1;
  bool align_corners = false;
  Padding padding = Padding::kZeros;

  C unnormalize(C g) const {
    if (align_corners) return (g + C(1)) * (C(size - 1) / C(2));
    return (g + C(1)) * (C(size) / C(2)) - C(0.5);
  }

  // Into [0, size - 1]; a NaN becomes 0, as in eager (so border and reflection padding sample a
  // NaN grid point at the edge).
  C clip(C x) const { return std::min(C(size - 1), x > C(0) ? x : C(0)); }

  // Reflects x into [twice_low / 2, twice_high / 2]: the pixel centres' span with
  // align_corners, the image's (half a pixel wider each side) without.
  C reflect(C x) const {
    const int64_t twice_low = align_corners ? 0 : -1;
    const int64_t twice_high = align_corners ? 2 * (size - 1) : 2 * size - 1;
    if (twice_low == twice_high) return C(0);
    if (!std::isfinite(x)) return std::numeric_limits<C>::quiet_NaN();
    const C low = C(twice_low) / C(2), span = C(twice_high - twice_low) / C(2);
    x = std::fabs(x - low);
    const C extra = std::fmod(x, span);
    const C flips = std::floor(x / span);
    return std::fmod(flips, C(2)) == C(0) ? extra + low : span - extra + low;
  }

  // The padding applied to a coordinate (the sample point, or a bicubic tap).
  C pad(C x) const {
    if (padding == Padding::kBorder) return clip(x);
    if (padding == Padding::kReflection) return clip(reflect(x));
    return x;
  }

  // Whether integral coordinate x names a pixel (false for NaN).
  bool inside(C x) const { return x >= C(0) && x < C(size); }
};

template <typename C>
struct Plane {
  const C* data;  // [H, W] of one (n, c)
  int64_t width;

  C at(const Axis<C>& ax, const Axis<C>& ay, C x, C y) const {
    if (!ax.inside(x) || !ay.inside(y)) return C(0);
    return data[static_cast<int64_t>(y) * width + static_cast<int64_t>(x)];
  }
};

template <typename C>
void cubic_weights(C t, C w[4]) {
  constexpr C A = C(-0.75);
  const C t1 = t + C(1), t2 = C(1) - t, t3 = C(2) - t;
  w[0] = ((A * t1 - C(5) * A) * t1 + C(8) * A) * t1 - C(4) * A;
  w[1] = ((A + C(2)) * t - (A + C(3))) * t * t + C(1);
  w[2] = ((A + C(2)) * t2 - (A + C(3))) * t2 * t2 + C(1);
  w[3] = ((A * t3 - C(5) * A) * t3 + C(8) * A) * t3 - C(4) * A;
}

template <typename C>
C sample(Interpolation mode, const Plane<C>& p, const Axis<C>& ax, const Axis<C>& ay, C gx,
         C gy) {
  if (mode == Interpolation::kBicubic) {
    const C x = ax.unnormalize(gx), y = ay.unnormalize(gy);
    const C x0 = std::floor(x), y0 = std::floor(y);
    C wx[4], wy[4];
    cubic_weights(x - x0, wx);
    cubic_weights(y - y0, wy);
    C result = 0;
    for (int j = 0; j < 4; ++j) {
      const C ty = ay.pad(y0 - C(1) + C(j));
      C row = 0;
      for (int i = 0; i < 4; ++i) {
        row += p.at(ax, ay, ax.pad(x0 - C(1) + C(i)), ty) * wx[i];
      }
      result += row * wy[j];
    }
    return result;
  }
  const C x = ax.pad(ax.unnormalize(gx)), y = ay.pad(ay.unnormalize(gy));
  if (mode == Interpolation::kNearest) {
    return p.at(ax, ay, std::nearbyint(x), std::nearbyint(y));
  }
  const C x0 = std::floor(x), y0 = std::floor(y), x1 = x0 + C(1), y1 = y0 + C(1);
  const C w = x1 - x, e = x - x0, n = y1 - y, s = y - y0;
  return p.at(ax, ay, x0, y0) * (w * n) + p.at(ax, ay, x1, y0) * (e * n) +
         p.at(ax, ay, x0, y1) * (w * s) + p.at(ax, ay, x1, y1) * (e * s);
}

template <typename T>
Status grid_sample(const Tensor& input, const Tensor& grid, Interpolation mode, Padding padding,
                   bool align_corners, const Tensor& out) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  KILN_ASSIGN_OR_RETURN(Tensor in_c, input.to(std::is_same_v<C, double> ? DType::kFloat64
                                                                        : DType::kFloat32));
  KILN_ASSIGN_OR_RETURN(Tensor grid_c, grid.to(std::is_same_v<C, double> ? DType::kFloat64
                                                                         : DType::kFloat32));
  const int64_t batch = input.size(0), channels = input.size(1);
  const int64_t h = input.size(2), w = input.size(3);
  const int64_t oh = grid.size(1), ow = grid.size(2), points = oh * ow;
  const Axis<C> ax{w, align_corners, padding}, ay{h, align_corners, padding};
  const C* pin = in_c.data<C>();
  const C* pgrid = grid_c.data<C>();
  T* dst = out.data<T>();
  parallel_for(0, batch * channels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t plane = lo; plane < hi; ++plane) {
      const int64_t n = plane / channels;
      const Plane<C> p{pin + plane * h * w, w};
      const C* g = pgrid + n * points * 2;
      T* o = dst + plane * points;
      for (int64_t i = 0; i < points; ++i) {
        o[i] = element_cast<T>(sample(mode, p, ax, ay, g[2 * i], g[2 * i + 1]));
      }
    }
  });
  return ok_status();
}

// grid_sampler_2d(input, grid, interpolation_mode, padding_mode, align_corners); inference has
// checked the shapes, dtypes and modes.
Status grid_sampler_2d_kernel(ir::OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor& grid = ctx.tensor(1);
  const auto mode = static_cast<Interpolation>(ctx.int_arg(2));
  const auto padding = static_cast<Padding>(ctx.int_arg(3));
  const bool align_corners = ctx.bool_arg(4);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor& out = ctx.output_tensor(0);
  if (out.numel() == 0) return ok_status();
  return dispatch_dtype(input.dtype(), [&]<typename T>() -> Status {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      return grid_sample<T>(input, grid, mode, padding, align_corners, out);
    } else {
      return invalid_argument("grid_sampler_2d: expected a floating input, found ",
                              input.description());
    }
  });
}

}  // namespace

Status register_grid_sampler_kernels(ir::OpFunctionTable& table) {
  return table.add(ir::OpKey::aten_grid_sampler_2d_default, grid_sampler_2d_kernel);
}

}  // namespace kiln::cpu
