// Edge cases the GPU conformance run found in the CUDA backend, checked where no GPU is needed:
// what cuda_verdict takes or leaves to PyTorch, and engines built for sm_90 (planning and NVRTC
// compilation of every generated kernel) for the cases it takes. tests/gpu/test_cuda_edge_cases.py
// runs the same cases on the GPU against eager.
#include <gtest/gtest.h>

#include "builder/builder.h"
#include "builder/profiles.h"
#include "cuda/kernel_library_conv_direct.h"
#include "cuda/cuda_support.h"
#include "cuda/plan.h"
#include "ir/verifier.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

using passes::testing::ProgramBuilder;

const ir::Node& only_node(const ir::Program& program) {
  EXPECT_EQ(program.graph.nodes().size(), 1u);
  return program.graph.nodes().front();
}

// Builds an sm_90 engine for `program` (no GPU needed): planning and NVRTC both run.
Status build_sm90(std::shared_ptr<ir::Program> program) {
  builder::BuildRequest request;
  request.program = program;
  request.name = "edge";
  request.settings.target = format::Target{"cuda", "sm_90"};
  auto profiles = builder::resolve_symbol_profiles(*program, {});
  if (!profiles.ok()) return profiles.status();
  request.profiles = *profiles;
  auto engine = builder::build_engine(std::move(request));
  return engine.ok() ? ok_status() : engine.status();
}

// The summary of the CUDA plan of `program`, or the planning error.
std::string plan_summary(const ir::Program& program) {
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(program, {}, options);
  return plan.ok() ? plan->summary() : plan.status().to_string();
}

// One reduction of a 0-d input, as PyTorch's cosine_similarity decomposition writes them.
std::shared_ptr<ir::Program> scalar_reduction(const std::string& target, DType dtype,
                                              std::vector<ir::Argument> rest) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", dtype, {});
  std::vector<ir::Argument> args = {x};
  for (ir::Argument& a : rest) args.push_back(std::move(a));
  b.output(b.node("r", target, std::move(args)));
  return b.finish();
}

TEST(CudaEdgeCaseTest, ZeroDimReductionsBuild) {
  for (DType dtype : {DType::kFloat32, DType::kFloat16}) {
    const std::vector<std::shared_ptr<ir::Program>> programs = {
        scalar_reduction("aten.sum.dim_IntList", dtype, {ProgramBuilder::ints({0})}),
        scalar_reduction("aten.mean.dim", dtype, {ProgramBuilder::ints({0}), true}),
        scalar_reduction("aten.prod.dim_int", dtype, {int64_t{0}}),
        scalar_reduction("aten.any.dim", dtype, {int64_t{-1}}),
    };
    for (const auto& program : programs) {
      const std::string name(ir::op_name(only_node(*program).op));
      EXPECT_TRUE(cuda_verdict(only_node(*program)).accepted()) << name;
      EXPECT_NE(plan_summary(*program).find("reduce"), std::string::npos)
          << name << ": " << plan_summary(*program);
      Status built = build_sm90(program);
      EXPECT_TRUE(built.ok()) << name << " " << dtype_name(dtype) << ": " << built.to_string();
    }
  }
}

TEST(CudaEdgeCaseTest, IndexSelectOfAZeroDimInputBuilds) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {});
  ir::Value* i = b.input("i", DType::kInt64, {1});
  b.output(b.node("sel", "aten.index_select.default", {x, int64_t{0}, i}));
  auto program = b.finish();
  EXPECT_TRUE(cuda_verdict(only_node(*program)).accepted());
  Status built = build_sm90(program);
  EXPECT_TRUE(built.ok()) << built.to_string();
}

std::shared_ptr<ir::Program> addmm(const Shape& bias, const Shape& a, const Shape& b_shape,
                                   double beta, double alpha) {
  ProgramBuilder b;
  ir::Value* c = b.input("c", DType::kFloat32, bias);
  ir::Value* x = b.input("a", DType::kFloat32, a);
  ir::Value* y = b.input("b", DType::kFloat32, b_shape);
  b.output(b.node("addmm", "aten.addmm.default", {c, x, y, beta, alpha}));
  return b.finish();
}

