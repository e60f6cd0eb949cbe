#include "passes/constant_folding.h"

#include <gtest/gtest.h>

#include "passes/dead_code_elimination.h"
#include "passes/pass_test_util.h"

namespace kiln::passes {
namespace {

using testing::ProgramBuilder;

// pass_constant_subgraph.pt2: (mm(x, permute(w)), x + (arange(4) + b)).
TEST(ConstantFoldingTest, FoldsTransposedWeightAndArangeSubgraph) {
  auto program = testing::load_fixture("pass_constant_subgraph.pt2");
  ASSERT_TRUE(program);
  Tensor x = testing::pseudo_random(DType::kFloat32, {2, 4}, 3);
  auto before = testing::run_cpu(program, {x});
  const Tensor w = program->weights.at(program->graph.find_value("p_w")->id);
  const Tensor b = program->weights.at(program->graph.find_value("b_b")->id);

  std::vector<std::string> log;
  auto changes = fold_constants(*program, {}, &log);
  ASSERT_TRUE(changes.ok()) << changes.status().to_string();
  EXPECT_EQ(*changes, 3);     // permute, arange, add
  EXPECT_EQ(log.size(), 2u);  // two new constants: arange is only an intermediate
  testing::expect_valid(*program);
  const ir::Graph& g = program->graph;
  EXPECT_EQ(testing::count_op(g, ir::OpKey::aten_permute_default), 0);
  EXPECT_EQ(testing::count_op(g, ir::OpKey::aten_arange_start_step), 0);
  ASSERT_EQ(g.nodes().size(), 2u);  // mm, add_1
  EXPECT_EQ(testing::output_names(g), (std::vector<std::string>{"mm", "add_1"}));

  const ir::GraphInput* wt = testing::find_input(g, "_folded_permute");
  ASSERT_NE(wt, nullptr);
  EXPECT_EQ(wt->kind, ir::InputKind::kConstant);
  EXPECT_EQ(wt->target, "_folded_permute");
  EXPECT_EQ(std::get<ir::Value*>(testing::find_node(g, "mm")->args[1]), wt->value);
  const Tensor& wt_tensor = program->weights.at(wt->value->id);
  ASSERT_EQ(wt_tensor.sizes(), Shape({4, 3}));
  EXPECT_TRUE(wt_tensor.is_contiguous());
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t j = 0; j < 3; ++j) {
      EXPECT_EQ(wt_tensor.data<float>()[i * 3 + j], w.data<float>()[j * 4 + i]);
    }
  }
  const ir::GraphInput* sum = testing::find_input(g, "_folded_add");
  ASSERT_NE(sum, nullptr);
  EXPECT_EQ(sum->value->dtype, DType::kFloat32);
  ASSERT_EQ(sum->value->shape.size(), 1u);
  EXPECT_EQ(sum->value->shape[0].value, 4);
  const Tensor& sum_tensor = program->weights.at(sum->value->id);
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(sum_tensor.data<float>()[i], static_cast<float>(i) + b.data<float>()[i]);
  }
  testing::expect_same_outputs(before, testing::run_cpu(program, {x}));

  // The weights the folded nodes read are dead now.
  auto dropped = eliminate_dead_code(*program);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 2);
  EXPECT_EQ(testing::find_input(program->graph, "p_w"), nullptr);
  EXPECT_EQ(testing::find_input(program->graph, "b_b"), nullptr);
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {x}));

  auto again = fold_constants(*program);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
}

TEST(ConstantFoldingTest, KeepsDtypeOfCasts) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat16, {2, 3});
  ir::Value* w = b.weight("w", testing::pseudo_random(DType::kFloat32, {2, 3}));
  ir::Value* w16 = b.node("to", "aten._to_copy.default", {w, DType::kFloat16});
  b.output(b.node("mul", "aten.mul.Tensor", {x, w16}));
  auto program = b.finish();
  Tensor input = testing::pseudo_random(DType::kFloat16, {2, 3}, 4);
  auto before = testing::run_cpu(program, {input});
  auto changes = fold_constants(*program);
  ASSERT_TRUE(changes.ok()) << changes.status().to_string();
  EXPECT_EQ(*changes, 1);
  const ir::GraphInput* folded = testing::find_input(program->graph, "_folded_to");
  ASSERT_NE(folded, nullptr);
  EXPECT_EQ(folded->value->dtype, DType::kFloat16);
  EXPECT_EQ(program->weights.at(folded->value->id).dtype(), DType::kFloat16);
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {input}));
}

