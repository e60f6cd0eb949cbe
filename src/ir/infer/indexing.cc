// Shape and dtype inference for the indexing ops: embedding, gather, the scatter family,
// index_select, take, advanced indexing (index.Tensor, index_put) and select/slice_scatter.
// Index values are data, so their bounds are checked by the kernels; everything else is here.
#include <algorithm>

#include "base/element_cast.h"
#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

bool is_index_dtype(DType dtype) {
  return dtype == DType::kInt64 || dtype == DType::kInt32;
}

Status check_index_dtype(OpContext& ctx, const Tensor& index, bool int32_ok = true) {
  if (index.dtype() == DType::kInt64 || (int32_ok && index.dtype() == DType::kInt32)) {
    return ok_status();
  }
  return op_error(ctx, "expected an index tensor of dtype int64", int32_ok ? " or int32" : "",
                  ", found ", index.description());
}

Status check_same_dtype(OpContext& ctx, const Tensor& self, const Tensor& other,
                        std::string_view name) {
  if (self.dtype() != other.dtype()) {
    return op_error(ctx, "expected ", name, " to have self's dtype ", dtype_name(self.dtype()),
                    ", found ", other.description());
  }
  return ok_status();
}

// embedding(weight, indices, padding_idx, scale_grad_by_freq, sparse): weight rows by index.
Status infer_embedding(OpContext& ctx) {
  const Tensor& weight = ctx.tensor(0);
  const Tensor& indices = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (weight.dim() != 2)
    return op_error(ctx, "expected a 2-D weight, found ", weight.description());
  KILN_RETURN_IF_ERROR(check_index_dtype(ctx, indices));
  Shape shape = indices.sizes();
  shape.push_back(weight.size(1));
  ctx.set_output(0, Tensor::meta(weight.dtype(), std::move(shape)));
  return ok_status();
}

