// Views through reshapes that strides alone cannot express.
//
// torch.nn.MultiheadAttention splits heads with a chain like
//   select [L, N, E] -> view [L, N*H, D] -> permute [N*H, L, D] -> view [N, H, L, D]
// where the middle view merges N (stride 3E) with H (stride D): no single stride per dim says it,
// so torch's view rules would need a copy there, although the chain's end, q as [N, H, L, D], is
// an ordinary strided view of the projection. A ComposedView keeps each dim as a list of
// (size, stride) modes, outer first (the way CuTe layouts do), so reshapes split and merge modes
// and permutes reorder dims without touching memory; the chain needs no copy when its end has
// one mode per dim again. The planner decides where a chain resolves (planner.cc) and the runtime
// replays the same compositions at each binding's shapes (cuda_engine.cc).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::cuda {

struct Mode {
  int64_t size = 1;
  int64_t stride = 0;
};

class ComposedView {
 public:
  // The view of a strided tensor: one mode per dim of size > 1.
  static ComposedView of(const Tensor& t);

  int64_t dim() const { return static_cast<int64_t>(dims_.size()); }
  Shape sizes() const;
  int64_t offset() const { return offset_; }

  // The same elements in row-major order under new sizes (same count). Fails when a new dim
  // would take part of a mode whose size it does not divide, or for empty tensors.
  Result<ComposedView> reshape(const Shape& sizes) const;
  // Dims reordered: dim i of the result is dim `order[i]` of this view.
  Result<ComposedView> permute(const std::vector<int64_t>& order) const;
  // Strides, when every dim is one mode (after merging modes that are contiguous together).
  std::optional<Shape> strides() const;

 private:
  std::vector<std::vector<Mode>> dims_;  // per dim, outer mode first; empty for a size-1 dim
  int64_t offset_ = 0;
};

// Whether `node` is a view the composition follows: a reshape (view, reshape, squeeze,
// unsqueeze, flatten, unflatten, alias) or a permute (permute, transpose, t).
bool is_composable_view(const ir::Node& node);

// The view `node` makes of `in`, for the output sizes shape inference gave it. Permute dims come
// from the node's constant arguments.
Result<ComposedView> compose_view(const ComposedView& in, const ir::Node& node,
                                  const Shape& out_sizes);

}  // namespace kiln::cuda
