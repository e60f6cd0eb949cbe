#include "kernels/cpu/reduction_util.h"

#include "ir/infer/infer_util.h"

namespace kiln::cpu {
namespace {

// Drops size-1 dims and merges dim i into dim i+1 when they address memory as one dim.
void coalesce(Shape& sizes, Shape& strides) {
  Shape out_sizes, out_strides;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    if (!out_sizes.empty() && out_strides.back() == strides[d] * sizes[d]) {
      out_sizes.back() *= sizes[d];
      out_strides.back() = strides[d];
      continue;
    }
    out_sizes.push_back(sizes[d]);
    out_strides.push_back(strides[d]);
  }
  sizes = std::move(out_sizes);
  strides = std::move(out_strides);
}

}  // namespace

ReduceGeometry reduce_geometry(const Tensor& in, const std::vector<bool>& mask) {
  ReduceGeometry g;
  for (size_t d = 0; d < mask.size(); ++d) {
    const int64_t size = in.sizes()[d], stride = in.strides()[d];
    if (mask[d]) {
      g.inner_sizes.push_back(size);
      g.inner_strides.push_back(stride);
      g.inner_numel *= size;
    } else {
      g.outer_sizes.push_back(size);
      g.outer_strides.push_back(stride);
      g.outer_numel *= size;
    }
  }
  // An empty block must stay empty: coalescing would drop nothing, but keep the zero visible.
  if (g.inner_numel != 0) coalesce(g.inner_sizes, g.inner_strides);
  if (g.outer_numel != 0) coalesce(g.outer_sizes, g.outer_strides);
  return g;
}

Result<std::vector<bool>> reduce_mask(ir::OpContext& ctx, DimsArg kind, size_t arg, int64_t rank) {
  std::optional<std::vector<int64_t>> dims;
  if (kind == DimsArg::kInt) {
    dims = std::vector<int64_t>{ctx.int_arg(arg)};
  } else if (kind == DimsArg::kOptionalInt) {
    if (auto d = ctx.optional_int(arg)) dims = std::vector<int64_t>{*d};
  } else if (kind != DimsArg::kAll) {
    dims = ctx.optional_ints(arg);
    if (dims && dims->empty() && kind == DimsArg::kList) dims.reset();
  }
  if (!dims) return std::vector<bool>(static_cast<size_t>(rank), true);
  std::vector<bool> mask(static_cast<size_t>(rank), false);
  for (int64_t d : *dims) {
    KILN_ASSIGN_OR_RETURN(int64_t w, ir::wrap_dim(d, rank));
    if (rank > 0) mask[w] = true;
  }
  return mask;
}

int64_t flat_offset(int64_t index, const Shape& sizes, const Shape& strides) {
  int64_t offset = 0;
  for (size_t d = sizes.size(); d-- > 0;) {
    offset += (index % sizes[d]) * strides[d];
    index /= sizes[d];
  }
  return offset;
}

}  // namespace kiln::cpu
