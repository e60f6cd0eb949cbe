// Shape and dtype inference for the reduction ops: sum, mean, prod, amax/amin, max/min, argmax,
// any/all, var/std, cumsum/cumprod, logsumexp and the vector norms.
#include <cmath>
#include <vector>

#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

// How an op names the dims it reduces.
enum class DimsArg {
  kAll,              // no dim argument: every dim
  kInt,              // `int dim`
  kOptionalInt,      // `int? dim`: None is every dim (flattened)
  kList,             // `int[1]? dim` / `int[1] dim=[]`: None or [] is every dim
  kListEmptyIsNone,  // any.dims / all.dims: None is every dim, [] is no dim
};

// Which dims of a rank-`rank` tensor the op reduces: mask[d] is true for a reduced dim.
Result<std::vector<bool>> reduce_mask(OpContext& ctx, DimsArg kind, size_t arg, int64_t rank) {
  std::vector<bool> mask(static_cast<size_t>(rank), false);
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
  std::vector<bool> seen(static_cast<size_t>(std::max<int64_t>(rank, 1)), false);
  for (int64_t d : *dims) {
    KILN_ASSIGN_OR_RETURN(int64_t w, wrap_dim(d, rank), op_name(ctx.node().op), ": ");
    if (seen[w]) return op_error(ctx, "dim ", w, " appears more than once in the list of dims");
    seen[w] = true;
    if (rank > 0) mask[w] = true;
  }
  return mask;
}

Shape reduced_shape(const Shape& sizes, const std::vector<bool>& mask, bool keepdim) {
  Shape out;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (!mask[d]) {
      out.push_back(sizes[d]);
    } else if (keepdim) {
      out.push_back(1);
    }
  }
  return out;
}

// max/min/amax/argmax have no identity: reducing an empty dim is an error, as in PyTorch.
Status check_nonempty_reduction(OpContext& ctx, const Tensor& self, const std::vector<bool>& mask,
                                std::string_view what) {
  for (size_t d = 0; d < mask.size(); ++d) {
    if (mask[d] && self.size(static_cast<int64_t>(d)) == 0) {
      return op_error(ctx, "expected reduction dim ", d, " to have non-zero size, found shape ",
                      shape_to_string(self.sizes()), " (", what, " has no identity)");
    }
  }
  return ok_status();
}

// Sets output 0 (and more, for ops with several outputs of the same shape) to the reduced shape.
Status reduce_to(OpContext& ctx, DimsArg kind, size_t dims_arg, int keepdim_arg,
                 std::initializer_list<DType> dtypes) {
  const Tensor& self = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, kind, dims_arg, self.dim()));
  const bool keepdim = keepdim_arg >= 0 && ctx.bool_arg(static_cast<size_t>(keepdim_arg));
  Shape shape = reduced_shape(self.sizes(), mask, keepdim);
  size_t i = 0;
  for (DType dtype : dtypes) ctx.set_output(i++, Tensor::meta(dtype, shape));
  return ctx.error();
}

// sum and prod: integral and bool inputs accumulate into int64 unless a dtype is given.
DType accumulate_dtype(OpContext& ctx, size_t dtype_arg) {
  const DType self = ctx.tensor(0).dtype();
  if (auto dtype = ctx.scalar_type(dtype_arg)) return *dtype;
  return is_floating(self) ? self : DType::kInt64;
}

Status sum_all(OpContext& ctx) {
  return reduce_to(ctx, DimsArg::kAll, 0, -1, {accumulate_dtype(ctx, 1)});
}
Status sum_dims(OpContext& ctx) {
  return reduce_to(ctx, DimsArg::kList, 1, 2, {accumulate_dtype(ctx, 3)});
}
Status prod_all(OpContext& ctx) {
  return reduce_to(ctx, DimsArg::kAll, 0, -1, {accumulate_dtype(ctx, 1)});
}
Status prod_dim(OpContext& ctx) {
  return reduce_to(ctx, DimsArg::kInt, 1, 2, {accumulate_dtype(ctx, 3)});
}

Result<DType> mean_dtype(OpContext& ctx, size_t dtype_arg) {
  const DType self = ctx.tensor(0).dtype();
  const std::optional<DType> dtype = ctx.scalar_type(dtype_arg);
  const DType out = dtype.value_or(self);
  if (!is_floating(out)) {
    return op_error(ctx, "could not infer the output dtype: expected a floating point ",
                    dtype ? "dtype argument" : "input", ", found ", dtype_name(out));
  }
  return out;
}