TEST(ConstantFoldingTest, LeavesUserDependentNodesAndGraphOutputProducers) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {3, 2});
  ir::Value* w = b.weight("w", testing::pseudo_random(DType::kFloat32, {2, 3}));
  // Its output is a graph output: it keeps its producing node (and so its name).
  ir::Value* wt = b.node("wt", "aten.permute.default", {w, ProgramBuilder::ints({1, 0})});
  ir::Value* sum = b.node("sum", "aten.add.Tensor", {x, wt});
  b.output(wt);
  b.output(sum);
  auto program = b.finish();
  auto changes = fold_constants(*program);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 0);
  EXPECT_EQ(program->graph.nodes().size(), 2u);
  EXPECT_EQ(testing::output_names(program->graph), (std::vector<std::string>{"wt", "sum"}));
}

TEST(ConstantFoldingTest, LeavesFactoriesLargerThanTheCap) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {64, 64});
  ir::Value* ones = b.node("ones", "aten.full.default",
                           {ProgramBuilder::ints({64, 64}), int64_t{1}, DType::kFloat32});
  ir::Value* small =
      b.node("small", "aten.full.default", {ProgramBuilder::ints({64}), 0.5, DType::kFloat32});
  ir::Value* add = b.node("add", "aten.add.Tensor", {x, ones});
  b.output(b.node("mul", "aten.mul.Tensor", {add, small}));
  auto program = b.finish();
  Tensor input = testing::pseudo_random(DType::kFloat32, {64, 64});
  auto before = testing::run_cpu(program, {input});
  // 64 * 64 * 4 = 16 KiB stays a factory; 64 * 4 bytes fold.
  auto changes = fold_constants(*program, ConstantFoldingOptions{.max_folded_bytes = 4096});
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 1);
  EXPECT_NE(testing::find_node(program->graph, "ones"), nullptr);
  EXPECT_EQ(testing::find_node(program->graph, "small"), nullptr);
  EXPECT_NE(testing::find_input(program->graph, "_folded_small"), nullptr);
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {input}));
}

TEST(ConstantFoldingTest, DeterminismOfOps) {
  EXPECT_TRUE(is_deterministic(ir::OpKey::aten_add_Tensor));
  EXPECT_TRUE(is_deterministic(ir::OpKey::aten_arange_start_step));
  EXPECT_FALSE(is_deterministic(ir::OpKey::aten_rand_default));
  EXPECT_FALSE(is_deterministic(ir::OpKey::aten_randn_like_default));
  EXPECT_FALSE(is_deterministic(ir::OpKey::aten_empty_memory_format));
  EXPECT_FALSE(is_deterministic(ir::OpKey::aten_native_dropout_default));
}

TEST(ConstantFoldingTest, DoesNotFoldUninitializedFactories) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {4});
  ir::Value* w = b.weight("w", testing::pseudo_random(DType::kFloat32, {4}));
  // Folding `empty` would bake whatever the memory held into the program.
  ir::Value* scratch =
      b.node("scratch", "aten.empty.memory_format", {ProgramBuilder::ints({4}), DType::kFloat32});
  ir::Value* sum = b.node("sum", "aten.add.Tensor", {w, scratch});
  ir::Value* scaled = b.node("scaled", "aten.mul.Scalar", {w, 2.0});
  ir::Value* out = b.node("out", "aten.add.Tensor", {x, sum});
  b.output(b.node("out2", "aten.add.Tensor", {out, scaled}));
  auto program = b.finish();
  auto changes = fold_constants(*program);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 1);  // only `scaled`
  EXPECT_NE(testing::find_node(program->graph, "scratch"), nullptr);
  EXPECT_NE(testing::find_node(program->graph, "sum"), nullptr);
  EXPECT_EQ(testing::find_node(program->graph, "scaled"), nullptr);
  testing::expect_valid(*program);
}

}  // namespace
}  // namespace kiln::passes
