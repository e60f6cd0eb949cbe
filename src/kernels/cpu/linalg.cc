// CPU reference kernels for the linalg ops. Every matrix product becomes one matmul_into call on
// views shaped [batch..., m, k] x [batch..., k, n] (linalg_matmul.cc); convolutions live in
// linalg_conv.cc. Inference has checked shapes and dtypes before any kernel runs.
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/linalg_internal.h"

namespace kiln::cpu {
namespace {

constexpr ir::Scalar kOne{ir::Scalar::Kind::kInt, 1, 0.0};
constexpr ir::Scalar kZero{ir::Scalar::Kind::kInt, 0, 0.0};

// A 2-D [k, n] view of a matrix transposed: weight [n, k] of linear, read as its transpose.
Tensor transposed_view(const Tensor& t) {
  return t.view_as({t.size(1), t.size(0)}, {t.strides()[1], t.strides()[0]}, t.offset());
}

// mm, bmm: (self, mat2).
Status mm_kernel(ir::OpContext& ctx) {
  const Tensor& a = ctx.tensor(0);
  const Tensor& b = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  return matmul_into(a, b, nullptr, kZero, kOne, ctx.output_tensor(0));
}

// addmm, baddbmm: (self, mat1, mat2, beta, alpha).
Status addmm_kernel(ir::OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const Tensor& a = ctx.tensor(1);
  const Tensor& b = ctx.tensor(2);
  const ir::Scalar beta = ctx.scalar(3), alpha = ctx.scalar(4);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor& out = ctx.output_tensor(0);
  const Tensor bias = expand_view(self, out.sizes());
  return matmul_into(a, b, &bias, beta, alpha, out);
}

// dot, vdot: [1, k] x [k, 1] into the 0-d output seen as [1, 1].
Status dot_kernel(ir::OpContext& ctx) {
  const Tensor& a = ctx.tensor(0);
  const Tensor& b = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor& out = ctx.output_tensor(0);
  return matmul_into(unsqueeze_view(a, 0), unsqueeze_view(b, 1), nullptr, kZero, kOne,
                     reshape_contiguous(out, {1, 1}));
}

// mv: (mat, vec); addmv: (self, mat, vec, beta, alpha). The vector is a [k, 1] matrix.
Status mv_kernel(ir::OpContext& ctx) {
  const bool add = ctx.node().op == ir::OpKey::aten_addmv_default;
  const size_t first = add ? 1 : 0;
  const Tensor& mat = ctx.tensor(first);
  const Tensor& vec = ctx.tensor(first + 1);
  const ir::Scalar beta = add ? ctx.scalar(3) : kZero;
  const ir::Scalar alpha = add ? ctx.scalar(4) : kOne;
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor& out = ctx.output_tensor(0);
  const Tensor out2 = reshape_contiguous(out, {out.size(0), 1});
  if (!add) return matmul_into(mat, unsqueeze_view(vec, 1), nullptr, beta, alpha, out2);
  const Tensor bias = unsqueeze_view(expand_view(ctx.tensor(0), out.sizes()), 1);
  return matmul_into(mat, unsqueeze_view(vec, 1), &bias, beta, alpha, out2);
}

// The batch dims of a matmul-like product, and its operands and output as [batch..., m, k],
// [batch..., k, n] and [batch..., m, n] views.
struct ProductViews {
  Tensor a, b, out;
};

ProductViews product_views(const Tensor& a_in, const Tensor& b_in, const Tensor& out) {
  const Tensor a = a_in.dim() == 1 ? unsqueeze_view(a_in, 0) : a_in;
  const Tensor b = b_in.dim() == 1 ? unsqueeze_view(b_in, 1) : b_in;
  const int64_t m = a.size(a.dim() - 2), k = a.size(a.dim() - 1), n = b.size(b.dim() - 1);
  const int64_t matrix_dims = (a_in.dim() >= 2) + (b_in.dim() >= 2);
  Shape batch(out.sizes().begin(), out.sizes().end() - matrix_dims);
  Shape a_shape = batch, b_shape = batch, out_shape = batch;
  a_shape.insert(a_shape.end(), {m, k});
  b_shape.insert(b_shape.end(), {k, n});
  out_shape.insert(out_shape.end(), {m, n});
  return {expand_view(a, a_shape), expand_view(b, b_shape), reshape_contiguous(out, out_shape)};
}

Status matmul_kernel(ir::OpContext& ctx) {
  const Tensor& a = ctx.tensor(0);
  const Tensor& b = ctx.tensor(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  ProductViews v = product_views(a, b, ctx.output_tensor(0));
  return matmul_into(v.a, v.b, nullptr, kZero, kOne, v.out);
}

// linear(input, weight, bias?) = input @ weight^T + bias.
Status linear_kernel(ir::OpContext& ctx) {
  const Tensor& input = ctx.tensor(0);
  const Tensor& weight = ctx.tensor(1);
  const Tensor* bias = ctx.optional_tensor(2);
  KILN_RETURN_IF_ERROR(ctx.error());
  const Tensor& out = ctx.output_tensor(0);
  const Tensor wt = weight.dim() == 2 ? transposed_view(weight) : weight;
  ProductViews v = product_views(input, wt, out);
  if (!bias) return matmul_into(v.a, v.b, nullptr, kZero, kOne, v.out);
  // The bias broadcast to the output, then given the unit dims that 1-D operands dropped.
  Tensor full_bias = expand_view(*bias, out.sizes());
  if (input.dim() == 1)
    full_bias = unsqueeze_view(full_bias, full_bias.dim() - (weight.dim() == 2));
  if (weight.dim() == 1) full_bias = unsqueeze_view(full_bias, full_bias.dim());
  return matmul_into(v.a, v.b, &full_bias, kOne, kOne, v.out);
}

}  // namespace

Status register_linalg_kernels(ir::OpFunctionTable& table) {
  return add_all(table, {
                            {ir::OpKey::aten_mm_default, mm_kernel},
                            {ir::OpKey::aten_bmm_default, mm_kernel},
                            {ir::OpKey::aten_addmm_default, addmm_kernel},
                            {ir::OpKey::aten_baddbmm_default, addmm_kernel},
                            {ir::OpKey::aten_dot_default, dot_kernel},
                            {ir::OpKey::aten_vdot_default, dot_kernel},
                            {ir::OpKey::aten_mv_default, mv_kernel},
                            {ir::OpKey::aten_addmv_default, mv_kernel},
                            {ir::OpKey::aten_matmul_default, matmul_kernel},
                            {ir::OpKey::aten_linear_default, linear_kernel},
                            {ir::OpKey::aten_convolution_default, convolution_kernel},
                            {ir::OpKey::aten__convolution_default, convolution_kernel},
                            {ir::OpKey::aten_convolution_backward_default,
                             convolution_backward_kernel},
                            {ir::OpKey::aten_conv1d_default, conv_nd_kernel},
                            {ir::OpKey::aten_conv2d_default, conv_nd_kernel},
                            {ir::OpKey::aten_conv3d_default, conv_nd_kernel},
                            {ir::OpKey::aten_conv_transpose1d_default, conv_transpose_nd_kernel},
                            {ir::OpKey::aten_conv_transpose2d_input, conv_transpose_nd_kernel},
                            {ir::OpKey::aten_conv_transpose3d_input, conv_transpose_nd_kernel},
                        });
}

}  // namespace kiln::cpu
