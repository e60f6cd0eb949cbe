// Window arithmetic shared by the CPU pooling kernels (forward in pooling.cc, backward in
// pooling_backward.cc). Inputs are seen as a stack of [D, H, W] planes; 2-D pools have D = 1 and
// 1-D pools also H = 1, so one set of loops serves all three ranks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/tensor.h"
#include "ir/op_function_table.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu::pooling {

struct PoolGeometry {
  int64_t planes = 0, in_d = 1, in_h = 1, in_w = 1, out_d = 1, out_h = 1, out_w = 1;
  int64_t kd = 1, kh = 1, kw = 1, sd = 1, sh = 1, sw = 1, pd = 0, ph = 0, pw = 0;
  int64_t dd = 1, dh = 1, dw = 1;

  int64_t in_plane() const { return in_d * in_h * in_w; }
  int64_t out_plane() const { return out_d * out_h * out_w; }
};

// Where a pool's window arguments sit in its schema; kernel_size is followed by stride and
// padding. `dilation` < 0: the op has none.
struct WindowArgs {
  size_t kernel = 1;
  int dilation = -1;
};

// An `int[N]` argument (validated by inference) as N values; [] (stride) means `fallback`.
inline std::vector<int64_t> window_values(ir::OpContext& ctx, size_t arg, size_t n,
                                          const std::vector<int64_t>& fallback) {
  std::vector<int64_t> v = ctx.ints(arg);
  if (v.empty()) return fallback;
  if (v.size() == 1) v.resize(n, v[0]);
  return v;
}

// The sizes of `in` pooled into `out` over the last `n` (1 to 3) dims; the window is left at its
// 1-element default (adaptive pools have none).
inline PoolGeometry pool_sizes(const Tensor& in, const Tensor& out, size_t n) {
  PoolGeometry g;
  const int64_t rank = in.dim();
  int64_t* in_dims[] = {&g.in_w, &g.in_h, &g.in_d};
  int64_t* out_dims[] = {&g.out_w, &g.out_h, &g.out_d};
  for (size_t i = 0; i < n; ++i) {
    *in_dims[i] = in.size(rank - 1 - static_cast<int64_t>(i));
    *out_dims[i] = out.size(rank - 1 - static_cast<int64_t>(i));
  }
  g.planes = shape_numel(std::span(in.sizes()).first(static_cast<size_t>(rank) - n));
  return g;
}

// pool_sizes plus the window arguments of a max/avg pool.
inline PoolGeometry pool_geometry(ir::OpContext& ctx, const Tensor& in, const Tensor& out, size_t n,
                                  WindowArgs args) {
  PoolGeometry g = pool_sizes(in, out, n);
  const std::vector<int64_t> k = window_values(ctx, args.kernel, n, {});
  const std::vector<int64_t> s = window_values(ctx, args.kernel + 1, n, k);
  const std::vector<int64_t> p = window_values(ctx, args.kernel + 2, n, {});
  const std::vector<int64_t> d =
      args.dilation < 0 ? std::vector<int64_t>(n, 1)
                        : window_values(ctx, static_cast<size_t>(args.dilation), n, {});
  int64_t* fields[][4] = {
      {&g.kw, &g.sw, &g.pw, &g.dw}, {&g.kh, &g.sh, &g.ph, &g.dh}, {&g.kd, &g.sd, &g.pd, &g.dd}};
  for (size_t i = 0; i < n; ++i) {
    const size_t from_end = n - 1 - i;
    *fields[i][0] = k[from_end], *fields[i][1] = s[from_end];
    *fields[i][2] = p[from_end], *fields[i][3] = d[from_end];
  }
  return g;
}

// Calls fn(plane, od, oh) over every output row, in parallel.
template <typename Fn>
void for_each_output_row(const PoolGeometry& g, Fn&& fn) {
  const int64_t work = std::max<int64_t>(1, g.out_w * g.kd * g.kh * g.kw);
  const int64_t rows = g.out_d * g.out_h;
  parallel_for(0, g.planes * rows, std::max<int64_t>(1, 32768 / work), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      fn(r / rows, (r % rows) / g.out_h, r % g.out_h);
    }
  });
}

// Calls fn(plane) over every plane, in parallel: for backward kernels, whose windows overlap within
// a plane but never across planes.
template <typename Fn>
void for_each_plane(const PoolGeometry& g, Fn&& fn) {
  const int64_t work = std::max<int64_t>(1, g.out_plane() * g.kd * g.kh * g.kw);
  parallel_for(0, g.planes, std::max<int64_t>(1, 32768 / work), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) fn(p);
  });
}

// PyTorch's avg pool window along one dim: [start, end) clipped to the input, and the length of
// the window clipped to the padded input instead (the count_include_pad divisor).
struct AvgSpan {
  int64_t start, end, padded;
};
inline AvgSpan avg_span(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t in) {
  const int64_t start = o * stride - pad;
  const int64_t end = std::min(start + kernel, in + pad);
  return {std::max<int64_t>(start, 0), std::min(end, in), end - start};
}

// The avg pool divisor: divisor_override, else the window's size in the padded input
// (count_include_pad) or in the input.
inline int64_t avg_divisor(const AvgSpan& d, const AvgSpan& h, const AvgSpan& w,
                           bool count_include_pad, std::optional<int64_t> divisor_override) {
  if (divisor_override) return *divisor_override;
  if (count_include_pad) return d.padded * h.padded * w.padded;
  return (d.end - d.start) * (h.end - h.start) * (w.end - w.start);
}

// Adaptive windows: [floor(o * in / out), ceil((o + 1) * in / out)).
inline int64_t adaptive_start(int64_t o, int64_t out, int64_t in) {
  return (o / out) * in + ((o % out) * in) / out;
}
inline int64_t adaptive_end(int64_t o, int64_t out, int64_t in) {
  return 1 + ((o + 1) * in - 1) / out;
}

// The backward pooling kernels (pooling_backward.cc); register_pooling_kernels calls this.
Status register_pooling_backward_kernels(ir::OpFunctionTable& table);

}  // namespace kiln::cpu::pooling
