// CPU reference kernels for the p-norm distances: _pdist_forward (between the rows of one matrix)
// and _cdist_forward (between the rows of two batched matrices). Each distance reduces |a - b|
// over the row as eager's CPU kernels do (Distance.cpp): p = 0 counts the differing entries,
// p = inf takes the largest, p = 1 sums, p = 2 is the square root of the sum of squares, and any
// other p is (sum |d|^p)^(1/p); a NaN anywhere in the row makes the distance NaN. Where eager's
// cdist computes p = 2 as a matrix product (compute_mode 1, or 0 with more than 25 rows on a
// side), kiln computes the same expansion, sqrt(max(|a|^2 + |b|^2 - 2 a.b, 0)), whose rounding
// differs from the direct form's.
#include <cmath>
#include <limits>

#include "base/element_cast.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

// The distance between rows `a` and `b` of length m, in the compute type C.
template <typename C, typename T>
C distance(const T* a, const T* b, int64_t m, double p) {
  C acc = 0;
  if (p == 0) {
    for (int64_t k = 0; k < m; ++k) {
      const C d = std::abs(static_cast<C>(a[k]) - static_cast<C>(b[k]));
      acc += std::min(std::ceil(d), C(1));  // NaN stays NaN (std::min keeps its first argument)
    }
    return acc;
  }
  if (std::isinf(p)) {
    for (int64_t k = 0; k < m; ++k) {
      const C d = std::abs(static_cast<C>(a[k]) - static_cast<C>(b[k]));
      if (d > acc || std::isnan(d)) acc = d;
      if (std::isnan(acc)) return acc;
    }
    return acc;
  }
  for (int64_t k = 0; k < m; ++k) {
    const C d = std::abs(static_cast<C>(a[k]) - static_cast<C>(b[k]));
    acc += p == 1 ? d : p == 2 ? d * d : std::pow(d, static_cast<C>(p));
  }
  if (p == 1) return acc;
  if (p == 2) return std::sqrt(acc);
  return std::pow(acc, static_cast<C>(1.0 / p));
}

// _pdist_forward(self [n, m], p): the n(n-1)/2 distances of rows i < j, in that order.
Status pdist_kernel(ir::OpContext& ctx) {
  const Tensor& self = ctx.tensor(0);
  const double p = ctx.float_arg(1);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Tensor x, self.contiguous());
  Tensor& out = ctx.output_tensor(0);
  const int64_t n = x.size(0), m = x.size(1);
  return dispatch_dtype(x.dtype(), [&]<typename T>() -> Status {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      const T* rows = x.data<T>();
      T* dst = out.data<T>();
      parallel_for(0, n, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          // Pairs (i, j > i) start after the pairs of the rows before i.
          int64_t k = i * n - i * (i + 1) / 2;
          for (int64_t j = i + 1; j < n; ++j, ++k) {
            dst[k] = T(distance<ComputeType<T>>(rows + i * m, rows + j * m, m, p));
          }
        }
      });
      return ok_status();
    } else {
      return invalid_argument("_pdist_forward: expected a floating tensor, found ",
                              self.description());
    }
  });
}

// Eager's matrix-product form of the euclidean distance (at::_euclidean_dist): the squared norms
// and the dot product, each summed in order, then -2ab + |a|^2 + |b|^2 as its product sums them.
template <typename C, typename T>
C euclidean_by_product(const T* a, const T* b, int64_t m) {
  C aa = 0, bb = 0, ab = 0;
  for (int64_t k = 0; k < m; ++k) {
    const C x = static_cast<C>(a[k]), y = static_cast<C>(b[k]);
    aa += x * x;
    bb += y * y;
    ab += (x * C(-2)) * y;
  }
  const C squared = ab + aa + bb;
  return std::sqrt(squared > 0 || std::isnan(squared) ? squared : C(0));
}

bool uses_product(double p, int64_t mode, int64_t rows1, int64_t rows2) {
  return p == 2 && (mode == 1 || (mode == 0 && (rows1 > 25 || rows2 > 25)));
}

// _cdist_forward(x1 [*, P, M], x2 [*, R, M], p, compute_mode): out [*, P, R], the batch dims
// broadcast (inference has the output's shape).
Status cdist_kernel(ir::OpContext& ctx) {
  const Tensor& x1 = ctx.tensor(0);
  const Tensor& x2 = ctx.tensor(1);
  const double p = ctx.float_arg(2);
  const int64_t mode = ctx.optional_int(3).value_or(0);
  KILN_RETURN_IF_ERROR(ctx.error());
  Tensor& out = ctx.output_tensor(0);
  const int64_t rank = out.dim();
  const int64_t rows1 = x1.size(x1.dim() - 2), rows2 = x2.size(x2.dim() - 2);
  const int64_t m = x1.size(x1.dim() - 1);
  // Each input as [out's batch dims (stride 0 where broadcast), rows, m], then contiguous.
  auto batched = [&](const Tensor& x) -> Result<Tensor> {
    Shape sizes = out.sizes(), strides(static_cast<size_t>(rank), 0);
    sizes[rank - 2] = x.size(x.dim() - 2);
    sizes[rank - 1] = m;
    const int64_t lead = rank - x.dim();
    for (int64_t d = 0; d < x.dim(); ++d) {
      const bool broadcast = d < x.dim() - 2 && x.size(d) == 1 && sizes[lead + d] != 1;
      strides[lead + d] = broadcast ? 0 : x.strides()[d];
    }
    return x.view_as(sizes, strides, x.offset()).contiguous();
  };
  KILN_ASSIGN_OR_RETURN(Tensor a, batched(x1));
  KILN_ASSIGN_OR_RETURN(Tensor b, batched(x2));
  const int64_t batches = rows1 * rows2 == 0 ? 0 : out.numel() / (rows1 * rows2);
  const bool product = uses_product(p, mode, rows1, rows2);
  return dispatch_dtype(out.dtype(), [&]<typename T>() -> Status {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      const T* pa = a.data<T>();
      const T* pb = b.data<T>();
      T* dst = out.data<T>();
      parallel_for(0, batches * rows1, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t row = lo; row < hi; ++row) {
          const int64_t batch = row / rows1;
          const T* left = pa + row * m;
          const T* right = pb + batch * rows2 * m;
          for (int64_t j = 0; j < rows2; ++j) {
            dst[row * rows2 + j] =
                T(product ? euclidean_by_product<ComputeType<T>>(left, right + j * m, m)
                          : distance<ComputeType<T>>(left, right + j * m, m, p));
          }
        }
      });
      return ok_status();
    } else {
      return invalid_argument("_cdist_forward: expected floating tensors, found ",
                              x1.description());
    }
  });
}

}  // namespace

Status register_distance_kernels(ir::OpFunctionTable& table) {
  return ir::add_all(table, {
                                {ir::OpKey::aten__pdist_forward_default, pdist_kernel},
                                {ir::OpKey::aten__cdist_forward_default, cdist_kernel},
                            });
}

}  // namespace kiln::cpu
