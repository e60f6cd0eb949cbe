// The resample family (upsample, col2im, cdist, pdist) without a GPU: its kernels compile with
// NVRTC for sm_90 and sm_80, names and code are deterministic, launches reject bad shapes before
// touching the GPU, the distance form follows eager's rule, and the family's verdicts and steps
// take the nodes torch.export gives for F.interpolate, torch.cdist and F.pdist. The GPU half:
// kernel_library_resample_gpu_test.cc.
#include "cuda/kernel_library_resample.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "cuda/cuda_support.h"
#include "cuda/nvrtc_compiler.h"
#include "cuda/plan.h"
#include "cuda/steps.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};
constexpr UpsampleMode kModes[] = {UpsampleMode::kNearest, UpsampleMode::kNearestExact,
                                   UpsampleMode::kLinear};
constexpr DistanceNorm kNorms[] = {DistanceNorm::kZero, DistanceNorm::kOne,
                                   DistanceNorm::kTwo,  DistanceNorm::kInf,
                                   DistanceNorm::kP,    DistanceNorm::kTwoByProduct};

// Every kernel of the family, for every dtype it takes; returns the entry names.
std::vector<std::string> add_resample_family(ModuleSource& module) {
  std::vector<std::string> names;
  for (DType t : kFloatTypes) {
    for (UpsampleMode mode : kModes) {
      for (int dims : {1, 2}) names.push_back(upsample_kernel(module, mode, dims, t));
    }
    names.push_back(col2im_kernel(module, t));
    for (DistanceNorm norm : kNorms) {
      names.push_back(cdist_kernel(module, t, norm));
      names.push_back(pdist_kernel(module, t, norm));
    }
  }
  for (UpsampleMode mode : {UpsampleMode::kNearest, UpsampleMode::kNearestExact}) {
    for (int dims : {1, 2}) names.push_back(upsample_kernel(module, mode, dims, DType::kUInt8));
  }
  return names;
}

TEST(ResampleKernelTest, CompilesForSm90AndSm80) {
  ModuleSource module;
  const std::vector<std::string> names = add_resample_family(module);
  for (const char* arch : {"sm_90", "sm_80"}) {
    auto compiled = compile_cuda_source(module.text(), arch, false);
    ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
    for (const std::string& name : names) {
      EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
    }
  }
}

TEST(ResampleKernelTest, NamesAndCodeAreDeterministic) {
  ModuleSource a, b;
  const std::vector<std::string> names_a = add_resample_family(a);
  const std::vector<std::string> names_b = add_resample_family(b);
  EXPECT_EQ(names_a, names_b);
  EXPECT_EQ(a.text(), b.text());
  // pdist has no product form: it shares the direct p = 2 kernel.
  EXPECT_EQ(pdist_kernel(a, DType::kFloat32, DistanceNorm::kTwoByProduct),
            pdist_kernel(a, DType::kFloat32, DistanceNorm::kTwo));
  // Everything else has a name of its own.
  std::vector<std::string> distinct = names_a;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  EXPECT_EQ(distinct.size(), names_a.size() - 3);  // the pdist product aliases, one per dtype
  EXPECT_EQ(upsample_kernel(a, UpsampleMode::kLinear, 2, DType::kFloat16),
            "kiln_upsample_linear_2d_f16");
  EXPECT_EQ(cdist_kernel(a, DType::kFloat32, DistanceNorm::kTwoByProduct), "kiln_cdist_p2mm_f32");
}

TEST(ResampleKernelTest, DistanceFormFollowsEagersRule) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(distance_norm(0.0), DistanceNorm::kZero);
  EXPECT_EQ(distance_norm(1.0), DistanceNorm::kOne);
  EXPECT_EQ(distance_norm(2.0), DistanceNorm::kTwo);
  EXPECT_EQ(distance_norm(kInf), DistanceNorm::kInf);
  EXPECT_EQ(distance_norm(3.0), DistanceNorm::kP);
  EXPECT_EQ(distance_norm(0.5), DistanceNorm::kP);
  // p = 2: the product when compute_mode is 1, or 0 with more than 25 rows on a side.
  EXPECT_EQ(cdist_norm(2.0, 0, 25, 25), DistanceNorm::kTwo);
  EXPECT_EQ(cdist_norm(2.0, 0, 26, 3), DistanceNorm::kTwoByProduct);
  EXPECT_EQ(cdist_norm(2.0, 0, 3, 26), DistanceNorm::kTwoByProduct);
  EXPECT_EQ(cdist_norm(2.0, 1, 2, 2), DistanceNorm::kTwoByProduct);
  EXPECT_EQ(cdist_norm(2.0, 2, 100, 100), DistanceNorm::kTwo);
  EXPECT_EQ(cdist_norm(1.0, 1, 100, 100), DistanceNorm::kOne);
  EXPECT_EQ(cdist_norm(kInf, 0, 100, 100), DistanceNorm::kInf);
}