// _embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights,
// include_last_offset, padding_idx) -> (output [bags, d], offset2bag [n] (or [0] for a sum on
// the fast path), bag_size [bags], max_indices [bags, d] for max, else [bags]). The index outputs
// are int32 where indices and offsets both are, else int64.
Status infer_embedding_bag(OpContext& ctx) {
  const Tensor& weight = ctx.tensor(0);
  const Tensor& indices = ctx.tensor(1);
  const Tensor& offsets = ctx.tensor(2);
  const int64_t mode = ctx.int_arg(4);
  const Tensor* per_sample_weights = ctx.optional_tensor(6);
  const bool include_last_offset = ctx.bool_arg(7);
  const int64_t padding_idx = ctx.int_arg(8);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (weight.dim() != 2 || !is_floating(weight.dtype())) {
    return op_error(ctx, "expected a 2-D floating weight, found ", weight.description());
  }
  if (indices.dim() != 1 || offsets.dim() != 1) {
    return op_error(ctx, "expected 1-D indices and offsets, found ", indices.description(),
                    " and ", offsets.description());
  }
  KILN_RETURN_IF_ERROR(check_index_dtype(ctx, indices));
  KILN_RETURN_IF_ERROR(check_index_dtype(ctx, offsets));
  if (mode < 0 || mode > 2) {
    return op_error(ctx, "expected mode 0 (sum), 1 (mean) or 2 (max), found ", mode);
  }
  if (per_sample_weights) {
    if (mode != 0) return op_error(ctx, "per_sample_weights are only supported with mode sum");
    if (per_sample_weights->dim() != 1 || per_sample_weights->numel() != indices.numel() ||
        per_sample_weights->dtype() != weight.dtype()) {
      return op_error(ctx, "expected per_sample_weights of weight's dtype and indices' size ",
                      indices.numel(), ", found ", per_sample_weights->description());
    }
  }
  const int64_t bags = offsets.size(0) - (include_last_offset ? 1 : 0);
  if (bags < 0) return op_error(ctx, "include_last_offset needs at least one offset");
  const int64_t n = indices.size(0), d = weight.size(1);
  if (embedding_bag_cuda_form(ctx.node())) {
    // Eager CUDA's (and its meta function's): offset2bag per index, bag_size per offset,
    // max_indices only for max; the index outputs in the indices' dtype.
    const DType index_dtype = indices.dtype();
    ctx.set_output(0, Tensor::meta(weight.dtype(), {bags, d}));
    ctx.set_output(1, Tensor::meta(index_dtype, {n}));
    ctx.set_output(2, Tensor::meta(index_dtype, {offsets.size(0)}));
    ctx.set_output(3, Tensor::meta(index_dtype, mode == 2 ? Shape{bags, d} : Shape{0}));
    return ok_status();
  }
  const bool fast = embedding_bag_fast_path(weight, per_sample_weights, padding_idx);
  if (mode == 0 && fast && weight.dtype() == DType::kBFloat16) {
    // Eager takes the fast path for bfloat16 (no offset2bag) and its meta function does not
    // (offset2bag [n]): the program records a shape eager's result does not have.
    return op_unsupported(ctx, "a bfloat16 sum, where eager's kernel and its meta function "
                               "disagree on offset2bag's size");
  }
  // The fast path is eager's CPU kernel's; on CUDA offset2bag has an element per index. kiln's
  // kernel computes the CPU form, so a program recorded on CUDA is left to PyTorch.
  if (mode == 0 && fast && indices.size(0) > 0 && ctx.node().outputs.size() > 1) {
    const Value* recorded = ctx.node().outputs[1];
    if (recorded && recorded->has_recorded_meta && recorded->shape.size() == 1 &&
        recorded->shape[0].is_static() && recorded->shape[0].value == indices.size(0)) {
      return op_unsupported(ctx, "offset2bag recorded with an element per index (eager's CUDA "
                                 "kernel); kiln's kernel gives eager's CPU form, none");
    }
  }
  const DType index_dtype = indices.dtype() == DType::kInt32 && offsets.dtype() == DType::kInt32
                                ? DType::kInt32
                                : DType::kInt64;
  ctx.set_output(0, Tensor::meta(weight.dtype(), {bags, d}));
  ctx.set_output(1, Tensor::meta(index_dtype, {mode == 0 && fast ? 0 : n}));
  ctx.set_output(2, Tensor::meta(index_dtype, {bags}));
  ctx.set_output(3, Tensor::meta(index_dtype, mode == 2 ? Shape{bags, d} : Shape{bags}));
  return ok_status();
}

// gather and scatter: index has self's rank (a 0-d tensor counts as 1-D), and no dim of index is
// larger than self's (except along `dim`) or src's. An empty index skips these checks, its dtype's
// included, as in PyTorch (an empty uint8 index gathers nothing and scatters nothing).
Result<int64_t> check_scatter_gather(OpContext& ctx, const Tensor& self, int64_t dim,
                                     const Tensor& index, const Tensor* src) {
  KILN_ASSIGN_OR_RETURN(int64_t d, wrap_dim(dim, self.dim()), op_name(ctx.node().op), ": ");
  if (index.numel() == 0) return d;
  KILN_RETURN_IF_ERROR(check_index_dtype(ctx, index));
  const int64_t rank = std::max<int64_t>(self.dim(), 1);
  const auto size = [](const Tensor& t, int64_t i) { return t.dim() == 0 ? 1 : t.size(i); };
  if (std::max<int64_t>(index.dim(), 1) != rank ||
      (src && std::max<int64_t>(src->dim(), 1) != rank)) {
    return op_error(ctx, "expected index", src ? " and src" : "", " to have self's rank ",
                    self.dim(), ", found index ", index.description(),
                    src ? str_cat(" and src ", src->description()) : "");
  }
  for (int64_t i = 0; i < rank; ++i) {
    if ((i != d && size(index, i) > size(self, i)) || (src && size(index, i) > size(*src, i))) {
      return op_error(ctx, "expected index ", index.description(), " to be no larger than self ",
                      self.description(), " apart from dim ", d,
                      src ? str_cat(" and no larger than src ", src->description()) : "");
    }
  }
  return d;
}

