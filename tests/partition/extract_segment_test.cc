#include <gtest/gtest.h>

#include <map>

#include "convert/op_registry.h"
#include "frontend/pt2_reader.h"
#include "ir/verifier.h"
#include "kernels/cpu/cpu_backend.h"
#include "partition/partition.h"
#include "runtime/executor.h"
#include "support/op_runner.h"

namespace kiln::partition {
namespace {

std::shared_ptr<ir::Program> load(const std::string& name) {
  auto program = frontend::read_program_file(std::string(KILN_TEST_DATA_DIR) + "/pt2/" + name);
  EXPECT_TRUE(program.ok()) << name << ": " << program.status().message();
  return program.ok() ? *program : nullptr;
}

Result<std::vector<ir::RtValue>> run_whole(std::shared_ptr<const ir::Program> program,
                                           std::vector<Tensor> inputs) {
  KILN_ASSIGN_OR_RETURN(auto executor, Executor::create(std::move(program), cpu::cpu_backend()));
  return executor->run(inputs);
}

// Runs the plan's segments one after another, each as its own extracted program, passing values
// between them by name, and returns the program's outputs.
Result<std::vector<ir::RtValue>> run_chained(const ir::Program& program, const PartitionPlan& plan,
                                             const std::vector<Tensor>& inputs) {
  std::map<std::string, ir::RtValue> env;
  size_t next = 0;
  for (const ir::GraphInput& in : program.graph.inputs()) {
    env[in.value->name] =
        ir::RtValue::of(in.kind == ir::InputKind::kUserInput ? inputs.at(next++)
                                                             : program.weights.at(in.value->id));
  }
  for (const Segment& segment : plan.segments) {
    KILN_ASSIGN_OR_RETURN(std::shared_ptr<ir::Program> part, extract_segment(program, segment));
    KILN_RETURN_IF_ERROR(ir::check_inference(*part), segment.name);
    std::vector<Tensor> args;
    for (const ir::Value* in : segment.inputs) {
      auto it = env.find(in->name);
      if (it == env.end() || it->second.kind != ir::RtValue::Kind::kTensor) {
        return internal_error(segment.name, " reads '", in->name, "', which no one produced");
      }
      args.push_back(it->second.tensor);
    }
    KILN_ASSIGN_OR_RETURN(auto executor, Executor::create(part, cpu::cpu_backend()), segment.name);
    KILN_ASSIGN_OR_RETURN(auto outputs, executor->run(args), segment.name);
    for (size_t i = 0; i < outputs.size(); ++i) env[segment.outputs[i]->name] = outputs[i];
  }
  std::vector<ir::RtValue> result;
  for (const ir::Value* out : program.graph.outputs()) result.push_back(env.at(out->name));
  return result;
}

void expect_same(const std::vector<ir::RtValue>& expected, const std::vector<ir::RtValue>& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(expected[i].kind, actual[i].kind) << "output " << i;
    if (expected[i].kind != ir::RtValue::Kind::kTensor) {
      EXPECT_EQ(expected[i].i, actual[i].i) << "output " << i;
      continue;
    }
    EXPECT_EQ(expected[i].tensor.sizes(), actual[i].tensor.sizes()) << "output " << i;
    // The same kernels on the same data: the results agree exactly.
    EXPECT_EQ(testing::to_doubles(expected[i].tensor), testing::to_doubles(actual[i].tensor))
        << "output " << i;
  }
}

struct Case {
  const char* fixture;
  PartitionSettings settings;
  size_t expected_segments;
  Shape input_shape;
};

TEST(ExtractSegmentTest, ChainedSegmentsMatchTheWholeProgram) {
  const std::vector<Case> cases = {
      {"partition_diamond.pt2",
       {.use_fast_partitioner = true, .min_block_size = 1, .torch_executed_ops = {"aten.cumsum"}},
       3,
       {3, 4}},
      {"partition_diamond.pt2",
       {.use_fast_partitioner = false, .min_block_size = 1, .torch_executed_ops = {"aten.cumsum"}},
       3,
       {3, 4}},
      {"partition_dynamic_view.pt2",
       {.use_fast_partitioner = true, .min_block_size = 1, .torch_executed_ops = {"aten.cumsum"}},
       4,
       {5, 2, 3}},
      {"partition_dynamic_view.pt2",
       {.use_fast_partitioner = false,
        .min_block_size = 1,
        .torch_executed_ops = {"aten.cumsum"},
        .torch_executed_nodes = {"mul_13"}},
       4,
       {7, 2, 3}},
      {"linear.pt2", {.min_block_size = 1, .torch_executed_ops = {"aten.relu"}}, 2, {3, 4}},
      {"linear.pt2", {.min_block_size = 100}, 1, {2, 4}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(str_cat(c.fixture, c.settings.use_fast_partitioner ? " fast" : " global"));
    auto program = load(c.fixture);
    ASSERT_TRUE(program);
    auto plan = partition(*program, convert::cpu_registry(), c.settings);
    ASSERT_TRUE(plan.ok()) << plan.status().message();
    EXPECT_EQ(plan->segments.size(), c.expected_segments);
    std::vector<Tensor> inputs = {
        testing::arange_tensor(DType::kFloat32, c.input_shape, -1.0, 0.1)};
    auto expected = run_whole(program, inputs);
    ASSERT_TRUE(expected.ok()) << expected.status().message();
    auto actual = run_chained(*program, *plan, inputs);
    ASSERT_TRUE(actual.ok()) << actual.status().message();
    expect_same(*expected, *actual);
  }
}

TEST(ExtractSegmentTest, SegmentProgramKeepsNamesShapesAndSharesWeights) {
  auto program = load("linear.pt2");
  ASSERT_TRUE(program);
  auto plan = partition(*program, convert::cpu_registry(), {.min_block_size = 1});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const Segment& engine = plan->segments.at(0);
  ASSERT_EQ(engine.kind, SegmentKind::kAccelerated);
  auto part = extract_segment(*program, engine);
  ASSERT_TRUE(part.ok()) << part.status().message();
  const ir::Program& p = **part;
  EXPECT_TRUE(p.in_spec.empty());
  EXPECT_TRUE(p.out_spec.empty());
  EXPECT_EQ(p.torch_version, program->torch_version);
  EXPECT_EQ(p.graph.symbol_ranges().size(), program->graph.symbol_ranges().size());

  auto users = p.graph.user_inputs();
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0]->value->name, "x");
  const ir::Value* original_x = program->graph.find_value("x");
  ASSERT_EQ(users[0]->value->shape.size(), 2u);
  EXPECT_FALSE(users[0]->value->shape[0].is_static());
  EXPECT_TRUE(users[0]->value->shape[0].expr == original_x->shape[0].expr);