// Host tensors stand in for device ones: every call below must fail validation before it
// reaches the GPU (there is none here, and the kernel is null).
Tensor host(DType dtype, Shape sizes) { return Tensor::empty(dtype, std::move(sizes)).value(); }

void expect_invalid(const Status& status, std::string_view words) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << words << "'";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(words), std::string::npos) << status.to_string();
}

TEST(ResampleKernelTest, UpsampleLaunchValidates) {
  const DType f32 = DType::kFloat32;
  UpsampleParams nearest, linear;
  linear.mode = UpsampleMode::kLinear;
  const Tensor image = host(f32, {1, 2, 4, 4});
  expect_invalid(launch_upsample(nullptr, host(f32, {2, 4}), host(f32, {2, 8}), nearest, nullptr),
                 "[N, C, W] or [N, C, H, W]");
  expect_invalid(launch_upsample(nullptr, image, host(f32, {1, 2, 8}), nearest, nullptr),
                 "one rank");
  expect_invalid(launch_upsample(nullptr, image, host(f32, {1, 3, 8, 8}), nearest, nullptr),
                 "N, C and dtype");
  expect_invalid(
      launch_upsample(nullptr, image, host(DType::kFloat16, {1, 2, 8, 8}), nearest, nullptr),
      "N, C and dtype");
  const Tensor bytes = host(DType::kUInt8, {1, 2, 4, 4});
  expect_invalid(launch_upsample(nullptr, bytes, host(DType::kUInt8, {1, 2, 8, 8}), linear,
                                 nullptr),
                 "float input");
  const Tensor ints = host(DType::kInt32, {1, 2, 4});
  expect_invalid(
      launch_upsample(nullptr, ints, host(DType::kInt32, {1, 2, 8}), nearest, nullptr),
      "float or uint8");
  expect_invalid(
      launch_upsample(nullptr, host(f32, {1, 2, 0, 4}), host(f32, {1, 2, 3, 8}), linear, nullptr),
      "non-empty input plane");
  expect_invalid(launch_upsample(nullptr, image, host(f32, {1, 2, 8, 8}), linear, nullptr),
                 "no kernel");
  // Nothing to do: no kernel, no data needed (an empty batch, as eager allows).
  EXPECT_TRUE(
      launch_upsample(nullptr, host(f32, {0, 2, 4, 4}), host(f32, {0, 2, 8, 8}), linear, nullptr)
          .ok());
  EXPECT_TRUE(launch_upsample(nullptr, bytes, host(DType::kUInt8, {1, 2, 0, 3}), nearest, nullptr)
                  .ok());
}

TEST(ResampleKernelTest, Col2imLaunchValidates) {
  const DType f32 = DType::kFloat32;
  Col2imParams p;
  p.kernel[0] = p.kernel[1] = 2;
  // out [1, 3, 4, 5], kernel 2x2, stride 1: L = 3 * 4 = 12, rows 3 * 4 = 12.
  const Tensor out = host(f32, {1, 3, 4, 5});
  expect_invalid(launch_col2im(nullptr, host(f32, {1, 12, 11}), out, p, nullptr),
                 "expected columns [1, 12, 12]");
  expect_invalid(launch_col2im(nullptr, host(f32, {1, 11, 12}), out, p, nullptr),
                 "expected columns");
  expect_invalid(launch_col2im(nullptr, host(f32, {12, 12}), out, p, nullptr), "[C*kh*kw, L]");
  expect_invalid(launch_col2im(nullptr, host(DType::kInt64, {1, 12, 12}),
                               host(DType::kInt64, {1, 3, 4, 5}), p, nullptr),
                 "float");
  Col2imParams zero_stride = p;
  zero_stride.stride[1] = 0;
  expect_invalid(launch_col2im(nullptr, host(f32, {1, 12, 12}), out, zero_stride, nullptr),
                 "stride >= 1");
  expect_invalid(launch_col2im(nullptr, host(f32, {1, 12, 12}), out, p, nullptr), "no kernel");
  // Unbatched: [C*kh*kw, L] -> [C, H, W]; dilated and padded: (4 + 2 - 3) / 2 + 1 = 2 per dim.
  Col2imParams wide = p;
  wide.dilation[0] = wide.dilation[1] = 2;
  wide.padding[0] = wide.padding[1] = 1;
  wide.stride[0] = wide.stride[1] = 2;
  expect_invalid(launch_col2im(nullptr, host(f32, {12, 4}), host(f32, {3, 4, 4}), wide, nullptr),
                 "no kernel");
  expect_invalid(launch_col2im(nullptr, host(f32, {12, 5}), host(f32, {3, 4, 4}), wide, nullptr),
                 "expected columns");
  EXPECT_TRUE(launch_col2im(nullptr, host(f32, {0, 12, 12}), host(f32, {0, 3, 4, 5}), p, nullptr)
                  .ok());
}

