// The embedding_bag family of kiln's kernel library (kernels/embedding_bag.cuh): _embedding_bag's
// sum, mean and max over bags of weight rows with the index outputs eager's CUDA kernel gives.
// The contract is kernel_library.h's: `embedding_bag_kernel` adds device code and an entry point
// and returns its name (deterministic), `launch_embedding_bag` checks shapes, then launches.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// _embedding_bag's mode argument.
enum class EmbeddingBagMode : uint8_t { kSum = 0, kMean = 1, kMax = 2 };

struct EmbeddingBagParams {
  EmbeddingBagMode mode = EmbeddingBagMode::kSum;
  bool include_last_offset = false;
  int64_t padding_idx = -1;  // compared in the index type, as eager does
};

// The outputs to write; null ones (no reader) are skipped.
struct EmbeddingBagOutputs {
  const Tensor* output = nullptr;       // [bags, d], weight's dtype
  const Tensor* offset2bag = nullptr;   // [n]
  const Tensor* bag_size = nullptr;     // [offsets.size(0)]
  const Tensor* max_indices = nullptr;  // [bags, d] for max; [0] (nothing to write) otherwise
};

// weight [rows, d] (float32, float16 or bfloat16), indices [n] and offsets [offsets] of one index
// dtype (int32 or int64), per_sample_weights [n] of weight's dtype (sum only, or null); any
// strides; bags = offsets.size(0), less one with include_last_offset. As eager's CUDA kernel (its
// CPU one differs): bag b sums (in fp32, in index order; mean divides by the count of
// non-padding indices, an empty bag gives 0) or takes the max of (first value, then strictly
// greater ones; an empty bag gives 0 with max index -1) the rows of indices
// [offsets[b], offsets[b + 1]), bag 0 from index 0 and the last bag to the end of the indices;
// padding indices add 0 (scaled by their per-sample weight) and are not counted; offset2bag
// names each index's bag; bag_size counts each bag's non-padding indices in every mode (with
// include_last_offset its extra last element, which eager leaves unwritten, is 0). Where eager
// would stop on a device assert, kiln goes on: an index outside [0, rows) reads zeros, offsets
// outside [0, n] are clamped to it. 0 bags or d = 0: nothing is written, as in eager.
std::string embedding_bag_kernel(ModuleSource& module, EmbeddingBagMode mode, DType weight,
                                 DType index);
Status launch_embedding_bag(cudaKernel_t kernel, const Tensor& weight, const Tensor& indices,
                            const Tensor& offsets, const Tensor* per_sample_weights,
                            const EmbeddingBagOutputs& outputs, const EmbeddingBagParams& params,
                            cudaStream_t stream);

}  // namespace kiln::cuda