TEST(CudaEdgeCaseTest, AddmmTakesEveryBroadcastInputAndAnEmptyInnerDim) {
  // 0-d, [M, 1], [1, N], [N] under beta != 1, [1]: broadcast into D and read as C.
  for (const Shape& bias : {Shape{}, Shape{2, 1}, Shape{1, 3}, Shape{3}, Shape{1}, Shape{2, 3}}) {
    auto program = addmm(bias, {2, 2}, {2, 3}, 0.2, 0.6);
    EXPECT_TRUE(cuda_verdict(only_node(*program)).accepted()) << shape_to_string(bias);
    Status built = build_sm90(program);
    EXPECT_TRUE(built.ok()) << shape_to_string(bias) << ": " << built.to_string();
  }
  // K = 0: a zero column times a zero row from scratch (the GEMM step plans m + n elements).
  auto k0 = addmm({5, 10}, {5, 0}, {0, 10}, 0.2, 0.6);
  EXPECT_TRUE(cuda_verdict(only_node(*k0)).accepted());
  Status built = build_sm90(k0);
  EXPECT_TRUE(built.ok()) << built.to_string();
}

TEST(CudaEdgeCaseTest, VectorFormsOfMatmulAndLinearBuild) {
  // dot, matrix-vector, vector-matrix and a linear of one row run as GEMMs.
  const std::pair<Shape, Shape> forms[] = {
      {{20}, {20}}, {{5, 10}, {10}}, {{3}, {3, 4}}, {{0, 4}, {4}}};
  for (const auto& [a_shape, b_shape] : forms) {
    ProgramBuilder b;
    ir::Value* a = b.input("a", DType::kFloat16, a_shape);
    ir::Value* w = b.input("b", DType::kFloat16, b_shape);
    b.output(b.node("mm", "aten.matmul.default", {a, w}));
    auto program = b.finish();
    const std::string what = shape_to_string(a_shape) + " x " + shape_to_string(b_shape);
    const convert::Verdict verdict = cuda_verdict(only_node(*program));
    EXPECT_TRUE(verdict.accepted()) << what << ": " << verdict.reason();
    Status built = build_sm90(program);
    EXPECT_TRUE(built.ok()) << what << ": " << built.to_string();
  }
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {3});
  ir::Value* w = b.input("w", DType::kFloat32, {4, 3});
  ir::Value* bias = b.input("bias", DType::kFloat32, {4});
  b.output(b.node("fc", "aten.linear.default", {x, w, bias}));
  auto linear = b.finish();
  EXPECT_TRUE(cuda_verdict(only_node(*linear)).accepted());
  Status built = build_sm90(linear);
  EXPECT_TRUE(built.ok()) << built.to_string();
  // A vector against a batch of matrices stays with PyTorch.
  ProgramBuilder v;
  ir::Value* vec = v.input("v", DType::kFloat32, {3});
  ir::Value* batch = v.input("m", DType::kFloat32, {2, 3, 4});
  v.output(v.node("mm", "aten.matmul.default", {vec, batch}));
  const convert::Verdict verdict = cuda_verdict(only_node(*v.finish()));
  EXPECT_FALSE(verdict.accepted());
  EXPECT_NE(verdict.reason().find("batch of matrices"), std::string::npos) << verdict.reason();
}

TEST(CudaEdgeCaseTest, UnbatchedConv2dRunsAsABatchOfOne) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {3, 4, 4});
  ir::Value* w = b.input("w", DType::kFloat32, {3, 3, 3, 3});
  ir::Value* bias = b.input("bias", DType::kFloat32, {3});
  b.output(b.node("conv", "aten.conv2d.default",
                  {x, w, bias, ProgramBuilder::ints({2, 2}), ProgramBuilder::ints({2, 2})}));
  auto program = b.finish();
  EXPECT_TRUE(cuda_verdict(only_node(*program)).accepted());
  Status built = build_sm90(program);
  EXPECT_TRUE(built.ok()) << built.to_string();
}