Status mean_all(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DType dtype, mean_dtype(ctx, 1));
  return reduce_to(ctx, DimsArg::kAll, 0, -1, {dtype});
}
Status mean_dims(OpContext& ctx) {
  KILN_ASSIGN_OR_RETURN(DType dtype, mean_dtype(ctx, 3));
  return reduce_to(ctx, DimsArg::kList, 1, 2, {dtype});
}

// amax, amin, max, min, argmax, argmin: values keep the input dtype, indices are int64.
Status extreme(OpContext& ctx, DimsArg kind, int keepdim_arg, bool values, bool indices,
               std::string_view what) {
  const Tensor& self = ctx.tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, kind, 1, self.dim()));
  KILN_RETURN_IF_ERROR(check_nonempty_reduction(ctx, self, mask, what));
  if (indices && !values && self.dtype() == DType::kBool) {
    return op_error(ctx, what, " does not support bool input");
  }
  if (values && indices) {
    return reduce_to(ctx, kind, 1, keepdim_arg, {self.dtype(), DType::kInt64});
  }
  return reduce_to(ctx, kind, 1, keepdim_arg, {values ? self.dtype() : DType::kInt64});
}

Status amax(OpContext& ctx) {
  return extreme(ctx, DimsArg::kList, 2, true, false, "amax");
}
Status amin(OpContext& ctx) {
  return extreme(ctx, DimsArg::kList, 2, true, false, "amin");
}
Status max_all(OpContext& ctx) {
  return extreme(ctx, DimsArg::kAll, -1, true, false, "max");
}
Status min_all(OpContext& ctx) {
  return extreme(ctx, DimsArg::kAll, -1, true, false, "min");
}
Status max_dim(OpContext& ctx) {
  return extreme(ctx, DimsArg::kInt, 2, true, true, "max");
}
Status min_dim(OpContext& ctx) {
  return extreme(ctx, DimsArg::kInt, 2, true, true, "min");
}
Status argmax(OpContext& ctx) {
  return extreme(ctx, DimsArg::kOptionalInt, 2, false, true, "argmax");
}
Status argmin(OpContext& ctx) {
  return extreme(ctx, DimsArg::kOptionalInt, 2, false, true, "argmin");
}

// any/all give bool, except for uint8 inputs, which give uint8 (as PyTorch does).
DType logical_dtype(OpContext& ctx) {
  return ctx.tensor(0).dtype() == DType::kUInt8 ? DType::kUInt8 : DType::kBool;
}
Status logical_all(OpContext& ctx) {
  return reduce_to(ctx, DimsArg::kAll, 0, -1, {logical_dtype(ctx)});
}
Status logical_dim(OpContext& ctx) {
  return reduce_to(ctx, DimsArg::kInt, 1, 2, {logical_dtype(ctx)});
}
Status logical_dims(OpContext& ctx) {
  return reduce_to(ctx, DimsArg::kListEmptyIsNone, 1, 2, {logical_dtype(ctx)});
}

Status count_nonzero_dims(OpContext& ctx) {
  return reduce_to(ctx, DimsArg::kList, 1, -1, {DType::kInt64});
}
Status count_nonzero(OpContext& ctx) {
  return reduce_to(ctx, DimsArg::kOptionalInt, 1, -1, {DType::kInt64});
}

// var/std and var_mean/std_mean in their three spellings (default, dim with `unbiased`, and
// correction). `num_outputs` is 2 for the *_mean ops.
Status moments(OpContext& ctx, DimsArg kind, int keepdim_arg, int num_outputs) {
  const DType dtype = ctx.tensor(0).dtype();
  if (!is_floating(dtype)) {
    return op_error(ctx, "var and std expect a floating point input, found ", dtype_name(dtype));
  }
  if (num_outputs == 2) return reduce_to(ctx, kind, 1, keepdim_arg, {dtype, dtype});
  return reduce_to(ctx, kind, 1, keepdim_arg, {dtype});
}
Status moments_default(OpContext& ctx) {
  return moments(ctx, DimsArg::kAll, -1, 1);
}
Status moments_dim(OpContext& ctx) {
  return moments(ctx, DimsArg::kList, 3, 1);
}
Status moments_mean_default(OpContext& ctx) {
  return moments(ctx, DimsArg::kAll, -1, 2);
}
Status moments_mean_dim(OpContext& ctx) {
  return moments(ctx, DimsArg::kList, 3, 2);
}

Status scan(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(wrap_dim(ctx.int_arg(1), self.dim()), op_name(ctx.node().op), ": ");
  ctx.set_output(0, Tensor::meta(accumulate_dtype(ctx, 2), self.sizes()));
  return ctx.error();
}

