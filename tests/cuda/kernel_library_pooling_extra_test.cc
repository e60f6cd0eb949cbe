// The extra pooling family without a GPU: its kernels compile with NVRTC for sm_90 and sm_80 in
// every floating dtype, names and code are deterministic, launches reject bad shapes and windows
// before touching the GPU, and the six ops pass the CUDA verdict and plan as pool steps whose
// module compiles. The GPU half: kernel_library_pooling_extra_gpu_test.cc.
#include "cuda/kernel_library_pooling_extra.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/cuda_support.h"
#include "cuda/nvrtc_compiler.h"
#include "cuda/plan.h"
#include "cuda/steps.h"
#include "kernel_library_support.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

using namespace kltest;
using passes::testing::ProgramBuilder;

// Every kernel of the family for `dtype`; returns their names.
std::vector<std::string> add_pooling_extra(ModuleSource& module, DType dtype) {
  return {pool3d_kernel(module, PoolKind::kMax, dtype),
          pool3d_kernel(module, PoolKind::kAvg, dtype),
          adaptive_avg_pool3d_kernel(module, dtype),
          avg_pool_backward_kernel(module, dtype),
          max_pool_backward_kernel(module, dtype),
          adaptive_avg_pool_backward_kernel(module, dtype)};
}

TEST(PoolingExtraKernelLibraryTest, CompilesForSm90AndSm80InEveryFloatType) {
  ModuleSource module;
  std::vector<std::string> names;
  for (DType t : kFloatTypes) {
    for (const std::string& name : add_pooling_extra(module, t)) names.push_back(name);
  }
  EXPECT_EQ(names.size(), 18u);
  for (const char* arch : {"sm_90", "sm_80"}) {
    auto compiled = compile_cuda_source(module.text(), arch, false);
    ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
    for (const std::string& name : names) {
      EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
    }
  }
}

// Beside the 2-D pooling family (pool.cuh), as an engine's module holds both: no name clashes.
// (The whole library's module takes minutes to compile here; this pair is the likely clash.)
TEST(PoolingExtraKernelLibraryTest, CompilesBesideThe2dPoolingFamily) {
  ModuleSource module;
  pool2d_kernel(module, PoolKind::kMax, DType::kFloat16);
  max_pool2d_indices_kernel(module, DType::kFloat16);
  adaptive_avg_pool2d_kernel(module, DType::kFloat16);
  add_pooling_extra(module, DType::kFloat16);
  auto compiled = compile_cuda_source(module.text(), "sm_90", true);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
  EXPECT_NE(compiled->ptx.find(".entry kiln_max_pool_backward_f16"), std::string::npos);
  EXPECT_NE(compiled->ptx.find(".entry kiln_max_pool2d_indices_f16"), std::string::npos);
}

TEST(PoolingExtraKernelLibraryTest, NamesAndCodeAreDeterministic) {
  ModuleSource a, b;
  const std::vector<std::string> first = add_pooling_extra(a, DType::kBFloat16);
  const std::vector<std::string> second = add_pooling_extra(b, DType::kBFloat16);
  EXPECT_EQ(first, second);
  EXPECT_EQ(a.text(), b.text());
  EXPECT_EQ(first[0], "kiln_max_pool3d_bf16");
  // Adding them again adds nothing.
  const size_t pieces = a.size();
  add_pooling_extra(a, DType::kBFloat16);
  EXPECT_EQ(a.size(), pieces);
}

