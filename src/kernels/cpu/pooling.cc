// CPU reference kernels for the pooling ops: max pool (values and indices), avg pool and adaptive
// avg/max pool, 1-D, 2-D and 3-D, batched or not. Every input is made contiguous and seen as a
// stack of [D, H, W] planes (pooling_util.h); work is spread over (plane, output row) pairs.
// Max-pool indices are flat positions in the input plane, and a nan wins, as in PyTorch. The
// backward ops are in pooling_backward.cc.
#include <cmath>
#include <limits>

#include "base/element_cast.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/pooling_util.h"

namespace kiln::cpu {
namespace {

using ir::OpContext;
using pooling::AvgSpan;
using pooling::PoolGeometry;

template <typename T>
void max_pool(const T* x, T* y, int64_t* indices, const PoolGeometry& g) {
  using C = ComputeType<T>;
  const C lowest = std::numeric_limits<C>::has_infinity ? -std::numeric_limits<C>::infinity()
                                                        : std::numeric_limits<C>::lowest();
  pooling::for_each_output_row(g, [&](int64_t p, int64_t od, int64_t oh) {
    const T* plane = x + p * g.in_plane();
    int64_t d0 = od * g.sd - g.pd;
    const int64_t d1 = std::min(d0 + (g.kd - 1) * g.dd + 1, g.in_d);
    while (d0 < 0) d0 += g.dd;
    int64_t h0 = oh * g.sh - g.ph;
    const int64_t h1 = std::min(h0 + (g.kh - 1) * g.dh + 1, g.in_h);
    while (h0 < 0) h0 += g.dh;
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      int64_t w0 = ow * g.sw - g.pw;
      const int64_t w1 = std::min(w0 + (g.kw - 1) * g.dw + 1, g.in_w);
      while (w0 < 0) w0 += g.dw;
      C best = lowest;
      int64_t best_index = (d0 * g.in_h + h0) * g.in_w + w0;
      for (int64_t d = d0; d < d1; d += g.dd) {
        for (int64_t h = h0; h < h1; h += g.dh) {
          for (int64_t w = w0; w < w1; w += g.dw) {
            const int64_t i = (d * g.in_h + h) * g.in_w + w;
            const C v = static_cast<C>(plane[i]);
            if (v > best || v != v) {
              best = v;
              best_index = i;
            }
          }
        }
      }
      const int64_t o = ((p * g.out_d + od) * g.out_h + oh) * g.out_w + ow;
      y[o] = element_cast<T>(best);
      if (indices) indices[o] = best_index;
    }
  });
}

Status max_pool_kernel(OpContext& ctx, size_t n, bool with_indices) {
  KILN_ASSIGN_OR_RETURN(Tensor in, ctx.tensor(0).contiguous());
  Tensor& out = ctx.output_tensor(0);
  const PoolGeometry g = pooling::pool_geometry(ctx, in, out, n, {.kernel = 1, .dilation = 4});
  int64_t* indices = with_indices ? ctx.output_tensor(1).data<int64_t>() : nullptr;
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool>) max_pool<T>(in.data<T>(), out.data<T>(), indices, g);
  });
  return ok_status();
}

// PyTorch's avg_pool2d/3d: windows are clipped to the padded input for count_include_pad, and to
// the input for the sum and for count_include_pad=False; int64 inputs divide with truncation.
template <typename T>
void avg_pool(const T* x, T* y, const PoolGeometry& g, bool count_include_pad,
              std::optional<int64_t> divisor_override) {
  using Acc = std::conditional_t<std::is_floating_point_v<ComputeType<T>>, double, int64_t>;
  pooling::for_each_output_row(g, [&](int64_t p, int64_t od, int64_t oh) {
    const T* plane = x + p * g.in_plane();
    const AvgSpan d = pooling::avg_span(od, g.sd, g.pd, g.kd, g.in_d);
    const AvgSpan h = pooling::avg_span(oh, g.sh, g.ph, g.kh, g.in_h);
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const AvgSpan w = pooling::avg_span(ow, g.sw, g.pw, g.kw, g.in_w);
      const int64_t o = ((p * g.out_d + od) * g.out_h + oh) * g.out_w + ow;
      if (d.start >= d.end || h.start >= h.end || w.start >= w.end) {
        y[o] = element_cast<T>(0);
        continue;
      }
      Acc sum = 0;
      for (int64_t id = d.start; id < d.end; ++id) {
        for (int64_t ih = h.start; ih < h.end; ++ih) {
          const T* row = plane + (id * g.in_h + ih) * g.in_w;
          for (int64_t iw = w.start; iw < w.end; ++iw) sum += static_cast<Acc>(row[iw]);
        }
      }
      const int64_t divisor = pooling::avg_divisor(d, h, w, count_include_pad, divisor_override);
      y[o] = element_cast<T>(sum / static_cast<Acc>(divisor));
    }
  });
}

