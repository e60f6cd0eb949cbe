// Shared by the lowering-pass tests: loading the pass fixtures, building small programs by hand
// (output dtypes and shapes come from kiln's shape inference, as an export would record them),
// running programs on the CPU reference backend, and comparing results.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "frontend/pt2_reader.h"
#include "ir/op_context.h"
#include "ir/printer.h"
#include "ir/schema_defaults.h"
#include "ir/shape_inference.h"
#include "ir/verifier.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/executor.h"

namespace kiln::passes::testing {

inline std::shared_ptr<ir::Program> load_fixture(const std::string& name) {
  auto program = frontend::read_program_file(std::string(KILN_TEST_DATA_DIR) + "/pt2/" + name);
  EXPECT_TRUE(program.ok()) << name << ": " << program.status().to_string();
  return program.ok() ? *program : nullptr;
}

// Deterministic values in [-1, 1).
inline Tensor pseudo_random(DType dtype, Shape sizes, uint32_t seed = 1) {
  Tensor f = Tensor::empty(DType::kFloat32, std::move(sizes)).value();
  uint32_t state = seed * 2654435761u + 12345u;
  for (int64_t i = 0; i < f.numel(); ++i) {
    state = state * 1664525u + 1013904223u;
    f.data<float>()[i] = static_cast<float>(state >> 8) / static_cast<float>(1u << 23) - 1.0f;
  }
  return dtype == DType::kFloat32 ? f : f.to(dtype).value();
}

inline Tensor from_values(const std::vector<float>& values) {
  Tensor t = Tensor::empty(DType::kFloat32, {static_cast<int64_t>(values.size())}).value();
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

inline std::vector<Tensor> run_cpu(std::shared_ptr<const ir::Program> program,
                                   const std::vector<Tensor>& inputs) {
  auto executor = Executor::create(std::move(program), cpu::cpu_backend());
  EXPECT_TRUE(executor.ok()) << executor.status().to_string();
  if (!executor.ok()) return {};
  auto outputs = (*executor)->run(inputs);
  EXPECT_TRUE(outputs.ok()) << outputs.status().to_string();
  if (!outputs.ok()) return {};
  std::vector<Tensor> tensors;
  for (ir::RtValue& v : *outputs) tensors.push_back(v.tensor.contiguous().value());
  return tensors;
}

inline std::vector<double> values_of(const Tensor& t) {
  Tensor d = t.to(DType::kFloat64).value();
  return std::vector<double>(d.data<double>(), d.data<double>() + d.numel());
}

// rel_tol 0: bit-exact (same dtype, shape and values).
inline void expect_same_outputs(const std::vector<Tensor>& before, const std::vector<Tensor>& after,
                                double rel_tol = 0.0) {
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(before[i].dtype(), after[i].dtype()) << "output " << i;
    ASSERT_EQ(before[i].sizes(), after[i].sizes()) << "output " << i;
    const std::vector<double> a = values_of(before[i]);
    const std::vector<double> b = values_of(after[i]);
    for (size_t j = 0; j < a.size(); ++j) {
      if (rel_tol == 0.0) {
        ASSERT_EQ(a[j], b[j]) << "output " << i << " element " << j;
      } else {
        ASSERT_LE(std::abs(a[j] - b[j]), rel_tol * std::max(1.0, std::abs(a[j])))
            << "output " << i << " element " << j << ": " << a[j] << " vs " << b[j];
      }
    }
  }
}

inline void expect_valid(const ir::Program& program) {
  Status structure = ir::verify(program.graph);
  EXPECT_TRUE(structure.ok()) << structure.to_string() << "\n" << ir::print_graph(program.graph);
  Status inference = ir::check_inference(program);
  EXPECT_TRUE(inference.ok()) << inference.to_string() << "\n" << ir::print_graph(program.graph);
  for (const ir::GraphInput& in : program.graph.inputs()) {
    if (in.kind == ir::InputKind::kUserInput) continue;
    auto it = program.weights.find(in.value->id);
    EXPECT_TRUE(it != program.weights.end()) << "no tensor for '" << in.value->name << "'";
    if (it == program.weights.end()) continue;
    EXPECT_EQ(it->second.dtype(), in.value->dtype) << in.value->name;
    Shape recorded;
    for (const ir::SymDim& dim : in.value->shape) recorded.push_back(dim.value);
    EXPECT_EQ(it->second.sizes(), recorded) << in.value->name;
  }
  EXPECT_EQ(program.weights.size(),
            program.graph.inputs().size() - program.graph.user_inputs().size());
}

inline int count_op(const ir::Graph& graph, ir::OpKey op) {
  int count = 0;
  for (const ir::Node& node : graph.nodes()) count += node.op == op ? 1 : 0;
  return count;
}

inline const ir::Node* find_node(const ir::Graph& graph, std::string_view name) {
  for (const ir::Node& node : graph.nodes()) {
    if (node.name == name) return &node;
  }
  return nullptr;
}

inline const ir::GraphInput* find_input(const ir::Graph& graph, std::string_view name) {
  for (const ir::GraphInput& in : graph.inputs()) {
    if (in.value->name == name) return &in;
  }
  return nullptr;
}

inline std::vector<std::string> output_names(const ir::Graph& graph) {
  std::vector<std::string> names;
  for (const ir::Value* out : graph.outputs()) names.push_back(out->name);
  return names;
}

// Builds a program by hand. Arguments not given take their schema defaults; each node's outputs
// get the dtypes and static shapes shape inference computes (for an op without inference, the
// first output gets the first argument's).
class ProgramBuilder {
 public:
  ProgramBuilder() : program_(std::make_shared<ir::Program>()) {}

