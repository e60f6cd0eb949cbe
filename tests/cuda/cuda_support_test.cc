// Which nodes the CUDA backend takes: the registry's "cuda" implementations, as the partitioner
// sees them, on small lowered programs.
#include "cuda/cuda_support.h"

#include <gtest/gtest.h>

#include "frontend/pt2_reader.h"
#include "partition/partition.h"
#include "passes/pass_test_util.h"

namespace kiln::cuda {
namespace {

std::shared_ptr<ir::Program> fixture(const std::string& name) {
  auto program = frontend::read_program_file(std::string(KILN_TEST_DATA_DIR) + "/pt2/" + name);
  EXPECT_TRUE(program.ok()) << program.status().to_string();
  return program.ok() ? *program : nullptr;
}

partition::PartitionSettings cuda_settings() {
  partition::PartitionSettings settings;
  settings.backend = "cuda";
  settings.min_block_size = 1;
  settings.require_full_compilation = true;
  return settings;
}

TEST(CudaSupportTest, TheFixturesRunWhollyOnCuda) {
  for (const char* name : {"cuda_convnet.pt2", "cuda_transformer.pt2"}) {
    auto program = fixture(name);
    ASSERT_TRUE(program);
    auto plan = partition::partition(*program, convert::default_registry(), cuda_settings());
    ASSERT_TRUE(plan.ok()) << name << ": " << plan.status().to_string();
    EXPECT_EQ(plan->supported_ops, plan->total_ops) << name;
  }
}

TEST(CudaSupportTest, EveryNodeOfEveryFixtureGetsAnAnswer) {
  // The validators look at every kind of node without crashing, and a rejection says why.
  for (const char* name : {"linear.pt2", "partition_chain.pt2", "partition_diamond.pt2",
                           "partition_dynamic_view.pt2", "pass_conv_bn_block.pt2",
                           "pass_conv_bn_relu_linear.pt2", "pass_conv_transpose_bn.pt2",
                           "pass_identity_ops.pt2", "pass_constant_subgraph.pt2"}) {
    auto program = fixture(name);
    ASSERT_TRUE(program) << name;
    for (const ir::Node& node : program->graph.nodes()) {
      const convert::Verdict verdict = cuda_verdict(node);
      if (!verdict.accepted()) EXPECT_FALSE(verdict.reason().empty()) << node.name;
    }
  }
}

TEST(CudaSupportTest, Float64IsLeftToPyTorchWithAReason) {
  auto program = fixture("linear.pt2");
  ASSERT_TRUE(program);
  for (ir::Value& v : program->graph.values()) {
    if (v.kind == ir::ValueKind::kTensor) v.dtype = DType::kFloat64;
  }
  bool rejected = false;
  for (const ir::Node& node : program->graph.nodes()) {
    const convert::Verdict verdict = cuda_verdict(node);
    if (!verdict.accepted()) {
      rejected = true;
      EXPECT_NE(verdict.reason().find("float64"), std::string::npos) << verdict.reason();
    }
  }
  EXPECT_TRUE(rejected);
}

TEST(CudaSupportTest, Float64RunsOnlyConversionsComparisonsAndCat) {
  using passes::testing::ProgramBuilder;
  ProgramBuilder b;
  ir::Value* f = b.input("f", DType::kFloat32, {5});
  ir::Value* h = b.input("h", DType::kFloat16, {5});
  ir::Value* d = b.input("d", DType::kFloat64, {1});
  ir::Value* d5 = b.input("d5", DType::kFloat64, {5});
  b.output(b.node("widen", "aten._to_copy.default", {f, DType::kFloat64}));
  b.output(b.node("narrow", "aten._to_copy.default", {d5, DType::kFloat32}));
  b.output(b.node("to_half", "aten._to_copy.default", {d5, DType::kFloat16}));
  b.output(b.node("compare", "aten.gt.Tensor", {f, d}));
  b.output(b.node("joined", "aten.cat.default", {std::vector<ir::Value*>{f, d5, h}}));
  b.output(b.node("sum", "aten.add.Tensor", {d5, d}));
  b.output(b.node("sine", "aten.sin.default", {d5}));
  std::shared_ptr<ir::Program> program = b.finish();
  for (const ir::Node& node : program->graph.nodes()) {
    const convert::Verdict verdict = cuda_verdict(node);
    const bool taken = node.name == "widen" || node.name == "narrow" || node.name == "compare" ||
                       node.name == "joined";
    EXPECT_EQ(verdict.accepted(), taken) << node.name << ": " << verdict.reason();
    if (!taken) EXPECT_NE(verdict.reason().find("float64"), std::string::npos) << node.name;
  }
}

}  // namespace
}  // namespace kiln::cuda
