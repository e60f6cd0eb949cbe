// kiln's IR: a graph of nodes in topological order over typed values.
//
// Every value keeps its name from the program, so a partition maps back onto the FX graph node for
// node. Node arguments are stored by schema position with omitted defaults filled in, so passes and
// kernels never look at argument names. The Graph owns its nodes and values; pointers to them stay
// valid for the graph's lifetime (they live in stable containers), except across the editing calls
// that say they invalidate them (erase_nodes, compact_values). Not thread-safe to mutate.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/dtype.h"
#include "ir/op_schema.h"
#include "kiln/status.h"

namespace kiln::ir {

class SymExpr;
using SymExprPtr = std::shared_ptr<const SymExpr>;

// One dim of a recorded shape: a constant, or a symbolic expression over the program's symbols.
struct SymDim {
  int64_t value = 0;  // the constant; for symbolic dims the program's example hint
  SymExprPtr expr;    // null for a constant dim
  bool is_static() const { return expr == nullptr; }
};
std::string sym_dim_to_string(const SymDim& dim);

enum class ValueKind : uint8_t { kTensor, kSymInt, kSymFloat, kSymBool };

struct Node;

struct Value {
  uint32_t id = 0;
  std::string name;
  ValueKind kind = ValueKind::kTensor;
  // Tensors: the dtype and shape the program records.
  DType dtype = DType::kFloat32;
  std::vector<SymDim> shape;
  bool has_recorded_meta = false;  // false for outputs the program never described (`..._unused_1`)
  // Sym values: the expression the program records (may be null when unknown).
  SymExprPtr expr;
  Node* producer = nullptr;  // null for graph inputs (parameters, buffers, constants, user inputs)
  std::vector<Node*> users;
};

// An int argument that may be symbolic: a constant, or a reference to a SymInt value.
struct SymInt {
  int64_t constant = 0;
  Value* value = nullptr;
};

enum class MemoryFormat : uint8_t { kContiguous, kChannelsLast, kChannelsLast3d, kPreserve };
struct Device {
  std::string type = "cpu";
  int index = -1;
};
struct NoneArg {};
// A Scalar argument: int, float or bool, as the program wrote it.
using ScalarArg = std::variant<int64_t, double, bool>;

// One argument of a node, by schema position. Tensor and sym references are Value pointers; a
// tensor list is a vector of them (null entries for `Tensor?[]` holes).
using Argument = std::variant<NoneArg, Value*, std::vector<Value*>, int64_t, double, bool,
                              std::string, std::vector<SymInt>, std::vector<double>,
                              std::vector<bool>, DType, MemoryFormat, Device>;

std::string argument_to_string(const Argument& arg);

struct Node {
  uint32_t id = 0;
  std::string name;
  OpKey op = OpKey::kInvalid;
  std::vector<Argument> args;   // one per schema argument, defaults filled in
  std::vector<Value*> outputs;  // flattened returns; a `Tensor[]` return gives one value each
  std::string stack_trace;      // where the op came from in the user's code, for messages

  const OpSchema& schema() const { return op_schema(op); }
  // Every Value this node reads, in argument order.
  std::vector<Value*> input_values() const;
};

// Where a graph input comes from (the export graph signature).
enum class InputKind : uint8_t { kParameter, kBuffer, kConstant, kUserInput };

struct GraphInput {
  Value* value;
  InputKind kind;
  std::string target;  // parameter/buffer/constant FQN ("layer1.0.conv1.weight"); empty for users
};

// A symbol's range from range_constraints (inclusive; max may be kUnbounded).
struct SymbolRange {
  int64_t min = 0;
  int64_t max = kUnbounded;
  static constexpr int64_t kUnbounded = INT64_MAX;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  Value* add_value(std::string name, ValueKind kind);
  Node* add_node(std::string name, OpKey op);
  void add_input(Value* value, InputKind kind, std::string target);
  void add_output(Value* value) { outputs_.push_back(value); }
  // Makes graph output `index` read `value` (nothing else changes).
  void set_output(size_t index, Value* value) { outputs_.at(index) = value; }
  void set_symbol_range(const std::string& symbol, SymbolRange range) { ranges_[symbol] = range; }
  // Fills in Value::producer and Value::users from the nodes' arguments and outputs.
  void link();

  Value* find_value(std::string_view name) const;
  const std::deque<Node>& nodes() const { return nodes_; }
  std::deque<Node>& nodes() { return nodes_; }
  const std::deque<Value>& values() const { return values_; }
  std::deque<Value>& values() { return values_; }
  size_t num_values() const { return values_.size(); }
  const std::vector<GraphInput>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  std::vector<const GraphInput*> user_inputs() const;
  const std::unordered_map<std::string, SymbolRange>& symbol_ranges() const { return ranges_; }

  // Editing, for the lowering passes. Each call keeps the nodes in order and the users linked; none
  // checks that the result verifies (the passes run the verifier).
  //
  // Makes every node argument and graph output that reads `from` read `to` instead.
  void replace_all_uses(Value* from, Value* to);
  // Removes the nodes `erase` selects and keeps the others in order; node ids are renumbered.
  // Pointers to Nodes are invalidated (pointers to Values are not). The values the removed nodes
  // produced stay in the graph without a producer until compact_values(). Returns how many went.
  size_t erase_nodes(const std::function<bool(const Node&)>& erase);
  // Removes the graph inputs `erase` selects (their values stay until compact_values()).
  size_t erase_inputs(const std::function<bool(const GraphInput&)>& erase);
  // Drops the values nothing refers to (no producer, no users, neither graph input nor output) and
  // renumbers the others in order. Returns each old id's new id, kDroppedValue for a dropped one
  // (callers remap what they key by value id, like Program::weights). Invalidates pointers to
  // Values.
  static constexpr uint32_t kDroppedValue = UINT32_MAX;
  std::vector<uint32_t> compact_values();

 private:
  std::deque<Value> values_;
  std::deque<Node> nodes_;
  std::vector<GraphInput> inputs_;
  std::vector<Value*> outputs_;
  std::unordered_map<std::string, Value*> by_name_;
  std::unordered_map<std::string, SymbolRange> ranges_;
};

}  // namespace kiln::ir
