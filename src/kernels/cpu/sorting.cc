// CPU reference kernels for sort and topk: values and int64 indices along one dim.
//
// PyTorch leaves the order of equal values to its algorithm, and the indices show it: sort with
// stable=False is std::sort (introsort, not stable beyond 16 elements), stable=True
// std::stable_sort; topk is std::partial_sort when k * 64 <= n, else std::nth_element and then
// (when sorted) std::sort of the first k - 1. kiln runs the same standard algorithms on the same
// (value, index) sequence with the same strict order (NaN above every number), so it reproduces
// eager's indices for ties as well as its values; conformance compares them exactly.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/element_cast.h"
#include "ir/infer/infer_util.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

template <typename C>
bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) {
    return std::isnan(v);
  } else {
    return false;
  }
}

// The strict weak orders PyTorch sorts by: NaN counts as larger than every number.
struct Ascending {
  template <typename P>
  bool operator()(const P& a, const P& b) const {
    return (!is_nan(a.first) && is_nan(b.first)) || a.first < b.first;
  }
};
struct Descending {
  template <typename P>
  bool operator()(const P& a, const P& b) const {
    return (is_nan(a.first) && !is_nan(b.first)) || a.first > b.first;
  }
};

// A contiguous tensor seen as [outer, n, inner] around `dim`; each of the outer * inner slices
// (stride `inner`) is sorted on its own.
struct Slices {
  int64_t outer = 1, n = 1, inner = 1;
};

Slices slices(const Tensor& t, int64_t dim) {
  Slices s;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (d < dim) s.outer *= t.size(d);
    if (d == dim) s.n = t.size(d);
    if (d > dim) s.inner *= t.size(d);
  }
  return s;
}

// Reads each slice of `in` into (value, index) pairs, lets `order` arrange them, and writes the
// first `keep` to the outputs ([outer, keep, inner], contiguous).
template <typename T, typename Order>
void for_each_slice(const Tensor& in, int64_t dim, int64_t keep, Tensor& values, Tensor& indices,
                    Order&& order) {
  using C = ComputeType<T>;
  const Slices s = slices(in, dim);
  const T* src = in.data<T>();
  T* dst = values.data<T>();
  int64_t* idx = indices.data<int64_t>();
  const int64_t count = s.outer * s.inner;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(s.n, 1));
  parallel_for(0, count, grain, [&](int64_t lo, int64_t hi) {
    std::vector<std::pair<C, int64_t>> entries;
    for (int64_t slice = lo; slice < hi; ++slice) {
      const int64_t o = slice / s.inner, i = slice % s.inner;
      const T* from = src + o * s.n * s.inner + i;
      entries.resize(static_cast<size_t>(s.n));
      for (int64_t j = 0; j < s.n; ++j) entries[j] = {static_cast<C>(from[j * s.inner]), j};
      order(entries);
      T* to = dst + o * keep * s.inner + i;
      int64_t* to_index = idx + o * keep * s.inner + i;
      for (int64_t j = 0; j < keep; ++j) {
        to[j * s.inner] = element_cast<T>(entries[j].first);
        to_index[j * s.inner] = entries[j].second;
      }
    }
  });
}

// sort(self, dim, descending) and sort.stable(self, *, stable, dim, descending).
Status sort_kernel(ir::OpContext& ctx) {
  const bool stable_overload = ctx.node().op == ir::OpKey::aten_sort_stable;
  const bool stable = stable_overload && ctx.optional_bool(1).value_or(false);
  const int64_t dim_arg = ctx.int_arg(stable_overload ? 2 : 1);
  const bool descending = ctx.bool_arg(stable_overload ? 3 : 2);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Tensor in, ctx.tensor(0).contiguous());
  KILN_ASSIGN_OR_RETURN(int64_t dim, ir::wrap_dim(dim_arg, in.dim()));
  Tensor& values = ctx.output_tensor(0);
  Tensor& indices = ctx.output_tensor(1);
  if (in.numel() == 0) return ok_status();
  const int64_t n = in.dim() == 0 ? 1 : in.size(dim);
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    for_each_slice<T>(in, dim, n, values, indices, [&](auto& entries) {
      auto sort_by = [&](auto order) {
        if (stable) {
          std::stable_sort(entries.begin(), entries.end(), order);
        } else {
          std::sort(entries.begin(), entries.end(), order);
        }
      };
      if (descending) {
        sort_by(Descending{});
      } else {
        sort_by(Ascending{});
      }
    });
  });
  return ok_status();
}

// topk(self, k, dim, largest, sorted).
Status topk_kernel(ir::OpContext& ctx) {
  const int64_t k = ctx.int_arg(1);
  const int64_t dim_arg = ctx.int_arg(2);
  const bool largest = ctx.bool_arg(3);
  const bool sorted = ctx.bool_arg(4);
  KILN_RETURN_IF_ERROR(ctx.error());
  KILN_ASSIGN_OR_RETURN(Tensor in, ctx.tensor(0).contiguous());
  KILN_ASSIGN_OR_RETURN(int64_t dim, ir::wrap_dim(dim_arg, in.dim()));
  Tensor& values = ctx.output_tensor(0);
  Tensor& indices = ctx.output_tensor(1);
  if (values.numel() == 0) return ok_status();
  const int64_t n = in.dim() == 0 ? 1 : in.size(dim);
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    for_each_slice<T>(in, dim, k, values, indices, [&](auto& entries) {
      auto select = [&](auto order) {
        if (k * 64 <= n) {
          std::partial_sort(entries.begin(), entries.begin() + k, entries.end(), order);
          return;
        }
        std::nth_element(entries.begin(), entries.begin() + (k - 1), entries.end(), order);
        if (sorted) std::sort(entries.begin(), entries.begin() + (k - 1), order);
      };
      if (largest) {
        select(Descending{});
      } else {
        select(Ascending{});
      }
    });
  });
  return ok_status();
}

}  // namespace

Status register_sorting_kernels(ir::OpFunctionTable& table) {
  return ir::add_all(table, {
                                {ir::OpKey::aten_sort_default, sort_kernel},
                                {ir::OpKey::aten_sort_stable, sort_kernel},
                                {ir::OpKey::aten_topk_default, topk_kernel},
                            });
}

}  // namespace kiln::cpu
