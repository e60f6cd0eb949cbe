// The settings that change what the builder produces. The Python layer (kiln._settings) and the
// CLI fill them; the cache key and the engine's settings digest cover every field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/engine.h"

namespace kiln::builder {

struct BuildSettings {
  format::Target target;                  // backend and arch; arch empty = the host's (cpu)
  std::vector<std::string> precisions = {"fp32"};  // enabled precisions: fp32, fp16, bf16
  bool use_explicit_typing = false;       // keep the program's dtypes exactly
  bool use_fp32_acc = false;
  bool disable_tf32 = false;
  bool hardware_compatible = false;       // also store PTX (GPU engines)
  bool truncate_double = false;           // float64 weights and inputs run as float32
  bool refittable = false;                // weights may be replaced after building
  bool strip_weights = false;             // leave weight data out of the engine
  int optimization_level = -1;            // -1: the builder's default
  int num_avg_timing_iters = 1;
  uint64_t workspace_size = 0;            // 0: the builder's default
  bool lowering_passes = true;            // constant folding, dead code, no-op views, BN folding
};

// A hex digest of every field: engines record it, cache keys include it.
std::string settings_digest(const BuildSettings& settings);

// The host's CPU architecture name ("x86_64", "aarch64").
std::string host_cpu_arch();

}  // namespace kiln::builder
