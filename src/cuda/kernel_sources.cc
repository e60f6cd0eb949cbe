#include "cuda/kernel_sources.h"

namespace kiln::cuda {

std::string_view kernel_prelude() {
  static constexpr std::string_view kPrelude =
#include "cuda/kernels/prelude.cuh.inc"
      ;
  return kPrelude;
}

}  // namespace kiln::cuda
