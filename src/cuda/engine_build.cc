#include "cuda/engine_build.h"

#include "cuda/nvrtc_compiler.h"
#include "cuda/plan.h"

namespace kiln::cuda {

Status add_cuda_kernels(format::Engine& engine, const builder::BuildSettings& settings,
                        builder::BuildProgress& progress) {
  if (engine.target.arch.empty()) {
    return invalid_argument("building a CUDA engine needs a target arch (\"sm_90\")");
  }
  if (!settings.disable_tf32) engine.build.precisions.push_back("tf32");
  progress.phase("planning the CUDA steps");
  KILN_ASSIGN_OR_RETURN(Plan plan, plan_engine(engine));
  if (!plan.module.empty()) {
    progress.phase(str_cat("compiling ", plan.module.size(), " kernel sources with NVRTC for ",
                           engine.target.arch, " (", plan.steps.size(), " steps)"));
    KILN_ASSIGN_OR_RETURN(CompiledModule compiled,
                          compile_cuda_source(plan.module.text(), engine.target.arch,
                                              settings.hardware_compatible, engine.build.name));
    engine.kernels.push_back(format::KernelImage{str_cat(engine.build.name, ".cubin"),
                                                 engine.target.arch,
                                                 format::KernelImageKind::kCubin,
                                                 std::move(compiled.cubin)});
    if (settings.hardware_compatible) {
      engine.kernels.push_back(format::KernelImage{
          str_cat(engine.build.name, ".ptx"), "compute_" + engine.target.arch.substr(3),
          format::KernelImageKind::kPtx, std::move(compiled.ptx)});
    }
  }
  engine.memory.at(0).arena_bytes = plan.arena_bytes;
  engine.memory.at(0).workspace_bytes =
      settings.workspace_size > 0 ? settings.workspace_size : (size_t{32} << 20);
  return ok_status();
}

Result<Plan> plan_engine(const format::Engine& engine) {
  PlanOptions options;
  options.arch = engine.target.arch;
  options.allow_tf32 = false;
  for (const std::string& p : engine.build.precisions) {
    if (p == "tf32") options.allow_tf32 = true;
  }
  std::map<std::string, int64_t> max_symbols;
  for (const format::SymbolProfile& s : engine.profiles.at(0).symbols) {
    max_symbols[s.symbol] = s.max;
  }
  return make_plan(*engine.program, max_symbols, options);
}

}  // namespace kiln::cuda
