// Round trips through the engine file: everything an Engine holds comes back, weights are
// zero-copy views of the file's 64-byte-aligned segment, and the writer refuses malformed engines.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "format/engine.h"
#include "format/engine_fixture.h"
#include "frontend/pt2_reader.h"
#include "ir/printer.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/executor.h"
#include "support/op_runner.h"

namespace kiln::format {
namespace {

using testing::ExactBuffer;
using testing::make_engine;
using testing::write_or_die;

const ir::Value& value_named(const ir::Graph& g, std::string_view name) {
  const ir::Value* v = g.find_value(name);
  EXPECT_NE(v, nullptr) << name;
  return *v;
}

void expect_same_engine_metadata(const Engine& a, const Engine& b) {
  EXPECT_EQ(a.target.backend, b.target.backend);
  EXPECT_EQ(a.target.arch, b.target.arch);
  ASSERT_EQ(a.profiles.size(), b.profiles.size());
  for (size_t i = 0; i < a.profiles.size(); ++i) {
    ASSERT_EQ(a.profiles[i].symbols.size(), b.profiles[i].symbols.size());
    for (size_t j = 0; j < a.profiles[i].symbols.size(); ++j) {
      const SymbolProfile &x = a.profiles[i].symbols[j], &y = b.profiles[i].symbols[j];
      EXPECT_EQ(x.symbol, y.symbol);
      EXPECT_EQ(x.min, y.min);
      EXPECT_EQ(x.opt, y.opt);
      EXPECT_EQ(x.max, y.max);
    }
  }
  ASSERT_EQ(a.memory.size(), b.memory.size());
  for (size_t i = 0; i < a.memory.size(); ++i) {
    EXPECT_EQ(a.memory[i].arena_bytes, b.memory[i].arena_bytes);
    EXPECT_EQ(a.memory[i].workspace_bytes, b.memory[i].workspace_bytes);
  }
  ASSERT_EQ(a.kernels.size(), b.kernels.size());
  for (size_t i = 0; i < a.kernels.size(); ++i) {
    EXPECT_EQ(a.kernels[i].name, b.kernels[i].name);
    EXPECT_EQ(a.kernels[i].arch, b.kernels[i].arch);
    EXPECT_EQ(a.kernels[i].kind, b.kernels[i].kind);
    EXPECT_EQ(a.kernels[i].data, b.kernels[i].data);
  }
  EXPECT_EQ(a.build.kiln_version, b.build.kiln_version);
  EXPECT_EQ(a.build.torch_version, b.build.torch_version);
  EXPECT_EQ(a.build.settings_digest, b.build.settings_digest);
  EXPECT_EQ(a.build.precisions, b.build.precisions);
  EXPECT_EQ(a.build.hardware_compatible, b.build.hardware_compatible);
  EXPECT_EQ(a.build.refittable, b.build.refittable);
  EXPECT_EQ(a.build.weights_stripped, b.build.weights_stripped);
  EXPECT_EQ(a.build.name, b.build.name);
}

TEST(EngineFormatTest, RoundTripKeepsEverything) {
  const Engine original = make_engine();
  const std::string bytes = write_or_die(original);
  ExactBuffer buffer(bytes);
  auto read = read_engine(buffer.view(), nullptr);
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  expect_same_engine_metadata(original, *read);

  const ir::Program &a = *original.program, &b = *read->program;
  EXPECT_EQ(ir::print_graph(a.graph), ir::print_graph(b.graph));
  EXPECT_EQ(a.torch_version, b.torch_version);
  EXPECT_EQ(a.schema_major, b.schema_major);
  EXPECT_EQ(a.schema_minor, b.schema_minor);
  EXPECT_EQ(a.in_spec, b.in_spec);
  EXPECT_EQ(a.out_spec, b.out_spec);

  // Values: ids, kinds, dtypes, shapes (constant and symbolic), recorded meta, sym exprs.
  ASSERT_EQ(a.graph.num_values(), b.graph.num_values());
  for (size_t i = 0; i < a.graph.num_values(); ++i) {
    const ir::Value &u = a.graph.values()[i], &v = b.graph.values()[i];
    EXPECT_EQ(u.id, v.id);
    EXPECT_EQ(u.name, v.name);
    EXPECT_EQ(u.kind, v.kind) << u.name;
    EXPECT_EQ(u.dtype, v.dtype) << u.name;
    EXPECT_EQ(u.has_recorded_meta, v.has_recorded_meta) << u.name;
    ASSERT_EQ(u.shape.size(), v.shape.size()) << u.name;
    for (size_t d = 0; d < u.shape.size(); ++d) {
      EXPECT_EQ(u.shape[d].value, v.shape[d].value) << u.name;
      EXPECT_EQ(u.shape[d].is_static(), v.shape[d].is_static()) << u.name;
      EXPECT_EQ(ir::sym_dim_to_string(u.shape[d]), ir::sym_dim_to_string(v.shape[d])) << u.name;
    }
    EXPECT_EQ(u.expr == nullptr, v.expr == nullptr) << u.name;
    if (u.expr && v.expr) {
      EXPECT_EQ(u.expr->to_string(), v.expr->to_string()) << u.name;
    }
    EXPECT_EQ(u.producer ? u.producer->id : -1u, v.producer ? v.producer->id : -1u) << u.name;
    EXPECT_EQ(u.users.size(), v.users.size()) << u.name;
  }
  // Nodes: ops, every argument alternative (same variant index and text), outputs with holes.
  ASSERT_EQ(a.graph.nodes().size(), b.graph.nodes().size());
  for (size_t i = 0; i < a.graph.nodes().size(); ++i) {
    const ir::Node &m = a.graph.nodes()[i], &n = b.graph.nodes()[i];
    EXPECT_EQ(m.name, n.name);
    EXPECT_EQ(m.op, n.op);
    EXPECT_EQ(m.stack_trace, n.stack_trace);
    ASSERT_EQ(m.args.size(), n.args.size()) << m.name;
    for (size_t j = 0; j < m.args.size(); ++j) {
      EXPECT_EQ(m.args[j].index(), n.args[j].index()) << m.name << " arg " << j;
      EXPECT_EQ(ir::argument_to_string(m.args[j]), ir::argument_to_string(n.args[j]))
          << m.name << " arg " << j;
    }
    ASSERT_EQ(m.outputs.size(), n.outputs.size());
    for (size_t j = 0; j < m.outputs.size(); ++j) {
      EXPECT_EQ(m.outputs[j] == nullptr, n.outputs[j] == nullptr) << m.name;
      if (m.outputs[j] && n.outputs[j]) {
        EXPECT_EQ(m.outputs[j]->id, n.outputs[j]->id);
      }
    }
  }
  std::set<size_t> alternatives;
  for (const ir::Node& n : b.graph.nodes()) {
    for (const ir::Argument& arg : n.args) alternatives.insert(arg.index());
  }
  EXPECT_EQ(alternatives.size(), std::variant_size_v<ir::Argument>) << "the fixture must use "
                                                                       "every alternative";
  const ir::Node& copy = *value_named(b.graph, "to_copy").producer;
  EXPECT_EQ(std::get<ir::Device>(copy.args[3]).type, "cuda");
  EXPECT_EQ(std::get<ir::Device>(copy.args[3]).index, 1);
  // Inputs, outputs and ranges.
  ASSERT_EQ(a.graph.inputs().size(), b.graph.inputs().size());
  for (size_t i = 0; i < a.graph.inputs().size(); ++i) {
    EXPECT_EQ(a.graph.inputs()[i].value->id, b.graph.inputs()[i].value->id);
    EXPECT_EQ(a.graph.inputs()[i].kind, b.graph.inputs()[i].kind);
    EXPECT_EQ(a.graph.inputs()[i].target, b.graph.inputs()[i].target);
  }
  ASSERT_EQ(b.graph.outputs().size(), 3u);
  EXPECT_EQ(b.graph.outputs()[2]->name, "mul_sym");
  ASSERT_EQ(b.graph.symbol_ranges().size(), 2u);
  EXPECT_EQ(b.graph.symbol_ranges().at("s0").min, 2);
  EXPECT_EQ(b.graph.symbol_ranges().at("s0").max, 64);
  EXPECT_EQ(b.graph.symbol_ranges().at("s1").max, ir::SymbolRange::kUnbounded);
  EXPECT_EQ(value_named(b.graph, "y").shape[0].expr->to_string(), "2*s0");
  EXPECT_EQ(value_named(b.graph, "y").shape[0].value, 16);
}

TEST(EngineFormatTest, WeightsKeepValuesAndBorrowTheAlignedSegment) {
  const Engine original = make_engine();
  const std::string bytes = write_or_die(original);
  auto owner = testing::shared_buffer(bytes);
  std::string_view view = owner->view();
  {
    auto read = read_engine(view, owner);
    ASSERT_TRUE(read.ok()) << read.status().to_string();
    EXPECT_GT(owner.use_count(), 1) << "the weights must keep the owner alive";
    const auto& weights = read->program->weights;
    ASSERT_EQ(weights.size(), original.program->weights.size());
    std::set<DType> dtypes;
    for (const auto& [id, expected] : original.program->weights) {
      const Tensor& t = weights.at(id);
      const std::string name = original.program->graph.values()[id].name;
      dtypes.insert(t.dtype());
      EXPECT_EQ(t.dtype(), expected.dtype()) << name;
      EXPECT_EQ(t.sizes(), expected.sizes()) << name;
      EXPECT_TRUE(t.is_contiguous()) << name;
      ASSERT_TRUE(t.has_data()) << name;
      EXPECT_EQ(std::memcmp(t.raw_data(), expected.raw_data(), expected.nbytes()), 0) << name;
      EXPECT_EQ(kiln::testing::to_doubles(t), kiln::testing::to_doubles(expected)) << name;
      // Zero-copy: a view into the caller's bytes, 64-byte aligned.
      const auto* p = static_cast<const char*>(t.raw_data());
      EXPECT_GE(p, view.data()) << name;
      EXPECT_LE(p + t.nbytes(), view.data() + view.size()) << name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << name;
      EXPECT_FALSE(t.storage()->owns_data()) << name;
    }
    EXPECT_EQ(dtypes.size(), 7u);
  }
  EXPECT_EQ(owner.use_count(), 1) << "the engine released the owner";
}

// Whether every weight of `read` lies inside `view` (read in place) or outside it (copied).
bool weights_inside(const Engine& read, std::string_view view) {
  bool inside = true;
  for (const auto& [id, t] : read.program->weights) {
    const auto* p = static_cast<const char*>(t.raw_data());
    inside = inside && p >= view.data() && p + t.nbytes() <= view.data() + view.size();
  }
  return inside;
}

TEST(EngineFormatTest, MisalignedCpuEngineIsCopiedOnce) {
  // The CPU backend computes on weights in place: they must be 64-byte aligned.
  Engine cpu = make_engine();
  cpu.target = Target{"cpu", ""};
  const std::string bytes = write_or_die(cpu);
  for (size_t misalign : {8, 16, 48}) {
    SCOPED_TRACE(misalign);
    ExactBuffer buffer(bytes, misalign);
    auto read = read_engine(buffer.view(), nullptr);
    ASSERT_TRUE(read.ok()) << read.status().to_string();
    for (const auto& [id, t] : read->program->weights) {
      const auto* p = static_cast<const char*>(t.raw_data());
      const std::string_view view = buffer.view();
      EXPECT_TRUE(p + t.nbytes() <= view.data() || p >= view.data() + view.size())
          << "weights live in kiln's aligned copy, not in the caller's bytes";
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u);
      EXPECT_EQ(kiln::testing::to_doubles(t),
                kiln::testing::to_doubles(cpu.program->weights.at(id)));
    }
  }
  // A std::string's bytes are seldom 64-aligned: reading them works all the same.
  EXPECT_TRUE(read_engine(bytes, nullptr).ok());
}

TEST(EngineFormatTest, GpuEngineIsReadInPlaceAtEightByteAlignment) {
  // A GPU engine's weights are only copied to the device: a buffer aligned for FlatBuffers'
  // scalars (8 bytes) is read where it is, as torch.export.load's engine buffers are placed.
  const Engine original = make_engine();
  ASSERT_EQ(original.target.backend, "cuda");
  const std::string bytes = write_or_die(original);
  for (size_t misalign : {8, 16, 48}) {
    SCOPED_TRACE(misalign);
    ExactBuffer buffer(bytes, misalign);
    auto read = read_engine(buffer.view(), nullptr);
    ASSERT_TRUE(read.ok()) << read.status().to_string();
    EXPECT_TRUE(weights_inside(*read, buffer.view())) << "expected no host copy of the weights";
    for (const auto& [id, t] : read->program->weights) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % dtype_size(t.dtype()), 0u);
      EXPECT_EQ(kiln::testing::to_doubles(t),
                kiln::testing::to_doubles(original.program->weights.at(id)));
    }
  }
  // Below FlatBuffers' alignment the bytes are copied, whatever the backend.
  ExactBuffer odd(bytes, /*misalign=*/4);
  auto read = read_engine(odd.view(), nullptr);
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_FALSE(weights_inside(*read, odd.view()));
}

