#include "builder/build_settings.h"

#include "base/hash.h"
#include "kiln/status.h"

namespace kiln::builder {

std::string settings_digest(const BuildSettings& s) {
  Digest128 digest;
  digest.add(s.target.backend).add(s.target.arch);
  for (const std::string& p : s.precisions) digest.add(p);
  digest.add(str_cat("explicit=", s.use_explicit_typing, " fp32acc=", s.use_fp32_acc,
                     " notf32=", s.disable_tf32, " hwcompat=", s.hardware_compatible,
                     " truncdouble=", s.truncate_double, " refit=", s.refittable,
                     " strip=", s.strip_weights, " opt=", s.optimization_level,
                     " iters=", s.num_avg_timing_iters, " workspace=", s.workspace_size,
                     " passes=", s.lowering_passes));
  return digest.hex();
}

std::string host_cpu_arch() {
#if defined(__x86_64__) || defined(_M_X64)
  return "x86_64";
#elif defined(__aarch64__) || defined(_M_ARM64)
  return "aarch64";
#else
  return "unknown";
#endif
}

}  // namespace kiln::builder
