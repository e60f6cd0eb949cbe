#include "builder/profiles.h"

#include <charconv>

#include "ir/sym_expr.h"

namespace kiln::builder {
namespace {

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string out = "(";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + ")";
}

std::string range_text(const ir::SymbolRange& r) {
  return str_cat("[", r.min, ", ",
                 r.max == ir::SymbolRange::kUnbounded ? std::string("inf") : std::to_string(r.max),
                 "]");
}

ir::SymbolRange program_range(const ir::Graph& graph, const std::string& symbol) {
  auto it = graph.symbol_ranges().find(symbol);
  return it == graph.symbol_ranges().end() ? ir::SymbolRange{} : it->second;
}

Status check_spec_shape(const InputSpec& spec, const ir::Value& value, size_t index) {
  const std::string name = str_cat("input ", index, " ('", value.name, "')");
  if (spec.min.size() != spec.opt.size() || spec.min.size() != spec.max.size()) {
    return invalid_argument(name, ": min, opt and max shapes must have the same rank, found ",
                            shape_text(spec.min), ", ", shape_text(spec.opt), ", ",
                            shape_text(spec.max));
  }
  if (spec.min.size() != value.shape.size()) {
    return invalid_argument(name, ": the program expects ", value.shape.size(),
                            " dims, the input spec gives ", spec.min.size(), " ",
                            shape_text(spec.opt));
  }
  for (size_t d = 0; d < spec.min.size(); ++d) {
    if (spec.min[d] < 0 || spec.min[d] > spec.opt[d] || spec.opt[d] > spec.max[d]) {
      return invalid_argument(name, " dim ", d, ": expected 0 <= min <= opt <= max, found ",
                              spec.min[d], ":", spec.opt[d], ":", spec.max[d]);
    }
  }
  if (spec.dtype && *spec.dtype != value.dtype) {
    return invalid_argument(name, ": the input spec's dtype is ", dtype_name(*spec.dtype),
                            ", but the program was exported with ", dtype_name(value.dtype));
  }
  return ok_status();
}

}  // namespace

std::vector<std::string> input_symbols(const ir::Graph& graph) {
  std::vector<std::string> names;
  for (const ir::GraphInput* in : graph.user_inputs()) {
    for (const ir::SymDim& dim : in->value->shape) {
      if (!dim.is_static()) dim.expr->collect_symbols(&names);
    }
  }
  return names;
}