TEST(EngineFormatTest, WritingIsDeterministicAndStable) {
  const std::string bytes = write_or_die(make_engine());
  EXPECT_EQ(bytes, write_or_die(make_engine()));
  auto read = read_engine(bytes, nullptr);
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_EQ(write_or_die(*read), bytes) << "write(read(bytes)) == bytes";
  EXPECT_EQ(bytes.substr(4, 4), "KILN");
  EXPECT_EQ(bytes.size() % 64, 0u);
}

TEST(EngineFormatTest, SummaryReadsTheHeader) {
  const Engine original = make_engine();
  const std::string bytes = write_or_die(original);
  auto summary = read_engine_summary(bytes);
  ASSERT_TRUE(summary.ok()) << summary.status().to_string();
  EXPECT_EQ(summary->format_major, kFormatMajor);
  EXPECT_EQ(summary->format_minor, kFormatMinor);
  EXPECT_EQ(summary->target.backend, "cuda");
  EXPECT_EQ(summary->target.arch, "sm_90");
  EXPECT_EQ(summary->build.name, "_run_on_acc_0");
  EXPECT_EQ(summary->build.settings_digest, "5f3a9c");
  EXPECT_EQ(summary->build.precisions, (std::vector<std::string>{"fp32", "fp16"}));
  EXPECT_TRUE(summary->build.refittable);
  // A file cut short in its weights still shows its header, though it no longer loads.
  const std::string cut = bytes.substr(0, bytes.size() - 100);
  EXPECT_TRUE(read_engine_summary(cut).ok());
  EXPECT_FALSE(read_engine(cut, nullptr).ok());
}

