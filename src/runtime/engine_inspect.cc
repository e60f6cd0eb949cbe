#include "runtime/engine_inspect.h"

#include <cstdio>
#include <map>

#include "ir/op_schema.h"
#include "ir/printer.h"
#ifdef KILN_WITH_CUDA
#include "cuda/engine_build.h"
#endif

namespace kiln {
namespace {

std::string megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

std::string range_text(int64_t v) {
  return v == ir::SymbolRange::kUnbounded ? std::string("inf") : std::to_string(v);
}

}  // namespace

std::string describe_engine(const format::Engine& engine, size_t file_bytes) {
  const ir::Graph& graph = engine.program->graph;
  std::string out;
  const format::BuildInfo& b = engine.build;
  out += str_cat("engine: ", b.name.empty() ? "(unnamed)" : b.name, "\n");
  out += str_cat("  format ", format::kFormatMajor, ".", format::kFormatMinor, ", built by kiln ",
                 b.kiln_version, " from a program exported by torch ",
                 b.torch_version.empty() ? "(unknown)" : b.torch_version, "\n");
  out += str_cat("  target: ", engine.target.backend, " ", engine.target.arch, "\n");
  std::string precisions;
  for (const std::string& p : b.precisions) precisions += (precisions.empty() ? "" : ", ") + p;
  out += str_cat("  precisions: ", precisions, "; hardware compatible: ",
                 b.hardware_compatible ? "yes" : "no", "; refittable: ", b.refittable ? "yes" : "no",
                 b.weights_stripped ? " (weights stripped)" : "", "; algorithm timing: ",
                 b.timing_iterations ? str_cat(b.timing_iterations, " runs averaged")
                                     : std::string("heuristic"),
                 "\n");
  out += str_cat("  settings digest: ", b.settings_digest, "\n");

  out += "inputs:\n";
  for (const ir::GraphInput* in : graph.user_inputs()) {
    out += str_cat("  ", in->value->name, ": ", ir::value_type_to_string(*in->value), "\n");
  }
  out += "outputs:\n";
  for (const ir::Value* v : graph.outputs()) {
    out += str_cat("  ", v->name, ": ", ir::value_type_to_string(*v), "\n");
  }
  for (size_t p = 0; p < engine.profiles.size(); ++p) {
    out += str_cat("profile ", p, ":");
    if (engine.profiles[p].symbols.empty()) out += " static shapes";
    out += "\n";
    for (const format::SymbolProfile& s : engine.profiles[p].symbols) {
      out += str_cat("  ", s.symbol, ": min ", s.min, ", opt ", s.opt, ", max ", range_text(s.max),
                     "\n");
    }
  }

  uint64_t weight_bytes = 0;
  size_t weight_count = 0;
  for (const auto& [id, tensor] : engine.program->weights) {
    weight_bytes += tensor.nbytes();
    ++weight_count;
  }
  uint64_t kernel_bytes = 0;
  for (const format::KernelImage& k : engine.kernels) kernel_bytes += k.data.size();
  out += "sizes:\n";
  out += str_cat("  file: ", megabytes(file_bytes), "\n");
  out += str_cat("  weights: ", weight_count, " tensors, ", megabytes(weight_bytes),
                 b.weights_stripped ? " (not stored)" : "", "\n");
  out += str_cat("  kernels: ", engine.kernels.size(), " images, ", megabytes(kernel_bytes), "\n");
  for (size_t p = 0; p < engine.memory.size(); ++p) {
    out += str_cat("  profile ", p, ": arena ", megabytes(engine.memory[p].arena_bytes),
                   ", workspace ", megabytes(engine.memory[p].workspace_bytes), "\n");
  }

  std::map<std::string_view, int> ops;
  for (const ir::Node& node : graph.nodes()) ++ops[ir::op_name(node.op)];
  out += str_cat("ops (", graph.nodes().size(), " nodes, ", ops.size(), " distinct):\n");
  for (const auto& [op, count] : ops) out += str_cat("  ", count, "  ", op, "\n");
  return out;
}

Result<std::string> describe_plan(const format::Engine& engine) {
  if (engine.target.backend != "cuda") {
    return unsupported("engines for the ", engine.target.backend,
                       " backend have no step plan: they run the program node by node");
  }
#ifdef KILN_WITH_CUDA
  KILN_ASSIGN_OR_RETURN(cuda::Plan plan, cuda::plan_engine(engine));
  return str_cat("plan: ", plan.steps.size(), " steps, arena ", plan.arena_bytes, " bytes\n",
                 plan.summary());
#else
  return unsupported("this kiln was built without the CUDA backend");
#endif
}

}  // namespace kiln