Result<SymbolProfiles> resolve_symbol_profiles(const ir::Program& program,
                                               std::span<const InputSpec> specs) {
  const ir::Graph& graph = program.graph;
  const auto user_inputs = graph.user_inputs();
  if (!specs.empty() && specs.size() != user_inputs.size()) {
    return invalid_argument("expected ", user_inputs.size(),
                            " input specs (one per input of the program), found ", specs.size());
  }
  SymbolProfiles profiles;
  // Symbols set by a spec, and which input dim set them (for messages when two disagree).
  std::map<std::string, std::string> set_by;
  for (size_t i = 0; i < specs.size(); ++i) {
    const InputSpec& spec = specs[i];
    const ir::Value& value = *user_inputs[i]->value;
    if (spec.min.empty() && spec.opt.empty() && spec.max.empty()) continue;
    KILN_RETURN_IF_ERROR(check_spec_shape(spec, value, i));
    for (size_t d = 0; d < value.shape.size(); ++d) {
      const ir::SymDim& dim = value.shape[d];
      const std::string where = str_cat("input ", i, " ('", value.name, "') dim ", d);
      if (dim.is_static()) {
        if (spec.min[d] != dim.value || spec.max[d] != dim.value) {
          return invalid_argument(
              where, ": the program was exported with a static size ", dim.value,
              ", but the input spec gives ", spec.min[d], ":", spec.opt[d], ":", spec.max[d],
              "; export with dynamic_shapes (torch.export.Dim) to compile for a range");
        }
        continue;
      }
      const std::string* symbol = dim.expr->as_symbol();
      if (symbol == nullptr) continue;  // derived (2*s0): checked once its symbol is known
      const ir::SymbolRange range = program_range(graph, *symbol);
      if (spec.min[d] < range.min || spec.max[d] > range.max) {
        return invalid_argument(where, ": the input spec's range [", spec.min[d], ", ",
                                spec.max[d], "] is outside the range the program was exported with ",
                                range_text(range), " (symbol ", *symbol, ")");
      }
      format::SymbolProfile p{*symbol, spec.min[d], spec.opt[d], spec.max[d]};
      auto [it, inserted] = profiles.emplace(*symbol, p);
      if (!inserted && (it->second.min != p.min || it->second.opt != p.opt ||
                        it->second.max != p.max)) {
        return invalid_argument(where, " and ", set_by[*symbol], " are the same dim (symbol ",
                                *symbol, ") but their input specs differ: ", p.min, ":", p.opt,
                                ":", p.max, " vs ", it->second.min, ":", it->second.opt, ":",
                                it->second.max);
      }
      set_by.emplace(*symbol, where);
    }
  }
  // Symbols no spec named: the program's range, tuned for the example size.
  for (const ir::GraphInput* in : user_inputs) {
    for (const ir::SymDim& dim : in->value->shape) {
      if (dim.is_static()) continue;
      const std::string* symbol = dim.expr->as_symbol();
      if (symbol == nullptr || profiles.count(*symbol)) continue;
      const ir::SymbolRange range = program_range(graph, *symbol);
      const int64_t opt = std::clamp(dim.value, range.min, range.max);
      profiles.emplace(*symbol, format::SymbolProfile{*symbol, range.min, opt, range.max});
    }
  }
  // Symbols that appear only inside compound dims (2*s0 with no bare s0 anywhere).
  for (const std::string& symbol : input_symbols(graph)) {
    if (profiles.count(symbol)) continue;
    const ir::SymbolRange range = program_range(graph, symbol);
    profiles.emplace(symbol, format::SymbolProfile{symbol, range.min, range.min, range.max});
  }
  return profiles;
}

namespace {

Result<std::vector<int64_t>> parse_dims(std::string_view text, std::string_view flag) {
  std::vector<int64_t> dims;
  if (text.empty()) return dims;  // a 0-d tensor
  size_t start = 0;
  while (true) {
    const size_t x = text.find('x', start);
    const std::string_view part = text.substr(start, x == std::string_view::npos ? x : x - start);
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || ec != std::errc() || ptr != part.data() + part.size() || value < 0) {
      return invalid_argument("--input-shape '", flag, "': expected sizes like 1x3x224x224, found '",
                              part, "' in '", text, "'");
    }
    dims.push_back(value);
    if (x == std::string_view::npos) break;
    start = x + 1;
  }
  return dims;
}

}  // namespace

Result<InputSpec> parse_input_shape_flag(std::string_view flag) {
  const size_t eq = flag.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return invalid_argument("--input-shape: expected NAME=MIN:OPT:MAX (or NAME=SHAPE), found '",
                            flag, "'");
  }
  InputSpec spec;
  spec.name = std::string(flag.substr(0, eq));
  const std::string_view shapes = flag.substr(eq + 1);
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t colon = shapes.find(':', start);
    parts.push_back(shapes.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (parts.size() != 1 && parts.size() != 3) {
    return invalid_argument("--input-shape '", flag, "': expected one shape or MIN:OPT:MAX, found ",
                            parts.size(), " shapes");
  }
  KILN_ASSIGN_OR_RETURN(spec.min, parse_dims(parts[0], flag));
  KILN_ASSIGN_OR_RETURN(spec.opt, parse_dims(parts.size() == 3 ? parts[1] : parts[0], flag));
  KILN_ASSIGN_OR_RETURN(spec.max, parse_dims(parts.size() == 3 ? parts[2] : parts[0], flag));
  return spec;
}

}  // namespace kiln::builder
