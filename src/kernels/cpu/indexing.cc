// CPU reference kernels for the indexing ops: embedding, index_select, take, gather, the scatter
// family and select/slice_scatter (advanced indexing is in indexing_advanced.cc). Every index value
// is checked before anything is read or written through it.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/indexing_internal.h"
#include "kernels/cpu/indexing_util.h"

namespace kiln::cpu {
namespace {

int64_t wrap(int64_t dim, int64_t rank) {
  return dim < 0 ? dim + std::max<int64_t>(rank, 1) : dim;
}

// A 0-d tensor as a 1-D one of one element (gather and scatter treat them alike).
Tensor at_least_1d(const Tensor& t) {
  return t.dim() == 0 ? t.view_as({1}, {1}, t.offset()) : t;
}

// The values of an index tensor as int64, each checked against `size` (negative values wrap only
// when `wrap_negative`, as in take and advanced indexing; embedding, index_select, gather and
// scatter reject them).
Result<std::vector<int64_t>> checked_indices(const Tensor& index, int64_t size, int64_t dim,
                                             bool wrap_negative) {
  KILN_ASSIGN_OR_RETURN(Tensor idx, index_as_int64(index));
  const int64_t* p = idx.data<int64_t>();
  std::vector<int64_t> values(p, p + idx.numel());
  for (int64_t& v : values) {
    if (v < 0 && !wrap_negative) {
      return out_of_range("index ", v, " is out of bounds for dim ", dim, " with size ", size);
    }
    KILN_RETURN_IF_ERROR(normalize_index(v, size, dim));
  }
  return values;
}

// out = self picked along `dim` at `index` (flattened): self viewed as [outer, size, inner].
Status select_along(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& out,
                    bool wrap_negative = false) {
  const int64_t size = self.dim() == 0 ? 1 : self.size(dim);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, checked_indices(index, size, dim, wrap_negative));
  if (out.numel() == 0) return ok_status();
  KILN_ASSIGN_OR_RETURN(Tensor src, self.contiguous());
  const auto& s = self.sizes();
  const int64_t outer = self.dim() == 0 ? 1 : shape_numel({s.data(), size_t(dim)});
  const int64_t inner = self.dim() == 0 ? 1 : shape_numel({s.data() + dim + 1, s.size() - dim - 1});
  const size_t bytes = static_cast<size_t>(inner) * dtype_size(self.dtype());
  const char* from = static_cast<const char*>(src.raw_data());
  char* to = static_cast<char*>(out.raw_data());
  const int64_t count = static_cast<int64_t>(idx.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < count; ++j) {
      std::memcpy(to + (o * count + j) * bytes, from + (o * size + idx[j]) * bytes, bytes);
    }
  }
  return ok_status();
}

// embedding(weight, indices, ...): rows of weight.
Status embedding_kernel(ir::OpContext& ctx) {
  const Tensor& weight = ctx.tensor(0);
  const Tensor& indices = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  return select_along(weight, 0, indices, ctx.output_tensor(0));
}

// index_select(self, dim, index).
Status index_select_kernel(ir::OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const int64_t dim = ctx.int_arg(1);
  const Tensor& index = ctx.tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  return select_along(self, self.dim() == 0 ? 0 : wrap(dim, self.dim()), index,
                      ctx.output_tensor(0));
}

// take(self, index): self flattened.
Status take_kernel(ir::OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& index = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Tensor src, self.contiguous());
  return select_along(reshape_contiguous(src, {src.numel()}), 0, index, ctx.output_tensor(0),
                      /*wrap_negative=*/true);
}

// gather(self, dim, index): out[i] = self[i with i[dim] = index[i]].
Status gather_kernel(ir::OpContext& ctx) {
  const Tensor self = at_least_1d(ctx.tensor(0));
  const int64_t d = wrap(ctx.int_arg(1), ctx.tensor(0).dim());
  const Tensor index = at_least_1d(ctx.tensor(2));
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, checked_indices(index, self.size(d), d, false));
  Tensor& out = ctx.output_tensor(0);
  Shape strides = self.strides();
  const int64_t dim_stride = strides[d];
  strides[d] = 0;
  dispatch_element_size(self.dtype(), [&]<typename U>() {
    const U* src = self.data<U>();
    U* dst = out.data<U>();
    int64_t e = 0;
    for_each_element<1>(index.sizes(), {strides}, [&](const std::array<int64_t, 1>& off) {
      dst[e] = src[off[0] + idx[e] * dim_stride];
      ++e;
    });
  });
  return ok_status();
}

// ---- scatter
// -------------------------------------------------------------------------------------

enum class Reduce { kAssign, kAdd, kMultiply, kMean, kAmax, kAmin };

