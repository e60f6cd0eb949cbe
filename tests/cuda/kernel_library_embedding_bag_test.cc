// The embedding_bag family without a GPU: its kernels compile with NVRTC for sm_90 and sm_80,
// names are deterministic, launches reject bad shapes before touching the GPU, and the verdict
// takes nodes recorded on CUDA (eager CUDA's output shapes) while declining those recorded on the
// CPU, whose index outputs have other shapes and values. The GPU half:
// kernel_library_embedding_bag_gpu_test.cc.
#include "cuda/kernel_library_embedding_bag.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cuda/nvrtc_compiler.h"
#include "cuda/steps.h"
#include "ir/infer/infer_util.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {


namespace {

TEST(EmbeddingBagKernelTest, CompilesForSm90AndSm80) {
  ModuleSource module;
  std::vector<std::string> names;
  for (auto mode : {EmbeddingBagMode::kSum, EmbeddingBagMode::kMean, EmbeddingBagMode::kMax}) {
    names.push_back(embedding_bag_kernel(module, mode, DType::kFloat32, DType::kInt64));
  }
  names.push_back(
      embedding_bag_kernel(module, EmbeddingBagMode::kSum, DType::kFloat16, DType::kInt32));
  names.push_back(
      embedding_bag_kernel(module, EmbeddingBagMode::kMax, DType::kBFloat16, DType::kInt64));
  for (const char* arch : {"sm_90", "sm_80"}) {
    auto compiled = compile_cuda_source(module.text(), arch, false);
    ASSERT_TRUE(compiled.ok()) << arch << ": " << compiled.status().to_string();
    for (const std::string& name : names) {
      EXPECT_NE(compiled->cubin.find(name), std::string::npos) << arch << " lacks " << name;
    }
  }
  EXPECT_EQ(names[0], "kiln_embedding_bag_sum_f32_i64");
  EXPECT_EQ(names[3], "kiln_embedding_bag_sum_f16_i32");
}

Tensor host(DType dtype, Shape sizes) { return Tensor::empty(dtype, std::move(sizes)).value(); }

void expect_invalid(const Status& status, std::string_view words) {
  ASSERT_FALSE(status.ok()) << "expected an error mentioning '" << words << "'";
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find(words), std::string::npos) << status.to_string();
}

TEST(EmbeddingBagKernelTest, LaunchValidates) {
  const DType f32 = DType::kFloat32, i64 = DType::kInt64;
  const Tensor w = host(f32, {10, 5}), idx = host(i64, {5}), off = host(i64, {2});
  const Tensor out = host(f32, {2, 5}), o2b = host(i64, {5}), sizes = host(i64, {2});
  const Tensor none = host(i64, {0});
  EmbeddingBagParams sum, max, last;
  max.mode = EmbeddingBagMode::kMax;
  last.include_last_offset = true;
  const EmbeddingBagOutputs outs{&out, &o2b, &sizes, &none};
  expect_invalid(launch_embedding_bag(nullptr, host(f32, {10}), idx, off, nullptr, outs, sum,
                                      nullptr),
                 "weight [rows, d]");
  expect_invalid(launch_embedding_bag(nullptr, w, host(DType::kInt32, {5}), off, nullptr, outs,
                                      sum, nullptr),
                 "one dtype");
  const Tensor psw_f16 = host(DType::kFloat16, {5});
  expect_invalid(launch_embedding_bag(nullptr, w, idx, off, &psw_f16, outs, sum, nullptr),
                 "per_sample_weights [5]");
  const Tensor psw = host(f32, {5});
  expect_invalid(launch_embedding_bag(nullptr, w, idx, off, &psw, outs, max, nullptr),
                 "with mode sum");
  // Eager CUDA's shapes: bag_size has an element per offset, max_indices none for a sum.
  const Tensor cpu_sizes = host(i64, {1});
  expect_invalid(launch_embedding_bag(nullptr, w, idx, off, nullptr,
                                      {&out, &o2b, &cpu_sizes, &none}, last, nullptr),
                 "expected output [1, 5]");
  const Tensor one_bag = host(f32, {1, 5});
  expect_invalid(launch_embedding_bag(nullptr, w, idx, off, nullptr,
                                      {&one_bag, &o2b, &cpu_sizes, &none}, last, nullptr),
                 "expected bag_size [2]");
  const Tensor per_bag = host(i64, {2});
  expect_invalid(launch_embedding_bag(nullptr, w, idx, off, nullptr,
                                      {&out, &o2b, &sizes, &per_bag}, sum, nullptr),
                 "expected max_indices [0]");
  expect_invalid(launch_embedding_bag(nullptr, w, idx, off, nullptr,
                                      {&out, &o2b, &sizes, &per_bag}, max, nullptr),
                 "expected max_indices [2, 5]");
  expect_invalid(launch_embedding_bag(nullptr, w, idx, off, &psw, outs, sum, nullptr),
                 "no kernel");
  // Outputs without readers are skipped; no bags or no features: nothing to do.
  expect_invalid(launch_embedding_bag(nullptr, w, idx, off, nullptr, {&out}, sum, nullptr),
                 "no kernel");
  const Tensor featureless = host(f32, {2, 0}), no_bags = host(f32, {0, 5});
  const Tensor one_offset = host(i64, {1});
  EXPECT_TRUE(launch_embedding_bag(nullptr, host(f32, {10, 0}), idx, off, nullptr,
                                   {&featureless, &o2b, &sizes, &none}, sum, nullptr)
                  .ok());
  EXPECT_TRUE(launch_embedding_bag(nullptr, w, idx, one_offset, nullptr,
                                   {&no_bags, &o2b, &one_offset, &none}, last, nullptr)
                  .ok());
}

