#include "passes/batch_norm_folding.h"

#include <gtest/gtest.h>

#include "passes/constant_folding.h"
#include "passes/dead_code_elimination.h"
#include "passes/pass_test_util.h"

namespace kiln::passes {
namespace {

using testing::ProgramBuilder;

// Folding reassociates fp32 arithmetic: results agree to about 1e-6 relative, not bit for bit.
constexpr double kFoldTolerance = 1e-5;

// pass_conv_bn_block.pt2: a ResNet basic block, conv1 without bias, conv2 with one.
TEST(BatchNormFoldingTest, FoldsBothBatchNormsOfResNetBlock) {
  auto program = testing::load_fixture("pass_conv_bn_block.pt2");
  ASSERT_TRUE(program);
  Tensor x = testing::pseudo_random(DType::kFloat32, {1, 4, 6, 6}, 9);
  auto before = testing::run_cpu(program, {x});
  std::vector<std::string> log;
  auto changes = fold_batch_norms(*program, &log);
  ASSERT_TRUE(changes.ok()) << changes.status().to_string();
  EXPECT_EQ(*changes, 2);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_NE(log[0].find("into 'convolution'"), std::string::npos) << log[0];
  const ir::Graph& g = program->graph;
  EXPECT_EQ(testing::count_op(g, ir::OpKey::aten__native_batch_norm_legit_no_training_default), 0);
  EXPECT_EQ(testing::count_op(g, ir::OpKey::aten_convolution_default), 2);
  EXPECT_EQ(g.nodes().size(), 5u);  // convolution, relu, convolution_1, add, relu_1
  EXPECT_EQ(testing::output_names(g), std::vector<std::string>{"relu_1"});

  // The convolutions read new constants and produce the batch norms' results, by name.
  const ir::Node* conv1 = testing::find_node(g, "convolution");
  ASSERT_NE(conv1, nullptr);
  EXPECT_EQ(conv1->outputs[0]->name, "getitem");
  const ir::Value* weight = std::get<ir::Value*>(conv1->args[1]);
  const ir::Value* bias = std::get<ir::Value*>(conv1->args[2]);  // conv1 had none
  EXPECT_EQ(weight->name, "_folded_p_conv1_weight");
  EXPECT_EQ(bias->name, "_folded_convolution_bias");
  EXPECT_EQ(testing::find_input(g, weight->name)->kind, ir::InputKind::kConstant);
  ASSERT_EQ(bias->shape.size(), 1u);
  EXPECT_EQ(bias->shape[0].value, 4);
  const ir::Node* conv2 = testing::find_node(g, "convolution_1");
  ASSERT_NE(conv2, nullptr);
  EXPECT_EQ(conv2->outputs[0]->name, "getitem_3");
  EXPECT_EQ(std::get<ir::Value*>(conv2->args[2])->name, "_folded_p_conv2_bias");
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {x}), kFoldTolerance);

  // Every old weight and batch-norm statistic is dead now; four new constants remain.
  auto dropped = eliminate_dead_code(*program);
  ASSERT_TRUE(dropped.ok());
  EXPECT_EQ(*dropped, 13);
  EXPECT_EQ(program->weights.size(), 4u);
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {x}), kFoldTolerance);
}

// pass_conv_transpose_bn.pt2: ConvTranspose2d(4, 6, groups=2); weight [4, 3, 3, 3].
TEST(BatchNormFoldingTest, FoldsIntoGroupedTransposedConvolution) {
  auto program = testing::load_fixture("pass_conv_transpose_bn.pt2");
  ASSERT_TRUE(program);
  Tensor x = testing::pseudo_random(DType::kFloat32, {1, 4, 3, 3}, 4);
  auto before = testing::run_cpu(program, {x});
  auto changes = fold_batch_norms(*program);
  ASSERT_TRUE(changes.ok()) << changes.status().to_string();
  EXPECT_EQ(*changes, 1);
  ASSERT_EQ(program->graph.nodes().size(), 1u);
  EXPECT_EQ(testing::output_names(program->graph), std::vector<std::string>{"getitem"});
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {x}), kFoldTolerance);
}

