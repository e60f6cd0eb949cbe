#include "passes/program_edit.h"

#include <gtest/gtest.h>

#include "passes/pass_test_util.h"

namespace kiln::passes {
namespace {

using testing::ProgramBuilder;

// x -> relu -> neg -> (out); a second reader of relu (add) keeps users in node order.
TEST(GraphEditTest, ReplaceAllUsesRewritesArgumentsOutputsAndUsers) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {4});
  ir::Value* relu = b.node("relu", "aten.relu.default", {x});
  ir::Value* neg = b.node("neg", "aten.neg.default", {relu});
  ir::Value* add = b.node("add", "aten.add.Tensor", {x, neg});
  b.output(relu);
  b.output(add);
  auto program = b.finish();
  ir::Graph& g = program->graph;

  g.replace_all_uses(relu, x);
  EXPECT_EQ(std::get<ir::Value*>(testing::find_node(g, "neg")->args[0]), x);
  EXPECT_EQ(g.outputs()[0], x);
  EXPECT_TRUE(relu->users.empty());
  // x is read by relu (id 0), neg (id 1) and add (id 2): in node order, each once.
  ASSERT_EQ(x->users.size(), 3u);
  EXPECT_EQ(x->users[0]->name, "relu");
  EXPECT_EQ(x->users[1]->name, "neg");
  EXPECT_EQ(x->users[2]->name, "add");
}

TEST(GraphEditTest, EraseNodesRenumbersRelinksAndCompactDropsOrphans) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2});
  ir::Value* w = b.weight("w", testing::pseudo_random(DType::kFloat32, {2}));
  ir::Value* dead = b.node("dead", "aten.mul.Tensor", {x, w});
  ir::Value* relu = b.node("relu", "aten.relu.default", {x});
  b.output(relu);
  auto program = b.finish();
  ir::Graph& g = program->graph;
  ASSERT_EQ(w->users.size(), 1u);

  EXPECT_EQ(g.erase_nodes([](const ir::Node& n) { return n.name == "dead"; }), 1u);
  EXPECT_EQ(g.erase_nodes([](const ir::Node&) { return false; }), 0u);
  ASSERT_EQ(g.nodes().size(), 1u);
  EXPECT_EQ(g.nodes()[0].id, 0u);
  EXPECT_EQ(relu->producer, &g.nodes()[0]);
  EXPECT_TRUE(w->users.empty());
  EXPECT_EQ(dead->producer, nullptr);

  EXPECT_EQ(g.erase_inputs([](const ir::GraphInput& in) { return in.target == "w"; }), 1u);
  program->weights.erase(w->id);
  const size_t before = g.num_values();
  compact(*program);
  // `dead` and `w` are gone; x and relu are renumbered 0 and 1 and found by name.
  EXPECT_EQ(g.num_values(), before - 2);
  ASSERT_NE(g.find_value("relu"), nullptr);
  EXPECT_EQ(g.find_value("dead"), nullptr);
  EXPECT_EQ(g.find_value("x")->id, 0u);
  EXPECT_EQ(g.find_value("relu")->id, 1u);
  EXPECT_EQ(g.outputs()[0], g.find_value("relu"));
  EXPECT_EQ(std::get<ir::Value*>(g.nodes()[0].args[0]), g.find_value("x"));
  testing::expect_valid(*program);
  Tensor input = testing::pseudo_random(DType::kFloat32, {2});
  auto out = testing::run_cpu(program, {input});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].sizes(), Shape({2}));
}

TEST(GraphEditTest, CompactKeepsWeightsKeyedByTheirValues) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {3});
  ir::Value* unused = b.weight("unused", testing::pseudo_random(DType::kFloat32, {5}));
  ir::Value* w = b.weight("w", testing::pseudo_random(DType::kFloat32, {3}, 7));
  b.output(b.node("add", "aten.add.Tensor", {x, w}));
  auto program = b.finish();
  const std::vector<double> w_values = testing::values_of(program->weights.at(w->id));
  program->graph.erase_inputs([&](const ir::GraphInput& in) { return in.value == unused; });
  program->weights.erase(unused->id);
  compact(*program);
  const ir::Value* moved = program->graph.find_value("w");
  ASSERT_NE(moved, nullptr);
  EXPECT_EQ(moved->id, 1u);
  ASSERT_EQ(program->weights.count(moved->id), 1u);
  EXPECT_EQ(testing::values_of(program->weights.at(moved->id)), w_values);
  testing::expect_valid(*program);
}

TEST(GraphEditTest, AddConstantRecordsMetaAndPicksAFreeName) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2, 3});
  b.output(b.node("_folded_c", "aten.relu.default", {x}));
  auto program = b.finish();
  ir::Value* c =
      add_constant(*program, "_folded_c", testing::pseudo_random(DType::kFloat16, {2, 3}));
  EXPECT_EQ(c->name, "_folded_c_1");
  EXPECT_TRUE(c->has_recorded_meta);
  EXPECT_EQ(c->dtype, DType::kFloat16);
  ASSERT_EQ(c->shape.size(), 2u);
  EXPECT_EQ(c->shape[1].value, 3);
  const ir::GraphInput& in = program->graph.inputs().back();
  EXPECT_EQ(in.value, c);
  EXPECT_EQ(in.kind, ir::InputKind::kConstant);
  EXPECT_EQ(in.target, "_folded_c_1");
  EXPECT_EQ(weight_tensor(*program, c), &program->weights.at(c->id));
  EXPECT_EQ(weight_tensor(*program, x), nullptr);  // a user input has no weight
}

}  // namespace
}  // namespace kiln::passes
