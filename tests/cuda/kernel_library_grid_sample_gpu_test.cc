// The grid_sample family on the GPU against eager CUDA's rules written out here in the same fp32
// arithmetic (GridSampler.cu; its CPU kernel differs for non-finite grid points): every mode and
// padding, both align_corners, NaN / inf / far-away grid points, NaN pixels, strided views.
// Skipped without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/kernel_library_grid_sample.h"
#include "kernel_library_support.h"

namespace kiln::cuda {
namespace {

using namespace kltest;

const GpuModule& grid_sample_module() {
  static const GpuModule state = load_gpu_module([] {
    ModuleSource module;
    for (DType t : kFloatTypes) {
      for (int m = 0; m < 3; ++m) {
        for (int p = 0; p < 3; ++p) {
          grid_sample_kernel(module, GridInterpolation(m), GridPadding(p), t);
        }
      }
    }
    return module.text();
  }());
  return state;
}

// --- eager CUDA's rules on the host, fp32 ---------------------------------------------------------

float unnormalize(float g, int size, bool align) {
  return align ? ((g + 1.f) / 2) * (size - 1) : ((g + 1.f) * size - 1) / 2;
}
float clip(float x, int size) { return std::fmin(float(size - 1), std::fmax(x, 0.f)); }
float reflect(float x, int lo2, int hi2) {
  if (lo2 == hi2) return 0.f;
  const float low = float(lo2) / 2, span = float(hi2 - lo2) / 2;
  x = std::fabs(x - low);
  const float extra = std::fmod(x, span);
  // Eager casts floor(x / span) to int: the device's conversion saturates (a huge or infinite
  // quotient gives INT_MAX, odd) and gives 0 for NaN.
  const float q = std::floor(x / span);
  const int64_t flips = std::isnan(q) ? 0 : q >= 2147483647.f ? 2147483647 : int64_t(q);
  const bool even = flips % 2 == 0;
  return even ? extra + low : span - extra + low;
}
float pad(float x, int size, GridPadding p, bool align) {
  if (p == GridPadding::kBorder) x = clip(x, size);
  if (p == GridPadding::kReflection) {
    x = clip(align ? reflect(x, 0, 2 * (size - 1)) : reflect(x, -1, 2 * size - 1), size);
  }
  if (x > 2147483646.f || x < -2147483648.f || !std::isfinite(x)) return -100.f;
  return x;
}
float cubic(float v0, float v1, float v2, float v3, float t) {
  const float a = -0.75f;
  auto near = [a](float x) { return ((a + 2) * x - (a + 3)) * x * x + 1; };
  auto far = [a](float x) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; };
  const float u = 1 - t;
  return v0 * far(t + 1) + v1 * near(t) + v2 * near(u) + v3 * far(u + 1);
}

// x [N, C, H, W] and g [N, Ho, Wo, 2] row-major; the result [N, C, Ho, Wo] row-major.
std::vector<double> eager_grid_sample(const std::vector<double>& x, const Shape& xs,
                                      const std::vector<double>& g, const Shape& gs,
                                      GridInterpolation mode, GridPadding p, bool align) {
  const int64_t n_ = xs[0], c_ = xs[1], h = xs[2], w = xs[3], oh = gs[1], ow = gs[2];
  std::vector<double> y(n_ * c_ * oh * ow);
  auto at = [&](int64_t n, int64_t c, int64_t iy, int64_t ix) -> float {
    if (iy < 0 || iy >= h || ix < 0 || ix >= w) return 0.f;
    return float(x[((n * c_ + c) * h + iy) * w + ix]);
  };
  for (int64_t n = 0; n < n_; ++n) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        const float gx = float(g[((n * oh + i) * ow + j) * 2]);
        const float gy = float(g[((n * oh + i) * ow + j) * 2 + 1]);
        for (int64_t c = 0; c < c_; ++c) {
          float v = 0.f;
          if (mode == GridInterpolation::kBicubic) {
            const float ix = unnormalize(gx, int(w), align), iy = unnormalize(gy, int(h), align);
            const float x0 = std::floor(ix), y0 = std::floor(iy);
            float rows[4];
            for (int r = 0; r < 4; ++r) {
              float taps[4];
              for (int k = 0; k < 4; ++k) {
                taps[k] = at(n, c, int(pad(y0 - 1 + r, int(h), p, align)),
                             int(pad(x0 - 1 + k, int(w), p, align)));
              }
              rows[r] = cubic(taps[0], taps[1], taps[2], taps[3], ix - x0);
            }
            v = cubic(rows[0], rows[1], rows[2], rows[3], iy - y0);
          } else {
            const float ix = pad(unnormalize(gx, int(w), align), int(w), p, align);
            const float iy = pad(unnormalize(gy, int(h), align), int(h), p, align);
            if (mode == GridInterpolation::kNearest) {
              v = at(n, c, int64_t(std::nearbyint(iy)), int64_t(std::nearbyint(ix)));
            } else {
              const int64_t x0 = int64_t(std::floor(ix)), y0 = int64_t(std::floor(iy));
              const float ax = ix - float(x0), bx = float(x0 + 1) - ix;
              const float ay = iy - float(y0), by = float(y0 + 1) - iy;
              auto tap = [&](int64_t yy, int64_t xx, float wgt) {
                if (yy >= 0 && yy < h && xx >= 0 && xx < w) v += at(n, c, yy, xx) * wgt;
              };
              tap(y0, x0, bx * by);
              tap(y0, x0 + 1, ax * by);
              tap(y0 + 1, x0, bx * ay);
              tap(y0 + 1, x0 + 1, ax * ay);
            }
          }
          y[((n * c_ + c) * oh + i) * ow + j] = v;
        }
      }
    }
  }
  return y;
}

