// CUDA C++ sources that kiln compiles with NVRTC, embedded in the library.
#pragma once

#include <string_view>

namespace kiln::cuda {

// kernels/prelude.cuh: KTensor, kiln_half / kiln_bf16, to_float / from_float, ktensor_offset.
std::string_view kernel_prelude();

}  // namespace kiln::cuda
