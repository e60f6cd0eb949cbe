// Optimization profiles: the range (min, opt, max) of every symbol of a program's input shapes,
// from the user's input specs (kiln.Input, `--input-shape NAME=MIN:OPT:MAX`) and the ranges the
// program was exported with.
#pragma once

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "format/engine.h"
#include "ir/program.h"

namespace kiln::builder {

// One user input's spec. Empty min/opt/max: take the program's shape, ranges and example sizes.
struct InputSpec {
  std::string name;  // for messages; matched by position
  std::vector<int64_t> min, opt, max;
  std::optional<DType> dtype;
};

using SymbolProfiles = std::map<std::string, format::SymbolProfile>;

// Resolves every symbol of the program's user inputs. A spec's dim that is a bare symbol sets that
// symbol's range (it must lie inside the program's range; a symbol given twice must agree); a
// static dim must be matched exactly (a range there needs a dynamic export, and the error says
// so); dims like 2*s0 are checked against the symbol's range. Symbols no spec names keep the
// program's range with the example size as opt. `specs` is empty or has one entry per user input.
Result<SymbolProfiles> resolve_symbol_profiles(const ir::Program& program,
                                               std::span<const InputSpec> specs);

// Parses "MIN:OPT:MAX" shapes of `--input-shape NAME=1x3x224x224:8x3x224x224:16x3x224x224`
// (or a single shape for a static input) into a spec.
Result<InputSpec> parse_input_shape_flag(std::string_view flag);

// The symbols of the program's user input shapes, in order of first appearance.
std::vector<std::string> input_symbols(const ir::Graph& graph);

}  // namespace kiln::builder