  // The weights: parameter inputs with the same targets, sharing the program's tensors.
  size_t weights = 0;
  for (const ir::GraphInput& in : p.graph.inputs()) {
    if (in.kind == ir::InputKind::kUserInput) continue;
    ++weights;
    EXPECT_EQ(in.kind, ir::InputKind::kParameter);
    const ir::Value* source = program->graph.find_value(in.value->name);
    ASSERT_NE(source, nullptr);
    EXPECT_EQ(p.weights.at(in.value->id).raw_data(), program->weights.at(source->id).raw_data())
        << in.target;
  }
  EXPECT_EQ(weights, 2u);
  ASSERT_EQ(p.graph.outputs().size(), 1u);
  EXPECT_EQ(p.graph.outputs()[0]->name, "relu");
  EXPECT_TRUE(ir::verify(p.graph).ok());
  EXPECT_TRUE(ir::check_inference(p).ok());
}

TEST(ExtractSegmentTest, InconsistentSegmentIsAnError) {
  auto program = load("partition_diamond.pt2");
  ASSERT_TRUE(program);
  auto plan = partition(*program, convert::cpu_registry(),
                        {.min_block_size = 1, .torch_executed_ops = {"aten.cumsum"}});
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  Segment broken = plan->segments.at(2);
  broken.inputs.clear();  // its nodes read x and cumsum
  auto part = extract_segment(*program, broken);
  ASSERT_FALSE(part.ok());
  EXPECT_EQ(part.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(part.status().message().find("neither an input of the segment"), std::string::npos)
      << part.status().message();

  Segment unproduced = plan->segments.at(0);
  unproduced.outputs.push_back(program->graph.find_value("mul_2"));
  part = extract_segment(*program, unproduced);
  ASSERT_FALSE(part.ok());
  EXPECT_NE(part.status().message().find("output 'mul_2'"), std::string::npos)
      << part.status().message();
}

}  // namespace
}  // namespace kiln::partition
