// The sort family without a GPU: its kernels compile with NVRTC for every dtype, names and code are
// deterministic, launches reject bad shapes before touching the GPU, and cuda_verdict and the
// planner take sort, sort.stable and topk nodes (with either output unused) or leave them to
// PyTorch saying why. kernel_library_sort_gpu_test.cc runs the kernels.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "builder/builder.h"
#include "builder/profiles.h"
#include "cuda/cuda_support.h"
#include "cuda/kernel_library_sort.h"
#include "cuda/nvrtc_compiler.h"
#include "cuda/plan.h"
#include "ir/sym_expr.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

using passes::testing::ProgramBuilder;

constexpr DType kEveryType[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                DType::kInt64,   DType::kInt32,   DType::kInt16,
                                DType::kInt8,    DType::kUInt8,   DType::kBool};

TEST(SortKernelTest, CompilesForEveryDtypeOnSm90AndSm80) {
  ModuleSource module;
  for (DType t : kEveryType) sort_kernel(module, t);
  sort_kernel(module, DType::kFloat64);  // never asked for (the backend declines float64)
  for (const char* arch : {"sm_90", "sm_80"}) {
    auto compiled = compile_cuda_source(module.text(), arch, false);
    ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
    for (const char* name : {"kiln_sort_f32", "kiln_sort_f16", "kiln_sort_bf16", "kiln_sort_i64",
                             "kiln_sort_i32"}) {
      EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
    }
  }
}

TEST(SortKernelTest, NamesAndCodeAreDeterministic) {
  ModuleSource a, b;
  for (DType t : kEveryType) {
    EXPECT_EQ(sort_kernel(a, t), sort_kernel(b, t));
  }
  EXPECT_EQ(a.text(), b.text());
  const std::string text = a.text();
  EXPECT_EQ(sort_kernel(a, DType::kFloat16), "kiln_sort_f16");
  EXPECT_EQ(a.text(), text);  // asking again adds nothing
  EXPECT_NE(sort_kernel(a, DType::kInt8), sort_kernel(a, DType::kUInt8));
  // The family's code appears once however many entry points use it.
  const size_t first = text.find("namespace kiln_sort {");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(text.find("namespace kiln_sort {", first + 1), std::string::npos);
}

// Host tensors stand in for device ones: every call below must fail validation before it
// reaches the GPU (there is none here, and the kernel is null).
Tensor host(DType dtype, Shape sizes) { return Tensor::empty(dtype, std::move(sizes)).value(); }

void expect_invalid(const Status& status, std::string_view words) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << words << "'";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(words), std::string::npos) << status.to_string();
}

TEST(SortKernelTest, LaunchesValidateBeforeTouchingTheGpu) {
  const DType f32 = DType::kFloat32, i64 = DType::kInt64;
  const Tensor x = host(f32, {4, 6});
  const Tensor v = host(f32, {4, 6}), i = host(i64, {4, 6});
  expect_invalid(launch_sort(nullptr, x, &v, &i, 2, false, nullptr), "dim");
  expect_invalid(launch_sort(nullptr, x, &v, &i, -1, false, nullptr), "dim");
  const Tensor long_rows = host(f32, {2, kSortRowMax + 1});
  const Tensor long_v = host(f32, {2, kSortRowMax + 1});
  expect_invalid(launch_sort(nullptr, long_rows, &long_v, nullptr, 1, false, nullptr),
                 "need scratch");
  EXPECT_EQ(sort_scratch_bytes(2, kSortRowMax), 0u);
  EXPECT_EQ(sort_scratch_bytes(2, kSortRowMax + 1), 2u * 8192 * 12);
  EXPECT_EQ(sort_scratch_bytes(1000, 50257), 64u * 65536 * 12);  // at most 64 blocks at once
  const Tensor too_long = host(f32, {1, kSortLongRowMax + 1});
  const Tensor too_long_v = host(f32, {1, kSortLongRowMax + 1});
  expect_invalid(launch_sort(nullptr, too_long, &too_long_v, nullptr, 1, false, nullptr),
                 "at most 4194304");
  const Tensor wide = host(f32, {4, 7}), other_rows = host(f32, {5, 6}), flat = host(f32, {24});
  expect_invalid(launch_sort(nullptr, x, &wide, nullptr, 1, false, nullptr), "values");
  expect_invalid(launch_sort(nullptr, x, &other_rows, nullptr, 1, false, nullptr), "values");
  expect_invalid(launch_sort(nullptr, x, &flat, nullptr, 1, false, nullptr), "values");
  const Tensor i3 = host(i64, {4, 3});
  expect_invalid(launch_sort(nullptr, x, &v, &i3, 1, false, nullptr), "indices");
  const Tensor half_values = host(DType::kFloat16, {4, 6});
  expect_invalid(launch_sort(nullptr, x, &half_values, &i, 1, false, nullptr), "float32");
  const Tensor int_indices = host(DType::kInt32, {4, 6});
  expect_invalid(launch_sort(nullptr, x, &v, &int_indices, 1, false, nullptr), "int64");
  expect_invalid(launch_sort(nullptr, x, &v, &i, 1, false, nullptr), "no kernel");
  const Tensor v3 = host(f32, {4, 3});
  expect_invalid(launch_sort(nullptr, x, &v3, &i3, 1, true, nullptr), "no kernel");  // topk 3
  const Tensor scalar = host(f32, {}), scalar_i = host(i64, {});
  expect_invalid(launch_sort(nullptr, scalar, &scalar, &scalar_i, 0, false, nullptr),
                 "no kernel");

  // Nothing to do: no kernel, no data needed.
  EXPECT_TRUE(launch_sort(nullptr, x, nullptr, nullptr, 1, false, nullptr).ok());
  const Tensor empty_rows = host(f32, {3, 0}), empty_i = host(i64, {3, 0});
  EXPECT_TRUE(launch_sort(nullptr, empty_rows, &empty_rows, &empty_i, 1, false, nullptr).ok());
  const Tensor no_rows = host(f32, {0, 5}), no_rows_i = host(i64, {0, 5});
  EXPECT_TRUE(launch_sort(nullptr, no_rows, &no_rows, &no_rows_i, 1, false, nullptr).ok());
  const Tensor k0 = host(f32, {4, 0}), k0_i = host(i64, {4, 0});
  EXPECT_TRUE(launch_sort(nullptr, x, &k0, &k0_i, 1, true, nullptr).ok());  // topk k = 0
}