// gather(self, dim, index, sparse_grad).
Status infer_gather(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const int64_t dim = ctx.int_arg(1);
  const Tensor& index = ctx.tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_RETURN_IF_ERROR(check_scatter_gather(ctx, self, dim, index, nullptr));
  ctx.set_output(0, Tensor::meta(self.dtype(), index.sizes()));
  return ok_status();
}

// scatter.src / scatter.reduce / scatter_add / scatter_reduce.two: (self, dim, index, src, ...).
Status infer_scatter_src(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const int64_t dim = ctx.int_arg(1);
  const Tensor& index = ctx.tensor(2);
  const Tensor& src = ctx.tensor(3);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, self, src, "src"));
  KILN_RETURN_IF_ERROR(check_scatter_gather(ctx, self, dim, index, &src));
  ctx.set_output(0, Tensor::meta(self.dtype(), self.sizes()));
  return ok_status();
}

// scatter.value / scatter.value_reduce: (self, dim, index, value, ...).
Status infer_scatter_value(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const int64_t dim = ctx.int_arg(1);
  const Tensor& index = ctx.tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_RETURN_IF_ERROR(check_scatter_gather(ctx, self, dim, index, nullptr));
  ctx.set_output(0, Tensor::meta(self.dtype(), self.sizes()));
  return ok_status();
}

Status check_reduce_name(OpContext& ctx, size_t arg,
                         std::initializer_list<std::string_view> names) {
  const std::string& reduce = ctx.string_arg(arg);
  KILN_RETURN_IF_ERROR(ctx.error());
  std::string list;
  for (std::string_view n : names) {
    if (reduce == n) return ok_status();
    list += str_cat(list.empty() ? "" : ", ", "'", n, "'");
  }
  return op_error(ctx, "expected reduce to be one of ", list, ", found '", reduce, "'");
}

Status infer_scatter_reduce(OpContext& ctx) {  // scatter.reduce: reduce is argument 4
  KILN_RETURN_IF_ERROR(check_reduce_name(ctx, 4, {"add", "multiply"}));
  return infer_scatter_src(ctx);
}

Status infer_scatter_value_reduce(OpContext& ctx) {
  KILN_RETURN_IF_ERROR(check_reduce_name(ctx, 4, {"add", "multiply"}));
  return infer_scatter_value(ctx);
}

Status infer_scatter_reduce_two(OpContext& ctx) {
  KILN_RETURN_IF_ERROR(check_reduce_name(ctx, 4, {"sum", "prod", "mean", "amax", "amin"}));
  return infer_scatter_src(ctx);
}

// index_select(self, dim, index): index is a vector (or a 0-d tensor).
Status infer_index_select(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const int64_t dim = ctx.int_arg(1);
  const Tensor& index = ctx.tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(int64_t d, wrap_dim(dim, self.dim()), op_name(ctx.node().op), ": ");
  KILN_RETURN_IF_ERROR(check_index_dtype(ctx, index));
  if (index.dim() > 1) return op_error(ctx, "expected a 1-D index, found ", index.description());
  Shape shape = self.sizes();
  if (self.dim() > 0) shape[d] = index.numel();
  ctx.set_output(0, Tensor::meta(self.dtype(), std::move(shape)));
  return ok_status();
}

// take(self, index): self flattened, indexed by an int64 tensor of any shape.
Status infer_take(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& index = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_RETURN_IF_ERROR(check_index_dtype(ctx, index, /*int32_ok=*/false));
  ctx.set_output(0, Tensor::meta(self.dtype(), index.sizes()));
  return ok_status();
}

// ---- advanced indexing
// ---------------------------------------------------------------------------

