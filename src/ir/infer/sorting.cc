// Shape and dtype inference for the sorting ops: sort (default and stable overloads) and topk.
// Both give values of self's dtype and int64 indices, along one dim.
#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

// The size of `dim` (already wrapped); a 0-d tensor counts as one element.
int64_t dim_size(const Tensor& self, int64_t dim) {
  return self.dim() == 0 ? 1 : self.size(dim);
}

Status set_sorted_outputs(OpContext& ctx, const Tensor& self, Shape shape) {
  ctx.set_output(0, Tensor::meta(self.dtype(), shape));
  ctx.set_output(1, Tensor::meta(DType::kInt64, std::move(shape)));
  return ok_status();
}

// sort(self, dim=-1, descending=False) and sort.stable(self, *, stable, dim=-1, descending=False).
Status infer_sort(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const bool stable_overload = ctx.node().op == OpKey::aten_sort_stable;
  const int64_t dim = ctx.int_arg(stable_overload ? 2 : 1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(int64_t d, wrap_dim(dim, self.dim()), op_name(ctx.node().op), ": ");
  static_cast<void>(d);  // checked only: the outputs have self's shape
  return set_sorted_outputs(ctx, self, self.sizes());
}

// topk(self, k, dim=-1, largest=True, sorted=True): the k largest (or smallest) along dim.
Status infer_topk(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const int64_t k = ctx.int_arg(1);
  const int64_t dim = ctx.int_arg(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(int64_t d, wrap_dim(dim, self.dim()), op_name(ctx.node().op), ": ");
  if (self.dtype() == DType::kBool) {
    return op_error(ctx, "expected a numeric tensor, found ", self.description());
  }
  if (k < 0 || k > dim_size(self, d)) {
    return op_error(ctx, "expected k in [0, ", dim_size(self, d), "] (the size of dim ", d,
                    "), found ", k);
  }
  Shape shape = self.sizes();
  if (self.dim() > 0) shape[d] = k;
  return set_sorted_outputs(ctx, self, std::move(shape));
}

}  // namespace

Status register_sorting_inference(OpFunctionTable& table) {
  return add_all(table, {
                            {OpKey::aten_sort_default, infer_sort},
                            {OpKey::aten_sort_stable, infer_sort},
                            {OpKey::aten_topk_default, infer_topk},
                        });
}

}  // namespace kiln::ir
