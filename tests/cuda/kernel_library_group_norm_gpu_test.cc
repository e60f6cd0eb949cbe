// The group norm family on the GPU against a double-precision CPU reference: group norm in each
// float dtype (mixed precision too), constant groups (exactly the bias), groups larger than a
// block, NHWC and permuted inputs and outputs, no weight or bias, inf and NaN, empty planes,
// statistics alone, training batch norm's batch statistics and instance norm's running ones.
// Skipped without a CUDA device.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cuda/kernel_library_group_norm.h"
#include "kernel_library_support.h"

namespace kiln::cuda {
namespace {

using namespace kltest;

// The module of this family's entry points, compiled once for the device and loaded (never
// freed, as kernel_library_support.h's).
constexpr std::pair<DType, DType> kVariants[] = {{DType::kFloat32, DType::kFloat32},
                                                 {DType::kFloat16, DType::kFloat16},
                                                 {DType::kBFloat16, DType::kBFloat16},
                                                 {DType::kFloat16, DType::kFloat32},
                                                 {DType::kBFloat16, DType::kFloat32}};

ModuleSource group_norm_module() {
  ModuleSource module;
  for (const auto& [t, p] : kVariants) {
    group_norm_kernel(module, t, p, p);
    group_norm_kernel(module, t, p, DType::kFloat32);
  }
  return module;
}

const GpuModule& group_norm_gpu_module() {
  static const GpuModule state = load_gpu_module(group_norm_module().text());
  return state;
}

// Strides of `sizes` whose memory holds the dims in `order` (outermost first); empty: row-major.
Shape strides_in_order(const Shape& sizes, const std::vector<int64_t>& order) {
  if (order.empty()) return contiguous_strides(sizes);
  Shape strides(sizes.size());
  int64_t stride = 1;
  for (size_t i = order.size(); i-- > 0;) {
    strides[order[i]] = stride;
    stride *= std::max<int64_t>(sizes[order[i]], 1);
  }
  return strides;
}

struct Reference {
  std::vector<double> out, mean, rstd;
};

// x in row-major order of [N, C, plane...]; set_of / channel_of map an element to its set and
// channel. A set with an inf or a NaN gets NaN statistics (batch statistics: a mean of the inf
// when the set's infinities share a sign, as eager CUDA); an empty one mean 0 and rstd NaN.
template <typename SetOf, typename ChannelOf>
Reference reference(const std::vector<double>& x, int64_t sets, SetOf set_of, ChannelOf channel_of,
                    const std::vector<double>& w, const std::vector<double>& b, double eps,
                    bool infinite_mean = false) {
  std::vector<double> sum(sets, 0.0), count(sets, 0.0), squares(sets, 0.0);
  for (size_t i = 0; i < x.size(); ++i) {
    sum[set_of(i)] += x[i];
    count[set_of(i)] += 1;
  }
  Reference r;
  r.mean.resize(sets);
  r.rstd.resize(sets);
  for (int64_t s = 0; s < sets; ++s) {
    const bool keep = std::isfinite(sum[s]) || (infinite_mean && !std::isnan(sum[s]));
    r.mean[s] = count[s] == 0 ? 0.0 : keep ? sum[s] / count[s] : kNan;
  }
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = x[i] - r.mean[set_of(i)];
    squares[set_of(i)] += d * d;
  }
  for (int64_t s = 0; s < sets; ++s) {
    r.rstd[s] = count[s] == 0 ? kNan : 1.0 / std::sqrt(squares[s] / count[s] + eps);
  }
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t s = set_of(i), c = channel_of(i);
    double v = (x[i] - r.mean[s]) * r.rstd[s];
    if (!w.empty()) v *= w[c];
    if (!b.empty()) v += b[c];
    r.out.push_back(v);
  }
  return r;
}

struct GroupCase {
  std::string what;
  DType dtype = DType::kFloat32;
  DType param = DType::kFloat32;  // also the statistics' dtype
  Shape sizes;
  int64_t groups = 1;
  std::vector<int64_t> x_order = {}, y_order = {};  // memory order of dims; empty: row-major
  bool affine = true;
  double shift = 0.0;                                  // added to every value
  std::vector<std::pair<int64_t, double>> pokes = {};  // (row-major element, value)
  bool constant = false;                               // every element 0.7
  bool batch_stats = false;  // training batch norm: a set per channel over N and the plane
  double eps = 1e-5;
};

class GroupNormGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpuModule& gpu = group_norm_gpu_module();
    if (!gpu.skip_reason.empty()) GTEST_SKIP() << gpu.skip_reason;
    ASSERT_NE(gpu.module, nullptr) << gpu.error;
  }
  static cudaKernel_t fn(const std::string& name) {
    auto kernel = group_norm_gpu_module().module->kernel(name);
    EXPECT_TRUE(kernel.ok()) << kernel.status().to_string();
    return kernel.ok() ? *kernel : nullptr;
  }
  static void sync(const Status& launched) {
    ASSERT_TRUE(launched.ok()) << launched.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }

  void run(const GroupCase& c) {
    SCOPED_TRACE(c.what);
    const int64_t n = shape_numel(c.sizes), batch = c.sizes[0], channels = c.sizes[1];
    const int64_t plane = batch * channels == 0 ? 0 : n / (batch * channels);
    std::vector<double> values = random_values(n, 21, c.shift - 2.0, c.shift + 2.0);
    if (c.constant) values.assign(n, 0.7);
    for (const auto& [i, v] : c.pokes) values[i] = v;
    // Storage laid out in the case's order: scatter the row-major values there.
    const Shape x_strides = strides_in_order(c.sizes, c.x_order);
    const std::vector<int64_t> x_offsets = view_offsets(c.sizes, x_strides);
    std::vector<double> storage(std::max<int64_t>(n, 1), 0.0);
    for (int64_t i = 0; i < n; ++i) storage[x_offsets[i]] = values[i];
    ASSIGN_OR_FAIL(DeviceTensor x, upload(storage, c.dtype, c.sizes, x_strides));
    ASSIGN_OR_FAIL(DeviceTensor y, upload(std::vector<double>(std::max<int64_t>(n, 1), -777.0),
                                          c.dtype, c.sizes, strides_in_order(c.sizes, c.y_order)));
    std::vector<double> wv, bv;
    if (c.affine) {
      wv = rounded(random_values(channels, 22, 0.5, 1.5), c.param);
      bv = rounded(random_values(channels, 23, -1.0, 1.0), c.param);
    }
    ASSIGN_OR_FAIL(DeviceTensor w, upload(c.affine ? wv : std::vector<double>{0.0}, c.param,
                                          {c.affine ? channels : 1}));
    ASSIGN_OR_FAIL(DeviceTensor b, upload(c.affine ? bv : std::vector<double>{0.0}, c.param,
                                          {c.affine ? channels : 1}));
    const Shape stat_sizes = c.batch_stats ? Shape{channels} : Shape{batch, c.groups};
    ASSIGN_OR_FAIL(DeviceTensor mean, device_output(c.param, stat_sizes));
    ASSIGN_OR_FAIL(DeviceTensor rstd, device_output(c.param, stat_sizes));
    const ChannelParams params{c.affine ? &w.tensor : nullptr, c.affine ? &b.tensor : nullptr};
    const std::string kernel = group_norm_kernel(names_, c.dtype, c.param, c.param);
    if (c.batch_stats) {
      sync(launch_batch_norm_batch_stats(fn(kernel), x.tensor, params, &y.tensor, &mean.tensor,
                                         &rstd.tensor, c.eps, nullptr));
    } else {
      sync(launch_group_norm(fn(kernel), x.tensor, params, &y.tensor, &mean.tensor, &rstd.tensor,
                             c.groups, c.eps, nullptr));
    }
    const std::vector<double> xs = x.values();  // as uploaded (rounded), row-major
    const int64_t per_group = channels / c.groups;
    auto channel_of = [&](size_t i) {
      return plane == 0 ? int64_t{0} : static_cast<int64_t>(i) / plane % channels;
    };
    auto group_set = [&](size_t i) {
      return static_cast<int64_t>(i) / (plane * channels) * c.groups + channel_of(i) / per_group;
    };
    const Reference ref =
        c.batch_stats ? reference(xs, channels, channel_of, channel_of, wv, bv, c.eps, true)
                      : reference(xs, batch * c.groups, group_set, channel_of, wv, bv, c.eps);
    const double tol = c.dtype == DType::kFloat32 ? 1e-4 : tolerance(c.dtype);
    const double stat_tol = c.param == DType::kFloat32 ? 1e-4 : tolerance(c.param);
    const std::vector<double> out = y.read();
    expect_close(out, rounded(ref.out, c.dtype), tol, "out");
    expect_close(mean.read(), rounded(ref.mean, c.param), stat_tol, "mean");
    expect_close(rstd.read(), rounded(ref.rstd, c.param), stat_tol, "rstd");
    if (c.constant) {
      for (size_t i = 0; i < out.size(); ++i) {
        ASSERT_EQ(out[i], c.affine ? rounded({bv[channel_of(i)]}, c.dtype)[0] : 0.0)
            << "element " << i << " of a constant set is not exactly the bias";
      }
    }
  }

  ModuleSource names_;
};

