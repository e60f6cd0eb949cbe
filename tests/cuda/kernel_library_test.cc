// kiln's CUDA kernel library: every family compiles with NVRTC (no GPU needed), names and code are
// deterministic, launch functions reject bad shapes before touching the GPU. The GPU halves:
// kernel_library_rows_gpu_test.cc, kernel_library_spatial_gpu_test.cc,
// kernel_library_index_gpu_test.cc.
#include "cuda/kernel_library.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/cuda_support.h"
#include "cuda/kernel_module.h"
#include "cuda/nvrtc_compiler.h"
#include "cuda/plan.h"
#include "kernel_library_support.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

using namespace kltest;

// --- no GPU needed ----------------------------------------------------------------------------

TEST(KernelLibraryTest, EveryFamilyCompilesForSm90AndSm80) {
  const ModuleSource module = full_module();
  const std::string source = module.text();
  for (const char* arch : {"sm_90", "sm_80"}) {
    auto compiled = compile_cuda_source(source, arch, false);
    ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
    EXPECT_FALSE(compiled->cubin.empty()) << arch;
    // Entry points keep their extern "C" names in the image.
    for (const char* name : {"kiln_softmax_f16_f16_log", "kiln_reduce_mean_bf16_bf16",
                             "kiln_layer_norm_f32_w_b", "kiln_copy_i64_i32"}) {
      EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
    }
  }
}

TEST(KernelLibraryTest, CompilesWithPtx) {
  ModuleSource module;
  add_float_families(module, DType::kFloat16);
  auto compiled = compile_cuda_source(module.text(), "sm_90", true);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
  EXPECT_FALSE(compiled->cubin.empty());
  EXPECT_NE(compiled->ptx.find(".entry kiln_attention_softmax_f16_mask_f16"), std::string::npos);
  EXPECT_NE(compiled->ptx.find(".entry kiln_max_pool2d_f16"), std::string::npos);
}