TEST(CudaEdgeCaseTest, TransposedConvWithOutputPaddingRunsWhereCudnnHasNoEngine) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {1, 3, 4});
  ir::Value* w = b.input("w", DType::kFloat32, {3, 3, 3});
  ir::Value* bias = b.input("bias", DType::kFloat32, {3});
  b.output(b.node("convt", "aten.convolution.default",
                  {x, w, bias, ProgramBuilder::ints({2}), ProgramBuilder::ints({2}),
                   ProgramBuilder::ints({1}), true, ProgramBuilder::ints({1}), int64_t{1}}));
  auto program = b.finish();
  // cuDNN has no engine for a 1-D float32 one: kiln's direct kernel takes it.
  EXPECT_TRUE(needs_direct_conv(only_node(*program)));
  const convert::Verdict verdict = cuda_verdict(only_node(*program));
  EXPECT_TRUE(verdict.accepted()) << verdict.reason();
  // 2-D float16 ones have cuDNN engines (a decoder's k=3, s=2, p=1, output_padding=1 ran on the
  // H100).
  ProgramBuilder h;
  ir::Value* hx = h.input("x", DType::kFloat16, {1, 3, 4, 4});
  ir::Value* hw = h.input("w", DType::kFloat16, {3, 3, 3, 3});
  ir::Value* hb = h.input("bias", DType::kFloat16, {3});
  h.output(h.node("convt", "aten.convolution.default",
                  {hx, hw, hb, ProgramBuilder::ints({2, 2}), ProgramBuilder::ints({1, 1}),
                   ProgramBuilder::ints({1, 1}), true, ProgramBuilder::ints({1, 1}), int64_t{1}}));
  auto half = h.finish();
  EXPECT_TRUE(cuda_verdict(only_node(*half)).accepted());
  EXPECT_FALSE(needs_direct_conv(only_node(*half)));
}

TEST(CudaEdgeCaseTest, MaxPoolIndicesThatAreReturnedAreWritten) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {1, 2, 1, 3});
  auto outs = b.node_outputs("pool", "aten.max_pool2d_with_indices.default",
                             {x, ProgramBuilder::ints({1, 3}), ProgramBuilder::ints({1, 2}),
                              ProgramBuilder::ints({0, 0}), ProgramBuilder::ints({1, 1}), true});
  b.output(outs[0]);
  b.output(outs[1]);
  auto program = b.finish();
  EXPECT_TRUE(cuda_verdict(only_node(*program)).accepted());
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(*program, {}, options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  EXPECT_EQ(plan->value_buffers.count(outs[1]->id), 1u) << plan->summary();
  EXPECT_NE(plan->module.text().find("kiln_max_pool2d_indices_f32"), std::string::npos);
  Status built = build_sm90(program);
  EXPECT_TRUE(built.ok()) << built.to_string();
}

std::shared_ptr<ir::Program> native_layer_norm(DType dtype, const Shape& shape,
                                               bool return_stats) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", dtype, shape);
  ir::Value* w = b.input("w", dtype, {shape.back()});
  ir::Value* bias = b.input("bias", dtype, {shape.back()});
  auto outs = b.node_outputs("ln", "aten.native_layer_norm.default",
                             {x, ProgramBuilder::ints({shape.back()}), w, bias, 1e-5});
  b.output(outs[0]);
  if (return_stats) {
    b.output(outs[1]);
    b.output(outs[2]);
  }
  return b.finish();
}

TEST(CudaEdgeCaseTest, LayerNormStatisticsThatAreReturnedAreWritten) {
  for (const Shape& shape : {Shape{2, 3}, Shape{0, 1}}) {
    auto program = native_layer_norm(DType::kFloat32, shape, true);
    EXPECT_TRUE(cuda_verdict(only_node(*program)).accepted());
    Status built = build_sm90(program);
    EXPECT_TRUE(built.ok()) << shape_to_string(shape) << ": " << built.to_string();
  }
}

