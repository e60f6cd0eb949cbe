// The resample family on the GPU (upsample, col2im, cdist, pdist) against kiln's CPU reference
// kernels on the same values, and against eager CUDA's index and NaN rules written out here
// where its CPU kernels differ (a scale factor that leaves a dim's size unchanged, a NaN
// neighbour of weight 0 in a dim whose size does not change, NaN in p = 0 and p = inf
// distances). Strided (NHWC) inputs and outputs included. Skipped without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "cuda/kernel_library_resample.h"
#include "cuda/kernel_module.h"
#include "cuda/nvrtc_compiler.h"
#include "kernel_library_support.h"
#include "support/op_runner.h"

namespace kiln::cuda {
namespace {

using namespace kltest;
using kiln::testing::OpCall;
using kiln::testing::TensorArg;

constexpr UpsampleMode kModes[] = {UpsampleMode::kNearest, UpsampleMode::kNearestExact,
                                   UpsampleMode::kLinear};
constexpr DistanceNorm kNorms[] = {DistanceNorm::kZero, DistanceNorm::kOne,
                                   DistanceNorm::kTwo,  DistanceNorm::kInf,
                                   DistanceNorm::kP,    DistanceNorm::kTwoByProduct};

void add_resample_family(ModuleSource& module) {
  for (DType t : kFloatTypes) {
    for (UpsampleMode mode : kModes) {
      for (int dims : {1, 2}) upsample_kernel(module, mode, dims, t);
    }
    col2im_kernel(module, t);
    for (DistanceNorm norm : kNorms) {
      cdist_kernel(module, t, norm);
      pdist_kernel(module, t, norm);
    }
  }
  for (UpsampleMode mode : {UpsampleMode::kNearest, UpsampleMode::kNearestExact}) {
    for (int dims : {1, 2}) upsample_kernel(module, mode, dims, DType::kUInt8);
  }
}

// The family's module, compiled once for this device and loaded (never freed, as gpu_module()).
const GpuModule& resample_module() {
  static const GpuModule state = load_gpu_module([] {
    ModuleSource module;
    add_resample_family(module);
    return module.text();
  }());
  return state;
}

class ResampleGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuModule& gpu = resample_module();
    if (!gpu.skip_reason.empty()) GTEST_SKIP() << gpu.skip_reason;
    ASSERT_NE(gpu.module, nullptr) << gpu.error;
  }
  static cudaKernel_t fn(const std::string& name) {
    auto kernel = resample_module().module->kernel(name);
    EXPECT_TRUE(kernel.ok()) << kernel.status().to_string();
    return kernel.ok() ? *kernel : nullptr;
  }
  static void sync(const Status& launched) {
    ASSERT_TRUE(launched.ok()) << launched.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  ModuleSource names_;
};

// The CPU reference's input: the view's values, contiguous, in the same dtype.
Tensor host_copy(const DeviceTensor& t) {
  return kiln::testing::make_tensor(t.tensor.dtype(), t.tensor.sizes(), t.values());
}

// Strides of an NHWC (channels innermost) layout of logical [N, C, H, W] sizes.
Shape nhwc_strides(const Shape& s) { return {s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]}; }

// A view of `sizes` with `strides` over fresh storage of random values, some poked.
Result<DeviceTensor> random_view(DType dtype, const Shape& sizes, Shape strides, uint32_t seed,
                                 const std::vector<std::pair<int64_t, double>>& pokes = {}) {
  if (strides.empty()) strides = contiguous_strides(sizes);
  int64_t storage = 1;
  const std::vector<int64_t> offsets = view_offsets(sizes, strides);
  for (int64_t at : offsets) storage = std::max(storage, at + 1);
  std::vector<double> values = random_values(static_cast<size_t>(storage), seed);
  if (dtype == DType::kUInt8) {
    for (double& v : values) v = std::floor((v + 3.0) * 40.0);
  }
  for (const auto& [element, value] : pokes) values[offsets[element]] = value;
  return upload(values, dtype, sizes, strides);
}

// An output view of `sizes` with `strides`, filled with a sentinel.
Result<DeviceTensor> output_view(DType dtype, const Shape& sizes, Shape strides) {
  if (strides.empty()) strides = contiguous_strides(sizes);
  int64_t storage = 1;
  for (int64_t at : view_offsets(sizes, strides)) storage = std::max(storage, at + 1);
  const double sentinel = dtype == DType::kUInt8 ? 77.0 : -777.0;
  return upload(std::vector<double>(static_cast<size_t>(storage), sentinel), dtype, sizes, strides);
}