using passes::testing::ProgramBuilder;

// Sets the node's index outputs to the shapes eager CUDA's meta function records.
void record_cuda_form(ir::Node& node, int64_t n, int64_t offsets, int64_t bags, int64_t d,
                      bool max) {
  auto set = [](ir::Value* v, std::vector<int64_t> sizes) {
    v->has_recorded_meta = true;
    v->shape.clear();
    for (int64_t s : sizes) v->shape.push_back(ir::SymDim{s, nullptr});
  };
  set(node.outputs[1], {n});
  set(node.outputs[2], {offsets});
  set(node.outputs[3], max ? std::vector<int64_t>{bags, d} : std::vector<int64_t>{0});
}

// The conformance sample _embedding_bag(float32[10, 5], int64[5], int64[2], False, 0, False,
// float32[5]) and mean / max / include_last_offset / padding_idx variants, recorded on CUDA, are
// taken; the same nodes with the CPU's output shapes are declined, saying which output.
TEST(EmbeddingBagStepTest, Verdicts) {
  ProgramBuilder b;
  ir::Value* w = b.input("w", DType::kFloat32, {10, 5});
  ir::Value* idx = b.input("idx", DType::kInt64, {5});
  ir::Value* off = b.input("off", DType::kInt64, {2});
  ir::Value* psw = b.input("psw", DType::kFloat32, {5});
  ir::Value* idx32 = b.input("idx32", DType::kInt32, {5});
  const std::string op = "aten._embedding_bag.default";
  const ir::Argument none = ir::NoneArg{};
  b.output(b.node("sum_psw", op, {w, idx, off, false, int64_t{0}, false, psw}));
  b.output(b.node("mean", op, {w, idx, off, false, int64_t{1}, false, none}));
  b.output(b.node("max", op, {w, idx, off, false, int64_t{2}, false, none}));
  b.output(b.node("sum_last_pad", op,
                  {w, idx, off, false, int64_t{0}, false, none, true, int64_t{3}}));
  b.output(b.node("mixed", op, {w, idx32, off, false, int64_t{1}, false, none}));
  std::shared_ptr<ir::Program> program = b.finish();
  const LibraryFamily& family = embedding_bag_family();
  for (ir::Node& node : program->graph.nodes()) {
    ASSERT_TRUE(family.takes(node.op));
    const bool max = node.name == "max";
    const bool last = node.name == "sum_last_pad";
    if (node.name == "mixed") {
      EXPECT_FALSE(family.verdict(node).accepted());
      continue;
    }
    // As recorded on the CPU.
    EXPECT_FALSE(ir::embedding_bag_cuda_form(node)) << node.name;
    const convert::Verdict cpu = family.verdict(node);
    if (max) {
      EXPECT_TRUE(cpu.accepted()) << "max: the CPU and CUDA shapes agree: " << cpu.reason();
    } else {
      EXPECT_FALSE(cpu.accepted()) << node.name;
    }
    record_cuda_form(node, 5, 2, last ? 1 : 2, 5, max);
    // Inference recognizes the CUDA form where its shapes differ from the CPU's (a max without
    // include_last_offset has the same shapes in both).
    EXPECT_EQ(ir::embedding_bag_cuda_form(node), !max) << node.name;
    const convert::Verdict cuda = family.verdict(node);
    EXPECT_TRUE(cuda.accepted()) << node.name << ": " << cuda.reason();
  }
}

}  // namespace
}  // namespace kiln::cuda
