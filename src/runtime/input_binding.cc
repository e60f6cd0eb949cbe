#include "runtime/input_binding.h"

namespace kiln {
namespace {

std::string range_to_string(const ir::SymbolRange& r) {
  return str_cat("[", r.min, ", ",
                 r.max == ir::SymbolRange::kUnbounded ? std::string("inf") : std::to_string(r.max),
                 "]");
}

Status check_range(const ir::Graph& graph, const std::string& symbol, int64_t value,
                   const std::string& where) {
  auto it = graph.symbol_ranges().find(symbol);
  if (it == graph.symbol_ranges().end()) return ok_status();
  const ir::SymbolRange& r = it->second;
  if (value < r.min || value > r.max) {
    return out_of_range(where, ": expected a value in ", range_to_string(r), " (symbol ", symbol,
                        "), found ", value);
  }
  return ok_status();
}

}  // namespace

Result<ir::SymBindings> bind_inputs(const ir::Graph& graph, std::span<const Tensor> inputs) {
  const auto user_inputs = graph.user_inputs();
  if (inputs.size() != user_inputs.size()) {
    return invalid_argument("expected ", user_inputs.size(), " inputs, found ", inputs.size());
  }
  ir::SymBindings bindings;
  // Two passes: dims that are bare symbols or solvable (2*s0) bind first, then every dim is
  // checked.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      const ir::Value& v = *user_inputs[i]->value;
      const Tensor& t = inputs[i];
      const std::string name = str_cat("input '", v.name, "'");
      if (v.kind != ir::ValueKind::kTensor) {
        return unsupported(name, " is a ", "symbolic scalar; only tensor inputs are supported");
      }
      if (pass == 0) {
        if (t.dtype() != v.dtype) {
          return invalid_argument(name, ": expected dtype ", dtype_name(v.dtype), ", found ",
                                  dtype_name(t.dtype()));
        }
        if (t.dim() != static_cast<int64_t>(v.shape.size())) {
          return invalid_argument(name, ": expected ", v.shape.size(), " dims, found ", t.dim(),
                                  " (shape ", shape_to_string(t.sizes()), ")");
        }
      }
      for (size_t d = 0; d < v.shape.size(); ++d) {
        const ir::SymDim& dim = v.shape[d];
        const int64_t actual = t.size(static_cast<int64_t>(d));
        const std::string where = str_cat(name, " dim ", d);
        if (dim.is_static()) {
          if (pass == 1 && actual != dim.value) {
            return invalid_argument(where, ": expected size ", dim.value, ", found ", actual,
                                    " (shape ", shape_to_string(t.sizes()), ")");
          }
          continue;
        }
        if (pass == 0) {
          auto evaluated = dim.expr->evaluate(bindings);
          if (evaluated.ok()) continue;  // already determined
          auto solved = dim.expr->solve_for_unbound(actual, bindings);
          if (!solved.ok()) continue;  // not solvable from this dim alone: checked in pass 1
          KILN_RETURN_IF_ERROR(check_range(graph, solved->first, solved->second, where));
          bindings.set(solved->first, solved->second);
          continue;
        }
        auto evaluated = dim.expr->evaluate(bindings);
        // A compound dim (s0*s1) whose symbols no input determines alone: nothing to check it
        // against. Segments of a partitioned program have such inputs (a flattened batch*seq).
        if (!evaluated.ok() && evaluated.status().code() == StatusCode::kNotFound) continue;
        KILN_ASSIGN_OR_RETURN(int64_t expected, std::move(evaluated), where);
        if (expected != actual) {
          return invalid_argument(where, ": expected size ", expected, " (", dim.expr->to_string(),
                                  "), found ", actual, " (shape ", shape_to_string(t.sizes()), ")");
        }
        // Ranges can also be given for compound expressions (range_constraints key "2*s0").
        KILN_RETURN_IF_ERROR(check_range(graph, dim.expr->to_string(), actual, where));
      }
    }
  }
  return bindings;
}

}  // namespace kiln