// --- upsampling ----------------------------------------------------------------------------------

// Eager CUDA's index rules (UpSample.cuh), written out on the CPU in the same float arithmetic.
float eager_scale(std::optional<double> factor, int64_t in, int64_t out) {
  return factor && *factor > 0.0 ? static_cast<float>(1.0 / *factor)
                                 : static_cast<float>(in) / static_cast<float>(out);
}
int64_t eager_nearest(UpsampleMode mode, float scale, int64_t dst, int64_t in) {
  const float f = mode == UpsampleMode::kNearestExact
                      ? std::floor((static_cast<float>(dst) + 0.5f) * scale)
                      : std::floor(static_cast<float>(dst) * scale);
  return std::min<int64_t>(static_cast<int64_t>(f), in - 1);
}
struct Tap {
  int64_t i0, i1;
  double l0, l1;
};
Tap eager_tap(float scale, int64_t dst, int64_t in, bool align_corners) {
  float src = align_corners ? scale * static_cast<float>(dst)
                            : scale * (static_cast<float>(dst) + 0.5f) - 0.5f;
  if (src < 0.0f) src = 0.0f;
  const int64_t i = static_cast<int64_t>(src);
  const float l1 = src - static_cast<float>(i);
  const int64_t i0 = std::min(i, in - 1);
  return Tap{i0, i0 + (i0 < in - 1 ? 1 : 0), 1.0f - l1, l1};
}

// x: logical row-major [N, C, (H,) W]; the result likewise for `out`.
std::vector<double> eager_upsample(const std::vector<double>& x, const Shape& in, const Shape& out,
                                   const UpsampleParams& p) {
  const bool two_d = in.size() == 4;
  const int64_t planes = in[0] * in[1];
  const int64_t ih = two_d ? in[2] : 1, iw = in.back(), oh = two_d ? out[2] : 1, ow = out.back();
  const std::optional<double> fh = two_d ? p.scales[0] : std::nullopt;
  const std::optional<double> fw = two_d ? p.scales[1] : p.scales[0];
  std::vector<double> y;
  for (int64_t plane = 0; plane < planes; ++plane) {
    const double* xp = x.data() + plane * ih * iw;
    for (int64_t h = 0; h < oh; ++h) {
      for (int64_t w = 0; w < ow; ++w) {
        if (p.mode != UpsampleMode::kLinear) {
          const int64_t sh = !two_d || ih == oh ? h : eager_nearest(p.mode, eager_scale(fh, ih, oh), h, ih);
          const int64_t sw = two_d && iw == ow ? w : eager_nearest(p.mode, eager_scale(fw, iw, ow), w, iw);
          y.push_back(xp[sh * iw + sw]);
          continue;
        }
        if (ih == oh && iw == ow) {
          y.push_back(xp[h * iw + w]);
          continue;
        }
        auto scale = [&](std::optional<double> f, int64_t i, int64_t o) {
          if (p.align_corners) {
            return o > 1 ? static_cast<float>(i - 1) / static_cast<float>(o - 1) : 0.0f;
          }
          return eager_scale(f, i, o);
        };
        const Tap tw = eager_tap(scale(fw, iw, ow), w, iw, p.align_corners);
        auto row = [&](int64_t r) {
          return tw.l0 * xp[r * iw + tw.i0] + tw.l1 * xp[r * iw + tw.i1];
        };
        if (!two_d) {
          y.push_back(row(0));
        } else {
          const Tap th = eager_tap(scale(fh, ih, oh), h, ih, p.align_corners);
          y.push_back(th.l0 * row(th.i0) + th.l1 * row(th.i1));
        }
      }
    }
  }
  return y;
}

struct UpsampleCase {
  std::string what;
  UpsampleMode mode = UpsampleMode::kNearest;
  DType dtype = DType::kFloat32;
  Shape in, out;
  std::optional<double> scale_h = std::nullopt, scale_w = std::nullopt;  // scale_w alone: 1-D
  bool align_corners = false;
  bool nhwc = false;  // input and output channels-last views
  std::vector<std::pair<int64_t, double>> pokes = {};
  bool vs_cpu = true;  // also compare with kiln's CPU reference (where its rules are eager's)
};