// pass_conv_bn_relu_linear.pt2 ends in addmm(bias, x, permute(w)) -> batch norm: once the
// transposed weight is a constant, the batch norm folds into the addmm.
TEST(BatchNormFoldingTest, FoldsIntoAddmmOnceItsWeightIsConstant) {
  auto program = testing::load_fixture("pass_conv_bn_relu_linear.pt2");
  ASSERT_TRUE(program);
  Tensor x = testing::pseudo_random(DType::kFloat32, {3, 3, 5, 5}, 2);
  auto before = testing::run_cpu(program, {x});
  auto first = fold_batch_norms(*program);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 1);  // the convolution's; permute(w) is not a constant yet
  EXPECT_EQ(testing::count_op(program->graph,
                              ir::OpKey::aten__native_batch_norm_legit_no_training_default),
            1);
  ASSERT_TRUE(fold_constants(*program).ok());
  auto second = fold_batch_norms(*program);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, 1);
  const ir::Graph& g = program->graph;
  EXPECT_EQ(testing::count_op(g, ir::OpKey::aten__native_batch_norm_legit_no_training_default), 0);
  const ir::Node* addmm = testing::find_node(g, "addmm");
  ASSERT_NE(addmm, nullptr);
  EXPECT_EQ(addmm->outputs[0]->name, "getitem_3");
  EXPECT_EQ(std::get<ir::Value*>(addmm->args[0])->name, "_folded_p_fc_bias");
  EXPECT_EQ(std::get<ir::Value*>(addmm->args[2])->name, "_folded_permute_1");
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {x}), kFoldTolerance);
}

// conv -> batch norm, with the knobs the pass must respect.
std::shared_ptr<ir::Program> conv_bn(bool conv_read_twice, bool stats_from_input,
                                     bool stats_output_used) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {1, 2, 4, 4});
  ir::Value* w = b.weight("w", testing::pseudo_random(DType::kFloat32, {3, 2, 3, 3}));
  ir::Value* gamma = b.weight("gamma", testing::pseudo_random(DType::kFloat32, {3}, 2));
  ir::Value* beta = b.weight("beta", testing::pseudo_random(DType::kFloat32, {3}, 3));
  ir::Value* mean = stats_from_input
                        ? b.input("mean", DType::kFloat32, {3})
                        : b.weight("mean", testing::pseudo_random(DType::kFloat32, {3}, 4));
  Tensor var_values = testing::from_values({0.5f, 1.0f, 2.0f});
  ir::Value* var = b.weight("var", var_values, ir::InputKind::kBuffer);
  ir::Value* conv =
      b.node("conv", "aten.convolution.default",
             {x, w, ir::NoneArg{}, ProgramBuilder::ints({1, 1}), ProgramBuilder::ints({1, 1}),
              ProgramBuilder::ints({1, 1}), false, ProgramBuilder::ints({0, 0}), int64_t{1}});
  auto bn = b.node_outputs("bn", "aten._native_batch_norm_legit_no_training.default",
                           {conv, gamma, beta, mean, var, 0.1, 1e-5});
  b.output(bn[0]);
  if (conv_read_twice) b.output(b.node("relu", "aten.relu.default", {conv}));
  if (stats_output_used) b.output(bn[1]);
  return b.finish();
}

TEST(BatchNormFoldingTest, FoldsHandBuiltConvWithoutBias) {
  auto program = conv_bn(false, false, false);
  Tensor x = testing::pseudo_random(DType::kFloat32, {1, 2, 4, 4}, 5);
  auto before = testing::run_cpu(program, {x});
  auto changes = fold_batch_norms(*program);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(*changes, 1);
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {x}), kFoldTolerance);
}

