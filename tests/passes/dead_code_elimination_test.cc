#include "passes/dead_code_elimination.h"

#include <gtest/gtest.h>

#include "passes/pass_test_util.h"

namespace kiln::passes {
namespace {

using testing::ProgramBuilder;

// out = relu(x) + b; a dead branch sum(x * w) reads its own weight; `unused_input` is never read.
std::shared_ptr<ir::Program> dead_branch_program() {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2, 3});
  b.input("unused_input", DType::kFloat32, {4});
  ir::Value* w = b.weight("branch.w", testing::pseudo_random(DType::kFloat32, {2, 3}, 2));
  ir::Value* bias =
      b.weight("bias", testing::pseudo_random(DType::kFloat32, {3}, 3), ir::InputKind::kBuffer);
  ir::Value* mul = b.node("mul", "aten.mul.Tensor", {x, w});
  b.node("sum", "aten.sum.default", {mul});
  ir::Value* relu = b.node("relu", "aten.relu.default", {x});
  b.output(b.node("add", "aten.add.Tensor", {relu, bias}));
  return b.finish();
}

TEST(DeadCodeEliminationTest, RemovesDeadBranchAndItsWeight) {
  auto program = dead_branch_program();
  Tensor x = testing::pseudo_random(DType::kFloat32, {2, 3}, 5);
  Tensor unused = testing::pseudo_random(DType::kFloat32, {4}, 6);
  auto before = testing::run_cpu(program, {x, unused});

  std::vector<std::string> log;
  auto changes = eliminate_dead_code(*program, &log);
  ASSERT_TRUE(changes.ok()) << changes.status().to_string();
  EXPECT_EQ(*changes, 3);  // mul, sum, branch.w
  EXPECT_EQ(log.size(), 3u);
  const ir::Graph& g = program->graph;
  EXPECT_EQ(testing::find_node(g, "mul"), nullptr);
  EXPECT_EQ(testing::find_node(g, "sum"), nullptr);
  EXPECT_NE(testing::find_node(g, "relu"), nullptr);
  EXPECT_NE(testing::find_node(g, "add"), nullptr);
  EXPECT_EQ(testing::find_input(g, "branch.w"), nullptr);
  EXPECT_NE(testing::find_input(g, "bias"), nullptr);
  // User inputs are the program's interface: they stay even when nothing reads them.
  EXPECT_NE(testing::find_input(g, "unused_input"), nullptr);
  EXPECT_EQ(program->weights.size(), 1u);
  EXPECT_EQ(testing::output_names(g), std::vector<std::string>{"add"});
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {x, unused}));

  auto again = eliminate_dead_code(*program);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
}

TEST(DeadCodeEliminationTest, KeepsSideEffectsAndWhatTheyRead) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2});
  ir::Value* neg = b.node("neg", "aten.neg.default", {x});
  // An assertion returns nothing but must run; it keeps `neg` alive.
  b.node_outputs("check", "aten._assert_tensor_metadata.default",
                 {neg, ir::NoneArg{}, ir::NoneArg{}, DType::kFloat32});
  ir::Value* abs = b.node("abs", "aten.abs.default", {x});
  b.output(abs);
  b.output(abs);  // an output listed twice stays listed twice
  auto program = b.finish();
  auto changes = eliminate_dead_code(*program);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 0);
  EXPECT_EQ(program->graph.nodes().size(), 3u);
  EXPECT_EQ(program->graph.outputs().size(), 2u);

  EXPECT_TRUE(has_side_effects(ir::OpKey::aten__assert_scalar_default));
  EXPECT_TRUE(has_side_effects(ir::OpKey::aten__functional_assert_async_msg));
  EXPECT_FALSE(has_side_effects(ir::OpKey::aten_relu_default));
  EXPECT_FALSE(has_side_effects(ir::OpKey::aten_rand_default));  // unused randomness can go
}

TEST(DeadCodeEliminationTest, DropsUnusedBuffersOfExportedModel) {
  // Export keeps batch norms' num_batches_tracked buffers as inputs though nothing reads them.
  auto program = testing::load_fixture("pass_conv_bn_block.pt2");
  ASSERT_TRUE(program);
  const size_t nodes = program->graph.nodes().size();
  std::vector<std::string> log;
  auto changes = eliminate_dead_code(*program, &log);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 2);
  EXPECT_EQ(testing::find_input(program->graph, "b_bn1_num_batches_tracked"), nullptr);
  EXPECT_EQ(testing::find_input(program->graph, "b_bn2_num_batches_tracked"), nullptr);
  EXPECT_EQ(program->graph.nodes().size(), nodes);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_NE(log[0].find("bn1.num_batches_tracked"), std::string::npos) << log[0];
  testing::expect_valid(*program);
}

}  // namespace
}  // namespace kiln::passes