TEST(EngineFormatTest, StrippedEngineKeepsRecordsButNoData) {
  Engine engine = make_engine();
  const std::string full = write_or_die(engine);
  engine.build.weights_stripped = true;
  const std::string stripped = write_or_die(engine);
  EXPECT_LT(stripped.size() + 500, full.size());
  auto read = read_engine(stripped, nullptr);
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_TRUE(read->build.weights_stripped);
  ASSERT_EQ(read->program->weights.size(), engine.program->weights.size());
  for (const auto& [id, expected] : engine.program->weights) {
    const Tensor& t = read->program->weights.at(id);
    EXPECT_FALSE(t.has_data());
    EXPECT_EQ(t.dtype(), expected.dtype());
    EXPECT_EQ(t.sizes(), expected.sizes());
  }
  // What was read (meta weights) writes again, still stripped.
  EXPECT_EQ(write_or_die(*read), stripped);
}

TEST(EngineFormatTest, CpuEngineWithoutKernels) {
  Engine engine = make_engine();
  engine.target = Target{"cpu", "x86_64"};
  engine.kernels.clear();
  engine.profiles = {Profile{{SymbolProfile{"s0", 2, 2, 64}}}};
  engine.memory = {MemoryPlan{}};
  auto read = read_engine(write_or_die(engine), nullptr);
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  expect_same_engine_metadata(engine, *read);
}