TEST(PoolingExtraKernelLibraryTest, PoolView5d) {
  const Tensor unbatched3d = Tensor::meta(DType::kFloat32, {2, 3, 4, 5});
  auto v = pool_view_5d(unbatched3d, 3);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->sizes(), (Shape{1, 2, 3, 4, 5}));
  EXPECT_EQ(v->strides()[1], 60);
  EXPECT_EQ(v->strides()[4], 1);

  const Tensor batched2d = Tensor::meta(DType::kFloat32, {2, 3, 4, 5});
  v = pool_view_5d(batched2d, 2);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->sizes(), (Shape{2, 3, 1, 4, 5}));
  EXPECT_EQ(v->strides()[0], 60);
  EXPECT_EQ(v->strides()[3], 5);

  v = pool_view_5d(Tensor::meta(DType::kFloat32, {3, 4, 5}), 2);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->sizes(), (Shape{1, 3, 1, 4, 5}));

  // A channels-last view keeps its strides.
  const Tensor nhwc = batched2d.view_as({2, 3, 4, 5}, {60, 1, 15, 3}, 0);
  v = pool_view_5d(nhwc, 2);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->strides()[1], 1);
  EXPECT_EQ(v->strides()[4], 3);

  EXPECT_FALSE(pool_view_5d(Tensor::meta(DType::kFloat32, {4, 5}), 2).has_value());
  EXPECT_FALSE(pool_view_5d(Tensor::meta(DType::kFloat32, {1, 2, 3, 4, 5, 6}), 3).has_value());
}

// Host tensors stand in for device ones: every call below must fail validation before it
// reaches the GPU (there is none here, and the kernel is null).
Tensor host(DType dtype, Shape sizes) {
  return Tensor::empty(dtype, std::move(sizes)).value();
}

void expect_invalid(const Status& status, std::string_view words) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << words << "'";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(words), std::string::npos) << status.to_string();
}

