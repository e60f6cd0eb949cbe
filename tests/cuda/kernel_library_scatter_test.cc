// The kernel library's scatter family without a GPU: its kernels compile with NVRTC for every
// dtype they take (sm_90 and sm_80), names and code are deterministic, launches reject bad
// arguments before touching the GPU, and the CUDA backend takes (or declines, saying why) the
// family's nodes and plans them into steps whose module compiles. The GPU half:
// kernel_library_scatter_gpu_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/cuda_support.h"
#include "cuda/kernel_library.h"
#include "cuda/kernel_library_scatter.h"
#include "cuda/nvrtc_compiler.h"
#include "cuda/plan.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

constexpr DType kDataTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                                DType::kInt64,   DType::kInt32,   DType::kBool};
constexpr DType kReduceTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kInt64,
                                  DType::kInt32};
// Narrow integers reach the same compare-and-swap code as fp16 through other widths.
constexpr DType kNarrowTypes[] = {DType::kInt16, DType::kInt8, DType::kUInt8};
constexpr ScatterReduce kReductions[] = {ScatterReduce::kSum, ScatterReduce::kProd,
                                         ScatterReduce::kMean, ScatterReduce::kAmax,
                                         ScatterReduce::kAmin};

// Every entry point the family has for the dtypes of the tests and models, and with `narrow`
// the narrow integer ones too.
ModuleSource scatter_module(bool narrow) {
  ModuleSource module;
  for (DType t : kDataTypes) {
    for (DType index : {DType::kInt64, DType::kInt32}) {
      gather_kernel(module, t, index);
      scatter_kernel(module, ScatterReduce::kAssign, t, index, false);
      scatter_kernel(module, ScatterReduce::kAssign, t, index, true);
    }
    index_put_kernel(module, t, false);
    masked_scatter_kernel(module, t);
  }
  for (DType t : kReduceTypes) {
    for (ScatterReduce r : kReductions) {
      scatter_kernel(module, r, t, DType::kInt64, false);
    }
    scatter_kernel(module, ScatterReduce::kSum, t, DType::kInt32, true);
    index_put_kernel(module, t, true);
  }
  if (!narrow) return module;
  for (DType t : kNarrowTypes) {
    for (ScatterReduce r : kReductions) scatter_kernel(module, r, t, DType::kInt64, false);
    scatter_kernel(module, ScatterReduce::kAssign, t, DType::kInt64, true);
    gather_kernel(module, t, DType::kInt32);
    index_put_kernel(module, t, true);
    masked_scatter_kernel(module, t);
  }
  return module;
}

TEST(ScatterKernelTest, EveryDtypeCompilesForSm90AndSm80) {
  for (const char* arch : {"sm_90", "sm_80"}) {
    const bool narrow = std::string(arch) == "sm_90";  // one arch is enough for those
    auto compiled = compile_cuda_source(scatter_module(narrow).text(), arch, false);
    ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
    for (const char* name :
         {"kiln_gather_bf16_i64", "kiln_scatter_assign_b8_i32_value", "kiln_scatter_mean_f16_i64",
          "kiln_scatter_amax_i32_i64", "kiln_index_put_f16_accumulate", "kiln_index_put_b8",
          "kiln_masked_scatter_i64"}) {
      EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
    }
    if (narrow) {
      EXPECT_NE(compiled->cubin.find("kiln_scatter_amax_u8_i64"), std::string::npos);
    }
  }
}

TEST(ScatterKernelTest, NamesAndCodeAreDeterministic) {
  EXPECT_EQ(scatter_module(true).text(), scatter_module(true).text());
  ModuleSource module;
  EXPECT_EQ(scatter_kernel(module, ScatterReduce::kProd, DType::kFloat16, DType::kInt64, false),
            "kiln_scatter_prod_f16_i64");
  EXPECT_EQ(gather_kernel(module, DType::kFloat32, DType::kInt32), "kiln_gather_f32_i32");
  EXPECT_EQ(index_put_kernel(module, DType::kBFloat16, true), "kiln_index_put_bf16_accumulate");
  EXPECT_EQ(masked_scatter_kernel(module, DType::kBool), "kiln_masked_scatter_b8");
  const size_t pieces = module.size();
  gather_kernel(module, DType::kFloat32, DType::kInt32);
  EXPECT_EQ(module.size(), pieces);  // the same entry is added once
}

