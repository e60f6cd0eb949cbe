// A segment as a program of its own, for the engine builder (and for running it alone in tests).
#include <unordered_set>

#include "ir/verifier.h"
#include "partition/partition.h"

namespace kiln::partition {
namespace {

class Extractor {
 public:
  Extractor(const ir::Program& source, const Segment& segment)
      : source_(source),
        segment_(segment),
        mapped_(source.graph.num_values(), nullptr),
        input_of_(source.graph.num_values(), nullptr),
        target_(std::make_shared<ir::Program>()) {
    for (const ir::GraphInput& in : source.graph.inputs()) input_of_[in.value->id] = &in;
  }

  Result<std::shared_ptr<ir::Program>> run() {
    ir::Graph& graph = target_->graph;
    for (const ir::Value* in : segment_.inputs) {
      if (mapped_[in->id]) return error("input '", in->name, "' is listed twice");
      graph.add_input(copy_value(*in), ir::InputKind::kUserInput, "");
    }
    for (const ir::Node* node : segment_.nodes) KILN_RETURN_IF_ERROR(copy_node(*node));
    for (const ir::Value* out : segment_.outputs) {
      if (!mapped_[out->id] || !produced_.contains(out->id)) {
        return error("output '", out->name, "' is not computed by the segment's nodes");
      }
      graph.add_output(mapped_[out->id]);
    }
    for (const auto& [symbol, range] : source_.graph.symbol_ranges()) {
      graph.set_symbol_range(symbol, range);
    }
    graph.link();
    target_->torch_version = source_.torch_version;
    target_->schema_major = source_.schema_major;
    target_->schema_minor = source_.schema_minor;
    KILN_RETURN_IF_ERROR(ir::verify(graph), "segment ", segment_.name);
    return target_;
  }

 private:
  template <typename... Args>
  Status error(const Args&... args) const {
    return invalid_argument("segment ", segment_.name, ": ", args...);
  }

  ir::Value* copy_value(const ir::Value& v) {
    ir::Value* copy = target_->graph.add_value(v.name, v.kind);
    copy->dtype = v.dtype;
    copy->shape = v.shape;  // symbolic expressions are immutable and shared
    copy->has_recorded_meta = v.has_recorded_meta;
    copy->expr = v.expr;
    mapped_[v.id] = copy;
    return copy;
  }

  // The copy of a value a node reads: an input, a value produced earlier in the segment, or a
  // weight (added as a weight input on first use, sharing the tensor).
  Result<ir::Value*> resolve(const ir::Value* v, const ir::Node& reader) {
    if (!v) return static_cast<ir::Value*>(nullptr);
    if (mapped_[v->id]) return mapped_[v->id];
    const ir::GraphInput* in = input_of_[v->id];
    if (!in || in->kind == ir::InputKind::kUserInput) {
      return error("node '", reader.name, "' reads '", v->name,
                   "', which is neither an input of the segment nor computed before it there");
    }
    auto weight = source_.weights.find(v->id);
    if (weight == source_.weights.end()) {
      return error("node '", reader.name, "' reads '", in->target,
                   "', for which the program holds no tensor");
    }
    ir::Value* copy = copy_value(*v);
    target_->graph.add_input(copy, in->kind, in->target);
    target_->weights.emplace(copy->id, weight->second);
    return copy;
  }

  Result<ir::Argument> copy_argument(const ir::Argument& arg, const ir::Node& reader) {
    if (const auto* v = std::get_if<ir::Value*>(&arg)) {
      KILN_ASSIGN_OR_RETURN(ir::Value * copy, resolve(*v, reader));
      return ir::Argument(copy);
    }
    if (const auto* list = std::get_if<std::vector<ir::Value*>>(&arg)) {
      std::vector<ir::Value*> copies;
      for (const ir::Value* v : *list) {
        KILN_ASSIGN_OR_RETURN(ir::Value * copy, resolve(v, reader));
        copies.push_back(copy);
      }
      return ir::Argument(std::move(copies));
    }
    if (const auto* ints = std::get_if<std::vector<ir::SymInt>>(&arg)) {
      std::vector<ir::SymInt> copies;
      for (const ir::SymInt& s : *ints) {
        KILN_ASSIGN_OR_RETURN(ir::Value * copy, resolve(s.value, reader));
        copies.push_back(ir::SymInt{s.constant, copy});
      }
      return ir::Argument(std::move(copies));
    }
    return arg;
  }

  Status copy_node(const ir::Node& node) {
    ir::Node* copy = target_->graph.add_node(node.name, node.op);
    copy->stack_trace = node.stack_trace;
    for (const ir::Argument& arg : node.args) {
      KILN_ASSIGN_OR_RETURN(ir::Argument a, copy_argument(arg, node));
      copy->args.push_back(std::move(a));
    }
    for (const ir::Value* out : node.outputs) {
      if (out && mapped_[out->id]) return error("value '", out->name, "' is defined twice");
      copy->outputs.push_back(out ? copy_value(*out) : nullptr);
      if (out) produced_.insert(out->id);
    }
    return ok_status();
  }

  const ir::Program& source_;
  const Segment& segment_;
  std::vector<ir::Value*> mapped_;               // by source Value::id
  std::vector<const ir::GraphInput*> input_of_;  // by source Value::id
  std::unordered_set<uint32_t> produced_;        // source ids of values the nodes define
  std::shared_ptr<ir::Program> target_;
};

}  // namespace

Result<std::shared_ptr<ir::Program>> extract_segment(const ir::Program& program,
                                                     const Segment& segment) {
  return Extractor(program, segment).run();
}

}  // namespace kiln::partition
