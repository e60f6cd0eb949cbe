// CPU reference kernels for the pooling ops: max pool (values and indices), avg pool and adaptive
// avg/max pool, 1-D and 2-D, batched or not. Every input is made contiguous and seen as a stack of
// [H, W] planes (1-D pools are planes of height 1); work is spread over (plane, output row) pairs.
// Max-pool indices are flat positions in the input plane, and a nan wins, as in PyTorch.
#include <cmath>
#include <limits>

#include "base/element_cast.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_pool.h"

namespace kiln::cpu {
namespace {

using ir::OpContext;

struct PoolGeometry {
  int64_t planes = 0, in_h = 1, in_w = 1, out_h = 1, out_w = 1;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
};

// An `int[N]` argument (validated by inference) as N values; [] (stride) means `fallback`.
std::vector<int64_t> window_values(OpContext& ctx, size_t arg, size_t n,
                                   const std::vector<int64_t>& fallback) {
  std::vector<int64_t> v = ctx.ints(arg);
  if (v.empty()) return fallback;
  if (v.size() == 1) v.resize(n, v[0]);
  return v;
}

// Geometry of `in` pooled into `out` over the last `n` (1 or 2) dims. Window arguments are read
// only when `dilation_arg` is not -2 (adaptive pools have none).
PoolGeometry pool_geometry(OpContext& ctx, const Tensor& in, const Tensor& out, size_t n,
                           int dilation_arg) {
  PoolGeometry g;
  const int64_t rank = in.dim();
  g.in_w = in.size(rank - 1);
  g.out_w = out.size(rank - 1);
  if (n == 2) {
    g.in_h = in.size(rank - 2);
    g.out_h = out.size(rank - 2);
  }
  g.planes = shape_numel(std::span(in.sizes()).first(static_cast<size_t>(rank) - n));
  if (dilation_arg == -2) return g;
  const std::vector<int64_t> k = window_values(ctx, 1, n, {});
  const std::vector<int64_t> s = window_values(ctx, 2, n, k);
  const std::vector<int64_t> p = window_values(ctx, 3, n, {});
  const std::vector<int64_t> d =
      dilation_arg < 0 ? std::vector<int64_t>(n, 1) : window_values(ctx, dilation_arg, n, {});
  g.kw = k[n - 1], g.sw = s[n - 1], g.pw = p[n - 1], g.dw = d[n - 1];
  if (n == 2) g.kh = k[0], g.sh = s[0], g.ph = p[0], g.dh = d[0];
  return g;
}

// Calls fn(plane, output_row) over every pair, in parallel.
template <typename Fn>
void for_each_output_row(const PoolGeometry& g, Fn&& fn) {
  const int64_t work = std::max<int64_t>(1, g.out_w * g.kh * g.kw);
  parallel_for(0, g.planes * g.out_h, std::max<int64_t>(1, 32768 / work),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t r = lo; r < hi; ++r) fn(r / g.out_h, r % g.out_h);
               });
}

template <typename T>
void max_pool(const T* x, T* y, int64_t* indices, const PoolGeometry& g) {
  using C = ComputeType<T>;
  const C lowest = std::numeric_limits<C>::has_infinity ? -std::numeric_limits<C>::infinity()
                                                        : std::numeric_limits<C>::lowest();
  for_each_output_row(g, [&](int64_t p, int64_t oh) {
    const T* plane = x + p * g.in_h * g.in_w;
    int64_t h0 = oh * g.sh - g.ph;
    const int64_t h1 = std::min(h0 + (g.kh - 1) * g.dh + 1, g.in_h);
    while (h0 < 0) h0 += g.dh;
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      int64_t w0 = ow * g.sw - g.pw;
      const int64_t w1 = std::min(w0 + (g.kw - 1) * g.dw + 1, g.in_w);
      while (w0 < 0) w0 += g.dw;
      C best = lowest;
      int64_t best_index = h0 * g.in_w + w0;
      for (int64_t h = h0; h < h1; h += g.dh) {
        for (int64_t w = w0; w < w1; w += g.dw) {
          const C v = static_cast<C>(plane[h * g.in_w + w]);
          if (v > best || v != v) {
            best = v;
            best_index = h * g.in_w + w;
          }
        }
      }
      const int64_t o = (p * g.out_h + oh) * g.out_w + ow;
      y[o] = element_cast<T>(best);
      if (indices) indices[o] = best_index;
    }
  });
}

Status max_pool_kernel(OpContext& ctx, size_t n, bool with_indices) {
  KILN_ASSIGN_OR_RETURN(Tensor in, ctx.tensor(0).contiguous());
  Tensor& out = ctx.output_tensor(0);
  const PoolGeometry g = pool_geometry(ctx, in, out, n, 4);
  int64_t* indices = with_indices ? ctx.output_tensor(1).data<int64_t>() : nullptr;
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool>) max_pool<T>(in.data<T>(), out.data<T>(), indices, g);
  });
  return ok_status();
}

