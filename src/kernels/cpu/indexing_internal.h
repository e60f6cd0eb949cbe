// Private to the indexing kernels (indexing*.cc).
#pragma once

#include "ir/op_context.h"

namespace kiln::cpu {

// index.Tensor and _unsafe_index.Tensor (indexing_advanced.cc).
Status index_kernel(ir::OpContext& ctx);
// index_put and _unsafe_index_put (indexing_advanced.cc).
Status index_put_kernel(ir::OpContext& ctx);
// masked_scatter (indexing_advanced.cc).
Status masked_scatter_kernel(ir::OpContext& ctx);
Status nonzero_kernel(ir::OpContext& ctx);
// _embedding_bag (embedding_bag.cc).
Status embedding_bag_kernel(ir::OpContext& ctx);

}  // namespace kiln::cpu