TEST_F(GroupNormGpuTest, GroupNormInEveryDtype) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16, bf16 = DType::kBFloat16;
  run({"f32", f32, f32, {2, 6, 5, 7}, 3});
  run({"f16", f16, f16, {2, 8, 9, 9}, 4});
  run({"bf16", bf16, bf16, {3, 4, 6, 5}, 2});
  run({"f16 with f32 parameters", f16, f32, {2, 8, 4, 4}, 2});
  run({"bf16 with f32 parameters", bf16, f32, {2, 6, 3, 3}, 3});
  run({"a group per channel (instance norm)", f32, f32, {2, 5, 7, 3}, 5});
  run({"no spatial dims", f32, f32, {7, 12}, 4});
  run({"3-D input", f16, f16, {2, 6, 50}, 2});
  run({"5-D input", f32, f32, {2, 4, 3, 4, 5}, 2});
  run({"no weight or bias", f32, f32, {2, 6, 4, 4}, 3, {}, {}, false});
  run({"no weight or bias f16", f16, f16, {2, 6, 4, 4}, 2, {}, {}, false});
  run({"mean far from zero", f32, f32, {2, 4, 16, 16}, 2, {}, {}, true, 100.0});
}

TEST_F(GroupNormGpuTest, ConstantGroupsGiveExactlyTheBias) {
  run({"f32", DType::kFloat32, DType::kFloat32, {2, 6, 9, 9}, 3, {}, {}, true, 0.0, {}, true});
  run({"f16", DType::kFloat16, DType::kFloat16, {2, 4, 33, 33}, 2, {}, {}, true, 0.0, {}, true});
  run({"bf16 NHWC",
       DType::kBFloat16,
       DType::kBFloat16,
       {1, 8, 5, 5},
       4,
       {0, 2, 3, 1},
       {},
       true,
       0.0,
       {},
       true});
  run({"no affine",
       DType::kFloat32,
       DType::kFloat32,
       {2, 4, 40, 40},
       1,
       {},
       {},
       false,
       0.0,
       {},
       true});
}

TEST_F(GroupNormGpuTest, GroupsLargerThanABlock) {
  run({"16 channels of 32x32", DType::kFloat32, DType::kFloat32, {2, 64, 32, 32}, 4});
  run({"f16, one group of 256K",
       DType::kFloat16,
       DType::kFloat16,
       {1, 16, 128, 128},
       1,
       {},
       {},
       true,
       1.0});
  run({"odd sizes", DType::kFloat32, DType::kFloat32, {3, 9, 37, 41}, 3});
}

TEST_F(GroupNormGpuTest, StridedInputsAndOutputs) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16;
  const std::vector<int64_t> nhwc = {0, 2, 3, 1};
  run({"NHWC in, NCHW out", f16, f16, {2, 32, 8, 8}, 8, nhwc});
  run({"NHWC in and out", f16, f16, {2, 64, 7, 7}, 32, nhwc, nhwc});
  run({"NCHW in, NHWC out", f32, f32, {2, 12, 5, 6}, 3, {}, nhwc});
  run({"NHWC, large groups", f32, f32, {1, 32, 40, 40}, 2, nhwc});
  run({"batch innermost", f32, f32, {4, 6, 3, 5}, 2, {1, 2, 3, 0}, {3, 2, 1, 0}});
  run({"NHWC f16 with f32 parameters", f16, f32, {2, 16, 6, 6}, 4, nhwc, nhwc});
}

TEST_F(GroupNormGpuTest, InfAndNanMakeTheirGroupNan) {
  // Group 0 of sample 0 holds an inf, group 1 of sample 1 a NaN; the others stay finite.
  run({"f32",
       DType::kFloat32,
       DType::kFloat32,
       {2, 4, 3, 3},
       2,
       {},
       {},
       true,
       0.0,
       {{0, kInf}, {2 * 36 - 1, kNan}}});
  run({"f16 -inf first",
       DType::kFloat16,
       DType::kFloat16,
       {2, 4, 3, 3},
       2,
       {},
       {},
       true,
       0.0,
       {{0, -kInf}}});
}

TEST_F(GroupNormGpuTest, BatchStatistics) {
  const DType f32 = DType::kFloat32, f16 = DType::kFloat16;
  GroupCase c{"f32", f32, f32, {4, 6, 5, 5}, 1};
  c.batch_stats = true;
  run(c);
  c = {"f16 NHWC", f16, f16, {3, 8, 6, 6}, 1, {0, 2, 3, 1}};
  c.batch_stats = true;
  run(c);
  c = {"2-D, no affine", f32, f32, {64, 10}, 1, {}, {}, false};
  c.batch_stats = true;
  run(c);
  c = {"f16 with f32 parameters, large", f16, f32, {8, 4, 32, 32}, 1};
  c.batch_stats = true;
  run(c);
  c = {"constant", f32, f32, {2, 3, 4, 4}, 1, {}, {}, true, 0.0, {}, true};
  c.batch_stats = true;
  run(c);
  // Channel 0 holds a -inf (mean -inf, rstd NaN), channel 1 an inf and a -inf (NaN), channel 2
  // a NaN; channel 3 stays finite.
  c = {"non-finite channels", f32, f32, {2, 4, 3}, 1, {}, {}, true, 0.0,
       {{1, -kInf}, {3, kInf}, {5, -kInf}, {7, kNan}}};
  c.batch_stats = true;
  run(c);
}