// Where the indexed dims of self go. Index tensors broadcast together into `broadcast`; when the
// indexed dims are adjacent that block replaces them in place, otherwise it leads the result
// (NumPy's rule). A bool/uint8 mask covers as many dims as it has; its true-count is data, so
// `broadcast` is unknown (has_mask) for a mask.
struct IndexShape {
  Shape result;
  bool has_mask = false;
};

Result<IndexShape> advanced_index_shape(OpContext& ctx, const Tensor& self,
                                        const std::vector<const Tensor*>& indices) {
  int64_t dim = 0, first = -1, last = -1;
  bool adjacent = true, has_mask = false;
  Shape broadcast;
  std::vector<bool> indexed(self.dim(), false);
  for (size_t i = 0; i < indices.size(); ++i) {
    const Tensor* index = indices[i];
    const bool mask = index && (index->dtype() == DType::kBool || index->dtype() == DType::kUInt8);
    const int64_t covers = mask ? std::max<int64_t>(index->dim(), 1) : 1;
    if (dim + covers > self.dim()) {
      return op_error(ctx, "too many indices for self ", self.description(), ": ", indices.size(),
                      " given");
    }
    if (!index) {
      ++dim;
      continue;
    }
    if (!mask && !is_index_dtype(index->dtype())) {
      return op_error(ctx, "index ", i, ": expected an int64, int32, bool or uint8 tensor, found ",
                      index->description());
    }
    if (mask) {
      if (index->dim() == 0) {
        return op_error(ctx, "index ", i, ": a 0-d mask index is not supported");
      }
      for (int64_t j = 0; j < index->dim(); ++j) {
        if (index->size(j) != self.size(dim + j)) {
          return op_error(ctx, "index ", i, ": expected a mask of shape matching self ",
                          self.description(), " at dim ", dim + j, ", found ",
                          index->description());
        }
      }
      has_mask = true;
    } else {
      KILN_ASSIGN_OR_RETURN(broadcast, broadcast_shapes(broadcast, index->sizes()),
                            op_name(ctx.node().op), ": index tensors: ");
    }
    if (first >= 0 && last != dim - 1) adjacent = false;
    if (first < 0) first = dim;
    for (int64_t j = 0; j < covers; ++j) indexed[dim + j] = true;
    last = dim + covers - 1;
    dim += covers;
  }
  if (first < 0) return IndexShape{self.sizes(), false};  // no index tensor: a copy
  Shape result;
  if (adjacent) result.assign(self.sizes().begin(), self.sizes().begin() + first);
  result.insert(result.end(), broadcast.begin(), broadcast.end());
  for (int64_t d = adjacent ? first : 0; d < self.dim(); ++d) {
    if (!indexed[d]) result.push_back(self.size(d));
  }
  return IndexShape{std::move(result), has_mask};
}

// index.Tensor, _unsafe_index.Tensor: (self, indices).
Status infer_index(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const std::vector<const Tensor*> indices = ctx.tensors(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(IndexShape shape, advanced_index_shape(ctx, self, indices));
  if (shape.has_mask) {
    return unsupported(op_name(ctx.node().op), " (node '", ctx.node().name,
                       "'): a bool or uint8 mask index gives a data-dependent shape, which kiln "
                       "does not support");
  }
  ctx.set_output(0, Tensor::meta(self.dtype(), std::move(shape.result)));
  return ok_status();
}

// masked_scatter(self, mask, source): self and the bool mask broadcast together; source, of
// self's dtype, gives the values of the true positions in order (its size is checked by the
// kernel: the count of true elements is data).
Status infer_masked_scatter(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& mask = ctx.tensor(1);
  const Tensor& source = ctx.tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (mask.dtype() != DType::kBool) {
    return op_error(ctx, "expected a bool mask, found ", mask.description());
  }
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, self, source, "source"));
  KILN_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes(self.sizes(), mask.sizes()),
                        op_name(ctx.node().op), " (node '", ctx.node().name, "')");
  ctx.set_output(0, Tensor::meta(self.dtype(), std::move(shape)));
  return ok_status();
}