// The families' templates compile for every dtype (f32, f16 and bf16 are covered above), even
// where an engine would not ask for them.
TEST(KernelLibraryTest, EveryDtypeCompilesInEveryFamily) {
  ModuleSource module;
  for (DType t : {DType::kFloat64, DType::kInt64, DType::kInt32, DType::kInt16, DType::kInt8,
                  DType::kUInt8, DType::kBool}) {
    reduce_kernel(module, ReduceOp::kSum, t, t);
    reduce_kernel(module, ReduceOp::kMax, t, t);
    softmax_kernel(module, t, t, false);
    attention_softmax_kernel(module, t, DType::kBool);
    layer_norm_kernel(module, t, true, true, false);
    pool2d_kernel(module, PoolKind::kAvg, t);
    adaptive_avg_pool2d_kernel(module, t);
    embedding_kernel(module, t, DType::kInt32);
    index_select_kernel(module, t, DType::kInt64);
    fill_kernel(module, t);
    arange_kernel(module, t);
    copy_kernel(module, t, DType::kFloat16);
    copy_kernel(module, DType::kBFloat16, t);
  }
  auto compiled = compile_cuda_source(module.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
}

TEST(KernelLibraryTest, NamesAndCodeAreDeterministic) {
  const ModuleSource a = full_module(), b = full_module();
  EXPECT_EQ(a.text(), b.text());
  ModuleSource c;
  const std::string first = softmax_kernel(c, DType::kFloat16, DType::kFloat16, true);
  const std::string text = c.text();
  EXPECT_EQ(softmax_kernel(c, DType::kFloat16, DType::kFloat16, true), first);
  EXPECT_EQ(c.text(), text);  // asking again adds nothing
  EXPECT_EQ(first, "kiln_softmax_f16_f16_log");
  // Different arguments, different entry points.
  EXPECT_NE(softmax_kernel(c, DType::kFloat16, DType::kFloat16, false), first);
  EXPECT_NE(reduce_kernel(c, ReduceOp::kSum, DType::kFloat16, DType::kFloat32),
            reduce_kernel(c, ReduceOp::kSum, DType::kFloat16, DType::kFloat16));
  EXPECT_NE(layer_norm_kernel(c, DType::kFloat32, true, false, false),
            layer_norm_kernel(c, DType::kFloat32, true, false, true));
  EXPECT_NE(attention_softmax_kernel(c, DType::kFloat32, std::nullopt),
            attention_softmax_kernel(c, DType::kFloat32, DType::kBool));
}

TEST(KernelLibraryTest, ModuleSourceAddsEachPieceOnce) {
  ModuleSource module;
  EXPECT_TRUE(module.empty());
  EXPECT_TRUE(module.add_once("a", "// piece a\n"));
  EXPECT_FALSE(module.add_once("a", "// another a\n"));
  EXPECT_TRUE(module.add_once("b", "// piece b\n"));
  EXPECT_TRUE(module.contains("a"));
  EXPECT_FALSE(module.contains("c"));
  const std::string text = module.text();
  ASSERT_NE(text.find("struct KTensor"), std::string::npos);  // the prelude comes first
  EXPECT_LT(text.find("struct KTensor"), text.find("// piece a"));
  EXPECT_LT(text.find("// piece a"), text.find("// piece b"));
  EXPECT_EQ(text.find("// another a"), std::string::npos);
  // Families share their common code: it appears once however many entry points use it.
  ModuleSource shared;
  softmax_kernel(shared, DType::kFloat32, DType::kFloat32, false);
  attention_softmax_kernel(shared, DType::kFloat32, std::nullopt);
  copy_kernel(shared, DType::kFloat32, DType::kFloat16);
  const std::string shared_text = shared.text();
  const size_t first = shared_text.find("namespace kiln_softmax {");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(shared_text.find("namespace kiln_softmax {", first + 1), std::string::npos);
}

TEST(KernelLibraryTest, DtypeNames) {
  EXPECT_EQ(device_type_name(DType::kFloat16), "kiln_half");
  EXPECT_EQ(device_type_name(DType::kBFloat16), "kiln_bf16");
  EXPECT_EQ(device_type_name(DType::kInt64), "i64");
  EXPECT_EQ(device_type_name(DType::kUInt8), "unsigned char");
  EXPECT_EQ(dtype_tag(DType::kFloat32), "f32");
  EXPECT_EQ(dtype_tag(DType::kBool), "b8");
  EXPECT_NE(dtype_tag(DType::kInt8), dtype_tag(DType::kUInt8));
}

TEST(KernelLibraryTest, MakeKtensor) {
  ASSIGN_OR_FAIL(Tensor t, Tensor::zeros(DType::kFloat32, {4, 6}));
  const Tensor view = t.view_as({3, 2, 2}, {1, 12, 3}, 1);
  ASSIGN_OR_FAIL(KTensor k, make_ktensor(view));
  EXPECT_EQ(k.data, view.raw_data());
  EXPECT_EQ(k.rank, 3);
  EXPECT_EQ(k.sizes[0], 3);
  EXPECT_EQ(k.sizes[2], 2);
  EXPECT_EQ(k.strides[1], 12);
  EXPECT_EQ(k.strides[2], 3);
  const Tensor rank9 = Tensor::meta(DType::kFloat32, Shape(9, 1));
  auto bad = make_ktensor(rank9);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(bad.status().message().find("rank"), std::string::npos);
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

TEST(KernelLibraryTest, LaunchesValidateBeforeTouchingTheGpu) {
  const DType f32 = DType::kFloat32;
  const Tensor x = host(f32, {4, 6});
  expect_invalid(launch_reduce(nullptr, x, host(f32, {4}), nullptr), "keepdim");
  expect_invalid(launch_reduce(nullptr, x, host(f32, {4, 3}), nullptr), "dim 1 has size 3");
  expect_invalid(launch_reduce(nullptr, x, host(f32, {4, 1}), nullptr), "no kernel");

  expect_invalid(launch_softmax(nullptr, x, host(f32, {4, 5}), 1, nullptr), "sizes");
  expect_invalid(launch_softmax(nullptr, x, host(f32, {4, 6}), 2, nullptr), "dim");

  expect_invalid(
      launch_attention_softmax(nullptr, host(f32, {2, 3, 4}), nullptr, 1.0f, false, nullptr),
      "[B, H, Lq, Lk]");
  const Tensor scores = host(f32, {2, 3, 4, 5});
  const Tensor bad_mask = host(DType::kBool, {3, 5});
  expect_invalid(launch_attention_softmax(nullptr, scores, &bad_mask, 1.0f, false, nullptr),
                 "broadcast");
  const Tensor int_mask = host(DType::kInt32, {4, 5});
  expect_invalid(launch_attention_softmax(nullptr, scores, &int_mask, 1.0f, false, nullptr),
                 "mask");
  const Tensor transposed = scores.view_as({2, 3, 5, 4}, {60, 20, 1, 5}, 0);
  expect_invalid(launch_attention_softmax(nullptr, transposed, nullptr, 1.0f, false, nullptr),
                 "contiguous");

  const Tensor w5 = host(f32, {5});
  expect_invalid(launch_layer_norm(nullptr, x, nullptr, nullptr, x, 5, 1e-5, nullptr),
                 "trailing dims");
  expect_invalid(launch_layer_norm(nullptr, x, &w5, nullptr, x, 6, 1e-5, nullptr), "weight");
  expect_invalid(
      launch_layer_norm(nullptr, x, nullptr, nullptr, host(f32, {4, 7}), 6, 1e-5, nullptr),
      "sizes");

  const Tensor image = host(f32, {1, 2, 8, 8});
  Pool2dParams params;
  params.kernel[0] = params.kernel[1] = 2;
  expect_invalid(
      launch_pool2d(nullptr, host(f32, {2, 8, 8}), host(f32, {2, 4, 4}), params, nullptr), "4-D");
  expect_invalid(launch_pool2d(nullptr, image, host(f32, {1, 3, 4, 4}), params, nullptr),
                 "expected output");
  params.padding[1] = 2;
  expect_invalid(launch_pool2d(nullptr, image, host(f32, {1, 2, 6, 6}), params, nullptr),
                 "half the kernel");
  params.padding[1] = 0;
  params.stride[0] = 0;
  expect_invalid(launch_pool2d(nullptr, image, host(f32, {1, 2, 4, 4}), params, nullptr), "stride");
  expect_invalid(launch_adaptive_avg_pool2d(nullptr, image, host(f32, {1, 2, 3}), nullptr), "4-D");

  const Tensor table = host(f32, {10, 4});
  const Tensor ids = host(DType::kInt64, {2, 3});
  expect_invalid(launch_embedding(nullptr, table, ids, host(f32, {2, 3, 5}), nullptr),
                 "expected output");
  expect_invalid(launch_embedding(nullptr, table, host(f32, {2}), host(f32, {2, 4}), nullptr),
                 "int64 or int32");
  const Tensor index = host(DType::kInt64, {3});
  expect_invalid(launch_index_select(nullptr, x, 1, index, host(f32, {4, 6}), nullptr),
                 "expected output");
  expect_invalid(launch_index_select(nullptr, x, 2, index, host(f32, {4, 3}), nullptr), "dim");

  expect_invalid(launch_copy(nullptr, x, host(f32, {6, 4}), nullptr), "sizes");
  expect_invalid(launch_copy(nullptr, x, host(DType::kFloat16, {4, 6}), nullptr), "no kernel");
  expect_invalid(launch_arange(nullptr, x, 0.0, 1.0, nullptr), "1-D");
  expect_invalid(launch_fill(nullptr, x, 2.0, nullptr), "no kernel");

  // Nothing to do: no kernel, no data needed.
  EXPECT_TRUE(launch_softmax(nullptr, host(f32, {0, 6}), host(f32, {0, 6}), 1, nullptr).ok());
  EXPECT_TRUE(launch_copy(nullptr, host(f32, {3, 0}), host(f32, {3, 0}), nullptr).ok());
}

// --- advanced indexing and scans (no GPU needed) -----------------------------------------------

TEST(KernelLibraryTest, IndexAndScanFamiliesCompileForEveryDtype) {
  ModuleSource module;
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64,
                  DType::kInt64, DType::kInt32, DType::kInt16, DType::kInt8, DType::kUInt8,
                  DType::kBool}) {
    index_tensor_kernel(module, t);
    const bool floating = t == DType::kFloat32 || t == DType::kFloat16 ||
                          t == DType::kBFloat16 || t == DType::kFloat64;
    cumsum_kernel(module, t, floating ? t : DType::kInt64);  // PyTorch's default output dtype
    cumsum_kernel(module, t, DType::kFloat32);                // cumsum(..., dtype=float32)
  }
  cumsum_kernel(module, DType::kFloat32, DType::kFloat16);
  cumsum_kernel(module, DType::kInt64, DType::kInt32);
  for (const char* arch : {"sm_90", "sm_80"}) {
    auto compiled = compile_cuda_source(module.text(), arch, false);
    ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
    for (const char* name : {"kiln_index_f16", "kiln_index_b8", "kiln_cumsum_i32_i64",
                             "kiln_cumsum_bf16_bf16", "kiln_cumsum_b8_i64"}) {
      EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
    }
  }
}