Result<Reduce> parse_reduce(const std::string& name) {
  if (name == "add" || name == "sum") return Reduce::kAdd;
  if (name == "multiply" || name == "prod") return Reduce::kMultiply;
  if (name == "mean") return Reduce::kMean;
  if (name == "amax") return Reduce::kAmax;
  if (name == "amin") return Reduce::kAmin;
  return invalid_argument("unknown reduce '", name, "'");
}

template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_integral_v<T>) {
    return false;
  } else {
    return std::isnan(static_cast<ComputeType<T>>(v));
  }
}

template <typename T>
T combine(Reduce r, T cur, T v) {
  using C = ComputeType<T>;
  switch (r) {
    case Reduce::kAssign: return v;
    case Reduce::kAdd:
    case Reduce::kMean: return add_elements(cur, v);
    case Reduce::kMultiply: return mul_elements(cur, v);
    case Reduce::kAmax: return is_nan(v) || static_cast<C>(cur) < static_cast<C>(v) ? v : cur;
    case Reduce::kAmin: return is_nan(v) || static_cast<C>(v) < static_cast<C>(cur) ? v : cur;
  }
  return v;
}

// Mean's final division: floor division for integers, as PyTorch does.
template <typename T>
T divide(T sum, int64_t count) {
  if constexpr (std::is_same_v<T, bool>) {
    return sum;
  } else if constexpr (std::is_integral_v<T>) {
    const int64_t s = static_cast<int64_t>(sum);
    int64_t q = s / count;
    if ((s % count != 0) && ((s < 0) != (count < 0))) --q;
    return static_cast<T>(q);
  } else {
    return element_cast<T>(static_cast<ComputeType<T>>(sum) / static_cast<ComputeType<T>>(count));
  }
}

struct ScatterArgs {
  int64_t dim = 0;
  const Tensor* src = nullptr;  // null: scatter `value`
  ir::Scalar value;
  Reduce reduce = Reduce::kAssign;
  bool include_self = true;
};

template <typename T>
Status scatter_typed(const Tensor& out, const Tensor& index, const std::vector<int64_t>& idx,
                     const ScatterArgs& a) {
  T value{};
  if (!a.src) {
    KILN_ASSIGN_OR_RETURN(value, checked_scalar<T>(a.value));
  }
  const Tensor o = at_least_1d(out);
  Shape out_strides = o.strides();
  const int64_t dim_stride = out_strides[a.dim];
  out_strides[a.dim] = 0;
  const Tensor src = a.src ? at_least_1d(*a.src) : o;
  T* dst = o.data<T>();
  const T* from = src.data<T>();
  const bool track = !a.include_self || a.reduce == Reduce::kMean;
  std::vector<int64_t> count(track ? o.numel() : 0, a.include_self ? 1 : 0);
  int64_t e = 0;
  for_each_element<2>(index.sizes(), {out_strides, src.strides()},
                      [&](const std::array<int64_t, 2>& off) {
                        const int64_t t = off[0] + idx[e++] * dim_stride;
                        const T v = a.src ? from[off[1]] : value;
                        dst[t] = track && count[t] == 0 ? v : combine(a.reduce, dst[t], v);
                        if (track) ++count[t];
                      });
  if (a.reduce == Reduce::kMean) {
    for (int64_t t = 0; t < o.numel(); ++t) {
      if (count[t] > 1) dst[t] = divide(dst[t], count[t]);
    }
  }
  return ok_status();
}

Status run_scatter(ir::OpContext& ctx, ScatterArgs args) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& index = ctx.tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  KILN_RETURN_IF_ERROR(out.copy_from(self));
  if (index.numel() == 0) return ok_status();
  args.dim = wrap(args.dim, self.dim());
  const int64_t size = self.dim() == 0 ? 1 : self.size(args.dim);
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> idx, checked_indices(index, size, args.dim, false));
  const Tensor index_1d = at_least_1d(index);
  Status status;
  dispatch_dtype(out.dtype(),
                 [&]<typename T>() { status = scatter_typed<T>(out, index_1d, idx, args); });
  return status;
}

// scatter.src, scatter_add: (self, dim, index, src).
template <Reduce kReduce>
Status scatter_src_kernel(ir::OpContext& ctx) {
  return run_scatter(ctx, ScatterArgs{ctx.int_arg(1), &ctx.tensor(3), {}, kReduce, true});
}

// scatter.value: (self, dim, index, value).
Status scatter_value_kernel(ir::OpContext& ctx) {
  return run_scatter(ctx, ScatterArgs{ctx.int_arg(1), nullptr, ctx.scalar(3), Reduce::kAssign});
}