  ir::Value* input(const std::string& name, DType dtype, const Shape& shape) {
    ir::Value* v = add_tensor_value(name, Tensor::meta(dtype, shape));
    graph().add_input(v, ir::InputKind::kUserInput, "");
    return v;
  }
  ir::Value* weight(const std::string& name, Tensor tensor,
                    ir::InputKind kind = ir::InputKind::kParameter) {
    ir::Value* v = add_tensor_value(name, Tensor::meta(tensor.dtype(), tensor.sizes()));
    graph().add_input(v, kind, name);
    program_->weights[v->id] = std::move(tensor);
    return v;
  }
  // Adds a node; returns its outputs (one value per schema return; named `name`, `name_1`, ...).
  std::vector<ir::Value*> node_outputs(const std::string& name, const std::string& target,
                                       std::vector<ir::Argument> args) {
    auto key = ir::find_op(target);
    EXPECT_TRUE(key.has_value()) << target;
    ir::Node* node = graph().add_node(name, *key);
    const auto schema_args = node->schema().args();
    for (size_t i = 0; i < schema_args.size(); ++i) {
      if (i < args.size()) {
        node->args.push_back(std::move(args[i]));
      } else {
        auto arg = ir::default_argument(schema_args[i]);
        EXPECT_TRUE(arg.ok()) << target << " argument " << schema_args[i].name;
        node->args.push_back(arg.ok() ? *arg : ir::Argument(ir::NoneArg{}));
      }
    }
    std::vector<ir::Value*> outs;
    for (size_t i = 0; i < node->schema().returns().size(); ++i) {
      ir::Value* v =
          graph().add_value(i == 0 ? name : str_cat(name, "_", i), ir::ValueKind::kTensor);
      node->outputs.push_back(v);
      outs.push_back(v);
    }
    metas_.resize(graph().num_values());
    ir::OpFn infer = ir::shape_inference_table().find(node->op);
    if (!infer) {
      // An op kiln cannot run yet (contiguous, dropout): it records its first argument's meta.
      const ir::Value* first = std::get<ir::Value*>(node->args[0]);
      outs[0]->dtype = first->dtype;
      outs[0]->shape = first->shape;
      outs[0]->has_recorded_meta = true;
      metas_[outs[0]->id] = metas_[first->id];
      return outs;
    }
    ir::OpContext ctx(*node, metas_);
    Status status = infer(ctx);
    EXPECT_TRUE(status.ok() && ctx.error().ok())
        << name << ": " << status.to_string() << ctx.error().to_string();
    for (ir::Value* v : outs) {
      const ir::RtValue& meta = metas_[v->id];
      if (meta.kind != ir::RtValue::Kind::kTensor) continue;
      v->dtype = meta.tensor.dtype();
      for (int64_t s : meta.tensor.sizes()) v->shape.push_back(ir::SymDim{s, nullptr});
      v->has_recorded_meta = true;
    }
    return outs;
  }
  ir::Value* node(const std::string& name, const std::string& target,
                  std::vector<ir::Argument> args) {
    return node_outputs(name, target, std::move(args))[0];
  }
  void output(ir::Value* v) { graph().add_output(v); }

  // Links the graph and hands the program over.
  std::shared_ptr<ir::Program> finish() {
    graph().link();
    return program_;
  }

  static ir::Argument ints(std::vector<int64_t> values) {
    std::vector<ir::SymInt> list;
    for (int64_t v : values) list.push_back(ir::SymInt{v, nullptr});
    return list;
  }

 private:
  ir::Graph& graph() { return program_->graph; }
  ir::Value* add_tensor_value(const std::string& name, Tensor meta) {
    ir::Value* v = graph().add_value(name, ir::ValueKind::kTensor);
    v->dtype = meta.dtype();
    for (int64_t s : meta.sizes()) v->shape.push_back(ir::SymDim{s, nullptr});
    v->has_recorded_meta = true;
    metas_.resize(graph().num_values());
    metas_[v->id] = ir::RtValue::of(std::move(meta));
    return v;
  }

  std::shared_ptr<ir::Program> program_;
  std::vector<ir::RtValue> metas_;
};

}  // namespace kiln::passes::testing
