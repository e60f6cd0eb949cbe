#include "partition/partition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "convert/op_registry.h"
#include "frontend/pt2_reader.h"
#include "ir/schema_defaults.h"
#include "ir/sym_expr.h"
#include "kernels/cpu/cpu_backend.h"

namespace kiln::partition {
namespace {

std::shared_ptr<ir::Program> load(const std::string& name) {
  auto program = frontend::read_program_file(std::string(KILN_TEST_DATA_DIR) + "/pt2/" + name);
  EXPECT_TRUE(program.ok()) << name << ": " << program.status().message();
  return program.ok() ? *program : nullptr;
}

// A hand-built program: tensors flow through ops whose outputs copy the first input's meta.
class ProgramBuilder {
 public:
  ProgramBuilder() : program_(std::make_shared<ir::Program>()) {}

  ir::Value* input(const std::string& name, std::vector<ir::SymDim> shape,
                   ir::ValueKind kind = ir::ValueKind::kTensor) {
    ir::Value* v = graph().add_value(name, kind);
    v->shape = std::move(shape);
    v->has_recorded_meta = kind == ir::ValueKind::kTensor;
    graph().add_input(v, ir::InputKind::kUserInput, "");
    return v;
  }

  // Leading arguments as given, the rest from the schema's defaults; `num_outputs` tensors
  // (named name, name_1, ...) or one SymInt when `symbolic`.
  ir::Node* call(const std::string& target, const std::string& name, std::vector<ir::Argument> args,
                 size_t num_outputs = 1, bool symbolic = false) {
    auto key = ir::find_op(target);
    EXPECT_TRUE(key.has_value()) << target;
    ir::Node* node = graph().add_node(name, *key);
    const auto schema_args = node->schema().args();
    for (size_t i = args.size(); i < schema_args.size(); ++i) {
      auto value = ir::default_argument(schema_args[i]);
      EXPECT_TRUE(value.ok()) << target << " argument " << schema_args[i].name;
      args.push_back(value.ok() ? *value : ir::Argument(ir::NoneArg{}));
    }
    node->args = std::move(args);
    const std::vector<ir::Value*> inputs = node->input_values();
    for (size_t i = 0; i < num_outputs; ++i) {
      ir::Value* out =
          graph().add_value(i == 0 ? name : str_cat(name, "_", i),
                            symbolic ? ir::ValueKind::kSymInt : ir::ValueKind::kTensor);
      if (!symbolic && !inputs.empty()) {
        out->dtype = inputs[0]->dtype;
        out->shape = inputs[0]->shape;
        out->has_recorded_meta = true;
      }
      node->outputs.push_back(out);
    }
    return node;
  }
  ir::Value* unary(const std::string& target, const std::string& name, ir::Value* x) {
    return call(target, name, {x})->outputs[0];
  }

  std::shared_ptr<ir::Program> finish(std::vector<ir::Value*> outputs) {
    for (ir::Value* out : outputs) graph().add_output(out);
    graph().link();
    return program_;
  }