Status avg_pool_kernel(OpContext& ctx, size_t n) {
  KILN_ASSIGN_OR_RETURN(Tensor in, ctx.tensor(0).contiguous());
  Tensor& out = ctx.output_tensor(0);
  const PoolGeometry g = pooling::pool_geometry(ctx, in, out, n, {.kernel = 1});
  const bool count_include_pad = ctx.bool_arg(5);
  const std::optional<int64_t> divisor = n >= 2 ? ctx.optional_int(6) : std::nullopt;
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<ComputeType<T>> || std::is_same_v<T, int64_t>) {
      avg_pool<T>(in.data<T>(), out.data<T>(), g, count_include_pad, divisor);
    }
  });
  return ok_status();
}

template <typename T, bool kMax>
void adaptive_pool(const T* x, T* y, int64_t* indices, const PoolGeometry& g) {
  using pooling::adaptive_end;
  using pooling::adaptive_start;
  pooling::for_each_output_row(g, [&](int64_t p, int64_t od, int64_t oh) {
    const T* plane = x + p * g.in_plane();
    const int64_t d0 = adaptive_start(od, g.out_d, g.in_d), d1 = adaptive_end(od, g.out_d, g.in_d);
    const int64_t h0 = adaptive_start(oh, g.out_h, g.in_h), h1 = adaptive_end(oh, g.out_h, g.in_h);
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t w0 = adaptive_start(ow, g.out_w, g.in_w);
      const int64_t w1 = adaptive_end(ow, g.out_w, g.in_w);
      const int64_t o = ((p * g.out_d + od) * g.out_h + oh) * g.out_w + ow;
      if constexpr (kMax) {
        using C = ComputeType<T>;
        C best = -std::numeric_limits<C>::infinity();
        int64_t best_index = (d0 * g.in_h + h0) * g.in_w + w0;
        for (int64_t d = d0; d < d1; ++d) {
          for (int64_t h = h0; h < h1; ++h) {
            for (int64_t w = w0; w < w1; ++w) {
              const int64_t i = (d * g.in_h + h) * g.in_w + w;
              const C v = static_cast<C>(plane[i]);
              if (v > best || v != v) {
                best = v;
                best_index = i;
              }
            }
          }
        }
        y[o] = element_cast<T>(best);
        indices[o] = best_index;
      } else {
        double sum = 0.0;
        for (int64_t d = d0; d < d1; ++d) {
          for (int64_t h = h0; h < h1; ++h) {
            const T* row = plane + (d * g.in_h + h) * g.in_w;
            for (int64_t w = w0; w < w1; ++w) sum += static_cast<double>(row[w]);
          }
        }
        y[o] = element_cast<T>(sum / static_cast<double>((d1 - d0) * (h1 - h0) * (w1 - w0)));
      }
    }
  });
}

template <bool kMax>
Status adaptive_kernel(OpContext& ctx, size_t n) {
  KILN_ASSIGN_OR_RETURN(Tensor in, ctx.tensor(0).contiguous());
  Tensor& out = ctx.output_tensor(0);
  const PoolGeometry g = pooling::pool_sizes(in, out, n);
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
  KILN_RETURN_IF_ERROR(pooling::register_pooling_backward_kernels(table));
  return ir::add_all(
      table,
      {
          {OpKey::aten_max_pool2d_with_indices_default,
           [](OpContext& c) { return max_pool_kernel(c, 2, true); }},
          {OpKey::aten_max_pool2d_default,
           [](OpContext& c) { return max_pool_kernel(c, 2, false); }},
          {OpKey::aten_max_pool3d_with_indices_default,
           [](OpContext& c) { return max_pool_kernel(c, 3, true); }},
          {OpKey::aten_max_pool1d_with_indices_default,
           [](OpContext& c) { return max_pool_kernel(c, 1, true); }},
          {OpKey::aten_max_pool1d_default,
           [](OpContext& c) { return max_pool_kernel(c, 1, false); }},
          {OpKey::aten_avg_pool2d_default, [](OpContext& c) { return avg_pool_kernel(c, 2); }},
          {OpKey::aten_avg_pool3d_default, [](OpContext& c) { return avg_pool_kernel(c, 3); }},
          {OpKey::aten_avg_pool1d_default, [](OpContext& c) { return avg_pool_kernel(c, 1); }},
          {OpKey::aten__adaptive_avg_pool2d_default,
           [](OpContext& c) { return adaptive_kernel<false>(c, 2); }},
          {OpKey::aten_adaptive_avg_pool2d_default,
           [](OpContext& c) { return adaptive_kernel<false>(c, 2); }},
          {OpKey::aten__adaptive_avg_pool3d_default,
           [](OpContext& c) { return adaptive_kernel<false>(c, 3); }},
          {OpKey::aten_adaptive_avg_pool1d_default,
           [](OpContext& c) { return adaptive_kernel<false>(c, 1); }},
          {OpKey::aten_adaptive_max_pool2d_default,
           [](OpContext& c) { return adaptive_kernel<true>(c, 2); }},
          {OpKey::aten_adaptive_max_pool1d_default,
           [](OpContext& c) { return adaptive_kernel<true>(c, 1); }},
      });
}

}  // namespace kiln::cpu