TEST(PoolingExtraKernelLibraryTest, LaunchesValidateBeforeTouchingTheGpu) {
  const DType f32 = DType::kFloat32;
  const Tensor x = host(f32, {1, 2, 4, 6, 6});
  Pool3dParams p;
  p.kernel[0] = p.kernel[1] = p.kernel[2] = 2;
  p.stride[0] = p.stride[1] = p.stride[2] = 2;
  const Tensor y = host(f32, {1, 2, 2, 3, 3});
  const Tensor idx = host(DType::kInt64, {1, 2, 2, 3, 3});

  expect_invalid(launch_pool3d(nullptr, host(f32, {2, 4, 6, 6}), y, nullptr, p, nullptr), "5-D");
  expect_invalid(launch_pool3d(nullptr, x, host(f32, {1, 3, 2, 3, 3}), nullptr, p, nullptr),
                 "expected output");
  expect_invalid(launch_pool3d(nullptr, x, host(DType::kFloat16, {1, 2, 2, 3, 3}), nullptr, p,
                               nullptr),
                 "expected output");
  expect_invalid(launch_pool3d(nullptr, host(DType::kFloat64, {1, 2, 4, 6, 6}),
                               host(DType::kFloat64, {1, 2, 2, 3, 3}), nullptr, p, nullptr),
                 "float32, float16 or bfloat16");
  expect_invalid(launch_pool3d(nullptr, x, host(f32, {1, 2, 2, 4, 3}), nullptr, p, nullptr),
                 "pooled size 3");
  const Tensor idx32 = host(DType::kInt32, {1, 2, 2, 3, 3});
  expect_invalid(launch_pool3d(nullptr, x, y, &idx32, p, nullptr), "int64 indices");
  expect_invalid(launch_pool3d(nullptr, x, y, &idx, p, nullptr), "no kernel");
  Pool3dParams bad = p;
  bad.padding[2] = 2;
  expect_invalid(launch_pool3d(nullptr, x, y, nullptr, bad, nullptr), "padding");
  bad = p;
  bad.stride[1] = 0;
  expect_invalid(launch_pool3d(nullptr, x, y, nullptr, bad, nullptr), "stride");
  bad = p;
  bad.divisor_override = -1;
  expect_invalid(launch_pool3d(nullptr, x, y, nullptr, bad, nullptr), "divisor_override");
  // ceil_mode's size is accepted too: 5 pooled by 2 gives 2 or 3.
  const Tensor odd = host(f32, {1, 2, 4, 6, 5});
  expect_invalid(launch_pool3d(nullptr, odd, y, nullptr, p, nullptr), "no kernel");
  expect_invalid(launch_pool3d(nullptr, odd, host(f32, {1, 2, 2, 3, 2}), nullptr, p, nullptr),
                 "no kernel");

  expect_invalid(launch_adaptive_avg_pool3d(nullptr, x, host(f32, {2, 2, 2, 2}), nullptr), "5-D");
  expect_invalid(launch_adaptive_avg_pool3d(nullptr, x, host(f32, {1, 2, 7, 1, 1}), nullptr),
                 "no kernel");
  expect_invalid(
      launch_adaptive_avg_pool3d(nullptr, host(f32, {1, 2, 0, 3, 3}), y, nullptr), "non-empty");

  expect_invalid(launch_avg_pool_backward(nullptr, y, host(f32, {1, 2, 4, 6}), p, nullptr), "5-D");
  expect_invalid(launch_avg_pool_backward(nullptr, host(f32, {1, 2, 2, 2, 3}), x, p, nullptr),
                 "pooled size 3");
  expect_invalid(launch_avg_pool_backward(nullptr, y, x, p, nullptr), "no kernel");
  expect_invalid(launch_max_pool_backward(nullptr, y, idx32, x, p, nullptr), "int64 indices");
  expect_invalid(launch_max_pool_backward(nullptr, y, host(DType::kInt64, {1, 2, 2, 3, 2}), x, p,
                                          nullptr),
                 "int64 indices");
  expect_invalid(launch_max_pool_backward(nullptr, y, idx, x, p, nullptr), "no kernel");
  expect_invalid(launch_adaptive_avg_pool_backward(nullptr, y, host(f32, {1, 3, 4, 6, 6}),
                                                   nullptr),
                 "grad_output");
  expect_invalid(launch_adaptive_avg_pool_backward(nullptr, y, x, nullptr), "no kernel");

  // Nothing to do: no kernel, no data needed.
  EXPECT_TRUE(launch_pool3d(nullptr, host(f32, {0, 2, 4, 6, 6}), host(f32, {0, 2, 2, 3, 3}),
                            nullptr, p, nullptr)
                  .ok());
  EXPECT_TRUE(launch_adaptive_avg_pool3d(nullptr, x, host(f32, {1, 2, 0, 3, 3}), nullptr).ok());
  EXPECT_TRUE(launch_adaptive_avg_pool_backward(nullptr, host(f32, {1, 0, 2, 2, 2}),
                                                host(f32, {1, 0, 4, 6, 6}), nullptr)
                  .ok());
}