TEST(CudaEdgeCaseTest, HalfLayerNormStatisticsMayBeFloat32AsOnCuda) {
  // PyTorch's CUDA kernel returns mean and rstd in float32 for a float16 input; its CPU kernel
  // in float16. A program exported on either device infers, and builds.
  for (DType stats : {DType::kFloat16, DType::kFloat32}) {
    auto program = native_layer_norm(DType::kFloat16, {4, 8}, true);
    ir::Node& node = program->graph.nodes().front();
    node.outputs[1]->dtype = stats;
    node.outputs[2]->dtype = stats;
    Status inferred = ir::check_inference(*program);
    EXPECT_TRUE(inferred.ok()) << dtype_name(stats) << ": " << inferred.to_string();
    Status built = build_sm90(program);
    EXPECT_TRUE(built.ok()) << dtype_name(stats) << ": " << built.to_string();
  }
  // Other dtypes still disagree with the program.
  auto program = native_layer_norm(DType::kFloat16, {4, 8}, true);
  program->graph.nodes().front().outputs[1]->dtype = DType::kBFloat16;
  EXPECT_FALSE(ir::check_inference(*program).ok());
}

TEST(CudaEdgeCaseTest, BatchNormStatisticsReadByAnotherNodeAreStoredApart) {
  // A half-precision engine casts float32 statistics it returns: the cast reads them, so they
  // get a buffer of their own instead of joining the output's kernel.
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {3, 2, 4});
  std::vector<ir::Argument> args = {x};
  for (const char* name : {"w", "b", "mean", "var"}) {
    args.push_back(b.input(name, DType::kFloat32, {2}));
  }
  args.push_back(-1.2);
  args.push_back(1e-5);
  auto outs = b.node_outputs("bn", "aten._native_batch_norm_legit_no_training.default", args);
  b.output(outs[0]);
  b.output(b.node("m2", "aten.mul.Tensor", {outs[1], 2.0}));
  b.output(b.node("r2", "aten.relu.default", {outs[2]}));
  auto program = b.finish();
  for (const ir::Node& node : program->graph.nodes()) {
    EXPECT_TRUE(cuda_verdict(node).accepted()) << node.name;
  }
  Status built = build_sm90(program);
  EXPECT_TRUE(built.ok()) << built.to_string();
}

TEST(CudaEdgeCaseTest, InferenceBatchNormOfA3dInputBuilds) {
  // The saved statistics are returned too (the generated kernel once stored them as if they
  // were the output's expression: NVRTC failed on an undefined variable). Empty as a CPU export
  // records them, or [C] as a CUDA export does (running_mean and 1 / sqrt(running_var + eps)).
  for (int stats : {0, 1, 2}) {
    const bool all_outputs = stats > 0;
    ProgramBuilder b;
    ir::Value* x = b.input("x", DType::kFloat32, {3, 2, 4});
    std::vector<ir::Argument> args = {x};
    for (const char* name : {"w", "b", "mean", "var"}) {
      args.push_back(b.input(name, DType::kFloat32, {2}));
    }
    args.push_back(-1.2);
    args.push_back(1e-5);
    auto outs = b.node_outputs("bn", "aten._native_batch_norm_legit_no_training.default", args);
    b.output(outs[0]);
    if (all_outputs) {
      b.output(outs[1]);
      b.output(outs[2]);
    }
    auto program = b.finish();
    if (stats == 2) {
      for (ir::Value* v : {outs[1], outs[2]}) v->shape = {ir::SymDim{2, nullptr}};
      Status inferred = ir::check_inference(*program);
      EXPECT_TRUE(inferred.ok()) << inferred.to_string();
    }
    ASSERT_TRUE(cuda_verdict(only_node(*program)).accepted());
    PlanOptions options;
    options.arch = "sm_90";
    auto plan = make_plan(*program, {}, options);
    ASSERT_TRUE(plan.ok()) << stats << ": " << plan.status().to_string();
    if (all_outputs) {
      EXPECT_EQ(plan->value_buffers.count(outs[2]->id), 1u) << plan->summary();
      EXPECT_NE(plan->module.text().find("kiln_bn_stats_f32_f32_f32"), std::string::npos);
    }
    Status built = build_sm90(program);
    EXPECT_TRUE(built.ok()) << stats << ": " << built.to_string();
  }
}

}  // namespace
}  // namespace kiln::cuda
