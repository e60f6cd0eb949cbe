// CPU kernels for the scans (cumsum, cumprod), logsumexp and the vector norms.
#include <cmath>
#include <limits>

#include "ir/infer/infer_util.h"
#include "kernels/cpu/reduction_util.h"

namespace kiln::cpu {
namespace {

using ir::OpContext;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The input in the output's dtype: what `dtype=` means for these ops, and how integer inputs
// become int64 (scans) or float32 (logsumexp).
Result<Tensor> in_output_dtype(const Tensor& self, DType dtype) {
  if (self.dtype() == dtype) return self;
  return self.to(dtype);
}

// One scan along `length` elements (input and output strides in elements).
template <typename T, bool kProd>
void scan_line(const T* src, int64_t src_step, T* dst, int64_t dst_step, int64_t length) {
  AccType<T> acc = kProd ? AccType<T>(1) : AccType<T>(0);
  for (int64_t k = 0; k < length; ++k) {
    const AccType<T> v = to_acc(src[k * src_step]);
    acc = kProd ? acc * v : acc + v;
    dst[k * dst_step] = from_acc<T>(acc);
  }
}

// cumsum/cumprod along `dim`: one scan per position of the other dims. The output is contiguous.
template <typename T, bool kProd>
void scan(const Tensor& in, Tensor& out, int64_t dim) {
  Shape other_sizes, in_strides, out_strides;
  const Shape out_contiguous = contiguous_strides(out.sizes());
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (d == dim) continue;
    other_sizes.push_back(in.size(d));
    in_strides.push_back(in.strides()[d]);
    out_strides.push_back(out_contiguous[d]);
  }
  const bool scalar = in.dim() == 0;
  const int64_t length = scalar ? 1 : in.size(dim);
  const int64_t in_step = scalar ? 0 : in.strides()[dim];
  const int64_t out_step = scalar ? 0 : out_contiguous[dim];
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(length, 1));
  parallel_for(0, shape_numel(other_sizes), grain, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      scan_line<T, kProd>(src + flat_offset(r, other_sizes, in_strides), in_step,
                          dst + flat_offset(r, other_sizes, out_strides), out_step, length);
    }
  });
}

template <bool kProd>
Status scan_kernel(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  Tensor& out = ctx.output_tensor(0);
  KILN_ASSIGN_OR_RETURN(int64_t dim, ir::wrap_dim(ctx.int_arg(1), self.dim()));
  KILN_ASSIGN_OR_RETURN(Tensor src, in_output_dtype(self, out.dtype()));
  dispatch_dtype(out.dtype(), [&]<typename T>() { scan<T, kProd>(src, out, dim); });
  return ok_status();
}

// log(sum(exp(x - m))) + m with m the block's max; an infinite max is not subtracted (so +inf
// stays +inf and all -inf gives -inf), and any nan gives nan.
template <typename T>
void logsumexp(const Tensor& in, Tensor& out, const ReduceGeometry& g) {
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  for_each_output(g, [&](int64_t o, int64_t base) {
    double max = -kInf;
    bool has_nan = false;
    for_each_offset(g.inner_sizes, g.inner_strides, base, [&](int64_t off) {
      const double v = static_cast<double>(src[off]);
      if (std::isnan(v)) has_nan = true;
      if (v > max) max = v;
    });
    const double shift = std::isinf(max) ? 0.0 : max;
    double sum = 0.0;
    for_each_offset(g.inner_sizes, g.inner_strides, base,
                    [&](int64_t off) { sum += std::exp(static_cast<double>(src[off]) - shift); });
    dst[o] = element_cast<T>(has_nan ? kNaN : std::log(sum) + shift);
  });
}

// The p-norm of each block, in double: inf/-inf are max/min |x| (nan propagates), 0 counts the
// non-zeros, 1 and 2 are the usual sums, any other p is (sum |x|^p)^(1/p).
template <typename T>
void vector_norm(const Tensor& in, Tensor& out, const ReduceGeometry& g, double ord) {
  const T* src = in.data<T>();
  T* dst = out.data<T>();
  for_each_output(g, [&](int64_t o, int64_t base) {
    double acc = std::isinf(ord) ? (ord > 0 ? 0.0 : kInf) : 0.0;
    bool has_nan = false;
    for_each_offset(g.inner_sizes, g.inner_strides, base, [&](int64_t off) {
      const double a = std::abs(static_cast<double>(src[off]));
      if (std::isnan(a)) has_nan = true;
      if (std::isinf(ord)) {
        acc = ord > 0 ? std::max(acc, a) : std::min(acc, a);
      } else if (ord == 0) {
        acc += a != 0 ? 1.0 : 0.0;
      } else if (ord == 1) {
        acc += a;
      } else if (ord == 2) {
        acc += a * a;
      } else {
        acc += std::pow(a, ord);
      }
    });
    double result = acc;
    if (ord == 2) {
      result = std::sqrt(acc);
    } else if (!std::isinf(ord) && ord != 0 && ord != 1) {
      result = std::pow(acc, 1.0 / ord);
    }
    if (has_nan && ord != 0) result = kNaN;
    dst[o] = element_cast<T>(result);
  });
}

Status norm_kernel(OpContext& ctx, double ord, DimsArg kind, size_t dims_arg) {
  const Tensor& self = ctx.tensor(0);
  Tensor& out = ctx.output_tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, kind, dims_arg, self.dim()));
  KILN_ASSIGN_OR_RETURN(Tensor src, in_output_dtype(self, out.dtype()));
  const ReduceGeometry g = reduce_geometry(src, mask);
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) vector_norm<T>(src, out, g, ord);
  });
  return ok_status();
}

double norm_order(OpContext& ctx, size_t arg) {
  auto p = ctx.optional_scalar(arg);
  return p ? p->to_double() : 2.0;
}

}  // namespace

Status cumsum_kernel(OpContext& ctx) {
  return scan_kernel<false>(ctx);
}
Status cumprod_kernel(OpContext& ctx) {
  return scan_kernel<true>(ctx);
}

Status logsumexp_kernel(OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  Tensor& out = ctx.output_tensor(0);
  KILN_ASSIGN_OR_RETURN(std::vector<bool> mask, reduce_mask(ctx, DimsArg::kList, 1, self.dim()));
  KILN_ASSIGN_OR_RETURN(Tensor src, in_output_dtype(self, out.dtype()));
  const ReduceGeometry g = reduce_geometry(src, mask);
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) logsumexp<T>(src, out, g);
  });
  return ok_status();
}

Status linalg_vector_norm_kernel(OpContext& ctx) {
  return norm_kernel(ctx, norm_order(ctx, 1), DimsArg::kList, 2);
}
Status norm_scalar_kernel(OpContext& ctx) {
  return norm_kernel(ctx, norm_order(ctx, 1), DimsArg::kAll, 0);
}
Status norm_dim_kernel(OpContext& ctx) {
  return norm_kernel(ctx, norm_order(ctx, 1), DimsArg::kList, 2);
}

}  // namespace kiln::cpu
