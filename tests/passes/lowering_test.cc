#include "passes/lowering.h"

#include <gtest/gtest.h>

#include "passes/pass_test_util.h"

namespace kiln::passes {
namespace {

constexpr double kFoldTolerance = 1e-5;  // batch-norm folding reassociates fp32 arithmetic

bool log_mentions(const std::vector<std::string>& log, std::string_view text) {
  for (const std::string& line : log) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

// pass_conv_bn_relu_linear.pt2: conv-bn-relu, global average pool, flatten, linear, batch norm 1d;
// the batch is dynamic in [2, 16].
TEST(LoweringTest, LowersConvBnReluLinearModel) {
  auto program = testing::load_fixture("pass_conv_bn_relu_linear.pt2");
  ASSERT_TRUE(program);
  std::vector<Tensor> inputs = {testing::pseudo_random(DType::kFloat32, {2, 3, 5, 5}, 1),
                                testing::pseudo_random(DType::kFloat32, {7, 3, 5, 5}, 2)};
  std::vector<std::vector<Tensor>> before;
  for (const Tensor& x : inputs) before.push_back(testing::run_cpu(program, {x}));

  std::vector<std::string> log;
  LoweringOptions options;
  options.log = &log;
  Status status = run_lowering_passes(*program, options);
  ASSERT_TRUE(status.ok()) << status.to_string();
  const ir::Graph& g = program->graph;
  // sym_size (read by the flatten view), convolution, relu, mean, view, addmm.
  std::vector<ir::OpKey> ops;
  for (const ir::Node& node : g.nodes()) ops.push_back(node.op);
  EXPECT_EQ(ops, (std::vector<ir::OpKey>{
                     ir::OpKey::aten_sym_size_int, ir::OpKey::aten_convolution_default,
                     ir::OpKey::aten_relu_default, ir::OpKey::aten_mean_dim,
                     ir::OpKey::aten_view_default, ir::OpKey::aten_addmm_default}))
      << ir::print_graph(g);
  EXPECT_EQ(testing::output_names(g), std::vector<std::string>{"getitem_3"});
  // Only the folded weights and biases of the convolution and the addmm remain.
  EXPECT_EQ(program->weights.size(), 4u);
  for (const ir::GraphInput& in : g.inputs()) {
    if (in.kind == ir::InputKind::kUserInput) continue;
    EXPECT_EQ(in.kind, ir::InputKind::kConstant) << in.value->name;
    EXPECT_EQ(in.target.rfind("_folded_", 0), 0u) << in.target;
  }
  testing::expect_valid(*program);
  for (size_t i = 0; i < inputs.size(); ++i) {
    testing::expect_same_outputs(before[i], testing::run_cpu(program, {inputs[i]}), kFoldTolerance);
  }
  EXPECT_TRUE(log_mentions(log, "dead_code_elimination:"));
  EXPECT_TRUE(log_mentions(log, "constant_folding:"));
  EXPECT_TRUE(log_mentions(log, "batch_norm_folding:"));

  // A fixed point: lowering again changes nothing.
  std::vector<std::string> second_log;
  options.log = &second_log;
  status = run_lowering_passes(*program, options);
  ASSERT_TRUE(status.ok()) << status.to_string();
  EXPECT_TRUE(second_log.empty()) << second_log[0];
}

TEST(LoweringTest, RunsOnlyTheEnabledPasses) {
  auto program = testing::load_fixture("pass_conv_bn_block.pt2");
  ASSERT_TRUE(program);
  const size_t nodes = program->graph.nodes().size();
  std::vector<std::string> log;
  LoweringOptions options;
  options.fold_constants = false;
  options.fold_batch_norms = false;
  options.log = &log;
  ASSERT_TRUE(run_lowering_passes(*program, options).ok());
  // Only the two num_batches_tracked buffers go.
  EXPECT_EQ(program->graph.nodes().size(), nodes);
  EXPECT_EQ(log.size(), 2u);

  LoweringOptions nothing = options;
  nothing.eliminate_dead_code = false;
  nothing.remove_no_ops = false;
  auto untouched = testing::load_fixture("pass_conv_bn_block.pt2");
  ASSERT_TRUE(untouched);
  const std::string text = ir::print_graph(untouched->graph);
  ASSERT_TRUE(run_lowering_passes(*untouched, nothing).ok());
  EXPECT_EQ(ir::print_graph(untouched->graph), text);
}

TEST(LoweringTest, LowersIdentityOpsModelKeepingOutputNames) {
  auto program = testing::load_fixture("pass_identity_ops.pt2");
  ASSERT_TRUE(program);
  Tensor x = testing::pseudo_random(DType::kFloat32, {2, 4}, 8);
  auto before = testing::run_cpu(program, {x});
  ASSERT_TRUE(run_lowering_passes(*program).ok());
  // add, the dtype assertion, mul, and the clone that keeps the second output apart from x.
  EXPECT_EQ(program->graph.nodes().size(), 4u) << ir::print_graph(program->graph);
  EXPECT_EQ(testing::output_names(program->graph), (std::vector<std::string>{"mul", "clone_1"}));
  testing::expect_same_outputs(before, testing::run_cpu(program, {x}));
}

TEST(LoweringTest, RejectsAProgramThatDoesNotVerify) {
  testing::ProgramBuilder b;
  ir::Value* x = b.input("x", DType::kFloat32, {2});
  ir::Value* relu = b.node("relu", "aten.relu.default", {x});
  b.output(relu);
  auto program = b.finish();
  // Reads its own output: defined after use.
  program->graph.nodes()[0].args[0] = relu;
  program->graph.link();
  Status status = run_lowering_passes(*program);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("before it is defined"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace kiln::passes