class GridSampleGpuTest : public FamilyGpuTest<grid_sample_module> {
 protected:
  // Random input and grid (points in [-1.3, 1.3], some poked), channels-last input optionally.
  void run(DType dtype, GridInterpolation mode, GridPadding p, bool align, bool nhwc) {
    SCOPED_TRACE(str_cat(dtype_name(dtype), " mode ", int(mode), " padding ", int(p),
                         align ? " align_corners" : "", nhwc ? " nhwc" : ""));
    const Shape xs = {2, 3, 5, 20}, gs = {2, 13, 10, 2};
    std::vector<double> xv = random_values(shape_numel(xs), 7);
    xv[17] = kNan;
    std::vector<double> gv = random_values(shape_numel(gs), 8, -1.3, 1.3);
    gv[0] = kNan;
    gv[3] = kInf;
    gv[4] = -kInf;
    // Far outside the image (fp32 only: half types pad bicubic taps in their own arithmetic).
    if (dtype == DType::kFloat32) gv[9] = 1e20;
    const Shape x_strides = nhwc ? Shape{xs[1] * xs[2] * xs[3], 1, xs[3] * xs[1], xs[1]} : Shape{};
    ASSIGN_OR_FAIL(DeviceTensor x, upload(xv, dtype, xs, x_strides));
    ASSIGN_OR_FAIL(DeviceTensor g, upload(gv, dtype, gs));
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(dtype, {xs[0], xs[1], gs[1], gs[2]}));
    ModuleSource names;
    auto fn = grid_sample_module().module->kernel(grid_sample_kernel(names, mode, p, dtype));
    ASSERT_TRUE(fn.ok()) << fn.status().to_string();
    ASSERT_TRUE(launch_grid_sample(*fn, x.tensor, g.tensor, y.tensor, align, nullptr).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    // Storage values as the GPU saw them; x read back in logical order.
    const std::vector<double> expected =
        eager_grid_sample(x.values(), xs, g.values(), gs, mode, p, align);
    // fp32: the GPU may fuse a multiply-add the host does not; nearest copies exactly.
    const double tol = mode == GridInterpolation::kNearest ? 0.0
                       : dtype == DType::kFloat32          ? 1e-5
                                                           : tolerance(dtype);
    expect_close(y.read(), rounded(expected, dtype), tol, "vs eager CUDA's rules");
  }
};

TEST_F(GridSampleGpuTest, EveryModeAndPadding) {
  for (int m = 0; m < 3; ++m) {
    for (int p = 0; p < 3; ++p) {
      for (bool align : {false, true}) {
        run(DType::kFloat32, GridInterpolation(m), GridPadding(p), align, m == 0 && p == 0);
      }
    }
  }
}

// Half types: coordinates in fp32, one rounding at the end (this image is small enough that
// bicubic's tap coordinates are exact in fp16 and bf16).
TEST_F(GridSampleGpuTest, HalfTypes) {
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    run(t, GridInterpolation::kBilinear, GridPadding::kZeros, false, true);
    run(t, GridInterpolation::kNearest, GridPadding::kBorder, true, false);
    run(t, GridInterpolation::kBicubic, GridPadding::kReflection, false, false);
  }
}

}  // namespace
}  // namespace kiln::cuda