 private:
  ir::Graph& graph() { return program_->graph; }
  std::shared_ptr<ir::Program> program_;
};

ir::SymDim dim(int64_t v) {
  return ir::SymDim{v, nullptr};
}

std::vector<std::string> names(const std::vector<const ir::Node*>& nodes) {
  std::vector<std::string> result;
  for (const ir::Node* n : nodes) result.push_back(n->name);
  return result;
}
std::vector<std::string> names(const std::vector<const ir::Value*>& values) {
  std::vector<std::string> result;
  for (const ir::Value* v : values) result.push_back(v->name);
  return result;
}
std::vector<std::string> segment_names(const PartitionPlan& plan) {
  std::vector<std::string> result;
  for (const Segment& s : plan.segments) result.push_back(s.name);
  return result;
}

// Invariants of every plan: segments run in order (each input is a program input or an earlier
// segment's output), names follow positions, only tensors cross an accelerated boundary and
// engines take no weights as inputs, every placed node lands in exactly one segment.
void expect_valid_plan(const ir::Program& program, const PartitionPlan& plan) {
  std::set<const ir::Value*> available;
  std::set<const ir::Value*> weights;
  for (const ir::GraphInput& in : program.graph.inputs()) {
    available.insert(in.value);
    if (in.kind != ir::InputKind::kUserInput) weights.insert(in.value);
  }
  std::map<const ir::Node*, int> owners;
  for (size_t i = 0; i < plan.segments.size(); ++i) {
    const Segment& s = plan.segments[i];
    const bool acc = s.kind == SegmentKind::kAccelerated;
    EXPECT_EQ(s.name, str_cat(acc ? "_run_on_acc_" : "_run_on_gpu_", i));
    std::set<const ir::Value*> local(s.inputs.begin(), s.inputs.end());
    for (const ir::Value* in : s.inputs) {
      EXPECT_TRUE(available.count(in)) << s.name << " reads '" << in->name << "' before it exists";
      if (acc) {
        EXPECT_EQ(in->kind, ir::ValueKind::kTensor) << s.name << " input " << in->name;
        EXPECT_FALSE(weights.count(in)) << s.name << " takes weight " << in->name << " as input";
      }
    }
    for (const ir::Node* node : s.nodes) {
      for (const ir::Value* in : node->input_values()) {
        EXPECT_TRUE(local.count(in) || (acc && weights.count(in)))
            << s.name << ": node " << node->name << " reads " << in->name;
      }
      for (const ir::Value* out : node->outputs) {
        if (out) local.insert(out);
      }
      const bool symbolic =
          !node->outputs.empty() &&
          std::none_of(node->outputs.begin(), node->outputs.end(),
                       [](const ir::Value* v) { return v && v->kind == ir::ValueKind::kTensor; });
      if (!symbolic) owners[node] += 1;
    }
    EXPECT_TRUE(std::is_sorted(s.nodes.begin(), s.nodes.end(),
                               [](const ir::Node* a, const ir::Node* b) { return a->id < b->id; }));
    for (const ir::Value* out : s.outputs) {
      EXPECT_TRUE(local.count(out)) << s.name << " outputs " << out->name;
      if (acc) {
        EXPECT_EQ(out->kind, ir::ValueKind::kTensor) << s.name << " output " << out->name;
      }
      available.insert(out);
    }
  }
  for (const ir::Value* out : program.graph.outputs()) {
    EXPECT_TRUE(available.count(out)) << "program output " << out->name << " is never produced";
  }
  for (const auto& [node, count] : owners) EXPECT_EQ(count, 1) << node->name;
}

// These tests need an op that no backend runs, and their programs (partition_chain.pt2 and the
// hand-built ones) use sort for it; its output has its input's shape, which ops kiln will keep
// declining (nonzero) do not. The CPU backend runs sort now, so the tests partition against this
// one: the CPU backend less sort, registered as the CPU registry is.
class CpuBackendWithoutSort final : public Backend {
 public:
  std::string_view name() const override { return cpu::cpu_backend().name(); }
  bool supports(const ir::Node& node) const override {
    return node.op != ir::OpKey::aten_sort_default && cpu::cpu_backend().supports(node);
  }
  Status execute(ir::OpContext& ctx) const override { return cpu::cpu_backend().execute(ctx); }
};

struct RegistryWithoutSort {
  CpuBackendWithoutSort backend;  // the validators keep a reference to it
  convert::OpRegistry registry;
  Status status;
  RegistryWithoutSort() { status = convert::register_cpu_implementations(registry, backend); }
};

const convert::OpRegistry& registry() {
  static const RegistryWithoutSort instance;
  EXPECT_TRUE(instance.status.ok()) << instance.status.message();
  return instance.registry;
}

PartitionPlan partition_ok(const ir::Program& program, const PartitionSettings& settings) {
  auto plan = partition(program, registry(), settings);
  EXPECT_TRUE(plan.ok()) << plan.status().message();
  if (!plan.ok()) return {};
  expect_valid_plan(program, *plan);
  return std::move(plan).value();
}

TEST(PartitionTest, CpuRegistryBuilds) {
  EXPECT_TRUE(convert::cpu_registry_status().ok()) << convert::cpu_registry_status().message();
}

// partition_chain.pt2: fc1, relu, *2, +1 | sort (not in registry()) | cumsum, tanh, -0.5, fc2,
// sigmoid, * a.  Tests force the cumsum to PyTorch to move the boundary.
TEST(PartitionTest, FastPartitionerSplitsAroundUnsupportedOp) {
  auto program = load("partition_chain.pt2");
  ASSERT_TRUE(program);
  PartitionPlan plan = partition_ok(*program, {.min_block_size = 1});
  EXPECT_EQ(plan.total_ops, 11);  // the two permutes are views
  EXPECT_EQ(plan.supported_ops, 10);
  ASSERT_EQ(plan.unsupported.size(), 1u);
  EXPECT_EQ(plan.unsupported[0].op, "aten.sort.default");
  EXPECT_EQ(plan.unsupported[0].reason, "no cpu implementation");
  EXPECT_EQ(plan.unsupported[0].nodes, std::vector<std::string>{"sort"});
  ASSERT_EQ(segment_names(plan),
            (std::vector<std::string>{"_run_on_acc_0", "_run_on_gpu_1", "_run_on_acc_2"}));
  const Segment& first = plan.segments[0];
  EXPECT_EQ(names(first.nodes),
            (std::vector<std::string>{"permute", "addmm", "relu", "mul", "add"}));
  EXPECT_EQ(first.compute_ops, 4);
  EXPECT_EQ(names(first.inputs), std::vector<std::string>{"x"});  // fc1's weights are the engine's
  EXPECT_EQ(names(first.outputs), std::vector<std::string>{"add"});
  EXPECT_EQ(names(plan.segments[1].nodes), std::vector<std::string>{"sort"});
  EXPECT_EQ(names(plan.segments[1].inputs), std::vector<std::string>{"add"});
  // sort's second output (the indices) is unused: only the values leave.
  EXPECT_EQ(names(plan.segments[1].outputs), std::vector<std::string>{"getitem"});
  const Segment& last = plan.segments[2];
  EXPECT_EQ(names(last.nodes), (std::vector<std::string>{"cumsum", "tanh", "sub", "permute_1",
                                                         "addmm_1", "sigmoid", "mul_1"}));
  EXPECT_EQ(last.compute_ops, 6);
  EXPECT_EQ(names(last.inputs), (std::vector<std::string>{"getitem", "add"}));
  EXPECT_EQ(names(last.outputs), std::vector<std::string>{"mul_1"});
  EXPECT_EQ(plan.candidate_block_sizes, (std::vector<int>{4, 6}));

  // Forcing the cumsum to PyTorch moves it into the torch segment.
  plan = partition_ok(*program, {.min_block_size = 1, .torch_executed_ops = {"aten.cumsum"}});
  ASSERT_EQ(plan.segments.size(), 3u);
  EXPECT_EQ(names(plan.segments[1].nodes), (std::vector<std::string>{"sort", "cumsum"}));
  EXPECT_EQ(names(plan.segments[1].outputs), std::vector<std::string>{"cumsum"});
  EXPECT_EQ(names(plan.segments[2].inputs), (std::vector<std::string>{"cumsum", "add"}));
  EXPECT_EQ(plan.candidate_block_sizes, (std::vector<int>{4, 5}));
}

TEST(PartitionTest, SmallBlocksGoBackToTorchAndMerge) {
  auto program = load("partition_chain.pt2");
  ASSERT_TRUE(program);
  // The first run has 4 compute ops (the permute does not count): it joins the sort.
  PartitionPlan plan = partition_ok(*program, {.min_block_size = 5});
  ASSERT_EQ(segment_names(plan), (std::vector<std::string>{"_run_on_gpu_0", "_run_on_acc_1"}));
  const Segment& torch = plan.segments[0];
  EXPECT_EQ(names(torch.nodes),
            (std::vector<std::string>{"permute", "addmm", "relu", "mul", "add", "sort"}));
  // Weights are ordinary inputs of a torch segment.
  EXPECT_EQ(names(torch.inputs), (std::vector<std::string>{"p_fc1_weight", "p_fc1_bias", "x"}));
  EXPECT_EQ(names(torch.outputs), (std::vector<std::string>{"add", "getitem"}));
  EXPECT_EQ(plan.segments[1].compute_ops, 6);
  EXPECT_EQ(plan.candidate_block_sizes, (std::vector<int>{4, 6}));

  // Nothing reaches 7 ops: one torch segment with every node, as the program was.
  plan = partition_ok(*program, {.min_block_size = 7});
  ASSERT_EQ(plan.segments.size(), 1u);
  EXPECT_EQ(plan.segments[0].name, "_run_on_gpu_0");
  EXPECT_EQ(plan.segments[0].nodes.size(), program->graph.nodes().size());
  EXPECT_EQ(names(plan.segments[0].outputs), std::vector<std::string>{"mul_1"});
  EXPECT_EQ(plan.candidate_block_sizes, (std::vector<int>{4, 6}));

  // Fewer supported ops than min_block_size: also the whole program.
  plan = partition_ok(*program, {.min_block_size = 11});
  ASSERT_EQ(plan.segments.size(), 1u);
  EXPECT_EQ(plan.segments[0].kind, SegmentKind::kTorch);
  EXPECT_EQ(plan.supported_ops, 10);
}

TEST(PartitionTest, TorchExecutedOpsAcceptEverySpelling) {
  auto program = load("partition_chain.pt2");
  ASSERT_TRUE(program);
  for (const char* name : {"torch.ops.aten.cumsum.default", "aten.cumsum.default",
                           "aten::cumsum.default", "aten::cumsum", "aten.cumsum"}) {
    PartitionPlan plan =
        partition_ok(*program, {.min_block_size = 1, .torch_executed_ops = {name}});
    ASSERT_EQ(plan.unsupported.size(), 2u) << name;
    EXPECT_EQ(plan.unsupported[1].op, "aten.cumsum.default") << name;
    EXPECT_EQ(plan.unsupported[1].reason, "torch_executed_ops") << name;
    EXPECT_EQ(plan.supported_ops, 9) << name;
  }
  // "aten.add" names every overload of add; the program uses add.Tensor.
  PartitionPlan plan =
      partition_ok(*program, {.min_block_size = 1, .torch_executed_ops = {"aten.add"}});
  EXPECT_EQ(plan.supported_ops, 9);
  // Most frequent first: mul.Tensor x2 before sort.
  plan = partition_ok(*program, {.min_block_size = 1, .torch_executed_ops = {"aten.mul.Tensor"}});
  ASSERT_EQ(plan.unsupported.size(), 2u);
  EXPECT_EQ(plan.unsupported[0].op, "aten.mul.Tensor");
  EXPECT_EQ(plan.unsupported[0].nodes, (std::vector<std::string>{"mul", "mul_1"}));
  EXPECT_EQ(plan.unsupported[1].op, "aten.sort.default");
}

TEST(PartitionTest, UnknownTorchExecutedOpIsAnError) {
  auto program = load("partition_chain.pt2");
  ASSERT_TRUE(program);
  auto plan = partition(*program, registry(), {.torch_executed_ops = {"aten.cumsun.default"}});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("unknown op 'aten.cumsun.default'"), std::string::npos)
      << plan.status().message();
  EXPECT_NE(plan.status().message().find("did you mean 'aten.cumsum.default'?"), std::string::npos)
      << plan.status().message();

