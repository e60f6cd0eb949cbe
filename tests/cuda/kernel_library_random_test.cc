// The random family (rand, randn, randperm, native_dropout) without a GPU: its kernels compile
// with NVRTC for sm_90 and sm_80, names and code are deterministic, launches reject bad
// arguments before touching the GPU, the family's verdicts take what the kernels compute and
// decline the rest with a reason, and its steps write the outputs that have buffers. The GPU
// half: kernel_library_random_gpu_test.cc.
#include "cuda/kernel_library_random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuda/nvrtc_compiler.h"
#include "cuda/plan.h"
#include "cuda/steps.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {


namespace {

constexpr DType kFloatTypes[] = {DType::kFloat32, DType::kFloat16, DType::kBFloat16};

// The family's kernels an engine meets: each distribution and dropout per float dtype, randperm
// in a few dtypes, and the advance; returns the entry names.
std::vector<std::string> add_random_family(ModuleSource& module) {
  std::vector<std::string> names;
  for (DType t : kFloatTypes) {
    names.push_back(rand_kernel(module, RandomDistribution::kUniform, t));
    names.push_back(rand_kernel(module, RandomDistribution::kNormal, t));
    names.push_back(dropout_kernel(module, t));
  }
  for (DType t : {DType::kInt64, DType::kInt32, DType::kUInt8, DType::kFloat32, DType::kFloat16}) {
    names.push_back(randperm_kernel(module, t));
  }
  names.push_back(generator_advance_kernel(module));
  return names;
}

void expect_compiles(const ModuleSource& module, const std::vector<std::string>& names,
                     const char* arch) {
  auto compiled = compile_cuda_source(module.text(), arch, false);
  ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
  for (const std::string& name : names) {
    EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
  }
}

// Every kernel for sm_90; one dtype's for sm_80 (the code paths do not differ by arch).
TEST(RandomKernelTest, CompilesForSm90AndSm80) {
  ModuleSource module;
  expect_compiles(module, add_random_family(module), "sm_90");
  ModuleSource half;
  const std::vector<std::string> names = {
      rand_kernel(half, RandomDistribution::kNormal, DType::kFloat16),
      dropout_kernel(half, DType::kFloat16), randperm_kernel(half, DType::kInt64),
      generator_advance_kernel(half)};
  expect_compiles(half, names, "sm_80");
}

TEST(RandomKernelTest, NamesAndCodeAreDeterministic) {
  ModuleSource a, b;
  EXPECT_EQ(add_random_family(a), add_random_family(b));
  EXPECT_EQ(a.text(), b.text());
  EXPECT_EQ(rand_kernel(a, RandomDistribution::kUniform, DType::kFloat16), "kiln_rand_f16");
  EXPECT_EQ(rand_kernel(a, RandomDistribution::kNormal, DType::kBFloat16), "kiln_randn_bf16");
  EXPECT_EQ(randperm_kernel(a, DType::kInt64), "kiln_randperm_i64");
  EXPECT_EQ(dropout_kernel(a, DType::kFloat32), "kiln_dropout_f32");
  EXPECT_EQ(generator_advance_kernel(a), "kiln_random_advance");
}

TEST(RandomKernelTest, DrawCounts) {
  EXPECT_EQ(rand_draws(0), 0);
  EXPECT_EQ(rand_draws(1), 1);
  EXPECT_EQ(rand_draws(4), 1);
  EXPECT_EQ(rand_draws(5), 2);
  EXPECT_EQ(randperm_draws(37), 19);
  EXPECT_EQ(dropout_draws(6), 3);
  EXPECT_EQ(dropout_draws(7), 4);
}

// Host tensors stand in for device ones: every call below must fail validation before it
// reaches the GPU (there is none here, and the kernels and state are null or fake).
Tensor host(DType dtype, Shape sizes) { return Tensor::empty(dtype, std::move(sizes)).value(); }

void expect_invalid(const Status& status, std::string_view words) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << words << "'";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(words), std::string::npos) << status.to_string();
}

