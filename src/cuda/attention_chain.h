// Attention written out, as models write it by hand and default decompositions leave it:
//   matmul(q, k^T) [/ c or * c] [+ mask] -> softmax(-1) -> matmul(., v)
// over 4-D q, k, v, each intermediate read only by the next node. The planner runs a matched
// chain as one attention step, like scaled_dot_product_attention (planner.cc).
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "cuda/steps.h"
#include "ir/graph.h"

namespace kiln::cuda {

// The chain that ends at matmul `pv`: the attention's operands (scale explicit, 1 when the chain
// has none) and the chain's nodes in program order; nullopt when `pv` ends none.
std::optional<std::pair<AttentionOperands, std::vector<const ir::Node*>>> match_attention_chain(
    const ir::Node& pv, const ir::Graph& graph);

}  // namespace kiln::cuda
