// The index reduction family (argmax/argmin, max/min.dim, var/std/var_mean) without a GPU: its
// kernels compile with NVRTC for every dtype, names are deterministic, launches reject bad
// arguments before touching the GPU, verdicts take and refuse the right nodes, and the nodes
// plan as steps that write exactly their read outputs. The GPU half:
// kernel_library_index_reduction_gpu_test.cc.
#include "cuda/kernel_library_index_reduction.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/cuda_support.h"
#include "cuda/nvrtc_compiler.h"
#include "cuda/plan.h"
#include "cuda/steps.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

constexpr DType kEveryDtype[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                 DType::kFloat64, DType::kInt64,   DType::kInt32,
                                 DType::kInt16,   DType::kInt8,    DType::kUInt8,
                                 DType::kBool};
constexpr DType kFloats[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};

Tensor host(DType dtype, Shape sizes) { return Tensor::empty(dtype, std::move(sizes)).value(); }

void expect_invalid(const Status& status, std::string_view words) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << words << "'";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(words), std::string::npos) << status.to_string();
}

// Every dtype for sm_90; the floating ones (what models meet) for sm_80 too, which keeps the
// test's NVRTC time down.
TEST(IndexReductionTest, CompilesForEveryDtypeOnSm90AndSm80) {
  ModuleSource every, floats;
  for (DType t : kEveryDtype) {
    arg_reduce_kernel(every, true, t);
    arg_reduce_kernel(every, false, t);
  }
  for (DType t : kFloats) {
    arg_reduce_kernel(floats, true, t);
    arg_reduce_kernel(floats, false, t);
    for (ModuleSource* module : {&every, &floats}) {
      moments_kernel(*module, t, false);
      moments_kernel(*module, t, true);
    }
  }
  auto compiled = compile_cuda_source(every.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
  for (const char* name : {"kiln_argmax_f32", "kiln_argmin_f16", "kiln_argmax_bf16",
                           "kiln_argmax_i64", "kiln_argmin_b8", "kiln_argmax_u8", "kiln_argmin_f64",
                           "kiln_var_f32", "kiln_std_bf16", "kiln_var_f16"}) {
    EXPECT_NE(compiled->cubin.find(name), std::string::npos) << "sm_90 lacks " << name;
  }
  auto sm80 = compile_cuda_source(floats.text(), "sm_80", false);
  ASSERT_TRUE(sm80.ok()) << sm80.status().to_string();
  for (const char* name : {"kiln_argmin_bf16", "kiln_std_f16"}) {
    EXPECT_NE(sm80->cubin.find(name), std::string::npos) << "sm_80 lacks " << name;
  }
}

TEST(IndexReductionTest, NamesAndCodeAreDeterministic) {
  ModuleSource module;
  EXPECT_EQ(arg_reduce_kernel(module, true, DType::kFloat16), "kiln_argmax_f16");
  EXPECT_EQ(arg_reduce_kernel(module, false, DType::kInt64), "kiln_argmin_i64");
  EXPECT_EQ(moments_kernel(module, DType::kBFloat16, false), "kiln_var_bf16");
  EXPECT_EQ(moments_kernel(module, DType::kFloat32, true), "kiln_std_f32");
  const std::string text = module.text();
  EXPECT_EQ(arg_reduce_kernel(module, true, DType::kFloat16), "kiln_argmax_f16");
  EXPECT_EQ(moments_kernel(module, DType::kFloat32, true), "kiln_std_f32");
  EXPECT_EQ(module.text(), text);  // asking again adds nothing
}

TEST(IndexReductionTest, LaunchesValidateBeforeTouchingTheGpu) {
  const DType f32 = DType::kFloat32, i64 = DType::kInt64;
  const Tensor x = host(f32, {4, 6});
  const Tensor idx = host(i64, {4, 1}), vals = host(f32, {4, 1});
  expect_invalid(launch_arg_reduce(nullptr, x, nullptr, &idx, nullptr), "no kernel");
  expect_invalid(launch_arg_reduce(nullptr, x, &vals, &idx, nullptr), "no kernel");
  const Tensor flat = host(i64, {4});
  expect_invalid(launch_arg_reduce(nullptr, x, nullptr, &flat, nullptr), "keepdim");
  const Tensor wrong = host(i64, {4, 3});
  expect_invalid(launch_arg_reduce(nullptr, x, nullptr, &wrong, nullptr), "dim 1 has size 3");
  const Tensor f32_idx = host(f32, {4, 1});
  expect_invalid(launch_arg_reduce(nullptr, x, nullptr, &f32_idx, nullptr), "int64 indices");
  const Tensor half_vals = host(DType::kFloat16, {4, 1});
  expect_invalid(launch_arg_reduce(nullptr, x, &half_vals, &idx, nullptr), "input's dtype");
  const Tensor other = host(f32, {1, 6});
  expect_invalid(launch_arg_reduce(nullptr, x, &other, &idx, nullptr), "same sizes");
  // argmax over an empty dim has no answer (PyTorch raises); an empty result needs no kernel.
  const Tensor empty_rows = host(f32, {4, 0});
  expect_invalid(launch_arg_reduce(nullptr, empty_rows, nullptr, &idx, nullptr), "non-empty");
  const Tensor no_rows = host(f32, {0, 6}), no_idx = host(i64, {0, 1});
  EXPECT_TRUE(launch_arg_reduce(nullptr, no_rows, nullptr, &no_idx, nullptr).ok());
  // Neither output read: nothing to do.
  EXPECT_TRUE(launch_arg_reduce(nullptr, x, nullptr, nullptr, nullptr).ok());

  expect_invalid(launch_moments(nullptr, x, &vals, nullptr, 1.0, nullptr), "no kernel");
  expect_invalid(launch_moments(nullptr, x, &half_vals, nullptr, 1.0, nullptr), "input's dtype");
  expect_invalid(launch_moments(nullptr, x, &wrong, nullptr, 1.0, nullptr), "input's dtype");
  const Tensor wrong_f32 = host(f32, {4, 3});
  expect_invalid(launch_moments(nullptr, x, &wrong_f32, nullptr, 1.0, nullptr),
                 "dim 1 has size 3");
  // var over no elements is NaN: still a launch (it writes the NaNs).
  const Tensor var_rows = host(f32, {4, 1});
  expect_invalid(launch_moments(nullptr, empty_rows, &var_rows, nullptr, 1.0, nullptr),
                 "no kernel");
  expect_invalid(launch_moments(nullptr, no_rows, &no_idx, nullptr, 1.0, nullptr),
                 "input's dtype");
  const Tensor no_var = host(f32, {0, 1});
  EXPECT_TRUE(launch_moments(nullptr, no_rows, &no_var, nullptr, 1.0, nullptr).ok());

  const Tensor rank9 = host(f32, {1, 1, 1, 1, 1, 1, 1, 1, 2});
  const Tensor rank9_out = host(i64, {1, 1, 1, 1, 1, 1, 1, 1, 1});
  expect_invalid(launch_arg_reduce(nullptr, rank9, nullptr, &rank9_out, nullptr), "rank");
}

using passes::testing::ProgramBuilder;

// A program of every op the family takes, on a [4, 6, 5] input.
struct Fixture {
  std::shared_ptr<ir::Program> program;
  ir::Value *x = nullptr, *ints = nullptr;
};

Fixture every_op(DType dtype) {
  ProgramBuilder b;
  Fixture f;
  f.x = b.input("x", dtype, {4, 6, 5});
  f.ints = b.input("ints", DType::kInt32, {4, 6});
  b.output(b.node("argmax", "aten.argmax.default", {f.x, int64_t{-1}}));
  b.output(b.node("argmin_all", "aten.argmin.default", {f.x, ir::NoneArg{}, true}));
  std::vector<ir::Value*> max = b.node_outputs("max", "aten.max.dim", {f.x, int64_t{1}, true});
  b.output(max[0]);
  b.output(max[1]);
  std::vector<ir::Value*> min = b.node_outputs("min", "aten.min.dim", {f.ints, int64_t{0}});
  b.output(min[1]);  // the values are not read
  b.output(b.node("var", "aten.var.correction",
                  {f.x, ProgramBuilder::ints({0, 2}), int64_t{0}, false}));
  b.output(b.node("var_all", "aten.var.correction", {f.x, ir::NoneArg{}, 2.5, true}));
  b.output(b.node("var_dim", "aten.var.dim", {f.x, ProgramBuilder::ints({-2}), false}));
  b.output(b.node("std", "aten.std.correction", {f.x, ProgramBuilder::ints({1})}));
  std::vector<ir::Value*> vm =
      b.node_outputs("var_mean", "aten.var_mean.correction", {f.x, ProgramBuilder::ints({2})});
  b.output(vm[0]);
  b.output(vm[1]);
  f.program = b.finish();
  return f;
}

TEST(IndexReductionTest, VerdictsTakeEveryOpOfTheFamily) {
  for (DType t : kFloats) {
    Fixture f = every_op(t);
    for (const ir::Node& node : f.program->graph.nodes()) {
      EXPECT_NE(library_family(node.op), nullptr) << node.name;
      const convert::Verdict verdict = cuda_verdict(node);
      EXPECT_TRUE(verdict.accepted()) << node.name << ": " << verdict.reason();
    }
  }
}

TEST(IndexReductionTest, VerdictsRefuseWithAReason) {
  Fixture f = every_op(DType::kFloat32);
  // float64 is the backend's refusal; var of an integer input is not a PyTorch op.
  for (ir::Value& v : f.program->graph.values()) {
    if (v.kind == ir::ValueKind::kTensor && v.dtype == DType::kFloat32) v.dtype = DType::kFloat64;
  }
  for (const ir::Node& node : f.program->graph.nodes()) {
    if (node.name == "min") continue;  // int32 in, int32/int64 out
    const convert::Verdict verdict = cuda_verdict(node);
    EXPECT_FALSE(verdict.accepted()) << node.name;
    EXPECT_NE(verdict.reason().find("float64"), std::string::npos) << verdict.reason();
  }

  // argmax over a dim of static size 0 raises in PyTorch: left to it. var over it is NaN: taken.
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {3, 4});
  ir::Value* arg = b.node("argmax", "aten.argmax.default", {x, int64_t{1}});
  ir::Value* whole = b.node("argmax_all", "aten.argmax.default", {x});
  ir::Value* var = b.node("var", "aten.var.correction", {x, ProgramBuilder::ints({1})});
  b.output(arg);
  b.output(whole);
  b.output(var);
  auto program = b.finish();
  x->shape[1].value = 0;
  for (const ir::Node& node : program->graph.nodes()) {
    const convert::Verdict verdict = cuda_verdict(node);
    if (node.op == ir::OpKey::aten_var_correction) {
      EXPECT_TRUE(verdict.accepted()) << verdict.reason();
    } else {
      EXPECT_FALSE(verdict.accepted()) << node.name;
      EXPECT_NE(verdict.reason().find("empty"), std::string::npos) << verdict.reason();
    }
  }
  // var of an int input.
  x->shape[1].value = 4;
  x->dtype = DType::kInt32;
  var->dtype = DType::kInt32;
  const ir::Node& var_node = *var->producer;
  EXPECT_FALSE(cuda_verdict(var_node).accepted());
}

TEST(IndexReductionTest, NodesPlanAsStepsWritingTheirReadOutputs) {
  Fixture f = every_op(DType::kFloat16);
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(*f.program, {}, options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  std::vector<std::string> kinds;
  std::vector<size_t> writes;
  for (const auto& step : plan->steps) {
    kinds.emplace_back(step->kind());
    writes.push_back(step->writes.size());
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"arg_reduce", "arg_reduce", "arg_reduce",
                                             "arg_reduce", "moments", "moments", "moments",
                                             "moments", "moments"}))
      << plan->summary();
  // max writes values and indices, min only its indices (its values are not read), var_mean both.
  EXPECT_EQ(writes, (std::vector<size_t>{1, 1, 2, 1, 1, 1, 1, 1, 2})) << plan->summary();
  for (const char* name : {"kiln_argmax_f16", "kiln_argmin_f16", "kiln_argmin_i32",
                           "kiln_var_f16", "kiln_std_f16"}) {
    EXPECT_NE(plan->module.text().find(name), std::string::npos) << name;
  }
  auto compiled = compile_cuda_source(plan->module.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
}

}  // namespace
}  // namespace kiln::cuda