// scatter.reduce: (self, dim, index, src, reduce); scatter.value_reduce: (..., value, reduce).
Status scatter_reduce_kernel(ir::OpContext& ctx) {
  const bool with_value = ctx.node().op == ir::OpKey::aten_scatter_value_reduce;
  KILN_ASSIGN_OR_RETURN(Reduce reduce, parse_reduce(ctx.string_arg(4)));
  ScatterArgs args{ctx.int_arg(1), nullptr, {}, reduce, true};
  if (with_value) {
    args.value = ctx.scalar(3);
  } else {
    args.src = &ctx.tensor(3);
  }
  return run_scatter(ctx, args);
}

// scatter_reduce.two: (self, dim, index, src, reduce, include_self).
Status scatter_reduce_two_kernel(ir::OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(Reduce reduce, parse_reduce(ctx.string_arg(4)));
  return run_scatter(ctx, ScatterArgs{ctx.int_arg(1), &ctx.tensor(3), {}, reduce, ctx.bool_arg(5)});
}

// ---- select_scatter / slice_scatter
// --------------------------------------------------------------

// select_scatter(self, src, dim, index): a copy of self with self.select(dim, index) = src.
Status select_scatter_kernel(ir::OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& src = ctx.tensor(1);
  const int64_t d = wrap(ctx.int_arg(2), self.dim());
  int64_t index = ctx.int_arg(3);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  KILN_RETURN_IF_ERROR(normalize_index(index, self.size(d), d));
  KILN_RETURN_IF_ERROR(out.copy_from(self));
  Shape sizes = out.sizes(), strides = out.strides();
  const int64_t offset = out.offset() + index * strides[d];
  sizes.erase(sizes.begin() + d);
  strides.erase(strides.begin() + d);
  return out.view_as(std::move(sizes), std::move(strides), offset).copy_from(src);
}

// slice_scatter(self, src, dim, start?, end?, step): a copy of self with self[start:end:step] =
// src.
Status slice_scatter_kernel(ir::OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& src = ctx.tensor(1);
  const int64_t d = wrap(ctx.int_arg(2), self.dim());
  const std::optional<int64_t> start = ctx.optional_int(3), end = ctx.optional_int(4);
  const int64_t step = ctx.int_arg(5);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  KILN_RETURN_IF_ERROR(out.copy_from(self));
  const int64_t size = self.size(d);
  int64_t lo = start.value_or(0), hi = end.value_or(INT64_MAX);
  if (lo < 0) lo += size;
  if (hi < 0) hi += size;
  lo = std::clamp<int64_t>(lo, 0, size);
  hi = std::clamp<int64_t>(hi, lo, size);
  Shape sizes = out.sizes(), strides = out.strides();
  sizes[d] = (hi - lo + step - 1) / step;
  const int64_t offset = out.offset() + lo * strides[d];
  strides[d] *= step;
  return out.view_as(std::move(sizes), std::move(strides), offset).copy_from(src);
}

}  // namespace

Status register_indexing_kernels(ir::OpFunctionTable& table) {
  return add_all(table, {
                            {ir::OpKey::aten_embedding_default, embedding_kernel},
                            {ir::OpKey::aten__embedding_bag_default, embedding_bag_kernel},
                            {ir::OpKey::aten_gather_default, gather_kernel},
                            {ir::OpKey::aten_scatter_src, scatter_src_kernel<Reduce::kAssign>},
                            {ir::OpKey::aten_scatter_value, scatter_value_kernel},
                            {ir::OpKey::aten_scatter_reduce, scatter_reduce_kernel},
                            {ir::OpKey::aten_scatter_value_reduce, scatter_reduce_kernel},
                            {ir::OpKey::aten_scatter_add_default, scatter_src_kernel<Reduce::kAdd>},
                            {ir::OpKey::aten_scatter_reduce_two, scatter_reduce_two_kernel},
                            {ir::OpKey::aten_index_select_default, index_select_kernel},
                            {ir::OpKey::aten_take_default, take_kernel},
                            {ir::OpKey::aten_index_Tensor, index_kernel},
                            {ir::OpKey::aten__unsafe_index_Tensor, index_kernel},
                            {ir::OpKey::aten_index_put_default, index_put_kernel},
                            {ir::OpKey::aten__unsafe_index_put_default, index_put_kernel},
                            {ir::OpKey::aten_select_scatter_default, select_scatter_kernel},
                            {ir::OpKey::aten_slice_scatter_default, slice_scatter_kernel},
                            {ir::OpKey::aten_masked_scatter_default, masked_scatter_kernel},
                            {ir::OpKey::aten_nonzero_default, nonzero_kernel},
                        });
}

}  // namespace kiln::cpu
