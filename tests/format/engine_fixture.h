// Test support for the engine format: a hand-built engine whose graph uses every ir::Argument
// alternative, symbolic dims, weights of several dtypes, kernels and two profiles; and buffers of
// an exact size at a chosen alignment (so ASan sees any read past the end).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "format/engine.h"
#include "ir/sym_expr.h"
#include "support/op_runner.h"

namespace kiln::format::testing {

// Bytes at `misalign` bytes past a 64-byte boundary, in an allocation of exactly
// size + misalign bytes.
class ExactBuffer {
 public:
  explicit ExactBuffer(std::string_view bytes, size_t misalign = 0)
      : base_(static_cast<char*>(::operator new (bytes.size() + misalign, std::align_val_t{64}))),
        size_(bytes.size()),
        misalign_(misalign) {
    if (size_) std::memcpy(base_ + misalign_, bytes.data(), size_);
  }
  ~ExactBuffer() { ::operator delete (base_, std::align_val_t{64}); }
  ExactBuffer(const ExactBuffer&) = delete;
  ExactBuffer& operator=(const ExactBuffer&) = delete;

  char* data() { return base_ + misalign_; }
  std::string_view view() const { return {base_ + misalign_, size_}; }

 private:
  char* base_;
  size_t size_;
  size_t misalign_;
};

// An owner whose lifetime the tests can watch: read_engine must keep it alive through the
// weights' storage.
inline std::shared_ptr<ExactBuffer> shared_buffer(std::string_view bytes) {
  return std::make_shared<ExactBuffer>(bytes);
}

inline ir::SymExprPtr expr(std::string_view text) {
  return std::move(ir::parse_sym_expr(text)).value();
}

inline ir::Value* tensor_value(ir::Graph& g, std::string name, DType dtype,
                               std::vector<ir::SymDim> shape) {
  ir::Value* v = g.add_value(std::move(name), ir::ValueKind::kTensor);
  v->dtype = dtype;
  v->shape = std::move(shape);
  v->has_recorded_meta = true;
  return v;
}

inline ir::Node* node(ir::Graph& g, std::string name, std::string_view op,
                      std::vector<ir::Argument> args, std::vector<ir::Value*> outputs) {
  ir::Node* n = g.add_node(std::move(name), *ir::find_op(op));
  n->args = std::move(args);
  n->outputs = std::move(outputs);
  return n;
}

// Adds a weight input with data `values` (converted to `dtype`).
inline ir::Value* weight(ir::Program& p, std::string name, ir::InputKind kind, std::string target,
                         DType dtype, Shape sizes, std::vector<double> values) {
  std::vector<ir::SymDim> dims;
  for (int64_t s : sizes) dims.push_back(ir::SymDim{s, nullptr});
  ir::Value* v = tensor_value(p.graph, std::move(name), dtype, std::move(dims));
  p.graph.add_input(v, kind, std::move(target));
  p.weights.emplace(v->id, kiln::testing::make_tensor(dtype, std::move(sizes), values));
  return v;
}

inline std::vector<double> ramp(size_t n, double start, double step) {
  std::vector<double> out;
  for (size_t i = 0; i < n; ++i) out.push_back(start + step * static_cast<double>(i));
  return out;
}

// x: float32[s0, 4] and y: float32[2*s0, 4] (s0 in [2, 64]), seven weights of six dtypes, and
// nodes that between them use every ir::Argument alternative.
inline std::shared_ptr<ir::Program> make_program() {
  auto p = std::make_shared<ir::Program>();
  ir::Graph& g = p->graph;
  const ir::SymDim s0{8, expr("s0")};
  const ir::SymDim two_s0{16, expr("2*s0")};
  const ir::SymDim c4{4, nullptr};

  ir::Value* x = tensor_value(g, "x", DType::kFloat32, {s0, c4});
  g.add_input(x, ir::InputKind::kUserInput, "");
  ir::Value* y = tensor_value(g, "y", DType::kFloat32, {two_s0, c4});
  g.add_input(y, ir::InputKind::kUserInput, "");
  ir::Value* w = weight(*p, "p_fc_weight", ir::InputKind::kParameter, "fc.weight", DType::kFloat32,
                        {3, 4}, ramp(12, -1.5, 0.25));
  weight(*p, "p_h", ir::InputKind::kParameter, "h", DType::kFloat16, {5}, ramp(5, 0.5, 1.0));
  ir::Value* idx = weight(*p, "b_idx", ir::InputKind::kBuffer, "idx", DType::kInt64, {2, 3},
                          {0, 1, 2, 3, -4, 1LL << 40});
  weight(*p, "c_mask", ir::InputKind::kConstant, "mask", DType::kBool, {7}, {1, 0, 0, 1, 1, 0, 1});
  weight(*p, "p_bf", ir::InputKind::kParameter, "bf", DType::kBFloat16, {3}, {1.0, -2.0, 0.5});
  weight(*p, "b_i8", ir::InputKind::kBuffer, "i8", DType::kInt8, {65}, ramp(65, -32, 1));
  weight(*p, "c_scale", ir::InputKind::kConstant, "scale", DType::kFloat64, {}, {3.25});

  ir::Value* size = g.add_value("sym_size_int", ir::ValueKind::kSymInt);
  size->expr = expr("s0");
  node(g, "sym_size_int", "aten.sym_size.int", {x, int64_t{0}}, {size});
  ir::Value* twice = g.add_value("mul_sym", ir::ValueKind::kSymInt);
  twice->expr = expr("2*s0");
  node(g, "mul_sym", "_operator.mul", {size, int64_t{2}}, {twice});

  ir::Value* add = tensor_value(g, "add", DType::kFloat32, {s0, c4});
  node(g, "add", "aten.add.Tensor", {x, x, int64_t{1}}, {add});
  ir::Value* mul = tensor_value(g, "mul", DType::kFloat32, {s0, c4});
  node(g, "mul", "aten.mul.Scalar", {add, 0.5}, {mul});
  ir::Value* view = tensor_value(g, "view", DType::kFloat32, {two_s0, ir::SymDim{2, nullptr}});
  node(g, "view", "aten.view.default", {add, std::vector<ir::SymInt>{{0, twice}, {2, nullptr}}},
       {view});
  ir::Value* cat = tensor_value(g, "cat", DType::kFloat32, {two_s0, c4});
  node(g, "cat", "aten.cat.default", {std::vector<ir::Value*>{add, mul}, int64_t{0}}, {cat});
  ir::Value* index = tensor_value(g, "index", DType::kFloat32,
                                  {s0, ir::SymDim{2, nullptr}, ir::SymDim{3, nullptr}});
  node(g, "index", "aten.index.Tensor", {add, std::vector<ir::Value*>{nullptr, idx}}, {index});
  ir::Value* copy = tensor_value(g, "to_copy", DType::kFloat16, {s0, c4});
  node(g, "to_copy", "aten._to_copy.default",
       {add, DType::kFloat16, ir::NoneArg{}, ir::Device{"cuda", 1}, ir::NoneArg{}, true,
        ir::MemoryFormat::kChannelsLast},
       {copy});
  ir::Value* div = tensor_value(g, "div", DType::kFloat32, {s0, c4});
  node(g, "div", "aten.div.Tensor_mode", {add, mul, std::string("floor")}, {div});
  ir::Value* up = tensor_value(g, "up", DType::kFloat32, {s0, ir::SymDim{2, nullptr}});
  node(g, "up", "aten.upsample_bilinear2d.vec",
       {x, ir::NoneArg{}, false, std::vector<double>{2.0, 0.5}}, {up});
  ir::Value* grad_in = tensor_value(g, "grad_in", DType::kFloat32, {s0, c4});
  ir::Value* grad_b = tensor_value(g, "grad_b", DType::kFloat32, {c4});
  node(g, "lnb", "aten.native_layer_norm_backward.default",
       {add, x, std::vector<ir::SymInt>{{4, nullptr}}, mul, mul, w, ir::NoneArg{},
        std::vector<bool>{true, false, true}},
       {grad_in, nullptr, grad_b});
  ir::Value* unused = g.add_value("relu_unused", ir::ValueKind::kTensor);  // no recorded meta
  ir::Node* relu = node(g, "relu", "aten.relu.default", {y}, {unused});
  relu->stack_trace = "File \"model.py\", line 7, in forward\n    return y.relu()";

  g.add_output(cat);
  g.add_output(copy);
  g.add_output(twice);
  g.set_symbol_range("s0", ir::SymbolRange{2, 64});
  g.set_symbol_range("s1", ir::SymbolRange{1, ir::SymbolRange::kUnbounded});
  g.link();

  p->torch_version = "2.11.0+cpu";
  p->schema_major = 8;
  p->schema_minor = 13;
  p->in_spec = R"([1, {"type": "builtins.tuple"}])";
  p->out_spec = R"([1, {"type": "builtins.list"}])";
  return p;
}

inline Engine make_engine() {
  Engine e;
  e.program = make_program();
  e.target = Target{"cuda", "sm_90"};
  e.profiles = {Profile{{SymbolProfile{"s0", 2, 8, 32}}},
                Profile{{SymbolProfile{"s0", 33, 48, 64}}}};
  e.memory = {MemoryPlan{1 << 20, 4096}, MemoryPlan{1 << 22, 8192}};
  e.kernels = {
      KernelImage{"pointwise_0", "sm_90", KernelImageKind::kCubin,
                  std::string("\x7f"
                              "ELF\0\0\x01\x02\xff",
                              9)},
      KernelImage{"pointwise_0_ptx", "compute_80", KernelImageKind::kPtx,
                  ".version 8.0\n.target sm_80\n"},
  };
  e.build.kiln_version = "0.1.0";
  e.build.torch_version = "2.11.0+cpu";
  e.build.settings_digest = "5f3a9c";
  e.build.precisions = {"fp32", "fp16"};
  e.build.hardware_compatible = true;
  e.build.refittable = true;
  e.build.name = "_run_on_acc_0";
  return e;
}

inline std::string write_or_die(const Engine& e) {
  auto bytes = write_engine(e);
  if (!bytes.ok()) {
    std::fprintf(stderr, "write_engine: %s\n", bytes.status().message().c_str());
    std::abort();
  }
  return std::move(bytes).value();
}

}  // namespace kiln::format::testing