// index_put, _unsafe_index_put: (self, indices, values, accumulate). values must expand to the
// shape self[indices] has (checked by the kernel when a mask makes that shape data).
Status infer_index_put(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const std::vector<const Tensor*> indices = ctx.tensors(1);
  const Tensor& values = ctx.tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_RETURN_IF_ERROR(check_same_dtype(ctx, self, values, "values"));
  KILN_ASSIGN_OR_RETURN(IndexShape shape, advanced_index_shape(ctx, self, indices));
  if (!shape.has_mask) {
    const Shape& r = shape.result;
    bool ok = values.dim() <= static_cast<int64_t>(r.size());
    for (int64_t i = 0; ok && i < values.dim(); ++i) {
      const int64_t v = values.size(values.dim() - 1 - i);
      ok = v == 1 || v == r[r.size() - 1 - i];
    }
    if (!ok) {
      return op_error(ctx, "expected values to broadcast to the indexed shape ", shape_to_string(r),
                      ", found ", values.description());
    }
  }
  ctx.set_output(0, Tensor::meta(self.dtype(), self.sizes()));
  return ok_status();
}

// ---- select_scatter / slice_scatter
// --------------------------------------------------------------

// select_scatter(self, src, dim, index): src has self's shape without `dim`.
Status infer_select_scatter(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& src = ctx.tensor(1);
  const int64_t dim = ctx.int_arg(2);
  int64_t index = ctx.int_arg(3);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (self.dim() == 0) return op_error(ctx, "expected self of at least 1 dim, found a 0-d tensor");
  KILN_ASSIGN_OR_RETURN(int64_t d, wrap_dim(dim, self.dim()), op_name(ctx.node().op), ": ");
  if (index < -self.size(d) || index >= self.size(d)) {
    return op_error(ctx, "index ", index, " is out of bounds for dim ", d, " with size ",
                    self.size(d));
  }
  Shape expected = self.sizes();
  expected.erase(expected.begin() + d);
  if (src.sizes() != expected) {
    return op_error(ctx, "expected src of shape ", shape_to_string(expected), ", found ",
                    src.description());
  }
  ctx.set_output(0, Tensor::meta(self.dtype(), self.sizes()));
  return ok_status();
}

// slice_scatter(self, src, dim, start?, end?, step): src has the shape of self[start:end:step]
// along `dim` (start and end clamped as Python slices are).
Status infer_slice_scatter(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& src = ctx.tensor(1);
  const int64_t dim = ctx.int_arg(2);
  const std::optional<int64_t> start = ctx.optional_int(3), end = ctx.optional_int(4);
  const int64_t step = ctx.int_arg(5);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (self.dim() == 0) return op_error(ctx, "expected self of at least 1 dim, found a 0-d tensor");
  KILN_ASSIGN_OR_RETURN(int64_t d, wrap_dim(dim, self.dim()), op_name(ctx.node().op), ": ");
  if (step <= 0) return op_error(ctx, "expected a positive step, found ", step);
  const int64_t size = self.size(d);
  int64_t lo = start.value_or(0), hi = end.value_or(INT64_MAX);
  if (lo < 0) lo += size;
  if (hi < 0) hi += size;
  lo = std::clamp<int64_t>(lo, 0, size);
  hi = std::clamp<int64_t>(hi, lo, size);
  Shape expected = self.sizes();
  expected[d] = (hi - lo + step - 1) / step;
  if (src.sizes() != expected) {
    return op_error(ctx, "expected src of shape ", shape_to_string(expected),
                    " (the slice of self ", self.description(), "), found ", src.description());
  }
  ctx.set_output(0, Tensor::meta(self.dtype(), self.sizes()));
  return ok_status();
}

}  // namespace

