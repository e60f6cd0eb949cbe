// The engine builder: turns a standalone program (a whole program, or one accelerated segment from
// partition::extract_segment) into an Engine for the target backend.
//
// Steps: check that the target backend runs every node; run the lowering passes; narrow the
// symbol ranges to the optimization profile; record bindings, profile, memory plan and build
// facts. The CPU backend interprets the graph; compiled backends (CUDA, next) add kernels and a
// memory plan here, so fusion, layout and tactic choice live in the builder, not in converters.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "builder/build_settings.h"
#include "builder/profiles.h"
#include "format/engine.h"
#include "ir/program.h"

namespace kiln::builder {

struct BuildRequest {
  std::shared_ptr<ir::Program> program;  // consumed: passes rewrite it in place
  BuildSettings settings;
  SymbolProfiles profiles;  // from resolve_symbol_profiles over the whole program
  std::string name;         // "_run_on_acc_0"; the program's name for whole-program engines
  std::vector<std::string>* log = nullptr;  // what the passes changed, for debug logging
  // Where progress of a build longer than a second goes (CLI: stderr; Python: logging); may be
  // null.
  std::function<void(std::string_view)> progress;
};

Result<format::Engine> build_engine(BuildRequest request);

// The key of an engine cache entry for building `program` (before lowering) with these settings
// and profiles: covers the graph with every op argument, dtypes and shapes, the weights' dtypes and
// shapes, a digest of the weights' bytes (unless the engine is refittable), the profile, every
// build-affecting setting, the target backend and arch, and the kiln version. 32 hex characters.
std::string engine_cache_key(const ir::Program& program, const BuildSettings& settings,
                             const SymbolProfiles& profiles);

}  // namespace kiln::builder