Status logsumexp(OpContext& ctx) {
  const DType self = ctx.tensor(0).dtype();
  return reduce_to(ctx, DimsArg::kList, 1, 2, {is_floating(self) ? self : DType::kFloat32});
}

// linalg_vector_norm and norm: the input must be floating; a dtype may widen it, not narrow it.
Status vector_norm(OpContext& ctx, double ord, size_t dims_arg, int keepdim_arg,
                   std::optional<DType> dtype) {
  const Tensor& self = ctx.tensor(0);
  if (!is_floating(self.dtype())) {
    return op_error(ctx, "expected a floating point input, found ", dtype_name(self.dtype()));
  }
  if (dtype && (!is_floating(*dtype) || promote_types(self.dtype(), *dtype) != *dtype)) {
    return op_error(ctx, "the input dtype ", dtype_name(self.dtype()),
                    " should convert without narrowing to the dtype argument, found ",
                    dtype_name(*dtype));
  }
  if (std::isnan(ord)) return op_error(ctx, "expected a norm order that is not nan");
  const DimsArg kind = keepdim_arg < 0 ? DimsArg::kAll : DimsArg::kList;
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, kind, dims_arg, self.dim()));
  if (ord < 0 || std::isinf(ord)) {
    KILN_RETURN_IF_ERROR(
        check_nonempty_reduction(ctx, self, mask, "a norm of negative or inf order"));
  }
  return reduce_to(ctx, kind, dims_arg, keepdim_arg, {dtype.value_or(self.dtype())});
}

double norm_order(OpContext& ctx, size_t arg) {
  auto p = ctx.optional_scalar(arg);
  return p ? p->to_double() : 2.0;
}

Status linalg_vector_norm(OpContext& ctx) {
  return vector_norm(ctx, norm_order(ctx, 1), 2, 3, ctx.scalar_type(4));
}
Status norm_scalar(OpContext& ctx) {
  return vector_norm(ctx, norm_order(ctx, 1), 0, -1, {});
}
Status norm_dim(OpContext& ctx) {
  return vector_norm(ctx, norm_order(ctx, 1), 2, 3, {});
}

}  // namespace

Status register_reduction_inference(OpFunctionTable& table) {
  return add_all(table, {
                            {OpKey::aten_sum_default, sum_all},
                            {OpKey::aten_sum_dim_IntList, sum_dims},
                            {OpKey::aten_mean_default, mean_all},
                            {OpKey::aten_mean_dim, mean_dims},
                            {OpKey::aten_prod_default, prod_all},
                            {OpKey::aten_prod_dim_int, prod_dim},
                            {OpKey::aten_amax_default, amax},
                            {OpKey::aten_amin_default, amin},
                            {OpKey::aten_max_default, max_all},
                            {OpKey::aten_min_default, min_all},
                            {OpKey::aten_max_dim, max_dim},
                            {OpKey::aten_min_dim, min_dim},
                            {OpKey::aten_argmax_default, argmax},
                            {OpKey::aten_argmin_default, argmin},
                            {OpKey::aten_any_default, logical_all},
                            {OpKey::aten_any_dim, logical_dim},
                            {OpKey::aten_any_dims, logical_dims},
                            {OpKey::aten_all_default, logical_all},
                            {OpKey::aten_all_dim, logical_dim},
                            {OpKey::aten_all_dims, logical_dims},
                            {OpKey::aten_count_nonzero_dim_IntList, count_nonzero_dims},
                            {OpKey::aten_count_nonzero_default, count_nonzero},
                            {OpKey::aten_var_default, moments_default},
                            {OpKey::aten_var_dim, moments_dim},
                            {OpKey::aten_var_correction, moments_dim},
                            {OpKey::aten_std_default, moments_default},
                            {OpKey::aten_std_dim, moments_dim},
                            {OpKey::aten_std_correction, moments_dim},
                            {OpKey::aten_var_mean_default, moments_mean_default},
                            {OpKey::aten_var_mean_dim, moments_mean_dim},
                            {OpKey::aten_var_mean_correction, moments_mean_dim},
                            {OpKey::aten_std_mean_default, moments_mean_default},
                            {OpKey::aten_std_mean_dim, moments_mean_dim},
                            {OpKey::aten_std_mean_correction, moments_mean_dim},
                            {OpKey::aten_cumsum_default, scan},
                            {OpKey::aten_cumprod_default, scan},
                            {OpKey::aten_logsumexp_default, logsumexp},
                            {OpKey::aten_linalg_vector_norm_default, linalg_vector_norm},
                            {OpKey::aten_norm_Scalar, norm_scalar},
                            {OpKey::aten_norm_ScalarOpt_dim, norm_dim},
                        });
}

}  // namespace kiln::ir
