// Advanced indexing: index.Tensor (self[i0, :, i2]) and index_put (self[i0, :, i2] = values).
//
// The index tensors broadcast together into a block of positions; each position is an element
// offset into the indexed tensor (the sum over indexed dims of index value times stride). The
// result is laid out as [pre..., block..., post...], where pre holds the non-indexed dims in front
// of the indexed ones when those are adjacent (NumPy's rule; otherwise pre is empty and every
// non-indexed dim goes to post). Bool and uint8 masks become the coordinates of their true
// elements first, so index_put takes them (index.Tensor rejects them in inference). Also
// masked_scatter, which writes a mask's true positions.
#include <algorithm>

#include "ir/infer/infer_util.h"
#include "kernels/cpu/elementwise_common.h"
#include "kernels/cpu/indexing_internal.h"
#include "kernels/cpu/indexing_util.h"

namespace kiln::cpu {
namespace {

struct IndexPlan {
  Shape result;
  Shape pre_sizes, pre_strides, post_sizes, post_strides;
  std::vector<int64_t> offsets;  // one per block position
  bool any_index = false;
};

// The true elements' coordinates of a mask, one int64 tensor per mask dim.
Result<std::vector<Tensor>> mask_coordinates(const Tensor& mask) {
  KILN_ASSIGN_OR_RETURN(Tensor m, mask.to(DType::kBool));
  const bool* p = m.data<bool>();
  const int64_t count = std::count(p, p + m.numel(), true);
  std::vector<Tensor> coords;
  for (int64_t j = 0; j < m.dim(); ++j) {
    KILN_ASSIGN_OR_RETURN(Tensor c, Tensor::empty(DType::kInt64, {count}));
    coords.push_back(std::move(c));
  }
  int64_t found = 0;
  for (int64_t e = 0; e < m.numel(); ++e) {
    if (!p[e]) continue;
    for (int64_t j = m.dim(), rest = e; j-- > 0;) {
      coords[j].data<int64_t>()[found] = rest % m.size(j);
      rest /= m.size(j);
    }
    ++found;
  }
  return coords;
}

// One int64 index tensor (or none) per dim of `self`, masks expanded.
Result<std::vector<Tensor>> per_dim_indices(const Tensor& self,
                                            const std::vector<const Tensor*>& indices) {
  std::vector<Tensor> per_dim(self.dim());
  int64_t dim = 0;
  for (const Tensor* index : indices) {
    if (dim >= self.dim()) return invalid_argument("too many indices for ", self.description());
    if (!index) {
      ++dim;
    } else if (index->dtype() == DType::kBool || index->dtype() == DType::kUInt8) {
      KILN_ASSIGN_OR_RETURN(std::vector<Tensor> coords, mask_coordinates(*index));
      if (dim + static_cast<int64_t>(coords.size()) > self.dim()) {
        return invalid_argument("mask ", index->description(), " has more dims than ",
                                self.description(), " has left");
      }
      for (Tensor& c : coords) per_dim[dim++] = std::move(c);
    } else {
      KILN_ASSIGN_OR_RETURN(per_dim[dim++], index_as_int64(*index));
    }
  }
  return per_dim;
}

// Adds each index's (checked, wrapped) value times `stride` to the block offsets.
Status add_offsets(const Tensor& index, const Shape& block, int64_t size, int64_t stride,
                   int64_t dim, std::vector<int64_t>& offsets) {
  const Tensor view = expand_view(index, block);
  const int64_t* p = index.data<int64_t>();
  Status status;
  int64_t e = 0;
  for_each_element<1>(block, {view.strides()}, [&](const std::array<int64_t, 1>& off) {
    int64_t v = p[off[0]];
    if (status.ok()) status = normalize_index(v, size, dim);
    if (status.ok()) offsets[e] += v * stride;
    ++e;
  });
  return status;
}

// The plan for indexing `target` (its sizes and strides) with `indices`.
Result<IndexPlan> plan_index(const Tensor& target, const std::vector<const Tensor*>& indices) {
  KILN_ASSIGN_OR_RETURN(std::vector<Tensor> per_dim, per_dim_indices(target, indices));
  IndexPlan plan;
  Shape block;
  int64_t first = -1, last = -1;
  bool adjacent = true;
  for (int64_t d = 0; d < target.dim(); ++d) {
    if (!per_dim[d].has_data()) continue;
    KILN_ASSIGN_OR_RETURN(block, ir::broadcast_shapes(block, per_dim[d].sizes()),
                          "index tensors: ");
    if (first >= 0 && last != d - 1) adjacent = false;
    if (first < 0) first = d;
    last = d;
  }
  plan.any_index = first >= 0;
  plan.offsets.assign(shape_numel(block), 0);
  for (int64_t d = 0; d < target.dim(); ++d) {
    if (!per_dim[d].has_data()) continue;
    KILN_RETURN_IF_ERROR(
        add_offsets(per_dim[d], block, target.size(d), target.strides()[d], d, plan.offsets));
  }
  for (int64_t d = 0; d < target.dim(); ++d) {
    if (per_dim[d].has_data()) continue;
    const bool before = adjacent && d < first;
    (before ? plan.pre_sizes : plan.post_sizes).push_back(target.size(d));
    (before ? plan.pre_strides : plan.post_strides).push_back(target.strides()[d]);
  }
  plan.result = plan.pre_sizes;
  plan.result.insert(plan.result.end(), block.begin(), block.end());
  plan.result.insert(plan.result.end(), plan.post_sizes.begin(), plan.post_sizes.end());
  return plan;
}

// Calls fn(target_offset, result_position) for every element of the indexed result, in order.
template <typename Fn>
void for_each_indexed(const IndexPlan& plan, Fn&& fn) {
  std::vector<int64_t> post;
  post.reserve(shape_numel(plan.post_sizes));
  for_each_element<1>(plan.post_sizes, {plan.post_strides},
                      [&](const std::array<int64_t, 1>& off) { post.push_back(off[0]); });
  int64_t o = 0;
  for_each_element<1>(plan.pre_sizes, {plan.pre_strides}, [&](const std::array<int64_t, 1>& pre) {
    for (int64_t block_offset : plan.offsets) {
      for (int64_t q : post) fn(pre[0] + block_offset + q, o++);
    }
  });
}

}  // namespace

Status index_kernel(ir::OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const std::vector<const Tensor*> indices = ctx.tensors(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  KILN_ASSIGN_OR_RETURN(IndexPlan plan, plan_index(self, indices));
  if (!plan.any_index) return out.copy_from(self);
  if (plan.result != out.sizes()) {
    return internal_error("index: planned shape ", shape_to_string(plan.result),
                          " differs from the inferred ", shape_to_string(out.sizes()));
  }
  dispatch_element_size(self.dtype(), [&]<typename U>() {
    const U* src = self.data<U>();
    U* dst = out.data<U>();
    for_each_indexed(plan, [&](int64_t from, int64_t to) { dst[to] = src[from]; });
  });
  return ok_status();
}

Status index_put_kernel(ir::OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const std::vector<const Tensor*> indices = ctx.tensors(1);
  const Tensor& values = ctx.tensor(2);
  const bool accumulate = ctx.bool_arg(3);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  KILN_RETURN_IF_ERROR(out.copy_from(self));
  KILN_ASSIGN_OR_RETURN(IndexPlan plan, plan_index(out, indices));
  bool expands = values.dim() <= static_cast<int64_t>(plan.result.size());
  for (int64_t i = 0; expands && i < values.dim(); ++i) {
    const int64_t v = values.size(values.dim() - 1 - i);
    expands = v == 1 || v == plan.result[plan.result.size() - 1 - i];
  }
  if (!expands) {
    return invalid_argument("index_put: expected values to broadcast to the indexed shape ",
                            shape_to_string(plan.result), ", found ", values.description());
  }
  KILN_ASSIGN_OR_RETURN(Tensor vals, expand_view(values, plan.result).contiguous());
  if (!plan.any_index) return out.copy_from(vals);
  if (!accumulate) {  // repeated positions: the last write wins
    dispatch_element_size(out.dtype(), [&]<typename U>() {
      const U* src = vals.data<U>();
      U* dst = out.data<U>();
      for_each_indexed(plan, [&](int64_t to, int64_t from) { dst[to] = src[from]; });
    });
    return ok_status();
  }
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    const T* src = vals.data<T>();
    T* dst = out.data<T>();
    for_each_indexed(plan,
                     [&](int64_t to, int64_t from) { dst[to] = add_elements(dst[to], src[from]); });
  });
  return ok_status();
}

