// Tensors to and from NumPy's .npy format (for the CLI's inputs and outputs).
#pragma once

#include <string>

#include "base/npy.h"
#include "base/tensor.h"

namespace kiln {

// Copies an .npy array into a new tensor. Fails on dtypes kiln has no counterpart for.
Result<Tensor> tensor_from_npy(const NpyArray& array);
// Writes a tensor as .npy (atomically). bfloat16, which NumPy lacks, is written as float32.
Status write_tensor_npy(const std::string& path, const Tensor& tensor);

}  // namespace kiln