  plan = partition(*program, registry(), {.torch_executed_ops = {"cumsum"}});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("did you mean 'aten.cumsum'?"), std::string::npos)
      << plan.status().message();

  plan = partition(*program, registry(), {.torch_executed_ops = {"zzzz.qqq"}});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message().find("did you mean"), std::string::npos)
      << plan.status().message();
}

TEST(PartitionTest, TorchExecutedNodes) {
  auto program = load("partition_chain.pt2");
  ASSERT_TRUE(program);
  PartitionPlan plan =
      partition_ok(*program, {.min_block_size = 1, .torch_executed_nodes = {"relu"}});
  ASSERT_EQ(plan.unsupported.size(), 2u);
  // Equally frequent: in program order.
  EXPECT_EQ(plan.unsupported[0].op, "aten.relu.default");
  EXPECT_EQ(plan.unsupported[0].reason, "torch_executed_nodes");
  EXPECT_EQ(plan.unsupported[1].op, "aten.sort.default");
  ASSERT_GE(plan.segments.size(), 2u);
  EXPECT_EQ(names(plan.segments[1].nodes), std::vector<std::string>{"relu"});

  auto bad = partition(*program, registry(), {.torch_executed_nodes = {"rleu"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "torch_executed_nodes: the program has no node named 'rleu'; did you mean 'relu'?");
}

TEST(PartitionTest, RequireFullCompilationListsUnsupportedOps) {
  auto program = load("partition_chain.pt2");
  ASSERT_TRUE(program);
  auto plan = partition(*program, registry(),
                        {.torch_executed_ops = {"aten.addmm.default", "aten.cumsum"},
                         .require_full_compilation = true});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(plan.status().message(),
            "require_full_compilation=True, but 4 ops are not supported by kiln:\n"
            "  aten.addmm.default (2 nodes: addmm, addmm_1): torch_executed_ops\n"
            "  aten.sort.default (1 node: sort): no cpu implementation\n"
            "  aten.cumsum.default (1 node: cumsum): torch_executed_ops");

  // Fully supported: one engine for the whole program.
  auto diamond = load("partition_diamond.pt2");
  ASSERT_TRUE(diamond);
  PartitionPlan full =
      partition_ok(*diamond, {.min_block_size = 1, .require_full_compilation = true});
  ASSERT_EQ(full.segments.size(), 1u);
  EXPECT_EQ(full.segments[0].kind, SegmentKind::kAccelerated);
  EXPECT_EQ(full.segments[0].compute_ops, 10);
}

TEST(PartitionTest, InvalidMinBlockSize) {
  auto program = load("partition_diamond.pt2");
  ASSERT_TRUE(program);
  auto plan = partition(*program, registry(), {.min_block_size = 0});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
}

// partition_diamond.pt2: a = sin(x)*2+1; t = cumsum(a) (forced to torch); b = cos(x)*3-1;
// c = relu(t + b); c * c. One block for a, b and c would be a cycle through t.
TEST(PartitionTest, GlobalPartitionerAvoidsCycles) {
  auto program = load("partition_diamond.pt2");
  ASSERT_TRUE(program);
  PartitionPlan plan = partition_ok(
      *program,
      {.use_fast_partitioner = false, .min_block_size = 1, .torch_executed_ops = {"aten.cumsum"}});
  ASSERT_EQ(segment_names(plan),
            (std::vector<std::string>{"_run_on_acc_0", "_run_on_gpu_1", "_run_on_acc_2"}));
  EXPECT_EQ(names(plan.segments[0].nodes), (std::vector<std::string>{"sin", "mul", "add"}));
  EXPECT_EQ(names(plan.segments[1].nodes), std::vector<std::string>{"cumsum"});
  // Branch b waits for the block that reads it instead of crossing a boundary.
  EXPECT_EQ(names(plan.segments[2].nodes),
            (std::vector<std::string>{"cos", "mul_1", "sub", "add_1", "relu", "mul_2"}));
  EXPECT_EQ(names(plan.segments[2].inputs), (std::vector<std::string>{"x", "cumsum"}));
  EXPECT_EQ(plan.candidate_block_sizes, (std::vector<int>{3, 6}));

  // The first block is too small: it joins the cumsum, and the rest stays one engine.
  plan = partition_ok(
      *program,
      {.use_fast_partitioner = false, .min_block_size = 4, .torch_executed_ops = {"aten.cumsum"}});
  ASSERT_EQ(segment_names(plan), (std::vector<std::string>{"_run_on_gpu_0", "_run_on_acc_1"}));
  EXPECT_EQ(names(plan.segments[0].nodes),
            (std::vector<std::string>{"sin", "mul", "add", "cumsum"}));
  EXPECT_EQ(plan.segments[1].compute_ops, 6);
}

// relu(x) -> neg -> sin -> + sort_1(x), with sorts of x in between in program order: the fast
// partitioner splits at each sort; the global one keeps one block, runs sort_1 (which the block
// reads) before it and the other sort (which only the program returns) after it.
std::shared_ptr<ir::Program> interleaved_program() {
  ProgramBuilder b;
  ir::Value* x = b.input("x", {dim(2), dim(3)});
  ir::Value* r = b.unary("aten.relu.default", "relu", x);
  ir::Node* sort = b.call("aten.sort.default", "sort", {x}, 2);
  ir::Value* n = b.unary("aten.neg.default", "neg", r);
  ir::Node* sort_1 = b.call("aten.sort.default", "sort_1", {x}, 2);
  ir::Value* s = b.unary("aten.sin.default", "sin", n);
  ir::Value* sum = b.call("aten.add.Tensor", "add", {s, sort_1->outputs[0]})->outputs[0];
  return b.finish({sum, sort->outputs[0]});
}

TEST(PartitionTest, GlobalPartitionerMergesAcrossIndependentTorchNodes) {
  auto program = interleaved_program();
  PartitionPlan fast = partition_ok(*program, {.min_block_size = 1});
  ASSERT_EQ(segment_names(fast),
            (std::vector<std::string>{"_run_on_acc_0", "_run_on_gpu_1", "_run_on_acc_2",
                                      "_run_on_gpu_3", "_run_on_acc_4"}));
  EXPECT_EQ(fast.candidate_block_sizes, (std::vector<int>{1, 1, 2}));

  PartitionPlan global =
      partition_ok(*program, {.use_fast_partitioner = false, .min_block_size = 1});
  ASSERT_EQ(segment_names(global),
            (std::vector<std::string>{"_run_on_gpu_0", "_run_on_acc_1", "_run_on_gpu_2"}));
  EXPECT_EQ(names(global.segments[0].nodes), std::vector<std::string>{"sort_1"});
  EXPECT_EQ(names(global.segments[1].nodes),
            (std::vector<std::string>{"relu", "neg", "sin", "add"}));
  EXPECT_EQ(names(global.segments[1].inputs), (std::vector<std::string>{"x", "sort_1"}));
  EXPECT_EQ(names(global.segments[2].nodes), std::vector<std::string>{"sort"});
  EXPECT_EQ(global.candidate_block_sizes, std::vector<int>{4});

  // min_block_size = 3: the fast partitioner has nothing big enough; the global one does.
  PartitionPlan small = partition_ok(*program, {.min_block_size = 3});
  ASSERT_EQ(small.segments.size(), 1u);
  EXPECT_EQ(small.segments[0].kind, SegmentKind::kTorch);
  global = partition_ok(*program, {.use_fast_partitioner = false, .min_block_size = 3});
  ASSERT_EQ(global.segments.size(), 3u);
  EXPECT_EQ(global.segments[1].kind, SegmentKind::kAccelerated);
}

// partition_dynamic_view.pt2 (batch s77): y = relu(x*2+1); z = cumsum(y.view(y.shape[0], -1));
// w = sigmoid(z.view(x.shape[0], 2, 3)*3-1); returns w and x.shape[0]*2.
TEST(PartitionTest, SymbolicNodesAreCopiedIntoEachSegment) {
  auto program = load("partition_dynamic_view.pt2");
  ASSERT_TRUE(program);
  for (bool fast : {true, false}) {
    SCOPED_TRACE(fast ? "fast" : "global");
    PartitionPlan plan = partition_ok(*program, {.use_fast_partitioner = fast,
                                                 .min_block_size = 1,
                                                 .torch_executed_ops = {"aten.cumsum.default"}});
    EXPECT_EQ(plan.total_ops, 7);  // views and the symbolic size arithmetic do not count
    ASSERT_EQ(segment_names(plan), (std::vector<std::string>{"_run_on_acc_0", "_run_on_gpu_1",
                                                             "_run_on_acc_2", "_run_on_gpu_3"}));
    EXPECT_EQ(names(plan.segments[0].nodes),
              (std::vector<std::string>{"sym_size_int_1", "mul", "add_4", "relu", "view"}));
    EXPECT_EQ(names(plan.segments[0].inputs), std::vector<std::string>{"x"});
    EXPECT_EQ(names(plan.segments[0].outputs), std::vector<std::string>{"view"});
    EXPECT_EQ(names(plan.segments[1].nodes), std::vector<std::string>{"cumsum"});
    EXPECT_EQ(names(plan.segments[2].nodes),
              (std::vector<std::string>{"sym_size_int_1", "view_1", "mul_13", "sub_7", "sigmoid"}));
    // x enters only for its size.
    EXPECT_EQ(names(plan.segments[2].inputs), (std::vector<std::string>{"x", "cumsum"}));
    EXPECT_EQ(names(plan.segments[2].outputs), std::vector<std::string>{"sigmoid"});
    // The symbolic output comes from a torch segment at the end.
    EXPECT_EQ(names(plan.segments[3].nodes),
              (std::vector<std::string>{"sym_size_int_1", "mul_20"}));
    EXPECT_EQ(names(plan.segments[3].inputs), std::vector<std::string>{"x"});
    EXPECT_EQ(names(plan.segments[3].outputs), std::vector<std::string>{"mul_20"});
  }
}

TEST(PartitionTest, SymbolicOutputJoinsTrailingTorchSegment) {
  auto program = load("linear.pt2");  // relu(fc(x)), x.shape[0] * 2
  ASSERT_TRUE(program);
  PartitionPlan plan = partition_ok(*program, {.min_block_size = 1});
  ASSERT_EQ(segment_names(plan), (std::vector<std::string>{"_run_on_acc_0", "_run_on_gpu_1"}));
  EXPECT_EQ(plan.segments[1].compute_ops, 0);
  ASSERT_EQ(plan.segments[1].outputs.size(), 1u);
  EXPECT_EQ(plan.segments[1].outputs[0]->kind, ir::ValueKind::kSymInt);
  // A torch segment already at the end takes the symbolic output.
  plan = partition_ok(*program, {.min_block_size = 1, .torch_executed_ops = {"aten.relu"}});
  ASSERT_EQ(segment_names(plan), (std::vector<std::string>{"_run_on_acc_0", "_run_on_gpu_1"}));
  EXPECT_EQ(plan.segments[1].outputs.size(), 2u);
}

TEST(PartitionTest, SymbolicProgramInputKeepsReadersInTorch) {
  ProgramBuilder b;
  ir::SymExprPtr s0 = ir::sym_symbol("s0");
  ir::Value* x = b.input("x", {ir::SymDim{4, s0}, dim(6)});
  ir::Value* n = b.input("n", {}, ir::ValueKind::kSymInt);
  ir::Value* r = b.unary("aten.relu.default", "relu", x);
  ir::Value* v =
      b.call("aten.view.default", "view", {r, std::vector<ir::SymInt>{{0, n}, {-1, nullptr}}})
          ->outputs[0];
  ir::Node* twice = b.call("_operator.mul", "twice", {n, int64_t{2}}, 1, /*symbolic=*/true);
  ir::Value* v2 = b.call("aten.view.default", "view_1",
                         {r, std::vector<ir::SymInt>{{0, twice->outputs[0]}, {-1, nullptr}}})
                      ->outputs[0];
  ir::Value* out = b.unary("aten.neg.default", "neg", v);
  auto program = b.finish({out, v2});
  PartitionPlan plan = partition_ok(*program, {.min_block_size = 1});
  ASSERT_EQ(plan.unsupported.size(), 1u);
  EXPECT_EQ(plan.unsupported[0].op, "aten.view.default");
  EXPECT_EQ(plan.unsupported[0].nodes, (std::vector<std::string>{"view", "view_1"}));
  EXPECT_EQ(plan.unsupported[0].reason,
            "reads the program's symbolic input 'n' (only tensors enter an accelerated segment)");
  ASSERT_EQ(segment_names(plan),
            (std::vector<std::string>{"_run_on_acc_0", "_run_on_gpu_1", "_run_on_acc_2"}));
  // The torch segment computes `twice` itself, from the program's input n.
  EXPECT_EQ(names(plan.segments[1].nodes), (std::vector<std::string>{"view", "twice", "view_1"}));
  EXPECT_EQ(names(plan.segments[1].inputs), (std::vector<std::string>{"relu", "n"}));
}

TEST(PartitionTest, AssertionsBelongToNoSegment) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", {dim(4)});
  ir::Value* r = b.unary("aten.relu.default", "relu", x);
  b.call("aten._assert_tensor_metadata.default", "check", {r}, /*num_outputs=*/0);
  ir::Value* n = b.unary("aten.neg.default", "neg", r);
  auto program = b.finish({n});
  PartitionPlan plan = partition_ok(*program, {.min_block_size = 1});
  EXPECT_EQ(plan.total_ops, 2);
  ASSERT_EQ(plan.segments.size(), 1u);
  EXPECT_EQ(plan.segments[0].kind, SegmentKind::kAccelerated);
  EXPECT_EQ(names(plan.segments[0].nodes), (std::vector<std::string>{"relu", "neg"}));
  // Unpartitioned, the program keeps every node.
  plan = partition_ok(*program, {.min_block_size = 3});
  ASSERT_EQ(plan.segments.size(), 1u);
  EXPECT_EQ(names(plan.segments[0].nodes), (std::vector<std::string>{"relu", "check", "neg"}));
}

TEST(PartitionTest, NoSupportedOpsGivesOneTorchSegment) {
  ProgramBuilder b;
  ir::Value* x = b.input("x", {dim(4)});
  ir::Node* sort = b.call("aten.sort.default", "sort", {x}, 2);
  auto program = b.finish({sort->outputs[0]});
  PartitionPlan plan = partition_ok(*program, {.min_block_size = 1});
  EXPECT_EQ(plan.supported_ops, 0);
  EXPECT_EQ(plan.total_ops, 1);
  ASSERT_EQ(plan.segments.size(), 1u);
  EXPECT_EQ(names(plan.segments[0].inputs), std::vector<std::string>{"x"});
  EXPECT_EQ(names(plan.segments[0].outputs), std::vector<std::string>{"sort"});
  EXPECT_TRUE(plan.candidate_block_sizes.empty());
}

}  // namespace
}  // namespace kiln::partition