TEST(KernelLibraryTest, IndexAndScanNamesAreDeterministic) {
  ModuleSource module;
  EXPECT_EQ(index_tensor_kernel(module, DType::kFloat16), "kiln_index_f16");
  EXPECT_EQ(cumsum_kernel(module, DType::kInt32, DType::kInt64), "kiln_cumsum_i32_i64");
  const std::string text = module.text();
  EXPECT_EQ(index_tensor_kernel(module, DType::kFloat16), "kiln_index_f16");
  EXPECT_EQ(cumsum_kernel(module, DType::kInt32, DType::kInt64), "kiln_cumsum_i32_i64");
  EXPECT_EQ(module.text(), text);  // asking again adds nothing
  EXPECT_NE(cumsum_kernel(module, DType::kFloat16, DType::kFloat32),
            cumsum_kernel(module, DType::kFloat16, DType::kFloat16));
}

// The output sizes launch_index_tensor accepts (PyTorch's rule), checked without a GPU: with the
// right output the launch gets as far as wanting a kernel.
TEST(KernelLibraryTest, IndexTensorResultShapes) {
  const DType f32 = DType::kFloat32, i64 = DType::kInt64, i32 = DType::kInt32;
  const Tensor x = host(f32, {2, 3, 4, 5});
  const Tensor i6 = host(i64, {6}), j6 = host(i32, {6}), i2x6 = host(i64, {2, 6});
  const Tensor i3x1 = host(i64, {3, 1}), j1x7 = host(i32, {1, 7}), j7 = host(i64, {7});
  const Tensor scalar = host(i64, {});
  struct Case {
    const char* what;
    std::vector<const Tensor*> indices;
    Shape expected;
  };
  const std::vector<Case> cases = {
      {"first dim", {&i6}, {6, 3, 4, 5}},
      {"2-D index on dim 1", {nullptr, &i2x6}, {2, 2, 6, 4, 5}},
      {"adjacent, int32 beside int64", {nullptr, &i6, &j6}, {2, 6, 5}},
      {"separated: the block goes first", {&i6, nullptr, &j6}, {6, 3, 5}},
      {"separated, broadcast", {nullptr, &i3x1, nullptr, &j1x7}, {3, 7, 2, 4}},
      {"adjacent, broadcast", {nullptr, &i3x1, &j7}, {2, 3, 7, 5}},
      {"0-d index", {nullptr, &scalar}, {2, 4, 5}},
      {"no index tensors", {nullptr, nullptr}, {2, 3, 4, 5}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    expect_invalid(launch_index_tensor(nullptr, x, c.indices, host(f32, c.expected), nullptr),
                   "no kernel");
    Shape wrong = c.expected;
    wrong.back() += 1;
    expect_invalid(launch_index_tensor(nullptr, x, c.indices, host(f32, wrong), nullptr),
                   "expected output");
  }
}

TEST(KernelLibraryTest, IndexAndScanLaunchesValidateBeforeTouchingTheGpu) {
  const DType f32 = DType::kFloat32, i64 = DType::kInt64;
  const Tensor x = host(f32, {4, 6});
  const Tensor i3 = host(i64, {3}), i4 = host(i64, {4});
  const Tensor mask = host(DType::kBool, {4}), floats = host(f32, {3});
  expect_invalid(launch_index_tensor(nullptr, x, {&mask}, host(f32, {2, 6}), nullptr), "mask");
  expect_invalid(launch_index_tensor(nullptr, x, {&floats}, host(f32, {3, 6}), nullptr),
                 "int64 or int32");
  expect_invalid(launch_index_tensor(nullptr, x, {&i3, &i4}, host(f32, {3}), nullptr),
                 "broadcast");
  expect_invalid(launch_index_tensor(nullptr, x, {&i3, &i3, &i3}, host(f32, {3}), nullptr),
                 "3 indices");
  expect_invalid(launch_index_tensor(nullptr, x, {&i3}, host(DType::kFloat16, {3, 6}), nullptr),
                 "expected output");
  const Tensor broadcast_out = host(f32, {3, 6}).view_as({3, 6}, {0, 1}, 0);
  expect_invalid(launch_index_tensor(nullptr, x, {&i3}, broadcast_out, nullptr), "stride 0");
  // An empty index gives an empty result: nothing to launch.
  const Tensor none = host(i64, {0});
  EXPECT_TRUE(launch_index_tensor(nullptr, x, {&none}, host(f32, {0, 6}), nullptr).ok());

  expect_invalid(launch_cumsum(nullptr, x, host(f32, {4, 5}), 1, nullptr), "sizes");
  expect_invalid(launch_cumsum(nullptr, x, host(i64, {4, 6}), 2, nullptr), "dim");
  expect_invalid(launch_cumsum(nullptr, x, host(i64, {4, 6}), -1, nullptr), "dim");
  expect_invalid(launch_cumsum(nullptr, x, host(i64, {4, 6}), 1, nullptr), "no kernel");
  expect_invalid(launch_cumsum(nullptr, host(f32, {}), host(f32, {}), 0, nullptr), "no kernel");
  EXPECT_TRUE(launch_cumsum(nullptr, host(f32, {0, 6}), host(f32, {0, 6}), 1, nullptr).ok());
}

// The nodes GPT-2 left to PyTorch: index.Tensor (and _unsafe_index) with int64 indices, a None
// entry too, and cumsum of an int64 mask plan as library steps whose module compiles; a mask
// index is refused with its reason.
TEST(KernelLibraryTest, IndexAndCumsumNodesPlanAsLibrarySteps) {
  passes::testing::ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2, 8, 16});
  ir::Value* rows = b.input("rows", DType::kInt64, {3});
  ir::Value* mask = b.input("mask", DType::kInt64, {2, 16});
  ir::Value* picked =
      b.node("picked", "aten.index.Tensor", {x, std::vector<ir::Value*>{nullptr, rows}});
  ir::Value* unchecked =
      b.node("unchecked", "aten._unsafe_index.Tensor", {x, std::vector<ir::Value*>{rows}});
  ir::Value* positions = b.node("positions", "aten.cumsum.default", {mask, int64_t{1}});
  b.output(picked);
  b.output(unchecked);
  b.output(positions);
  std::shared_ptr<ir::Program> program = b.finish();
  EXPECT_EQ(picked->dtype, DType::kFloat32);
  EXPECT_EQ(positions->dtype, DType::kInt64);
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
  EXPECT_EQ(kinds, (std::vector<std::string>{"gather", "gather", "scan"})) << plan->summary();
  EXPECT_NE(plan->module.text().find("kiln_cumsum_i64_i64"), std::string::npos);
  auto compiled = compile_cuda_source(plan->module.text(), "sm_90", false);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();

  // The same nodes with a bool index: a mask, left to PyTorch, saying why.
  rows->dtype = DType::kBool;
  int masked = 0;
  for (const ir::Node& node : program->graph.nodes()) {
    if (node.op == ir::OpKey::aten_cumsum_default) continue;
    const convert::Verdict verdict = cuda_verdict(node);
    EXPECT_FALSE(verdict.accepted()) << node.name;
    EXPECT_NE(verdict.reason().find("mask"), std::string::npos) << verdict.reason();
    ++masked;
  }
  EXPECT_EQ(masked, 2);
}

}  // namespace
}  // namespace kiln::cuda