// The six ops in one program, batched and unbatched, 3-D and 2-D: every node is taken, the plan
// makes one pool step per node (max_pool3d_with_indices writing both its outputs), and the
// module compiles.
TEST(PoolingExtraKernelLibraryTest, NodesPlanAsPoolSteps) {
  ProgramBuilder b;
  ir::Value* volume = b.input("volume", DType::kFloat16, {2, 3, 5, 6, 7});
  ir::Value* unbatched = b.input("unbatched", DType::kFloat16, {3, 5, 6, 7});
  ir::Value* image = b.input("image", DType::kFloat16, {2, 3, 8, 9});
  const auto ints = ProgramBuilder::ints;
  ir::Value* avg3 = b.node("avg3", "aten.avg_pool3d.default",
                           {volume, ints({3}), ints({2}), ints({1}), true, false, int64_t{5}});
  std::vector<ir::Value*> max3 =
      b.node_outputs("max3", "aten.max_pool3d_with_indices.default",
                     {unbatched, ints({2, 3, 2}), ints({}), ints({1, 1, 0}), ints({1, 1, 2}),
                      false});
  ir::Value* adaptive3 =
      b.node("adaptive3", "aten._adaptive_avg_pool3d.default", {volume, ints({2, 4, 3})});
  std::vector<ir::Value*> max2 = b.node_outputs(
      "max2", "aten.max_pool2d_with_indices.default",
      {image, ints({3, 2}), ints({2, 2}), ints({1, 0}), ints({1, 1}), true});
  ir::Value* grad = b.input("grad", DType::kFloat16, {2, 3, 5, 5});
  ir::Value* max2_back =
      b.node("max2_back", "aten.max_pool2d_with_indices_backward.default",
             {grad, image, ints({3, 2}), ints({2, 2}), ints({1, 0}), ints({1, 1}), true, max2[1]});
  ir::Value* avg_grad = b.input("avg_grad", DType::kFloat16, {2, 3, 4, 4});
  ir::Value* avg2_back =
      b.node("avg2_back", "aten.avg_pool2d_backward.default",
             {avg_grad, image, ints({2}), ints({}), ints({0}), false, true, ir::NoneArg{}});
  ir::Value* adaptive_grad = b.input("adaptive_grad", DType::kFloat16, {2, 3, 3, 5});
  ir::Value* adaptive2_back = b.node("adaptive2_back", "aten._adaptive_avg_pool2d_backward.default",
                                     {adaptive_grad, image});
  for (ir::Value* v : {avg3, max3[0], max3[1], adaptive3, max2_back, avg2_back, adaptive2_back}) {
    b.output(v);
  }
  std::shared_ptr<ir::Program> program = b.finish();
  EXPECT_EQ(avg3->shape.size(), 5u);
  EXPECT_EQ(max3[1]->dtype, DType::kInt64);
  for (const ir::Node& node : program->graph.nodes()) {
    const convert::Verdict verdict = cuda_verdict(node);
    EXPECT_TRUE(verdict.accepted()) << node.name << ": " << verdict.reason();
  }
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(*program, {}, options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  int pools = 0;
  for (const auto& step : plan->steps) {
    if (step->kind() != "pool") continue;
    ++pools;
    if (step->name == "max3") {
      EXPECT_EQ(step->writes, (std::vector<uint32_t>{max3[0]->id, max3[1]->id}));
    }
  }
  EXPECT_EQ(pools, 7) << plan->summary();
  for (const char* name : {"kiln_avg_pool3d_f16", "kiln_max_pool3d_f16",
                           "kiln_adaptive_avg_pool3d_f16", "kiln_max_pool_backward_f16",
                           "kiln_avg_pool_backward_f16", "kiln_adaptive_avg_pool_backward_f16"}) {
    EXPECT_NE(plan->module.text().find(name), std::string::npos) << name;
  }
  auto compiled = compile_cuda_source(plan->module.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
}

TEST(PoolingExtraKernelLibraryTest, VerdictsDeclineWithAReason) {
  ProgramBuilder b;
  const auto ints = ProgramBuilder::ints;
  ir::Value* ints64 = b.input("ints64", DType::kInt64, {1, 2, 4, 4, 4});
  ir::Value* doubles = b.input("doubles", DType::kFloat64, {1, 2, 4, 4, 4});
  b.output(b.node("int_avg", "aten.avg_pool3d.default", {ints64, ints({2})}));
  b.output(b.node("double_avg", "aten.avg_pool3d.default", {doubles, ints({2})}));
  std::shared_ptr<ir::Program> program = b.finish();
  for (const ir::Node& node : program->graph.nodes()) {
    const convert::Verdict verdict = cuda_verdict(node);
    EXPECT_FALSE(verdict.accepted()) << node.name;
    EXPECT_FALSE(verdict.reason().empty()) << node.name;
  }
  EXPECT_TRUE(pooling_extra_family().takes(ir::OpKey::aten_avg_pool3d_default));
  EXPECT_TRUE(pooling_extra_family().takes(ir::OpKey::aten__adaptive_avg_pool2d_backward_default));
  EXPECT_FALSE(pooling_extra_family().takes(ir::OpKey::aten_max_pool2d_with_indices_default));
}

}  // namespace
}  // namespace kiln::cuda
