// The grid_sample family without a GPU: its kernels compile with NVRTC for sm_90 and sm_80, names
// are deterministic, launches reject bad shapes before touching the GPU, and the family's verdict
// takes the node torch.export gives for F.grid_sample. The GPU half:
// kernel_library_grid_sample_gpu_test.cc.
#include "cuda/kernel_library_grid_sample.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/nvrtc_compiler.h"
#include "cuda/steps.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {


namespace {

TEST(GridSampleKernelTest, CompilesForSm90AndSm80) {
  ModuleSource module;
  std::vector<std::string> names;
  // Every mode and padding in fp32; the storage-type tap rounding of bicubic in fp16 and bf16.
  for (auto mode : {GridInterpolation::kBilinear, GridInterpolation::kNearest,
                    GridInterpolation::kBicubic}) {
    for (auto padding : {GridPadding::kZeros, GridPadding::kBorder, GridPadding::kReflection}) {
      names.push_back(grid_sample_kernel(module, mode, padding, DType::kFloat32));
    }
  }
  names.push_back(grid_sample_kernel(module, GridInterpolation::kBicubic, GridPadding::kReflection,
                                     DType::kFloat16));
  names.push_back(grid_sample_kernel(module, GridInterpolation::kBilinear, GridPadding::kZeros,
                                     DType::kBFloat16));
  for (const char* arch : {"sm_90", "sm_80"}) {
    auto compiled = compile_cuda_source(module.text(), arch, false);
    ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
    for (const std::string& name : names) {
      EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
    }
  }
  EXPECT_EQ(names[0], "kiln_grid_sample_bilinear_zeros_f32");
  ModuleSource again;
  EXPECT_EQ(grid_sample_kernel(again, GridInterpolation::kBicubic, GridPadding::kReflection,
                               DType::kFloat16),
            "kiln_grid_sample_bicubic_reflection_f16");
}

Tensor host(DType dtype, Shape sizes) { return Tensor::empty(dtype, std::move(sizes)).value(); }

void expect_invalid(const Status& status, std::string_view words) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << words << "'";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(words), std::string::npos) << status.to_string();
}

TEST(GridSampleKernelTest, LaunchValidates) {
  const DType f32 = DType::kFloat32;
  const Tensor in = host(f32, {2, 3, 5, 20}), grid = host(f32, {2, 13, 10, 2});
  expect_invalid(launch_grid_sample(nullptr, in, host(f32, {2, 13, 10, 3}),
                                    host(f32, {2, 3, 13, 10}), false, nullptr),
                 "grid [N, Ho, Wo, 2]");
  expect_invalid(launch_grid_sample(nullptr, in, host(f32, {1, 13, 10, 2}),
                                    host(f32, {1, 3, 13, 10}), false, nullptr),
                 "grid [N, Ho, Wo, 2]");
  expect_invalid(launch_grid_sample(nullptr, in, grid, host(f32, {2, 3, 10, 13}), false, nullptr),
                 "expected out [2, 3, 13, 10]");
  expect_invalid(launch_grid_sample(nullptr, in, host(DType::kFloat16, {2, 13, 10, 2}),
                                    host(f32, {2, 3, 13, 10}), false, nullptr),
                 "one float dtype");
  expect_invalid(launch_grid_sample(nullptr, host(f32, {2, 3, 0, 20}), grid,
                                    host(f32, {2, 3, 13, 10}), false, nullptr),
                 "non-empty input plane");
  expect_invalid(launch_grid_sample(nullptr, in, grid, host(f32, {2, 3, 13, 10}), true, nullptr),
                 "no kernel");
  // Nothing to sample: no kernel, no data needed.
  EXPECT_TRUE(launch_grid_sample(nullptr, in, host(f32, {2, 0, 10, 2}), host(f32, {2, 3, 0, 10}),
                                 false, nullptr)
                  .ok());
}

using passes::testing::ProgramBuilder;

// The node of F.grid_sample (any mode, padding and align_corners, fp32 / fp16 / bf16) is taken;
// float64, a grid of another dtype and a mode outside 0..2 are declined.
TEST(GridSampleStepTest, Verdicts) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2, 3, 5, 20});
  ir::Value* g = b.input("g", DType::kFloat32, {2, 13, 10, 2});
  ir::Value* xh = b.input("xh", DType::kFloat16, {1, 2, 4, 4});
  ir::Value* gh = b.input("gh", DType::kFloat16, {1, 3, 3, 2});
  ir::Value* xd = b.input("xd", DType::kFloat64, {1, 2, 4, 4});
  ir::Value* gd = b.input("gd", DType::kFloat64, {1, 3, 3, 2});
  const std::string op = "aten.grid_sampler_2d.default";
  b.output(b.node("bilinear", op, {x, g, int64_t{0}, int64_t{0}, false}));
  b.output(b.node("bicubic_reflect", op, {x, g, int64_t{2}, int64_t{2}, true}));
  b.output(b.node("nearest_border_f16", op, {xh, gh, int64_t{1}, int64_t{1}, false}));
  b.output(b.node("f64", op, {xd, gd, int64_t{0}, int64_t{0}, false}));
  std::shared_ptr<ir::Program> program = b.finish();
  const LibraryFamily& family = grid_sample_family();
  for (const ir::Node& node : program->graph.nodes()) {
    ASSERT_TRUE(family.takes(node.op));
    const convert::Verdict v = family.verdict(node);
    EXPECT_EQ(v.accepted(), node.name != "f64") << node.name << ": " << v.reason();
  }
  // A mode the kernels do not know.
  ir::Node bad = program->graph.nodes().front();
  bad.args[2] = int64_t{3};
  EXPECT_FALSE(family.verdict(bad).accepted());
  EXPECT_NE(family.verdict(bad).reason().find("interpolation_mode 3"), std::string::npos);
}

}  // namespace
}  // namespace kiln::cuda
