// Shape and dtype inference for the spectral ops torch.fft lowers to: _fft_r2c (real to complex,
// optionally one-sided), _fft_c2r (one-sided complex back to real) and _fft_c2c. kiln's complex
// type is complex64, so the real side is float32; float64 (complex128) and the half types are
// declined.
#include <algorithm>

#include "ir/infer/infer_util.h"
#include "ir/shape_inference.h"

namespace kiln::ir {
namespace {

// The wrapped, distinct signal dims of `self`, in the order given (the last one is the halved
// dim of r2c and c2r).
Result<std::vector<int64_t>> signal_dims(OpContext& ctx, const Tensor& self) {
  std::vector<int64_t> dims;
  for (int64_t d : ctx.ints(1)) {
    KILN_ASSIGN_OR_RETURN(int64_t w, wrap_dim(d, self.dim()), op_name(ctx.node().op), ": ");
    if (std::find(dims.begin(), dims.end(), w) != dims.end()) {
      return op_error(ctx, "expected distinct dims, found dim ", d, " twice");
    }
    dims.push_back(w);
  }
  KILN_RETURN_IF_ERROR(ctx.error());
  if (dims.empty()) return op_error(ctx, "expected at least one dim to transform, found none");
  const int64_t normalization = ctx.int_arg(2);
  if (normalization < 0 || normalization > 2) {
    return op_error(ctx, "expected normalization 0 (none), 1 (1/sqrt(n)) or 2 (1/n), found ",
                    normalization);
  }
  return dims;
}

Status expect_dtype(OpContext& ctx, const Tensor& self, DType want) {
  if (self.dtype() == want) return ok_status();
  return op_unsupported(ctx, "expected a ", dtype_name(want), " input (kiln's complex type is ",
                        "complex64), found ", dtype_name(self.dtype()));
}

// _fft_r2c(self, dim, normalization, onesided): the last dim keeps n/2 + 1 values when one-sided.
Status fft_r2c(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(expect_dtype(ctx, self, DType::kFloat32));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> dims, signal_dims(ctx, self));
  Shape out = self.sizes();
  if (ctx.bool_arg(3)) out[dims.back()] = out[dims.back()] / 2 + 1;
  ctx.set_output(0, Tensor::meta(DType::kComplex64, std::move(out)));
  return ctx.error();
}

// _fft_c2r(self, dim, normalization, last_dim_size): the last dim becomes last_dim_size real
// values, read from its first last_dim_size/2 + 1 complex ones.
Status fft_c2r(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(expect_dtype(ctx, self, DType::kComplex64));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> dims, signal_dims(ctx, self));
  const int64_t last = ctx.int_arg(3);
  KILN_RETURN_IF_ERROR(ctx.error());
  if (last < 1 || self.size(dims.back()) < last / 2 + 1) {
    return op_error(ctx, "expected last_dim_size >= 1 with at least last_dim_size/2 + 1 values "
                         "in dim ", dims.back(), ", found last_dim_size=", last, " and ",
                    self.size(dims.back()), " values");
  }
  Shape out = self.sizes();
  out[dims.back()] = last;
  ctx.set_output(0, Tensor::meta(DType::kFloat32, std::move(out)));
  return ctx.error();
}

// _fft_c2c(self, dim, normalization, forward): same shape.
Status fft_c2c(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  KILN_RETURN_IF_ERROR(expect_dtype(ctx, self, DType::kComplex64));
  KILN_ASSIGN_OR_RETURN(std::vector<int64_t> dims, signal_dims(ctx, self));
  static_cast<void>(dims);
  ctx.set_output(0, Tensor::meta(DType::kComplex64, self.sizes()));
  return ctx.error();
}

}  // namespace

Status register_spectral_inference(OpFunctionTable& table) {
  return add_all(table, {
                            {OpKey::aten__fft_r2c_default, fft_r2c},
                            {OpKey::aten__fft_c2r_default, fft_c2r},
                            {OpKey::aten__fft_c2c_default, fft_c2c},
                        });
}

}  // namespace kiln::ir