TEST(RandomKernelTest, LaunchesValidate) {
  const DType f32 = DType::kFloat32;
  auto* state = reinterpret_cast<GeneratorState*>(uintptr_t{1} << 40);  // never dereferenced
  expect_invalid(launch_rand(nullptr, nullptr, host(DType::kInt64, {4}), state, nullptr),
                 "float32, float16 or bfloat16 output");
  expect_invalid(launch_rand(nullptr, nullptr, host(DType::kFloat64, {4}), state, nullptr),
                 "float32, float16 or bfloat16 output");
  expect_invalid(launch_rand(nullptr, nullptr, host(f32, {4}), state, nullptr), "no kernel");
  // Nothing to draw: no kernel, state or data needed.
  EXPECT_TRUE(launch_rand(nullptr, nullptr, host(f32, {3, 0}), nullptr, nullptr).ok());

  expect_invalid(launch_randperm(nullptr, nullptr, host(DType::kInt64, {2, 3}), state, nullptr),
                 "1-D output");
  expect_invalid(launch_randperm(nullptr, nullptr, host(DType::kBool, {3}), state, nullptr),
                 "integer, float32");
  expect_invalid(
      launch_randperm(nullptr, nullptr, host(DType::kInt64, {kRandpermMax + 1}), state, nullptr),
      "n <= 4096");
  expect_invalid(launch_randperm(nullptr, nullptr, host(DType::kInt64, {5}), state, nullptr),
                 "no kernel");
  EXPECT_TRUE(launch_randperm(nullptr, nullptr, host(DType::kInt64, {0}), nullptr, nullptr).ok());

  const Tensor x = host(f32, {2, 3});
  const Tensor y = host(f32, {2, 3}), m = host(DType::kBool, {2, 3});
  expect_invalid(launch_dropout(nullptr, nullptr, host(DType::kInt32, {2, 3}), nullptr, &m, 0.5,
                                state, nullptr),
                 "float32, float16 or bfloat16 input");
  for (double p : {0.0, -0.1, 1.5}) {
    expect_invalid(launch_dropout(nullptr, nullptr, x, &y, &m, p, state, nullptr), "0 < p <= 1");
  }
  const Tensor wide = host(f32, {2, 4});
  expect_invalid(launch_dropout(nullptr, nullptr, x, &wide, &m, 0.5, state, nullptr),
                 "sizes of input");
  const Tensor half = host(DType::kFloat16, {2, 3});
  expect_invalid(launch_dropout(nullptr, nullptr, x, &half, &m, 0.5, state, nullptr),
                 "like the input");
  expect_invalid(launch_dropout(nullptr, nullptr, x, &y, &y, 0.5, state, nullptr), "bool mask");
  expect_invalid(launch_dropout(nullptr, nullptr, x, &y, nullptr, 1.0, state, nullptr),
                 "no kernel");
  expect_invalid(launch_dropout(nullptr, nullptr, x, nullptr, &m, 0.5, state, nullptr),
                 "no kernel");
  EXPECT_TRUE(launch_dropout(nullptr, nullptr, x, nullptr, nullptr, 0.5, nullptr, nullptr).ok());
  expect_invalid(launch_dropout(nullptr, nullptr, host(f32, {0, 3}), &y, &m, 0.5, nullptr,
                                nullptr),
                 "sizes of input");
  const Tensor empty_out = host(f32, {0, 3}), empty_mask = host(DType::kBool, {0, 3});
  EXPECT_TRUE(launch_dropout(nullptr, nullptr, host(f32, {0, 3}), &empty_out, &empty_mask, 0.5,
                             nullptr, nullptr)
                  .ok());
}

// --- verdicts and steps -------------------------------------------------------------------------

using passes::testing::ProgramBuilder;

const ir::Node& node_named(const ir::Program& program, std::string_view name) {
  const ir::Node* node = passes::testing::find_node(program.graph, name);
  EXPECT_NE(node, nullptr) << name;
  return *node;
}