TEST(ResampleKernelTest, DistanceLaunchesValidate) {
  const DType f32 = DType::kFloat32;
  const Tensor a = host(f32, {2, 3, 5}), b = host(f32, {1, 4, 5});
  expect_invalid(launch_cdist(nullptr, a, host(f32, {2, 4, 6}), host(f32, {2, 3, 4}), 2.0, nullptr),
                 "[*, R, M]");
  expect_invalid(launch_cdist(nullptr, a, b, host(f32, {2, 4, 3}), 2.0, nullptr),
                 "expected an output");
  expect_invalid(launch_cdist(nullptr, a, host(f32, {3, 4, 5}), host(f32, {3, 3, 4}), 2.0, nullptr),
                 "expected an output");
  expect_invalid(launch_cdist(nullptr, a, b, host(DType::kFloat16, {2, 3, 4}), 2.0, nullptr),
                 "expected an output");
  expect_invalid(launch_cdist(nullptr, a, b, host(f32, {2, 3, 4}), -1.0, nullptr), "p >= 0");
  expect_invalid(launch_cdist(nullptr, host(DType::kInt64, {3, 5}), host(DType::kInt64, {4, 5}),
                              host(DType::kInt64, {3, 4}), 2.0, nullptr),
                 "float");
  expect_invalid(launch_cdist(nullptr, a, b, host(f32, {2, 3, 4}), 2.0, nullptr), "no kernel");
  // Batch dims broadcast from either side, and the output may have more of them.
  expect_invalid(launch_cdist(nullptr, host(f32, {3, 5}), b, host(f32, {7, 3, 4}), 1.0, nullptr),
                 "no kernel");
  EXPECT_TRUE(launch_cdist(nullptr, host(f32, {2, 0, 5}), b, host(f32, {2, 0, 4}), 2.0, nullptr)
                  .ok());

  expect_invalid(launch_pdist(nullptr, host(f32, {4, 3, 1}), host(f32, {6}), 2.0, nullptr),
                 "2-D input");
  expect_invalid(launch_pdist(nullptr, host(f32, {4, 3}), host(f32, {5}), 2.0, nullptr),
                 "expected an output [6]");
  expect_invalid(launch_pdist(nullptr, host(f32, {4, 3}), host(f32, {6}), std::nan(""), nullptr),
                 "p >= 0");
  expect_invalid(launch_pdist(nullptr, host(f32, {4, 3}), host(f32, {6}), 2.0, nullptr),
                 "no kernel");
  EXPECT_TRUE(launch_pdist(nullptr, host(f32, {1, 3}), host(f32, {0}), 2.0, nullptr).ok());
}

// --- verdicts and steps -------------------------------------------------------------------------

using passes::testing::ProgramBuilder;

ir::Argument floats(std::vector<double> v) { return v; }

