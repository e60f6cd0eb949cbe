// `kiln inspect MODEL.pt2`: what the program is, and what kiln can do with it.
// `kiln inspect MODEL.engine`: the engine's build facts, bindings, profiles, ops and sizes.
#include <cstdio>
#include <map>

#include "cli_args.h"
#include "commands.h"
#include "engine_file.h"
#include "frontend/pt2_reader.h"
#include "ir/printer.h"
#include "ir/sym_expr.h"
#include "ir/verifier.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/engine_inspect.h"
#include "runtime/engine_runtime.h"

namespace kiln::cli {
namespace {

std::string range_text(const ir::Graph& graph, const ir::Value& v) {
  std::string text;
  for (const ir::SymDim& dim : v.shape) {
    if (dim.is_static() || !dim.expr->as_symbol()) continue;
    auto it = graph.symbol_ranges().find(*dim.expr->as_symbol());
    if (it == graph.symbol_ranges().end()) continue;
    const ir::SymbolRange& r = it->second;
    text += str_cat(
        text.empty() ? "  " : ", ", *dim.expr->as_symbol(), " in [", r.min, ", ",
        r.max == ir::SymbolRange::kUnbounded ? std::string("inf") : std::to_string(r.max), "]");
  }
  return text;
}

void print_signature(const ir::Program& program) {
  const ir::Graph& graph = program.graph;
  std::printf("inputs:\n");
  for (const ir::GraphInput* in : graph.user_inputs()) {
    std::printf("  %s: %s%s\n", in->value->name.c_str(),
                ir::value_type_to_string(*in->value).c_str(),
                range_text(graph, *in->value).c_str());
  }
  std::printf("outputs:\n");
  for (const ir::Value* out : graph.outputs()) {
    std::printf("  %s: %s\n", out->name.c_str(), ir::value_type_to_string(*out).c_str());
  }
  size_t bytes = 0;
  for (const auto& [id, t] : program.weights) bytes += t.nbytes();
  std::printf("weights: %zu tensors, %.2f MB\n", program.weights.size(), bytes / 1e6);
}

// Returns the number of unsupported nodes.
size_t print_histogram(const ir::Graph& graph, const Backend& backend) {
  std::map<std::string_view, std::pair<size_t, bool>> ops;
  size_t unsupported_nodes = 0;
  for (const ir::Node& node : graph.nodes()) {
    auto& [count, supported] = ops[ir::op_name(node.op)];
    ++count;
    supported = backend.supports(node);
    if (!supported) ++unsupported_nodes;
  }
  std::printf("ops (%zu nodes, %zu distinct):\n", graph.nodes().size(), ops.size());
  for (const auto& [name, entry] : ops) {
    std::printf("  %6zu  %-50.*s %s\n", entry.first, static_cast<int>(name.size()), name.data(),
                entry.second ? "supported" : "UNSUPPORTED");
  }
  const size_t total = graph.nodes().size();
  std::printf("support: %zu of %zu nodes run on the %.*s backend (%.1f%%)\n",
              total - unsupported_nodes, total, static_cast<int>(backend.name().size()),
              backend.name().data(), total ? 100.0 * (total - unsupported_nodes) / total : 100.0);
  return unsupported_nodes;
}

}  // namespace

int report_error(const std::string& message, int exit_code) {
  std::fprintf(stderr, "kiln: error: %s\n", message.c_str());
  return exit_code;
}

int inspect_command(const std::vector<std::string>& args) {
  auto parsed = parse_args(args, {{"no-ir"}, {"plan"}});
  if (!parsed.ok()) return report_error(parsed.status().message(), 2);
  if (parsed->positional.size() != 1)
    return report_error("usage: kiln inspect MODEL.pt2|MODEL.engine [--no-ir] [--plan]", 2);
  if (is_engine_file(parsed->positional[0])) {
    auto bytes = read_whole_file(parsed->positional[0]);
    if (!bytes.ok()) return report_error(bytes.status().message());
    // For any backend and arch: inspecting an sm_90 engine needs no GPU.
    auto engine = EngineRuntime::inspect(*bytes);
    if (!engine.ok()) {
      return report_error(str_cat(parsed->positional[0], ": ", engine.status().message()));
    }
    std::printf("%s", describe_engine((*engine)->engine(), (*bytes)->size()).c_str());
    if (parsed->has("plan")) {
      auto plan = describe_plan((*engine)->engine());
      if (!plan.ok()) return report_error(str_cat("--plan: ", plan.status().message()));
      std::printf("%s", plan->c_str());
    }
    if (!parsed->has("no-ir")) {
      std::printf("\n%s", ir::print_graph((*engine)->graph()).c_str());
    }
    return 0;
  }
  frontend::ReadOptions options;
  options.check_inference = false;  // checked below, so that a disagreement is shown, not fatal
  auto program = frontend::read_program_file(parsed->positional[0], options);
  if (!program.ok()) return report_error(program.status().message());
  const ir::Program& p = **program;
  std::printf("program: %s (exported by torch %s, schema %d.%d)\n", parsed->positional[0].c_str(),
              p.torch_version.c_str(), p.schema_major, p.schema_minor);
  print_signature(p);
  print_histogram(p.graph, cpu::cpu_backend());
  if (Status s = ir::check_inference(p); !s.ok()) {
    std::printf("warning: %s\n", s.message().c_str());
  }
  if (!parsed->has("no-ir")) std::printf("\n%s", ir::print_graph(p.graph).c_str());
  return 0;
}

}  // namespace kiln::cli