class UpsampleGpuTest : public ResampleGpuTest {
 protected:
  void run(const UpsampleCase& c) {
    SCOPED_TRACE(c.what);
    const bool two_d = c.in.size() == 4;
    UpsampleParams p;
    p.mode = c.mode;
    p.align_corners = c.align_corners;
    p.scales[0] = two_d ? c.scale_h : c.scale_w;
    p.scales[1] = two_d ? c.scale_w : std::nullopt;
    ASSIGN_OR_FAIL(DeviceTensor x, random_view(c.dtype, c.in, c.nhwc ? nhwc_strides(c.in) : Shape{},
                                               41, c.pokes));
    ASSIGN_OR_FAIL(DeviceTensor y,
                   output_view(c.dtype, c.out, c.nhwc ? nhwc_strides(c.out) : Shape{}));
    sync(launch_upsample(fn(upsample_kernel(names_, c.mode, two_d ? 2 : 1, c.dtype)), x.tensor,
                         y.tensor, p, nullptr));
    const bool nearest = c.mode != UpsampleMode::kLinear;
    // Nearest copies: bit-exact. Linear: fp32 weights, one rounding to the storage type; the GPU
    // may fuse scale * (dst + 0.5) - 0.5 into one fma, moving a weight by an ulp.
    const double tol = nearest ? 0.0 : c.dtype == DType::kFloat32 ? 1e-5 : tolerance(c.dtype);
    const std::vector<double> got = y.read();
    expect_close(got, rounded(eager_upsample(x.values(), c.in, c.out, p), c.dtype), tol,
                 "vs eager's rules");
    if (!c.vs_cpu) return;
    static const char* const kTargets[3][2] = {
        {"aten.upsample_nearest1d.default", "aten.upsample_nearest2d.default"},
        {"aten._upsample_nearest_exact1d.default", "aten._upsample_nearest_exact2d.default"},
        {"aten.upsample_linear1d.default", "aten.upsample_bilinear2d.default"}};
    OpCall call;
    call.target = kTargets[static_cast<int>(c.mode)][two_d ? 1 : 0];
    call.inputs = {host_copy(x)};
    call.args = {TensorArg{0}, std::vector<int64_t>(c.out.begin() + 2, c.out.end())};
    if (!nearest) call.args.emplace_back(c.align_corners);
    for (const std::optional<double>& s : two_d ? std::vector{c.scale_h, c.scale_w}
                                                : std::vector{c.scale_w}) {
      if (s) {
        call.args.emplace_back(*s);
      } else {
        call.args.emplace_back(ir::NoneArg{});
      }
    }
    ASSIGN_OR_FAIL(std::vector<Tensor> expected, kiln::testing::run_op(call));
    expect_close(got, kiln::testing::to_doubles(expected[0]), tol, "vs the CPU reference");
  }
};

TEST_F(UpsampleGpuTest, Nearest) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16, bf16 = DType::kBFloat16;
  run({"scale factor 2, NaN and inf copied", UpsampleMode::kNearest, f32, {2, 3, 4, 5},
       {2, 3, 8, 10}, 2.0, 2.0, false, false, {{3, kNan}, {17, kInf}, {18, -kInf}}});
  run({"sizes, non-integer ratio", UpsampleMode::kNearest, f16, {1, 2, 5, 7}, {1, 2, 8, 11}});
  run({"scale factor 2.5 (nn.Upsample)", UpsampleMode::kNearest, f32, {1, 3, 4, 4},
       {1, 3, 10, 10}, 2.5, 2.5});
  run({"downsampling, NHWC views", UpsampleMode::kNearest, bf16, {2, 6, 9, 8}, {2, 6, 3, 5},
       std::nullopt, std::nullopt, false, true});
  run({"scale 1.7 / 0.6 given", UpsampleMode::kNearest, f32, {1, 2, 6, 10}, {1, 2, 10, 6}, 1.7,
       0.6});
  run({"1-D, scale 3", UpsampleMode::kNearest, f32, {2, 3, 7}, {2, 3, 21}, std::nullopt, 3.0});
  run({"uint8", UpsampleMode::kNearest, DType::kUInt8, {1, 4, 3, 5}, {1, 4, 7, 9}, std::nullopt,
       std::nullopt, false, true, {}, false});
}