// The nodes torch.export gives torch.rand / randn / randperm and dropout in training.
std::shared_ptr<ir::Program> random_program() {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {4, 5});
  ir::Value* h = b.input("h", DType::kFloat16, {3, 7});
  ir::Value* d = b.input("d", DType::kFloat64, {3});
  const ir::Argument none = ir::NoneArg{};
  const std::vector<ir::Value*> outs = {
      b.node("rand", "aten.rand.default", {ProgramBuilder::ints({2, 3})}),
      b.node("rand_f16", "aten.rand.default", {ProgramBuilder::ints({5}), DType::kFloat16}),
      b.node("randn_bf16", "aten.randn.default", {ProgramBuilder::ints({2, 2}), DType::kBFloat16}),
      b.node("randn_f64", "aten.randn.default", {ProgramBuilder::ints({2}), DType::kFloat64}),
      b.node("rand_rank9", "aten.rand.default",
             {ProgramBuilder::ints({1, 1, 1, 1, 1, 1, 1, 1, 2})}),
      b.node("perm", "aten.randperm.default", {int64_t{37}}),
      b.node("perm_0", "aten.randperm.default", {int64_t{0}}),
      b.node("perm_1", "aten.randperm.default", {int64_t{1}}),
      b.node("perm_f32", "aten.randperm.default", {int64_t{37}, DType::kFloat32}),
      b.node("perm_f16_2048", "aten.randperm.default", {int64_t{2048}, DType::kFloat16}),
      b.node("perm_f16_2049", "aten.randperm.default", {int64_t{2049}, DType::kFloat16}),
      b.node("perm_u8_300", "aten.randperm.default", {int64_t{300}, DType::kUInt8}),
      b.node("perm_large", "aten.randperm.default", {int64_t{5000}}),
      b.node("perm_f64", "aten.randperm.default", {int64_t{3}, DType::kFloat64}),
      b.node("drop", "aten.native_dropout.default", {x, 0.5, true}),
      b.node("drop_none", "aten.native_dropout.default", {h, 0.25, none}),
      b.node("drop_all", "aten.native_dropout.default", {x, 1.0, true}),
      b.node("drop_p0", "aten.native_dropout.default", {x, 0.0, true}),
      b.node("drop_eval", "aten.native_dropout.default", {x, 0.5, false}),
      b.node("drop_f64", "aten.native_dropout.default", {d, 0.5, true}),
  };
  for (ir::Value* v : outs) b.output(v);
  return b.finish();
}

TEST(RandomStepTest, VerdictsTakeWhatTheKernelsCompute) {
  const std::shared_ptr<ir::Program> program = random_program();
  const LibraryFamily& family = random_family();
  for (const ir::Node& node : program->graph.nodes()) EXPECT_TRUE(family.takes(node.op));
  EXPECT_FALSE(family.takes(ir::OpKey::aten_rand_like_default));
  for (const char* name : {"rand", "rand_f16", "randn_bf16", "perm", "perm_0", "perm_1",
                           "perm_f32", "perm_f16_2048", "drop", "drop_none", "drop_all",
                           "drop_p0", "drop_eval"}) {
    const convert::Verdict v = family.verdict(node_named(*program, name));
    EXPECT_TRUE(v.accepted()) << name << ": " << v.reason();
  }
  const std::pair<const char*, const char*> declined[] = {
      {"randn_f64", "float64"},
      {"rand_rank9", "rank 9"},
      {"perm_f16_2049", "up to n = 2048"},
      {"perm_u8_300", "up to n = 256"},
      {"perm_large", "randperm of n > 4096"},
      {"perm_f64", "float64"},
      {"drop_f64", "float64"},
  };
  for (const auto& [name, words] : declined) {
    const convert::Verdict v = family.verdict(node_named(*program, name));
    ASSERT_FALSE(v.accepted()) << name;
    EXPECT_NE(v.reason().find(words), std::string::npos) << name << ": " << v.reason();
  }
}

TEST(RandomStepTest, SizesKnownOnlyAtRunTimeAreDeclined) {
  std::shared_ptr<ir::Program> program = random_program();
  ir::Graph& graph = program->graph;
  ir::Value* s = graph.add_value("s0", ir::ValueKind::kSymInt);
  for (const ir::Node& node : graph.nodes()) {
    if (node.name == "rand") {
      auto& sizes = std::get<std::vector<ir::SymInt>>(const_cast<ir::Node&>(node).args[0]);
      sizes[0] = ir::SymInt{0, s};
      const convert::Verdict v = random_family().verdict(node);
      ASSERT_FALSE(v.accepted());
      EXPECT_NE(v.reason().find("sizes known only at run time"), std::string::npos) << v.reason();
    }
    if (node.name == "perm") {
      const_cast<ir::Node&>(node).args[0] = s;
      const convert::Verdict v = random_family().verdict(node);
      ASSERT_FALSE(v.accepted());
      EXPECT_NE(v.reason().find("n known only at run time"), std::string::npos) << v.reason();
    }
  }
}