// A real program: linear.pt2 (relu(x @ W.T + b), batch dynamic in [2, 64]) survives the engine
// file and runs the same.
TEST(EngineFormatTest, ExportedProgramRunsTheSameAfterRoundTrip) {
  auto program = frontend::read_program_file(std::string(KILN_TEST_DATA_DIR) + "/pt2/linear.pt2");
  ASSERT_TRUE(program.ok()) << program.status().to_string();
  Engine engine;
  engine.program = *program;
  engine.target = Target{"cpu", "x86_64"};
  const ir::Value* x = (*program)->graph.user_inputs()[0]->value;
  const std::string symbol = *x->shape[0].expr->as_symbol();
  engine.profiles = {Profile{{SymbolProfile{symbol, 2, 8, 64}}}};
  engine.memory = {MemoryPlan{}};
  engine.build.name = "linear";
  const std::string bytes = write_or_die(engine);
  auto read = read_engine(bytes, nullptr);
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_EQ(ir::print_graph((*program)->graph), ir::print_graph(read->program->graph));

  Tensor input =
      kiln::testing::make_tensor(DType::kFloat32, {3, 4}, {1, 0, 0, 0, 0, 1, 1, -1, 0.5, 2, -3, 1});
  std::vector<Tensor> inputs = {input};
  std::vector<std::vector<double>> results;
  const std::vector<std::shared_ptr<const ir::Program>> programs = {*program, read->program};
  for (const auto& p : programs) {
    auto executor = Executor::create(p, cpu::cpu_backend());
    ASSERT_TRUE(executor.ok()) << executor.status().to_string();
    auto outputs = (*executor)->run(inputs);
    ASSERT_TRUE(outputs.ok()) << outputs.status().to_string();
    results.push_back(kiln::testing::to_doubles((*outputs)[0].tensor));
  }
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0].size(), 9u);
}