// Where eager's CUDA kernels and its CPU ones part: a given scale factor whose output keeps a
// dim's size. The 2-D kernel maps that dim to itself; the 1-D one uses floor(dst / factor).
TEST_F(UpsampleGpuTest, NearestFactorKeepingTheSize) {
  const DType f32 = DType::kFloat32;
  run({"2-D, factor 1.3 keeps 3", UpsampleMode::kNearest, f32, {1, 2, 3, 4}, {1, 2, 3, 8}, 1.3,
       2.0});
  run({"1-D, factor 1.3 keeps 6", UpsampleMode::kNearest, f32, {1, 2, 6}, {1, 2, 6},
       std::nullopt, 1.3, false, false, {}, false});
  // out == 2 * in with a factor other than 2: eager's CPU takes dst / 2, its CUDA dst / factor.
  run({"factor 2.005, 200 from 100", UpsampleMode::kNearest, f32, {1, 1, 1, 100}, {1, 1, 1, 200},
       std::nullopt, 2.005, false, false, {}, false});
}

TEST_F(UpsampleGpuTest, NearestExact) {
  run({"scale 1.5 / 0.75", UpsampleMode::kNearestExact, DType::kFloat32, {1, 3, 6, 8},
       {1, 3, 9, 6}, 1.5, 0.75});
  run({"1-D sizes", UpsampleMode::kNearestExact, DType::kFloat16, {2, 2, 5}, {2, 2, 13}});
}

TEST_F(UpsampleGpuTest, Bilinear) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16, bf16 = DType::kBFloat16;
  for (bool align : {false, true}) {
    const std::string a = align ? " align_corners" : "";
    run({"sizes up" + a, UpsampleMode::kLinear, f32, {2, 3, 5, 7}, {2, 3, 9, 11}, std::nullopt,
         std::nullopt, align});
    run({"scale factors 1.5 / 2" + a, UpsampleMode::kLinear, f16, {1, 2, 4, 6}, {1, 2, 6, 12}, 1.5,
         2.0, align});
    run({"down, NHWC views" + a, UpsampleMode::kLinear, bf16, {2, 8, 9, 10}, {2, 8, 4, 3},
         std::nullopt, std::nullopt, align, true});
    run({"to one pixel" + a, UpsampleMode::kLinear, f32, {1, 2, 4, 5}, {1, 2, 1, 1}, std::nullopt,
         std::nullopt, align});
    run({"1-D scale 2.5" + a, UpsampleMode::kLinear, f32, {2, 3, 6}, {2, 3, 15}, std::nullopt, 2.5,
         align});
  }
}

// NaN and inf spread as eager's arithmetic spreads them: a neighbour read at weight 0 still
// multiplies in (0 * NaN = NaN, 0 * inf = NaN), even along a dim whose size does not change
// (eager's kernel reads the next row there); equal sizes copy.
TEST_F(UpsampleGpuTest, BilinearNonFinite) {
  const DType f32 = DType::kFloat32;
  // Element 6 is (row 1, col 1) of the 5-wide plane; 12 is (row 2, col 2).
  run({"NaN, sizes up", UpsampleMode::kLinear, f32, {1, 1, 4, 5}, {1, 1, 8, 10}, std::nullopt,
       std::nullopt, false, false, {{6, kNan}, {12, kInf}}});
  run({"NaN, rows unchanged", UpsampleMode::kLinear, f32, {1, 1, 4, 5}, {1, 1, 4, 9}, std::nullopt,
       std::nullopt, false, false, {{6, kNan}}, false});
  run({"inf, align_corners", UpsampleMode::kLinear, f32, {1, 1, 4, 5}, {1, 1, 7, 9}, std::nullopt,
       std::nullopt, true, false, {{12, kInf}}});
  // (kiln's CPU reference gives 1 * inf + 0 * inf = NaN there.)
  run({"equal sizes copy", UpsampleMode::kLinear, f32, {1, 2, 3, 4}, {1, 2, 3, 4}, std::nullopt,
       std::nullopt, false, false, {{1, kNan}, {5, kInf}}, false});
}

// --- col2im --------------------------------------------------------------------------------------

