#include "passes/no_op_removal.h"

#include <gtest/gtest.h>

#include "passes/pass_test_util.h"

namespace kiln::passes {
namespace {

using testing::ProgramBuilder;

// pass_identity_ops.pt2: view(x, [2, 4]) + 1 -> view -> clone -> permute [0, 1] -> assertion ->
// * 2, and clone(x) as the second output.
TEST(NoOpRemovalTest, RemovesIdentityViewsAndClonesOfExportedModel) {
  auto program = testing::load_fixture("pass_identity_ops.pt2");
  ASSERT_TRUE(program);
  Tensor x = testing::pseudo_random(DType::kFloat32, {2, 4});
  auto before = testing::run_cpu(program, {x});
  std::vector<std::string> log;
  auto changes = remove_no_ops(*program, &log);
  ASSERT_TRUE(changes.ok()) << changes.status().to_string();
  EXPECT_EQ(*changes, 4);
  EXPECT_EQ(log.size(), 4u);
  const ir::Graph& g = program->graph;
  for (const char* name : {"view", "view_1", "clone", "permute"}) {
    EXPECT_EQ(testing::find_node(g, name), nullptr) << name;
  }
  // clone(x) is a graph output: without it the output would be the input itself.
  EXPECT_NE(testing::find_node(g, "clone_1"), nullptr);
  EXPECT_EQ(testing::output_names(g), (std::vector<std::string>{"mul", "clone_1"}));
  // The assertion and the multiplication read `add` directly.
  const ir::Node* mul = testing::find_node(g, "mul");
  ASSERT_NE(mul, nullptr);
  EXPECT_EQ(std::get<ir::Value*>(mul->args[0])->name, "add");
  EXPECT_EQ(std::get<ir::Value*>(testing::find_node(g, "add")->args[0])->name, "x");
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {x}));

  auto again = remove_no_ops(*program);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
}

TEST(NoOpRemovalTest, GraphOutputKeepsItsNameWhenItsCopyGoes) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2, 3});
  ir::Value* relu = b.node("relu", "aten.relu.default", {x});
  ir::Value* neg = b.node("neg", "aten.neg.default", {relu});
  ir::Value* out = b.node("out", "aten.clone.default", {relu});
  b.output(out);
  b.output(neg);
  auto program = b.finish();
  Tensor input = testing::pseudo_random(DType::kFloat32, {2, 3});
  auto before = testing::run_cpu(program, {input});
  auto changes = remove_no_ops(*program);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 1);
  const ir::Graph& g = program->graph;
  EXPECT_EQ(testing::output_names(g), (std::vector<std::string>{"out", "neg"}));
  // relu now produces `out`, which neg reads.
  const ir::Node* producer = g.outputs()[0]->producer;
  ASSERT_NE(producer, nullptr);
  EXPECT_EQ(producer->name, "relu");
  EXPECT_EQ(std::get<ir::Value*>(testing::find_node(g, "neg")->args[0])->name, "out");
  EXPECT_EQ(g.find_value("relu"), nullptr);
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {input}));
}

TEST(NoOpRemovalTest, KeepsCopiesThatWouldAliasOutputsOrInputs) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2, 3});
  ir::Value* w = b.weight("w", testing::pseudo_random(DType::kFloat32, {2, 3}));
  ir::Value* relu = b.node("relu", "aten.relu.default", {x});
  // Both outputs would become one value.
  ir::Value* copy = b.node("copy", "aten.clone.default", {relu});
  // A copy of a view of an output would become a view of it.
  ir::Value* view = b.node("view", "aten.view.default", {relu, ProgramBuilder::ints({3, 2})});
  ir::Value* view_copy = b.node("view_copy", "aten.clone.default", {view});
  // Would be the weight itself.
  ir::Value* weight_copy = b.node("weight_copy", "aten._to_copy.default", {w});
  // Would be the input itself.
  ir::Value* same_view =
      b.node("same_view", "aten.view.default", {x, ProgramBuilder::ints({2, 3})});
  for (ir::Value* v : {relu, copy, view_copy, weight_copy, same_view}) b.output(v);
  auto program = b.finish();
  auto changes = remove_no_ops(*program);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 0);
  EXPECT_EQ(program->graph.nodes().size(), 6u);
}