// The nodes torch.export gives F.interpolate (nearest and bilinear, size and scale_factor),
// nn.Upsample, torch.cdist (small and > 25 rows) and F.pdist: accepted by the CUDA backend and
// planned as resample / distance steps whose module compiles.
TEST(ResampleStepTest, ExportedNodesPlanAsLibrarySteps) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2, 3, 5, 7});
  ir::Value* rows = b.input("rows", DType::kFloat32, {2, 30, 8});
  ir::Value* few = b.input("few", DType::kFloat32, {1, 4, 8});
  ir::Value* points = b.input("points", DType::kFloat32, {6, 8});
  const ir::Argument none = ir::NoneArg{};
  std::vector<ir::Value*> outs = {
      b.node("nearest_x2", "aten.upsample_nearest2d.vec", {x, none, floats({2.0, 2.0})}),
      b.node("nearest_size", "aten.upsample_nearest2d.vec", {x, ProgramBuilder::ints({4, 9}), none}),
      b.node("nearest_default", "aten.upsample_nearest2d.default",
             {x, ProgramBuilder::ints({8, 8}), 1.6, none}),
      b.node("bilinear", "aten.upsample_bilinear2d.vec",
             {x, ProgramBuilder::ints({9, 11}), false, none}),
      b.node("bilinear_corners", "aten.upsample_bilinear2d.vec",
             {x, none, true, floats({1.5, 0.5})}),
      b.node("linear1d", "aten.upsample_linear1d.vec", {rows, none, false, floats({2.5})}),
      b.node("exact", "aten._upsample_nearest_exact2d.vec", {x, none, floats({3.0, 1.25})}),
      b.node("cdist_mm", "aten._cdist_forward.default", {rows, few, 2.0, none}),
      b.node("cdist_inf", "aten._cdist_forward.default",
             {few, few, std::numeric_limits<double>::infinity(), none}),
      b.node("pdist", "aten._pdist_forward.default", {points, 3.0}),
  };
  for (ir::Value* v : outs) b.output(v);
  std::shared_ptr<ir::Program> program = b.finish();
  for (const ir::Node& node : program->graph.nodes()) {
    EXPECT_EQ(library_family(node.op), &resample_family()) << node.name;
    const convert::Verdict verdict = cuda_verdict(node);
    EXPECT_TRUE(verdict.accepted()) << node.name << ": " << verdict.reason();
  }
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(*program, {}, options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  std::vector<std::string> kinds;
  for (const auto& step : plan->steps) kinds.emplace_back(step->kind());
  EXPECT_EQ(kinds, (std::vector<std::string>{"resample", "resample", "resample", "resample",
                                             "resample", "resample", "resample", "distance",
                                             "distance", "distance"}))
      << plan->summary();
  const std::string text = plan->module.text();
  for (const char* name : {"kiln_upsample_nearest_2d_f32", "kiln_upsample_linear_2d_f32",
                           "kiln_upsample_linear_1d_f32", "kiln_upsample_nearest_exact_2d_f32",
                           "kiln_cdist_p2mm_f32", "kiln_cdist_pinf_f32", "kiln_pdist_p_f32"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
  auto compiled = compile_cuda_source(text, "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
}

// What the family leaves to PyTorch, with its reasons.
TEST(ResampleStepTest, VerdictsSayWhy) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {1, 2, 4, 4});
  ir::Value* x64 = b.input("x64", DType::kFloat64, {1, 2, 4, 4});
  ir::Value* rows = b.input("rows", DType::kFloat32, {3, 4});
  ir::Value* cols = b.input("cols", DType::kFloat32, {1, 8, 9});
  const ir::Argument none = ir::NoneArg{};
  b.output(b.node("double", "aten.upsample_bilinear2d.vec",
                  {x64, ProgramBuilder::ints({8, 8}), false, none}));
  b.output(b.node("fine", "aten.upsample_bilinear2d.vec",
                  {x, ProgramBuilder::ints({8, 8}), false, none}));
  b.output(b.node("pdist", "aten._pdist_forward.default", {rows, 2.0}));
  // col2im: no shape inference in kiln yet (torch.export's default decompositions lower F.fold).
  b.output(b.node("fold", "aten.col2im.default",
                  {cols, ProgramBuilder::ints({4, 4}), ProgramBuilder::ints({2, 2}),
                   ProgramBuilder::ints({1, 1}), ProgramBuilder::ints({0, 0}),
                   ProgramBuilder::ints({1, 1})}));
  std::shared_ptr<ir::Program> program = b.finish();
  const ir::Node* dbl = passes::testing::find_node(program->graph, "double");
  const ir::Node* fine = passes::testing::find_node(program->graph, "fine");
  const ir::Node* pdist = passes::testing::find_node(program->graph, "pdist");
  const ir::Node* fold = passes::testing::find_node(program->graph, "fold");
  ASSERT_TRUE(dbl && fine && pdist && fold);
  EXPECT_NE(cuda_verdict(*dbl).reason().find("float64"), std::string::npos)
      << cuda_verdict(*dbl).reason();
  EXPECT_TRUE(cuda_verdict(*fine).accepted()) << cuda_verdict(*fine).reason();
  EXPECT_TRUE(cuda_verdict(*pdist).accepted()) << cuda_verdict(*pdist).reason();
  // The family itself takes col2im with constant window arguments.
  EXPECT_TRUE(resample_family().verdict(*fold).accepted())
      << resample_family().verdict(*fold).reason();

  // Arguments known only at run time, and dtypes the kernels lack, are refused with a reason.
  ir::Node copy = *fine;
  copy.args[2] = ir::Argument(ir::NoneArg{});
  EXPECT_NE(resample_family().verdict(copy).reason().find("align_corners"), std::string::npos);
  ir::Node p_copy = *pdist;
  p_copy.args[1] = ir::Argument(ir::NoneArg{});
  EXPECT_NE(resample_family().verdict(p_copy).reason().find("p known only at run time"),
            std::string::npos);
  ir::Node fold_copy = *fold;
  fold_copy.args[5] = ProgramBuilder::ints({1});
  EXPECT_NE(resample_family().verdict(fold_copy).reason().find("2 constants"), std::string::npos);
}

}  // namespace
}  // namespace kiln::cuda