// The sum of the patches' entries over each output pixel, scattered in double.
std::vector<double> reference_col2im(const std::vector<double>& cols, int64_t n, int64_t c,
                                     int64_t h, int64_t w, const Col2imParams& p) {
  const int64_t kh = p.kernel[0], kw = p.kernel[1];
  int64_t grid[2];
  for (int i = 0; i < 2; ++i) {
    const int64_t size = i == 0 ? h : w;
    grid[i] = (size + 2 * p.padding[i] - (p.dilation[i] * (p.kernel[i] - 1) + 1)) / p.stride[i] + 1;
  }
  const int64_t l = grid[0] * grid[1];
  std::vector<double> out(static_cast<size_t>(n * c * h * w), 0.0);
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t i = 0; i < kh; ++i) {
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t row = (ch * kh + i) * kw + j;
          for (int64_t gy = 0; gy < grid[0]; ++gy) {
            for (int64_t gx = 0; gx < grid[1]; ++gx) {
              const int64_t y = gy * p.stride[0] - p.padding[0] + i * p.dilation[0];
              const int64_t x = gx * p.stride[1] - p.padding[1] + j * p.dilation[1];
              if (y < 0 || y >= h || x < 0 || x >= w) continue;
              out[((b * c + ch) * h + y) * w + x] +=
                  cols[(b * c * kh * kw + row) * l + gy * grid[1] + gx];
            }
          }
        }
      }
    }
  }
  return out;
}

Col2imParams col2im_params(int64_t k0, int64_t k1, int64_t d, int64_t pad, int64_t s0,
                           int64_t s1) {
  Col2imParams p;
  p.kernel[0] = k0, p.kernel[1] = k1;
  p.dilation[0] = p.dilation[1] = d;
  p.padding[0] = p.padding[1] = pad;
  p.stride[0] = s0, p.stride[1] = s1;
  return p;
}