// PyTorch's avg_pool2d: windows are clipped to the padded input for count_include_pad, and to the
// input for the sum and for count_include_pad=False; int64 inputs divide with truncation.
template <typename T>
void avg_pool(const T* x, T* y, const PoolGeometry& g, bool count_include_pad,
              std::optional<int64_t> divisor_override) {
  using Acc = std::conditional_t<std::is_floating_point_v<ComputeType<T>>, double, int64_t>;
  for_each_output_row(g, [&](int64_t p, int64_t oh) {
    const T* plane = x + p * g.in_h * g.in_w;
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
      int64_t h1 = std::min(h0 + g.kh, g.in_h + g.ph), w1 = std::min(w0 + g.kw, g.in_w + g.pw);
      const int64_t padded_count = (h1 - h0) * (w1 - w0);
      h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
      h1 = std::min(h1, g.in_h), w1 = std::min(w1, g.in_w);
      const int64_t o = (p * g.out_h + oh) * g.out_w + ow;
      if (h0 >= h1 || w0 >= w1) {
        y[o] = element_cast<T>(0);
        continue;
      }
      Acc sum = 0;
      for (int64_t h = h0; h < h1; ++h) {
        for (int64_t w = w0; w < w1; ++w) sum += static_cast<Acc>(plane[h * g.in_w + w]);
      }
      const int64_t divisor = divisor_override    ? *divisor_override
                              : count_include_pad ? padded_count
                                                  : (h1 - h0) * (w1 - w0);
      y[o] = element_cast<T>(sum / static_cast<Acc>(divisor));
    }
  });
}

Status avg_pool_kernel(OpContext& ctx, size_t n) {
  KILN_ASSIGN_OR_RETURN(Tensor in, ctx.tensor(0).contiguous());
  Tensor& out = ctx.output_tensor(0);
  const PoolGeometry g = pool_geometry(ctx, in, out, n, -1);
  const bool count_include_pad = ctx.bool_arg(5);
  const std::optional<int64_t> divisor = n == 2 ? ctx.optional_int(6) : std::nullopt;
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>> || std::is_same_v<T, int64_t>) {
      avg_pool<T>(in.data<T>(), out.data<T>(), g, count_include_pad, divisor);
    }
  });
  return ok_status();
}

// Adaptive windows: [floor(o * in / out), ceil((o + 1) * in / out)).
int64_t adaptive_start(int64_t o, int64_t out, int64_t in) {
  return (o / out) * in + ((o % out) * in) / out;
}
int64_t adaptive_end(int64_t o, int64_t out, int64_t in) {
  return 1 + ((o + 1) * in - 1) / out;
}

template <typename T, bool kMax>
void adaptive_pool(const T* x, T* y, int64_t* indices, const PoolGeometry& g) {
  for_each_output_row(g, [&](int64_t p, int64_t oh) {
    const T* plane = x + p * g.in_h * g.in_w;
    const int64_t h0 = adaptive_start(oh, g.out_h, g.in_h), h1 = adaptive_end(oh, g.out_h, g.in_h);
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t w0 = adaptive_start(ow, g.out_w, g.in_w);
      const int64_t w1 = adaptive_end(ow, g.out_w, g.in_w);
      const int64_t o = (p * g.out_h + oh) * g.out_w + ow;
      if constexpr (kMax) {
        using C = ComputeType<T>;
        C best = -std::numeric_limits<C>::infinity();
        int64_t best_index = h0 * g.in_w + w0;
        for (int64_t h = h0; h < h1; ++h) {
          for (int64_t w = w0; w < w1; ++w) {
            const C v = static_cast<C>(plane[h * g.in_w + w]);
            if (v > best || v != v) {
              best = v;
              best_index = h * g.in_w + w;
            }
          }
        }
        y[o] = element_cast<T>(best);
        indices[o] = best_index;
      } else {
        double sum = 0.0;
        for (int64_t h = h0; h < h1; ++h) {
          for (int64_t w = w0; w < w1; ++w) sum += static_cast<double>(plane[h * g.in_w + w]);
        }
        y[o] = element_cast<T>(sum / static_cast<double>((h1 - h0) * (w1 - w0)));
      }
    }
  });
}

template <bool kMax>
Status adaptive_kernel(OpContext& ctx, size_t n) {
  KILN_ASSIGN_OR_RETURN(Tensor in, ctx.tensor(0).contiguous());
  Tensor& out = ctx.output_tensor(0);
  const PoolGeometry g = pool_geometry(ctx, in, out, n, -2);
  int64_t* indices = kMax ? ctx.output_tensor(1).data<int64_t>() : nullptr;
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      adaptive_pool<T, kMax>(in.data<T>(), out.data<T>(), indices, g);
    }
  });
  return ok_status();
}

}  // namespace

Status register_pooling_kernels(ir::OpFunctionTable& table) {
  using ir::OpKey;
  return ir::add_all(
      table,
      {
          {OpKey::aten_max_pool2d_with_indices_default,
           [](OpContext& c) { return max_pool_kernel(c, 2, true); }},
          {OpKey::aten_max_pool2d_default,
           [](OpContext& c) { return max_pool_kernel(c, 2, false); }},
          {OpKey::aten_max_pool1d_with_indices_default,
           [](OpContext& c) { return max_pool_kernel(c, 1, true); }},
          {OpKey::aten_max_pool1d_default,
           [](OpContext& c) { return max_pool_kernel(c, 1, false); }},
          {OpKey::aten_avg_pool2d_default, [](OpContext& c) { return avg_pool_kernel(c, 2); }},
          {OpKey::aten_avg_pool1d_default, [](OpContext& c) { return avg_pool_kernel(c, 1); }},
          {OpKey::aten__adaptive_avg_pool2d_default,
           [](OpContext& c) { return adaptive_kernel<false>(c, 2); }},
          {OpKey::aten_adaptive_avg_pool2d_default,
           [](OpContext& c) { return adaptive_kernel<false>(c, 2); }},
          {OpKey::aten_adaptive_avg_pool1d_default,
           [](OpContext& c) { return adaptive_kernel<false>(c, 1); }},
          {OpKey::aten_adaptive_max_pool2d_default,
           [](OpContext& c) { return adaptive_kernel<true>(c, 2); }},
          {OpKey::aten_adaptive_max_pool1d_default,
           [](OpContext& c) { return adaptive_kernel<true>(c, 1); }},
      });
}

}  // namespace kiln::cpu