TEST_F(GroupNormGpuTest, EmptyPlanesAndStatisticsAlone) {
  // Empty planes: no output elements, statistics mean 0 and rstd NaN, as the CPU reference.
  ASSIGN_OR_FAIL(DeviceTensor x, upload({0.0}, DType::kFloat32, {2, 4, 0}, {4, 1, 1}));
  ASSIGN_OR_FAIL(DeviceTensor mean, device_output(DType::kFloat32, {2, 2}));
  ASSIGN_OR_FAIL(DeviceTensor rstd, device_output(DType::kFloat32, {2, 2}));
  const std::string kernel =
      group_norm_kernel(names_, DType::kFloat32, DType::kFloat32, DType::kFloat32);
  sync(launch_group_norm(fn(kernel), x.tensor, {}, &x.tensor, &mean.tensor, &rstd.tensor, 2, 1e-5,
                         nullptr));
  for (double m : mean.read()) EXPECT_EQ(m, 0.0);
  for (double r : rstd.read()) EXPECT_TRUE(std::isnan(r)) << r;

  // Statistics alone: the input is not written over and nothing else is touched.
  const std::vector<double> values = random_values(2 * 6 * 10, 31);
  ASSIGN_OR_FAIL(DeviceTensor x2, upload(values, DType::kFloat32, {2, 6, 10}));
  ASSIGN_OR_FAIL(DeviceTensor mean2, device_output(DType::kFloat32, {2, 3}));
  sync(launch_group_norm(fn(kernel), x2.tensor, {}, nullptr, &mean2.tensor, nullptr, 3, 1e-5,
                         nullptr));
  expect_close(x2.read(), x2.values(), 0.0, "input");
  auto set_of = [](size_t i) { return static_cast<int64_t>(i) / 20; };
  auto channel_of = [](size_t i) { return static_cast<int64_t>(i) / 10 % 6; };
  expect_close(mean2.read(), reference(x2.values(), 6, set_of, channel_of, {}, {}, 1e-5).mean, 1e-5,
               "mean");
}

TEST_F(GroupNormGpuTest, InstanceNormWithRunningStatistics) {
  for (DType t : kFloatTypes) {
    SCOPED_TRACE(dtype_name(t));
    const Shape sizes = {2, 3, 5, 4};
    const std::vector<int64_t> nhwc = {0, 2, 3, 1};
    const Shape x_strides = strides_in_order(sizes, nhwc);
    const std::vector<double> values = random_values(shape_numel(sizes), 41);
    std::vector<double> storage(values.size());
    const auto offsets = view_offsets(sizes, x_strides);
    for (size_t i = 0; i < values.size(); ++i) storage[offsets[i]] = values[i];
    ASSIGN_OR_FAIL(DeviceTensor x, upload(storage, t, sizes, x_strides));
    ASSIGN_OR_FAIL(DeviceTensor y, device_output(t, sizes));
    const std::vector<double> rm = {0.5, -0.25, 0.0}, rv = {2.0, 0.5, 1.0}, wv = {1.0, 2.0, -1.0},
                              bv = {0.0, 0.5, 1.0};
    ASSIGN_OR_FAIL(DeviceTensor m, upload(rm, t, {3}));
    ASSIGN_OR_FAIL(DeviceTensor v, upload(rv, t, {3}));
    ASSIGN_OR_FAIL(DeviceTensor w, upload(wv, t, {3}));
    ASSIGN_OR_FAIL(DeviceTensor b, upload(bv, t, {3}));
    const std::string kernel = group_norm_kernel(names_, t, t, t);
    sync(launch_instance_norm_running(fn(kernel), x.tensor, {&w.tensor, &b.tensor}, m.tensor,
                                      v.tensor, y.tensor, 1e-5, nullptr));
    const std::vector<double> xs = x.values();
    std::vector<double> expected;
    for (size_t i = 0; i < xs.size(); ++i) {
      const int64_t c = static_cast<int64_t>(i) / 20 % 3;
      expected.push_back((xs[i] - m.storage[c]) / std::sqrt(v.storage[c] + 1e-5) * w.storage[c] +
                         b.storage[c]);
    }
    expect_close(y.read(), rounded(expected, t), t == DType::kFloat32 ? 1e-5 : tolerance(t), "out");
  }
}

}  // namespace
}  // namespace kiln::cuda