TEST_F(ResampleGpuTest, Col2imSumsOverlappingPatches) {
  struct Case {
    std::string what;
    DType dtype;
    int64_t n, c, h, w;
    Col2imParams p;
    bool batched = true, transposed = false;
  };
  const std::vector<Case> cases = {
      {"stride 1 overlap", DType::kFloat32, 2, 3, 5, 6, col2im_params(3, 2, 1, 0, 1, 1)},
      {"stride 2, dilation 2, padding 1", DType::kFloat32, 1, 2, 9, 8,
       col2im_params(3, 3, 2, 1, 2, 2)},
      {"unbatched f16, asymmetric stride", DType::kFloat16, 1, 4, 7, 7,
       col2im_params(2, 3, 1, 1, 2, 1), false},
      {"transposed columns bf16", DType::kBFloat16, 2, 2, 6, 6, col2im_params(2, 2, 1, 0, 2, 2),
       true, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    int64_t grid[2];
    for (int i = 0; i < 2; ++i) {
      const int64_t size = i == 0 ? c.h : c.w;
      grid[i] = (size + 2 * c.p.padding[i] - (c.p.dilation[i] * (c.p.kernel[i] - 1) + 1)) /
                    c.p.stride[i] + 1;
    }
    const int64_t rows = c.c * c.p.kernel[0] * c.p.kernel[1], l = grid[0] * grid[1];
    Shape sizes = c.batched ? Shape{c.n, rows, l} : Shape{rows, l};
    Shape strides;
    if (c.transposed) strides = {rows * l, 1, rows};  // [N, L, rows] storage seen as [N, rows, L]
    ASSIGN_OR_FAIL(DeviceTensor cols, random_view(c.dtype, sizes, strides, 43));
    const Shape out = c.batched ? Shape{c.n, c.c, c.h, c.w} : Shape{c.c, c.h, c.w};
    ASSIGN_OR_FAIL(DeviceTensor y, output_view(c.dtype, out, {}));
    sync(launch_col2im(fn(col2im_kernel(names_, c.dtype)), cols.tensor, y.tensor, c.p, nullptr));
    const std::vector<double> expected =
        reference_col2im(cols.values(), c.batched ? c.n : 1, c.c, c.h, c.w, c.p);
    expect_close(y.read(), rounded(expected, c.dtype),
                 c.dtype == DType::kFloat32 ? 1e-5 : tolerance(c.dtype), "col2im");
  }
}

// --- distances -----------------------------------------------------------------------------------

// Eager CUDA's distance between two rows, in double: p = 0 counts NaN differences, p = inf skips
// them (DistanceKernel.cu); `product` is the matrix-product form.
double eager_distance(const double* a, const double* b, int64_t m, double p, bool product) {
  if (product) {
    double aa = 0, bb = 0, ab = 0;
    for (int64_t k = 0; k < m; ++k) {
      aa += a[k] * a[k];
      bb += b[k] * b[k];
      ab += a[k] * b[k];
    }
    const double squared = aa + bb - 2 * ab;
    return std::sqrt(std::isnan(squared) ? squared : std::max(squared, 0.0));
  }
  double agg = 0;
  for (int64_t k = 0; k < m; ++k) {
    const double d = std::fabs(a[k] - b[k]);
    if (p == 0) {
      agg += d != 0 ? 1 : 0;
    } else if (std::isinf(p)) {
      if (d > agg) agg = d;
    } else {
      agg += p == 1 ? d : p == 2 ? d * d : std::pow(d, p);
    }
  }
  if (p == 2) return std::sqrt(agg);
  if (p != 0 && p != 1 && !std::isinf(p)) return std::pow(agg, 1.0 / p);
  return agg;
}

struct CdistCase {
  std::string what;
  DType dtype;
  Shape a, b;  // [B1, P, M] and [B2, R, M]; B1 and B2 broadcast
  double p;
  int64_t compute_mode = 0;
  std::vector<std::pair<int64_t, double>> pokes = {};  // into a
  bool transposed_b = false;                           // b as a [B, M, R] storage view
  bool vs_cpu = true;
  uint32_t b_seed = 53;  // a's seed (47) makes b equal to a
  double tol = -1;       // else the dtype's
};

class DistanceGpuTest : public ResampleGpuTest {
 protected:
  void run(const CdistCase& c) {
    SCOPED_TRACE(c.what);
    const int64_t m = c.a[2], rows1 = c.a[1], rows2 = c.b[1];
    const int64_t batches = std::max(c.a[0], c.b[0]);
    ASSIGN_OR_FAIL(DeviceTensor a, random_view(c.dtype, c.a, {}, 47, c.pokes));
    Shape b_strides;
    if (c.transposed_b) b_strides = {rows2 * m, 1, rows2};
    ASSIGN_OR_FAIL(DeviceTensor b, random_view(c.dtype, c.b, b_strides, c.b_seed));
    const Shape out = {batches, rows1, rows2};
    ASSIGN_OR_FAIL(DeviceTensor y, output_view(c.dtype, out, {}));
    const DistanceNorm norm = cdist_norm(c.p, c.compute_mode, rows1, rows2);
    sync(launch_cdist(fn(cdist_kernel(names_, c.dtype, norm)), a.tensor, b.tensor, y.tensor, c.p,
                      nullptr));
    const std::vector<double> av = a.values(), bv = b.values();
    std::vector<double> expected;
    for (int64_t batch = 0; batch < batches; ++batch) {
      const double* ab = av.data() + (c.a[0] == 1 ? 0 : batch) * rows1 * m;
      const double* bb = bv.data() + (c.b[0] == 1 ? 0 : batch) * rows2 * m;
      for (int64_t i = 0; i < rows1; ++i) {
        for (int64_t j = 0; j < rows2; ++j) {
          expected.push_back(eager_distance(ab + i * m, bb + j * m, m, c.p,
                                            norm == DistanceNorm::kTwoByProduct));
        }
      }
    }
    const double tol = c.tol >= 0                 ? c.tol
                       : c.dtype == DType::kFloat32 ? 1e-5
                                                    : tolerance(c.dtype);
    const std::vector<double> got = y.read();
    expect_close(got, rounded(expected, c.dtype), tol, "vs eager's rules");
    if (!c.vs_cpu) return;
    OpCall call;
    call.target = "aten._cdist_forward.default";
    call.inputs = {host_copy(a), host_copy(b)};
    call.args = {TensorArg{0}, TensorArg{1}, c.p, c.compute_mode};
    ASSIGN_OR_FAIL(std::vector<Tensor> cpu, kiln::testing::run_op(call));
    expect_close(got, kiln::testing::to_doubles(cpu[0]), tol, "vs the CPU reference");
  }
};

TEST_F(DistanceGpuTest, CdistEveryNorm) {
  const DType f32 = DType::kFloat32;
  for (double p : {0.0, 1.0, 2.0, kInf, 3.0, 0.5}) {
    run({str_cat("p ", p, " small"), f32, {2, 5, 7}, {2, 4, 7}, p});
    run({str_cat("p ", p, " 30 rows, broadcast batch"), f32, {1, 30, 9}, {3, 6, 9}, p});
  }
  // Rows longer than the block: each thread takes every 256th element.
  run({"p 2 long rows", f32, {1, 3, 700}, {1, 2, 700}, 2.0});
  run({"p 1 long rows, transposed x2", f32, {1, 3, 600}, {1, 5, 600}, 1.0, 0, {}, true});
}

TEST_F(DistanceGpuTest, CdistEuclideanForms) {
  const DType f32 = DType::kFloat32;
  run({"direct at 25 rows", f32, {1, 25, 6}, {1, 25, 6}, 2.0});
  run({"product past 25 rows", f32, {2, 26, 6}, {2, 3, 6}, 2.0});
  run({"product by compute_mode 1", f32, {1, 4, 6}, {1, 3, 6}, 2.0, 1});
  run({"direct by compute_mode 2", f32, {1, 40, 6}, {1, 40, 6}, 2.0, 2});
  run({"product f16", DType::kFloat16, {1, 30, 16}, {1, 7, 16}, 2.0, 0, {}, false, false});
  run({"direct bf16", DType::kBFloat16, {1, 5, 16}, {1, 7, 16}, 1.0, 0, {}, false, false});
  // Identical rows: the product form's |a|^2 + |b|^2 - 2ab rounds to about +-1e-6 there, clamped
  // at 0 before the square root (no NaN); its square root, up to ~1e-3, is eager's noise too.
  run({"product of a set with itself", f32, {1, 30, 5}, {1, 30, 5}, 2.0, 1, {}, false, false, 47,
       1e-2});
}

// NaN: counted by p = 0, skipped by p = inf (eager's CUDA kernels; its CPU ones give NaN), and
// spread by the other norms and the product form.
TEST_F(DistanceGpuTest, CdistNaN) {
  const DType f32 = DType::kFloat32;
  for (double p : {0.0, 1.0, 2.0, kInf, 3.0}) {
    run({str_cat("p ", p), f32, {1, 3, 6}, {1, 4, 6}, p, 0, {{2, kNan}, {9, kInf}}, false,
         false});
  }
  run({"product", f32, {1, 30, 6}, {1, 2, 6}, 2.0, 0, {{2, kNan}}, false, false});
}

TEST_F(DistanceGpuTest, Pdist) {
  for (DType dtype : kFloatTypes) {
    for (double p : {0.0, 1.0, 2.0, kInf, 1.5}) {
      SCOPED_TRACE(str_cat(dtype_name(dtype), " p ", p));
      const int64_t n = 37, m = 300;
      // A transposed view: [M, N] storage seen as [N, M].
      ASSIGN_OR_FAIL(DeviceTensor x, random_view(dtype, {n, m}, {1, n}, 59));
      const int64_t pairs = n * (n - 1) / 2;
      ASSIGN_OR_FAIL(DeviceTensor y, output_view(dtype, {pairs}, {2}));  // every other element
      sync(launch_pdist(fn(pdist_kernel(names_, dtype, distance_norm(p))), x.tensor, y.tensor, p,
                        nullptr));
      const std::vector<double> xv = x.values();
      std::vector<double> expected;
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t j = i + 1; j < n; ++j) {
          expected.push_back(eager_distance(xv.data() + i * m, xv.data() + j * m, m, p, false));
        }
      }
      const double tol = dtype == DType::kFloat32 ? 1e-5 : tolerance(dtype);
      const std::vector<double> got = y.read();
      expect_close(got, rounded(expected, dtype), tol, "vs eager's rules");
      if (dtype != DType::kFloat32) continue;
      OpCall call;
      call.target = "aten._pdist_forward.default";
      call.inputs = {host_copy(x)};
      call.args = {TensorArg{0}, p};
      ASSIGN_OR_FAIL(std::vector<Tensor> cpu, kiln::testing::run_op(call));
      expect_close(got, kiln::testing::to_doubles(cpu[0]), tol, "vs the CPU reference");
    }
  }
}

}  // namespace
}  // namespace kiln::cuda