// Slots as the planner gives them: every tensor value with fake device storage, except those
// named in `unstored` (no buffer: nothing reads them).
Slots planning_slots(const ir::Program& program, const std::vector<std::string>& unstored) {
  Slots slots(program.graph.num_values());
  for (const ir::Value& v : program.graph.values()) {
    if (v.kind != ir::ValueKind::kTensor) continue;
    Shape sizes;
    for (const ir::SymDim& dim : v.shape) sizes.push_back(dim.value);
    if (std::find(unstored.begin(), unstored.end(), v.name) != unstored.end()) {
      slots[v.id] = ir::RtValue::of(Tensor::meta(v.dtype, sizes));
      continue;
    }
    auto storage = Storage::borrow(reinterpret_cast<void*>(uintptr_t{1} << 40),
                                   std::max<size_t>(shape_numel(sizes) * dtype_size(v.dtype), 1),
                                   nullptr);
    slots[v.id] = ir::RtValue::of(
        Tensor::from_storage(storage, v.dtype, sizes, contiguous_strides(sizes), 0).value());
  }
  return slots;
}

TEST(RandomStepTest, StepsWriteTheStoredOutputs) {
  const std::shared_ptr<ir::Program> program = random_program();
  const Slots slots = planning_slots(*program, {"drop_none_1", "drop_all"});
  ModuleSource module;
  auto step_of = [&](const char* name) {
    auto step = random_family().make(node_named(*program, name), slots, module);
    EXPECT_TRUE(step.ok()) << name << ": " << step.status().to_string();
    return step.ok() ? std::move(step).value() : nullptr;
  };
  auto value_id = [&](const char* name) {
    for (const ir::Value& v : program->graph.values()) {
      if (v.name == name) return v.id;
    }
    ADD_FAILURE() << name;
    return uint32_t{0};
  };
  auto rand = step_of("rand");
  ASSERT_NE(rand, nullptr);
  EXPECT_EQ(rand->kind(), "random");
  EXPECT_EQ(rand->describe(), "random[aten.rand.default] -> rand");
  EXPECT_TRUE(rand->reads.empty());
  EXPECT_EQ(rand->writes, std::vector<uint32_t>{value_id("rand")});
  auto perm = step_of("perm_f32");
  ASSERT_NE(perm, nullptr);
  EXPECT_EQ(perm->writes, std::vector<uint32_t>{value_id("perm_f32")});
  auto drop = step_of("drop");
  ASSERT_NE(drop, nullptr);
  EXPECT_EQ(drop->reads, std::vector<uint32_t>{value_id("x")});
  EXPECT_EQ(drop->writes, (std::vector<uint32_t>{value_id("drop"), value_id("drop_1")}));
  // The mask nobody reads has no buffer: only the output is written.
  auto drop_none = step_of("drop_none");
  ASSERT_NE(drop_none, nullptr);
  EXPECT_EQ(drop_none->writes, std::vector<uint32_t>{value_id("drop_none")});
  // Only the mask is read.
  auto drop_all = step_of("drop_all");
  ASSERT_NE(drop_all, nullptr);
  EXPECT_EQ(drop_all->writes, std::vector<uint32_t>{value_id("drop_all_1")});
  const std::string text = module.text();
  for (const char* name : {"kiln_rand_f32", "kiln_randperm_f32", "kiln_dropout_f32",
                           "kiln_dropout_f16", "kiln_random_advance"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
  // A declined node is refused by make as well, with the verdict's reason.
  auto refused = random_family().make(node_named(*program, "drop_f64"), slots, module);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("float64"), std::string::npos);
}

}  // namespace
}  // namespace kiln::cuda