TEST(BatchNormFoldingTest, FoldsLinearIntoNativeBatchNormInEvalMode) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {3, 4});
  ir::Value* w = b.weight("fc.weight", testing::pseudo_random(DType::kFloat32, {5, 4}));
  ir::Value* bias = b.weight("fc.bias", testing::pseudo_random(DType::kFloat32, {5}, 2));
  ir::Value* gamma = b.weight("bn.weight", testing::pseudo_random(DType::kFloat32, {5}, 3));
  ir::Value* mean = b.weight("bn.mean", testing::pseudo_random(DType::kFloat32, {5}, 4));
  ir::Value* var = b.weight("bn.var", testing::from_values({0.5f, 1.0f, 1.5f, 2.0f, 3.0f}));
  ir::Value* fc = b.node("fc", "aten.linear.default", {x, w, bias});
  auto bn = b.node_outputs("bn", "aten.native_batch_norm.default",
                           {fc, gamma, ir::NoneArg{}, mean, var, false, 0.1, 1e-3});
  b.output(bn[0]);
  auto program = b.finish();
  Tensor input = testing::pseudo_random(DType::kFloat32, {3, 4}, 6);
  auto before = testing::run_cpu(program, {input});
  auto changes = fold_batch_norms(*program);
  ASSERT_TRUE(changes.ok()) << changes.status().to_string();
  EXPECT_EQ(*changes, 1);
  ASSERT_EQ(program->graph.nodes().size(), 1u);
  EXPECT_EQ(program->graph.nodes()[0].op, ir::OpKey::aten_linear_default);
  EXPECT_EQ(program->graph.outputs()[0]->name, "bn");
  testing::expect_valid(*program);
  testing::expect_same_outputs(before, testing::run_cpu(program, {input}), kFoldTolerance);
}

// Folding runs in double precision but the new weights keep the layer's dtype.
TEST(BatchNormFoldingTest, KeepsHalfPrecisionWeightsInHalf) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat16, {1, 2, 4, 4});
  ir::Value* w = b.weight("w", testing::pseudo_random(DType::kFloat16, {3, 2, 1, 1}));
  ir::Value* bias = b.weight("b", testing::pseudo_random(DType::kFloat16, {3}, 2));
  ir::Value* gamma = b.weight("gamma", testing::pseudo_random(DType::kFloat16, {3}, 3));
  ir::Value* mean = b.weight("mean", testing::pseudo_random(DType::kFloat16, {3}, 4));
  ir::Value* var =
      b.weight("var", testing::from_values({0.5f, 1.0f, 2.0f}).to(DType::kFloat16).value());
  ir::Value* conv =
      b.node("conv", "aten.convolution.default",
             {x, w, bias, ProgramBuilder::ints({1, 1}), ProgramBuilder::ints({0, 0}),
              ProgramBuilder::ints({1, 1}), false, ProgramBuilder::ints({0, 0}), int64_t{1}});
  auto bn = b.node_outputs("bn", "aten._native_batch_norm_legit_no_training.default",
                           {conv, gamma, ir::NoneArg{}, mean, var, 0.1, 1e-5});
  b.output(bn[0]);
  auto program = b.finish();
  Tensor input = testing::pseudo_random(DType::kFloat16, {1, 2, 4, 4}, 5);
  auto before = testing::run_cpu(program, {input});
  auto changes = fold_batch_norms(*program);
  ASSERT_TRUE(changes.ok()) << changes.status().to_string();
  EXPECT_EQ(*changes, 1);
  const ir::Node& folded = program->graph.nodes()[0];
  for (size_t arg : {1, 2}) {
    const ir::Value* v = std::get<ir::Value*>(folded.args[arg]);
    EXPECT_EQ(v->dtype, DType::kFloat16) << v->name;
    EXPECT_EQ(program->weights.at(v->id).dtype(), DType::kFloat16) << v->name;
  }
  testing::expect_valid(*program);
  // fp16 tolerance (DESIGN.md): the folded weights round once, the original path rounds twice.
  testing::expect_same_outputs(before, testing::run_cpu(program, {input}), 1e-2);
}

TEST(BatchNormFoldingTest, LeavesBatchNormsItCannotFold) {
  for (int knob = 0; knob < 3; ++knob) {
    auto program = conv_bn(knob == 0, knob == 1, knob == 2);
    auto changes = fold_batch_norms(*program);
    ASSERT_TRUE(changes.ok());
    EXPECT_EQ(*changes, 0) << "knob " << knob;
    EXPECT_EQ(testing::count_op(program->graph,
                                ir::OpKey::aten__native_batch_norm_legit_no_training_default),
              1);
  }
}

}  // namespace
}  // namespace kiln::passes