TEST(ScatterKernelTest, ParsesReductions) {
  EXPECT_EQ(parse_scatter_reduce("sum"), ScatterReduce::kSum);
  EXPECT_EQ(parse_scatter_reduce("add"), ScatterReduce::kSum);
  EXPECT_EQ(parse_scatter_reduce("multiply"), ScatterReduce::kProd);
  EXPECT_EQ(parse_scatter_reduce("mean"), ScatterReduce::kMean);
  EXPECT_EQ(parse_scatter_reduce("amin"), ScatterReduce::kAmin);
  EXPECT_EQ(parse_scatter_reduce("max"), std::nullopt);
  EXPECT_FALSE(scatter_reduce_takes(DType::kBool));
  EXPECT_TRUE(scatter_reduce_takes(DType::kUInt8));
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

TEST(ScatterKernelTest, GatherAndScatterLaunchesValidate) {
  const DType f32 = DType::kFloat32, i64 = DType::kInt64;
  const Tensor x = host(f32, {4, 6});
  const Tensor index = host(i64, {3, 6});
  expect_invalid(launch_gather(nullptr, x, 2, index, host(f32, {3, 6}), nullptr), "dim");
  expect_invalid(launch_gather(nullptr, x, 0, host(i64, {3}), host(f32, {3}), nullptr), "rank");
  expect_invalid(launch_gather(nullptr, x, 0, host(i64, {3, 7}), host(f32, {3, 7}), nullptr),
                 "no larger");
  expect_invalid(launch_gather(nullptr, x, 0, host(f32, {3, 6}), host(f32, {3, 6}), nullptr),
                 "int64 or int32");
  expect_invalid(launch_gather(nullptr, x, 0, index, host(f32, {3, 5}), nullptr), "sizes");
  expect_invalid(launch_gather(nullptr, x, 0, index, host(DType::kFloat16, {3, 6}), nullptr),
                 "dtype");
  expect_invalid(launch_gather(nullptr, x, 0, index, host(f32, {3, 6}), nullptr), "no kernel");

  const Tensor out = host(f32, {4, 6});
  const Tensor src = host(f32, {3, 6});
  const Tensor small_src = host(f32, {3, 5});
  ScatterParams assign;
  expect_invalid(launch_scatter(nullptr, out, 0, index, &small_src, assign, nullptr, nullptr),
                 "no larger than src");
  const Tensor half_src = host(DType::kFloat16, {3, 6});
  expect_invalid(launch_scatter(nullptr, out, 0, index, &half_src, assign, nullptr, nullptr),
                 "dtype");
  ScatterParams mean{ScatterReduce::kMean, false, 0};
  expect_invalid(launch_scatter(nullptr, out, 0, index, &src, mean, nullptr, nullptr), "counts");
  const Tensor few_counts = host(DType::kInt32, {23});
  expect_invalid(launch_scatter(nullptr, out, 0, index, &src, mean, &few_counts, nullptr),
                 "counts");
  ScatterParams sum{ScatterReduce::kSum, true, 0};
  const Tensor flags = host(DType::kBool, {4, 6});
  expect_invalid(launch_scatter(nullptr, flags, 0, index, nullptr, sum, nullptr, nullptr),
                 "no reduction");
  const Tensor broadcast_out = out.view_as({4, 6}, {0, 1}, 0);
  expect_invalid(launch_scatter(nullptr, broadcast_out, 0, index, &src, assign, nullptr, nullptr),
                 "broadcast");
  expect_invalid(launch_scatter(nullptr, out, 1, index, &src, assign, nullptr, nullptr),
                 "no kernel");

  // Nothing to do: no kernel, no data needed.
  EXPECT_TRUE(launch_gather(nullptr, x, 1, host(i64, {4, 0}), host(f32, {4, 0}), nullptr).ok());
  EXPECT_TRUE(
      launch_scatter(nullptr, out, 0, host(i64, {0, 6}), &src, mean, nullptr, nullptr).ok());
}

TEST(ScatterKernelTest, IndexPutAndMaskedScatterLaunchesValidate) {
  const DType f32 = DType::kFloat32, i64 = DType::kInt64;
  const Tensor out = host(f32, {5, 4, 3});
  const Tensor rows = host(i64, {2});
  const Tensor mask_index = host(DType::kBool, {5});
  expect_invalid(launch_index_put(nullptr, out, {&mask_index}, host(f32, {1}), nullptr), "mask");
  expect_invalid(launch_index_put(nullptr, out, {nullptr, nullptr}, host(f32, {1}), nullptr),
                 "at least one index");
  expect_invalid(launch_index_put(nullptr, out, {&rows}, host(f32, {3, 4, 3}), nullptr),
                 "broadcast");
  expect_invalid(launch_index_put(nullptr, out, {&rows}, host(DType::kFloat16, {3}), nullptr),
                 "dtype");
  const Tensor cols = host(i64, {3});
  expect_invalid(launch_index_put(nullptr, out, {&rows, &cols}, host(f32, {1}), nullptr),
                 "broadcast together");
  expect_invalid(launch_index_put(nullptr, out, {&rows}, host(f32, {4, 3}), nullptr), "no kernel");

  // A mask of out's leading dims, values that fit one selected row (a leading 1 allowed).
  const Tensor plane_mask = host(DType::kBool, {5, 4});
  expect_invalid(launch_masked_put(nullptr, out, host(DType::kBool, {4}), host(f32, {3}), nullptr),
                 "leading dims");
  expect_invalid(launch_masked_put(nullptr, out, host(i64, {5}), host(f32, {3}), nullptr),
                 "bool or uint8");
  expect_invalid(launch_masked_put(nullptr, out, plane_mask, host(f32, {2, 3}), nullptr),
                 "broadcast");
  expect_invalid(launch_masked_put(nullptr, out, plane_mask, host(DType::kFloat16, {3}), nullptr),
                 "dtype");
  expect_invalid(launch_masked_put(nullptr, out, plane_mask, host(f32, {1, 3}), nullptr),
                 "no kernel");
  expect_invalid(launch_masked_put(nullptr, out, mask_index, host(f32, {4, 1}), nullptr),
                 "no kernel");

  // Shapes of out[indices]: adjacent index dims stay in place; separated ones go first.
  const Tensor a = host(i64, {2, 1}), b = host(i64, {6});
  EXPECT_EQ(index_put_indexed_shape(out, {nullptr, &a}).value(), (Shape{5, 2, 1, 3}));
  EXPECT_EQ(index_put_indexed_shape(out, {&a, nullptr, &b}).value(), (Shape{2, 6, 4}));
  EXPECT_EQ(index_put_indexed_shape(out, {nullptr, &a, &b}).value(), (Shape{5, 2, 6}));

  const Tensor counts = host(i64, {1});
  expect_invalid(
      launch_masked_scatter(nullptr, out, host(f32, {4, 3}), host(f32, {60}), counts, nullptr),
      "bool mask");
  expect_invalid(launch_masked_scatter(nullptr, out, host(DType::kBool, {2, 3}), host(f32, {60}),
                                       counts, nullptr),
                 "broadcast");
  expect_invalid(launch_masked_scatter(nullptr, out, host(DType::kBool, {4, 1}),
                                       host(DType::kFloat16, {60}), counts, nullptr),
                 "dtype");
  const Tensor big = host(f32, {3000});
  expect_invalid(
      launch_masked_scatter(nullptr, big, host(DType::kBool, {3000}), big, counts, nullptr),
      "chunk counts");
  expect_invalid(launch_masked_scatter(nullptr, out, host(DType::kBool, {4, 1}), host(f32, {60}),
                                       counts, nullptr),
                 "no kernel");
  EXPECT_EQ(masked_scatter_scratch_elements(0), 1);
  EXPECT_EQ(masked_scatter_scratch_elements(1024), 1);
  EXPECT_EQ(masked_scatter_scratch_elements(1025), 2);
  EXPECT_TRUE(launch_masked_scatter(nullptr, host(f32, {0, 3}), host(DType::kBool, {3}),
                                    host(f32, {0}), counts, nullptr)
                  .ok());
}

// --- verdicts and plans -----------------------------------------------------------------------

using passes::testing::ProgramBuilder;

TEST(ScatterKernelTest, FamilyNodesPlanAsScatterSteps) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {6, 5});
  ir::Value* index = b.input("index", DType::kInt64, {3, 5});
  ir::Value* src = b.input("src", DType::kFloat32, {3, 5});
  ir::Value* rows = b.input("rows", DType::kInt32, {4});
  ir::Value* values = b.input("values", DType::kFloat32, {5});
  ir::Value* mask = b.input("mask", DType::kBool, {5});
  ir::Value* source = b.input("source", DType::kFloat32, {40});
  ir::Value* keep = b.input("keep", DType::kBool, {6});
  std::vector<ir::Value*> outs = {
      b.node("gathered", "aten.gather.default", {x, int64_t{-2}, index}),
      b.node("scattered", "aten.scatter.src", {x, int64_t{0}, index, src}),
      b.node("filled", "aten.scatter.value", {x, int64_t{1}, index, 2.5}),
      b.node("added", "aten.scatter_add.default", {x, int64_t{0}, index, src}),
      b.node("mean", "aten.scatter_reduce.two",
             {x, int64_t{0}, index, src, std::string("mean"), false}),
      b.node("amax", "aten.scatter_reduce.two",
             {x, int64_t{0}, index, src, std::string("amax"), true}),
      b.node("put", "aten.index_put.default", {x, std::vector<ir::Value*>{rows}, values, false}),
      b.node("accumulated", "aten.index_put.default",
             {x, std::vector<ir::Value*>{nullptr, index}, src, true}),
      b.node("masked", "aten.masked_scatter.default", {x, mask, source}),
      // A row mask whose values fit every row: out[keep] = values, no data-dependent shape.
      b.node("mask_put", "aten.index_put.default", {x, std::vector<ir::Value*>{keep}, values,
                                                    true}),
  };
  for (ir::Value* out : outs) b.output(out);
  std::shared_ptr<ir::Program> program = b.finish();
  for (const ir::Node& node : program->graph.nodes()) {
    const convert::Verdict verdict = cuda_verdict(node);
    EXPECT_TRUE(verdict.accepted()) << node.name << ": " << verdict.reason();
  }
  PlanOptions options;
  options.arch = "sm_90";
  auto plan = make_plan(*program, {}, options);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  std::vector<std::string> kinds;
  for (const auto& step : plan->steps) kinds.emplace_back(step->kind());
  EXPECT_EQ(kinds, (std::vector<std::string>{"gather", "scatter", "scatter", "scatter", "scatter",
                                             "scatter", "scatter", "scatter", "scatter",
                                             "scatter"}))
      << plan->summary();
  const std::string text = plan->module.text();
  for (const char* name :
       {"kiln_gather_f32_i64", "kiln_scatter_assign_f32_i64_value", "kiln_scatter_mean_f32_i64",
        "kiln_index_put_f32_accumulate", "kiln_masked_scatter_f32",
        "kiln_masked_put_f32_b8_accumulate"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
  auto compiled = compile_cuda_source(text, "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
}

TEST(ScatterKernelTest, DeclinesWhatTheKernelsDoNotTake) {
  ProgramBuilder b;
  ir::Value* flags = b.input("flags", DType::kBool, {6, 5});
  ir::Value* index = b.input("index", DType::kInt64, {3, 5});
  ir::Value* flag_src = b.input("flag_src", DType::kBool, {3, 5});
  ir::Value* flag_row = b.input("flag_row", DType::kBool, {5});
  ir::Value* x = b.input("x", DType::kFloat32, {6, 5});
  ir::Value* keep = b.input("keep", DType::kBool, {6});
  ir::Value* values = b.input("values", DType::kFloat32, {2, 5});
  ir::Value* x64 = b.input("x64", DType::kFloat64, {6, 5});
  ir::Value* src64 = b.input("src64", DType::kFloat64, {3, 5});
  b.output(b.node("bool_sum", "aten.scatter_add.default", {flags, int64_t{0}, index, flag_src}));
  b.output(b.node("bool_accumulate", "aten.index_put.default",
                  {flags, std::vector<ir::Value*>{index}, flag_row, true}));
  b.output(b.node("mask_put", "aten.index_put.default",
                  {x, std::vector<ir::Value*>{keep}, values, false}));
  b.output(b.node("double", "aten.scatter.src", {x64, int64_t{0}, index, src64}));
  std::shared_ptr<ir::Program> program = b.finish();
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"bool_sum", "reducing scatter of bool"},
      {"bool_accumulate", "accumulating index_put of bool"},
      {"mask_put", "dim for the masked rows"},
      {"double", "float64"}};
  size_t checked = 0;
  for (const ir::Node& node : program->graph.nodes()) {
    for (const auto& [name, words] : expected) {
      if (node.name != name) continue;
      const convert::Verdict verdict = cuda_verdict(node);
      EXPECT_FALSE(verdict.accepted()) << name;
      EXPECT_NE(verdict.reason().find(words), std::string::npos)
          << name << ": " << verdict.reason();
      ++checked;
    }
  }
  EXPECT_EQ(checked, expected.size());
}

}  // namespace
}  // namespace kiln::cuda