bool embedding_bag_cuda_form(const Node& node) {
  if (node.outputs.size() < 4 || node.args.size() < 8) return false;
  const int64_t* mode = std::get_if<int64_t>(&node.args[4]);
  const bool* last = std::get_if<bool>(&node.args[7]);
  const Value* const* offsets = std::get_if<Value*>(&node.args[2]);
  if (!mode || !offsets || !*offsets || (*offsets)->shape.size() != 1) return false;
  const SymDim& count = (*offsets)->shape[0];
  const bool include_last = last && *last;
  auto recorded = [&](size_t i) -> const Value* {
    const Value* v = node.outputs[i];
    return v && v->has_recorded_meta && v->shape.size() == 1 && v->shape[0].is_static() ? v
                                                                                       : nullptr;
  };
  if (!count.is_static()) return false;
  const int64_t bags = count.value - (include_last ? 1 : 0);
  if (const Value* max_indices = recorded(3);
      *mode != 2 && max_indices && max_indices->shape[0].value == 0 && bags > 0) {
    return true;
  }
  const Value* bag_size = recorded(2);
  return include_last && bag_size && bag_size->shape[0].value == count.value;
}

bool embedding_bag_fast_path(const Tensor& weight, const Tensor* per_sample_weights,
                             int64_t padding_idx) {
  const DType t = weight.dtype();
  // Eager reads the strides as they are, a size-1 dim's included.
  return (t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16) &&
         weight.dim() == 2 && weight.strides()[1] == 1 && padding_idx < 0 &&
         (!per_sample_weights || per_sample_weights->strides()[0] == 1);
}

namespace {

// nonzero(self) -> int64 [count, self.dim()]: the count is data. Where the input's values are
// there (the reference backend's executor) they are counted; on metadata (reading, building) the
// row count is the program's example for its unbacked size, or 0.
Status infer_nonzero(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  int64_t rows = 0;
  if (self.has_data()) {
    KILN_ASSIGN_OR_RETURN(Tensor dense, self.contiguous());
    KILN_RETURN_IF_ERROR(dispatch_dtype(dense.dtype(), [&]<typename T>() -> Status {
      const T* x = dense.data<T>();
      for (int64_t i = 0; i < dense.numel(); ++i) rows += element_cast<bool>(x[i]) ? 1 : 0;  // NaN counts
      return ok_status();
    }));
  } else {
    const Value* recorded = ctx.node().outputs.empty() ? nullptr : ctx.node().outputs[0];
    if (recorded && recorded->has_recorded_meta && !recorded->shape.empty()) {
      rows = std::max<int64_t>(recorded->shape[0].value, 0);
    }
  }
  ctx.set_output(0, Tensor::meta(DType::kInt64, {rows, self.dim()}));
  return ctx.error();
}

}  // namespace

Status register_indexing_inference(OpFunctionTable& table) {
  return add_all(table, {
                            {OpKey::aten_embedding_default, infer_embedding},
                            {OpKey::aten_nonzero_default, infer_nonzero},
                            {OpKey::aten__embedding_bag_default, infer_embedding_bag},
                            {OpKey::aten_gather_default, infer_gather},
                            {OpKey::aten_scatter_src, infer_scatter_src},
                            {OpKey::aten_scatter_value, infer_scatter_value},
                            {OpKey::aten_scatter_reduce, infer_scatter_reduce},
                            {OpKey::aten_scatter_value_reduce, infer_scatter_value_reduce},
                            {OpKey::aten_scatter_add_default, infer_scatter_src},
                            {OpKey::aten_scatter_reduce_two, infer_scatter_reduce_two},
                            {OpKey::aten_index_select_default, infer_index_select},
                            {OpKey::aten_take_default, infer_take},
                            {OpKey::aten_index_Tensor, infer_index},
                            {OpKey::aten__unsafe_index_Tensor, infer_index},
                            {OpKey::aten_index_put_default, infer_index_put},
                            {OpKey::aten__unsafe_index_put_default, infer_index_put},
                            {OpKey::aten_select_scatter_default, infer_select_scatter},
                            {OpKey::aten_slice_scatter_default, infer_slice_scatter},
                            {OpKey::aten_masked_scatter_default, infer_masked_scatter},
                        });
}

}  // namespace kiln::ir