TEST(NoOpRemovalTest, KeepsNodesThatChangeSomething) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {4, 4});
  ir::Value* image = b.input("image", DType::kFloat32, {1, 2, 3, 3});
  const std::vector<ir::Value*> kept = {
      b.node("reshape", "aten.view.default", {x, ProgramBuilder::ints({2, 8})}),
      b.node("cast", "aten._to_copy.default", {x, DType::kFloat16}),
      b.node("transpose", "aten.permute.default", {x, ProgramBuilder::ints({1, 0})}),
      b.node("square_t", "aten.t.default", {x}),
      b.node("half", "aten.slice.Tensor", {x, int64_t{0}, int64_t{0}, int64_t{2}, int64_t{1}}),
      b.node("strided", "aten.slice.Tensor", {x, int64_t{1}, int64_t{0}, int64_t{4}, int64_t{2}}),
      b.node("channels_last", "aten.clone.default", {image, ir::MemoryFormat::kChannelsLast}),
      b.node("train_dropout", "aten.dropout.default", {x, 0.5, true}),
  };
  // Read by one more node each so that none is a graph output.
  for (ir::Value* v : kept) b.output(b.node(v->name + "_neg", "aten.neg.default", {v}));
  auto program = b.finish();
  auto changes = remove_no_ops(*program);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 0);
}

// Ops that export decomposes but other programs may hold (the CPU backend cannot run them).
TEST(NoOpRemovalTest, RemovesContiguousAndEvalDropout) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {3, 4});
  ir::Value* relu = b.node("relu", "aten.relu.default", {x});
  ir::Value* v = b.node("contiguous", "aten.contiguous.default", {relu});
  v = b.node("dropout", "aten.dropout.default", {v, 0.5, false});
  b.output(v);
  auto program = b.finish();
  auto changes = remove_no_ops(*program);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 2);
  ASSERT_EQ(program->graph.nodes().size(), 1u);
  EXPECT_EQ(program->graph.outputs()[0]->name, "dropout");
  EXPECT_EQ(program->graph.outputs()[0]->producer->name, "relu");
  testing::expect_valid(*program);
}

TEST(NoOpRemovalTest, RemovesEveryIdentityForm) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {3, 4});
  ir::Value* v = b.node("relu", "aten.relu.default", {x});
  v = b.node("view", "aten.view.default", {v, ProgramBuilder::ints({3, 4})});
  v = b.node("reshape", "aten.reshape.default", {v, ProgramBuilder::ints({3, -1})});
  v = b.node("expand", "aten.expand.default", {v, ProgramBuilder::ints({3, 4})});
  v = b.node("permute", "aten.permute.default", {v, ProgramBuilder::ints({-2, -1})});
  v = b.node("transpose", "aten.transpose.int", {v, int64_t{1}, int64_t{-1}});
  v = b.node("slice", "aten.slice.Tensor",
             {v, int64_t{1}, int64_t{0}, int64_t{INT64_MAX}, int64_t{1}});
  v = b.node("squeeze", "aten.squeeze.dim", {v, int64_t{0}});
  v = b.node("alias", "aten.alias.default", {v});
  v = b.node("to", "aten._to_copy.default", {v, DType::kFloat32});
  v = b.node("clone", "aten.clone.default", {v, ir::MemoryFormat::kContiguous});
  b.output(b.node("out", "aten.neg.default", {v}));
  auto program = b.finish();
  Tensor input = testing::pseudo_random(DType::kFloat32, {3, 4});
  auto before = testing::run_cpu(program, {input});
  auto changes = remove_no_ops(*program);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 10);
  ASSERT_EQ(program->graph.nodes().size(), 2u);
  EXPECT_EQ(std::get<ir::Value*>(testing::find_node(program->graph, "out")->args[0])->name, "relu");
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {input}));
}

}  // namespace
}  // namespace kiln::passes
