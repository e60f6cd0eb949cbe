#include "builder/builder.h"

#include <algorithm>
#include <map>
#include <optional>

#include "base/hash.h"
#include "builder/build_progress.h"
#include "ir/printer.h"
#include "ir/verifier.h"
#include "kernels/cpu/cpu_backend.h"
#include "kiln/version.h"
#include "passes/lowering.h"
#include "passes/reduced_precision.h"
#include "runtime/engine_runtime.h"
#include "runtime/executor.h"
#ifdef KILN_WITH_CUDA
#include "cuda/engine_build.h"
#endif

namespace kiln::builder {
namespace {

// The target with the arch filled in for cpu engines (always the host's).
format::Target engine_target(const BuildSettings& settings) {
  format::Target target = settings.target;
  if (target.arch.empty() && target.backend == "cpu") target.arch = host_cpu_arch();
  return target;
}

// The type a float32 program runs in: float16 (or bfloat16) when enabled and the program's types
// are not to be kept. GPU engines only: the CPU reference backend runs the program's types.
std::optional<DType> reduced_precision(const BuildSettings& settings) {
  if (settings.use_explicit_typing || settings.target.backend != "cuda") return std::nullopt;
  const auto& p = settings.precisions;
  if (std::find(p.begin(), p.end(), "fp16") != p.end()) return DType::kFloat16;
  if (std::find(p.begin(), p.end(), "bf16") != p.end()) return DType::kBFloat16;
  return std::nullopt;
}

// Narrows the program's symbol ranges to the profile, so the runtime rejects sizes outside it.
void apply_profile(ir::Graph& graph, const format::Profile& profile) {
  for (const format::SymbolProfile& p : profile.symbols) {
    graph.set_symbol_range(p.symbol, ir::SymbolRange{p.min, p.max});
  }
}

}  // namespace

Result<format::Engine> build_engine(BuildRequest request) {
  if (!request.program) return invalid_argument("build_engine: no program given");
  BuildProgress progress(request.progress, request.name);
  ir::Program& program = *request.program;
  const BuildSettings& settings = request.settings;
  KILN_ASSIGN_OR_RETURN(const Backend* backend, backend_for_target(engine_target(settings)),
                        "building engine '", request.name, "'");

  format::Engine engine;
  engine.target = engine_target(settings);

  // The profile covers exactly the symbols of this program's inputs.
  format::Profile profile;
  for (const std::string& symbol : input_symbols(program.graph)) {
    auto it = request.profiles.find(symbol);
    if (it != request.profiles.end()) {
      profile.symbols.push_back(it->second);
    } else {
      auto range = program.graph.symbol_ranges().find(symbol);
      const ir::SymbolRange r =
          range == program.graph.symbol_ranges().end() ? ir::SymbolRange{} : range->second;
      profile.symbols.push_back({symbol, r.min, r.min, r.max});
    }
  }

  if (settings.lowering_passes) {
    progress.phase("lowering");
    passes::LoweringOptions options;
    options.log = request.log;
    // Refittable engines keep every weight replaceable by name: no pass may bake weights into
    // new constants.
    if (settings.refittable || settings.strip_weights) {
      options.fold_constants = false;
      options.fold_batch_norms = false;
    }
    KILN_RETURN_IF_ERROR(passes::run_lowering_passes(program, options), "lowering '",
                         request.name, "'");
  }
  apply_profile(program.graph, profile);
  if (auto reduced = reduced_precision(settings)) {
    KILN_RETURN_IF_ERROR(passes::run_in_reduced_precision(program, *reduced, request.log).status(),
                         "converting '", request.name, "' to ", dtype_name(*reduced));
  }

  const std::vector<std::string> unsupported_list = unsupported_ops(program.graph, *backend);
  if (!unsupported_list.empty()) {
    std::string message = str_cat("the ", settings.target.backend, " backend cannot run ",
                                  unsupported_list.size(), " op(s) of '", request.name, "':");
    for (const std::string& line : unsupported_list) message += "\n  " + line;
    return unsupported(message);
  }
  KILN_RETURN_IF_ERROR(ir::verify(program.graph), "after lowering '", request.name, "'");

  engine.profiles.push_back(std::move(profile));
  engine.memory.push_back(format::MemoryPlan{});  // cpu: allocates as it runs; cuda: filled below
  engine.build.kiln_version = std::string(kVersion);
  engine.build.torch_version = program.torch_version;
  engine.build.settings_digest = settings_digest(settings);
  engine.build.precisions = settings.precisions;
  engine.build.hardware_compatible = settings.hardware_compatible;
  engine.build.refittable = settings.refittable || settings.strip_weights;
  engine.build.weights_stripped = settings.strip_weights;
  engine.build.name = request.name;
  engine.build.timing_iterations = static_cast<uint32_t>(std::max(settings.num_avg_timing_iters, 0));
  engine.program = std::move(request.program);
  if (engine.target.backend == "cuda") {
#ifdef KILN_WITH_CUDA
    KILN_RETURN_IF_ERROR(cuda::add_cuda_kernels(engine, settings, progress),
                         "building CUDA engine '", request.name, "'");
#else
    return unsupported("building engine '", request.name,
                       "' for CUDA: this kiln was built without the CUDA backend");
#endif
  }
  progress.done();
  return engine;
}

std::string engine_cache_key(const ir::Program& program, const BuildSettings& settings,
                             const SymbolProfiles& profiles) {
  Digest128 digest;
  digest.add("kiln-engine-key-v1").add(kVersion).add(settings_digest(settings));
  const format::Target target = engine_target(settings);
  digest.add(target.backend).add(target.arch);
  // The printed graph names every node's op and every argument, each value's dtype and shape, and
  // the symbol ranges.
  digest.add(ir::print_graph(program.graph));
  for (const std::string& symbol : input_symbols(program.graph)) {
    auto it = profiles.find(symbol);
    if (it == profiles.end()) continue;
    digest.add(str_cat(symbol, "=", it->second.min, ":", it->second.opt, ":", it->second.max));
  }
  // Weights in graph-input order: target, dtype, shape, and (unless refittable) their bytes.
  const bool with_bytes = !(settings.refittable || settings.strip_weights);
  for (const ir::GraphInput& in : program.graph.inputs()) {
    if (in.kind == ir::InputKind::kUserInput) continue;
    digest.add(in.target);
    auto it = program.weights.find(in.value->id);
    if (it == program.weights.end()) continue;
    const Tensor& t = it->second;
    digest.add(str_cat(dtype_name(t.dtype()), shape_to_string(t.sizes())));
    if (!with_bytes || t.numel() == 0) continue;
    if (t.is_contiguous()) {
      digest.add(t.raw_data(), t.nbytes());
    } else {
      auto copy = t.contiguous();
      if (copy.ok()) digest.add(copy->raw_data(), copy->nbytes());
    }
  }
  return digest.hex();
}

}  // namespace kiln::builder