// The writer refuses what the reader would refuse, naming the problem.
TEST(EngineFormatTest, WriterRejectsMalformedEngines) {
  auto expect_rejected = [](Engine e, std::string_view fragment) {
    auto bytes = write_engine(e);
    ASSERT_FALSE(bytes.ok()) << fragment;
    EXPECT_EQ(bytes.status().code(), StatusCode::kInvalidArgument) << bytes.status().to_string();
    EXPECT_NE(bytes.status().message().find(fragment), std::string::npos)
        << bytes.status().message();
  };
  {
    Engine e = make_engine();
    e.program = nullptr;
    expect_rejected(std::move(e), "expected a program");
  }
  {
    Engine e = make_engine();
    e.profiles.clear();
    e.memory.clear();
    expect_rejected(std::move(e), "at least one optimization profile");
  }
  {
    Engine e = make_engine();
    e.memory.pop_back();
    expect_rejected(std::move(e), "one memory plan per profile (2), found 1");
  }
  {
    Engine e = make_engine();
    e.profiles[1].symbols.clear();
    expect_rejected(std::move(e), "profile 1: expected a range for symbol 's0'");
  }
  {
    Engine e = make_engine();
    e.profiles[0].symbols[0].opt = 1;
    expect_rejected(std::move(e), "expected 0 <= min <= opt <= max, found min 2, opt 1, max 32");
  }
  {
    Engine e = make_engine();
    e.profiles[1].symbols[0].max = 65;
    expect_rejected(std::move(e), "inside the program's range [2, 64], found [33, 65]");
  }
  {
    Engine e = make_engine();
    e.profiles[0].symbols.push_back(SymbolProfile{"s1", 1, 1, 1});
    expect_rejected(std::move(e), "profile 0 symbol 's1': expected a symbol of the input bindings");
  }
  {
    Engine e = make_engine();
    e.kernels[1].name = e.kernels[0].name;
    expect_rejected(std::move(e), "kernel image 'pointwise_0': expected a unique name");
  }
  {
    Engine e = make_engine();
    const uint32_t id = e.program->graph.find_value("p_h")->id;
    e.program->weights[id] = Tensor::meta(DType::kFloat16, {5});
    expect_rejected(std::move(e), "has no data; set build.weights_stripped");
  }
  {
    Engine e = make_engine();
    const uint32_t id = e.program->graph.find_value("p_fc_weight")->id;
    e.program->weights[id] = kiln::testing::make_tensor(DType::kFloat32, {4, 3}, {0});
    expect_rejected(std::move(e),
                    "weight 'fc.weight' (value 'p_fc_weight'): expected "
                    "float32[3, 4], found float32[4, 3]");
  }
  {
    Engine e = make_engine();
    e.program->weights.erase(e.program->graph.find_value("c_mask")->id);
    expect_rejected(std::move(e), "graph input 'c_mask' ('mask'): expected a weight, found none");
  }
  {
    Engine e = make_engine();
    e.program->weights[0] = kiln::testing::make_tensor(DType::kFloat32, {1}, {0});
    expect_rejected(std::move(e),
                    "weight of value 0 ('x'): expected a parameter, buffer or "
                    "constant input");
  }
  {
    Engine e = make_engine();
    ir::Graph other;
    ir::Value* stranger = other.add_value("stranger", ir::ValueKind::kTensor);
    e.program->graph.nodes()[2].args[0] = stranger;
    expect_rejected(std::move(e), "node 'add' reads a value that is not the graph's");
  }
}

}  // namespace
}  // namespace kiln::format