// masked_scatter: self broadcast to the output, then the true positions of the (broadcast) mask,
// in row-major order, take source's elements in its row-major order.
Status masked_scatter_kernel(ir::OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& mask = ctx.tensor(1);
  const Tensor& source = ctx.tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  KILN_RETURN_IF_ERROR(elementwise::copy_into(out, self));
  KILN_ASSIGN_OR_RETURN(Tensor where, Tensor::empty(DType::kBool, out.sizes()));
  KILN_RETURN_IF_ERROR(elementwise::copy_into(where, mask));
  const bool* m = where.data<bool>();
  const int64_t n = out.numel();
  const int64_t wanted = std::count(m, m + n, true);
  if (wanted > source.numel()) {
    return invalid_argument("masked_scatter: the mask has ", wanted,
                            " true elements, more than source ", source.description(), " holds");
  }
  KILN_ASSIGN_OR_RETURN(Tensor values, source.contiguous());
  dispatch_dtype(out.dtype(), [&]<typename U>() {
    const U* from = values.data<U>();
    U* dst = out.data<U>();
    for (int64_t i = 0, next = 0; i < n; ++i) {
      if (m[i]) dst[i] = from[next++];
    }
  });
  return ok_status();
}

// nonzero: the coordinates of self's nonzero elements (NaN counts), one row each in row-major
// order. Inference counted them, so the output has exactly that many rows.
Status nonzero_kernel(ir::OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Tensor truth, ctx.tensor(0).to(DType::kBool));
  Tensor& out = ctx.output_tensor(0);
  const bool* m = truth.data<bool>();
  const Shape& sizes = truth.sizes();
  const int64_t rank = static_cast<int64_t>(sizes.size());
  int64_t* rows = out.data<int64_t>();
  std::vector<int64_t> at(sizes.size(), 0);
  int64_t written = 0;
  for (int64_t i = 0; i < truth.numel(); ++i) {
    if (m[i]) {
      if (written == out.size(0)) {
        return internal_error("nonzero: more nonzero elements than inference counted (",
                              out.size(0), ")");
      }
      std::copy(at.begin(), at.end(), rows + written * rank);
      ++written;
    }
    for (int64_t d = rank - 1; d >= 0 && ++at[d] == sizes[d]; --d) at[d] = 0;
  }
  return ok_status();
}

}  // namespace kiln::cpu