// --- verdicts and plans ------------------------------------------------------------------------

const ir::Node& only_node(const ir::Program& program) {
  EXPECT_EQ(program.graph.nodes().size(), 1u);
  return program.graph.nodes().front();
}

// One node over an input x of `shape`; `returned` picks the outputs the program returns
// (values 0, indices 1).
std::shared_ptr<ir::Program> sort_program(const std::string& target, DType dtype,
                                          const Shape& shape, std::vector<ir::Argument> rest,
                                          std::vector<int> returned = {0, 1}) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", dtype, shape);
  std::vector<ir::Argument> args = {x};
  for (ir::Argument& a : rest) args.push_back(std::move(a));
  auto outs = b.node_outputs("s", target, std::move(args));
  for (int i : returned) b.output(outs[i]);
  return b.finish();
}

// Builds an sm_90 engine for `program` (no GPU needed): planning and NVRTC both run.
Status build_sm90(std::shared_ptr<ir::Program> program) {
  builder::BuildRequest request;
  request.program = program;
  request.name = "sort";
  request.settings.target = format::Target{"cuda", "sm_90"};
  auto profiles = builder::resolve_symbol_profiles(*program, {});
  if (!profiles.ok()) return profiles.status();
  request.profiles = *profiles;
  auto engine = builder::build_engine(std::move(request));
  return engine.ok() ? ok_status() : engine.status();
}

void expect_rejected(const ir::Program& program, std::string_view words) {
  const convert::Verdict verdict = cuda_verdict(only_node(program));
  EXPECT_FALSE(verdict.accepted()) << "expected a rejection mentioning '" << words << "'";
  EXPECT_NE(verdict.reason().find(words), std::string::npos) << verdict.reason();
}

TEST(SortVerdictTest, TakesSortStableSortAndTopk) {
  for (DType t : kEveryType) {
    const std::vector<std::shared_ptr<ir::Program>> programs = {
        sort_program("aten.sort.default", t, {4, 100}, {int64_t{-1}, true}),
        sort_program("aten.sort.default", t, {3, 4096, 2}, {int64_t{1}, false}),
        sort_program("aten.sort.stable", t, {7}, {true, int64_t{0}, false}),
        sort_program("aten.sort.stable", t, {2, 5}, {ir::NoneArg{}, int64_t{-2}, true}),
        sort_program("aten.sort.default", t, {}, {int64_t{-1}, false}),
        sort_program("aten.sort.default", t, {3, 0}, {int64_t{1}, false}),
    };
    for (const auto& program : programs) {
      const convert::Verdict verdict = cuda_verdict(only_node(*program));
      EXPECT_TRUE(verdict.accepted()) << dtype_name(t) << ": " << verdict.reason();
    }
    if (t == DType::kBool) continue;  // topk of bool fails in shape inference, as in PyTorch
    for (int64_t k : {0, 1, 5, 50}) {
      auto program = sort_program("aten.topk.default", t, {3, 50}, {k, int64_t{-1}, k % 2 == 0});
      const convert::Verdict verdict = cuda_verdict(only_node(*program));
      EXPECT_TRUE(verdict.accepted()) << dtype_name(t) << " k " << k << ": " << verdict.reason();
    }
  }
}

TEST(SortVerdictTest, LeavesWhatItCannotRunToPyTorchSayingWhy) {
  expect_rejected(*sort_program("aten.sort.default", DType::kFloat32, {2, kSortLongRowMax + 1},
                                {int64_t{1}}),
                  "4194304");
  // Rows over a block's shared memory sort in scratch.
  EXPECT_TRUE(cuda_verdict(only_node(*sort_program("aten.topk.default", DType::kFloat16, {5000},
                                                   {int64_t{3}})))
                  .accepted());
  // A long dim that is not sorted is only more rows.
  EXPECT_TRUE(cuda_verdict(only_node(*sort_program("aten.sort.default", DType::kFloat32,
                                                   {5000, 8}, {int64_t{1}})))
                  .accepted());
  expect_rejected(*sort_program("aten.sort.default", DType::kFloat64, {2, 8}, {int64_t{1}}),
                  "float64");

  // topk of bool (PyTorch has no kernel; a program could only claim one).
  auto bool_topk = sort_program("aten.topk.default", DType::kInt32, {2, 8}, {int64_t{3}});
  for (ir::Value& v : bool_topk->graph.values()) {
    if (v.name == "x") v.dtype = DType::kBool;
  }
  expect_rejected(*bool_topk, "bool");

  // A symbolic sorted dim: the rows' length must be known to fit a block. Other dims may vary.
  auto symbolic = sort_program("aten.sort.default", DType::kFloat32, {4, 16}, {int64_t{1}});
  ir::Value* x = symbolic->graph.inputs().front().value;
  x->shape[1].expr = ir::sym_symbol("s1");
  expect_rejected(*symbolic, "symbolic");
  x->shape[1].expr = nullptr;
  x->shape[0].expr = ir::sym_symbol("s0");
  EXPECT_TRUE(cuda_verdict(only_node(*symbolic)).accepted())
      << cuda_verdict(only_node(*symbolic)).reason();

  // k known only at run time.
  auto dynamic_k = sort_program("aten.topk.default", DType::kFloat32, {2, 8}, {int64_t{3}});
  ir::Value* k = dynamic_k->graph.add_value("k", ir::ValueKind::kSymInt);
  dynamic_k->graph.nodes().front().args[1] = k;
  expect_rejected(*dynamic_k, "k known only at run time");
}

// The steps the planner makes: each output written only where it has a buffer.
TEST(SortPlanTest, WritesTheOutputsThatAreReadAndBuilds) {
  struct Case {
    std::string what, target;
    DType dtype;
    Shape shape;
    std::vector<ir::Argument> args;
    std::vector<int> returned;
  };
  const std::vector<Case> cases = {
      {"sort both", "aten.sort.default", DType::kFloat32, {4, 33}, {int64_t{-1}, true}, {0, 1}},
      {"sort values only", "aten.sort.default", DType::kFloat16, {4, 33}, {int64_t{0}}, {0}},
      {"sort indices only", "aten.sort.default", DType::kBFloat16, {4, 33}, {int64_t{1}}, {1}},
      {"stable, int64", "aten.sort.stable", DType::kInt64, {2, 3, 5}, {true, int64_t{1}}, {0, 1}},
      {"topk indices only", "aten.topk.default", DType::kFloat32, {8, 100}, {int64_t{5}}, {1}},
      {"topk smallest", "aten.topk.default", DType::kInt32, {8, 100},
       {int64_t{100}, int64_t{1}, false}, {0, 1}},
      {"topk k = 0", "aten.topk.default", DType::kFloat32, {8, 100}, {int64_t{0}}, {0, 1}},
      {"0-d", "aten.sort.default", DType::kFloat32, {}, {int64_t{0}}, {0, 1}},
      {"empty rows", "aten.sort.default", DType::kFloat32, {3, 0}, {int64_t{1}}, {0, 1}},
      {"bool", "aten.sort.default", DType::kBool, {3, 9}, {int64_t{1}, true}, {0, 1}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto program = sort_program(c.target, c.dtype, c.shape, c.args, c.returned);
    const ir::Node& node = only_node(*program);
    ASSERT_TRUE(cuda_verdict(node).accepted()) << cuda_verdict(node).reason();
    PlanOptions options;
    options.arch = "sm_90";
    auto plan = make_plan(*program, {}, options);
    ASSERT_TRUE(plan.ok()) << plan.status().to_string();
    ASSERT_EQ(plan->steps.size(), 1u) << plan->summary();
    const Step& step = *plan->steps[0];
    EXPECT_EQ(step.kind(), "sort");
    std::vector<uint32_t> expected_writes;
    for (int i : c.returned) expected_writes.push_back(node.outputs[i]->id);
    EXPECT_EQ(step.writes, expected_writes) << plan->summary();
    EXPECT_NE(plan->module.text().find(str_cat("kiln_sort_", dtype_tag(c.dtype))),
              std::string::npos);
    Status built = build_sm90(program);
    EXPECT_TRUE(built.ok()) << built.to_string();
  }
}

}  // namespace
}  // namespace kiln::cuda
