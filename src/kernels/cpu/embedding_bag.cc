// CPU reference kernel for _embedding_bag: sums, means or maxima of weight rows over bags of
// indices, with the four outputs eager's CPU kernel gives (output, offset2bag, bag_size,
// max_indices).
//
// Eager has two ways through a sum or a mean, and they differ where the last bag does not end at
// the last index (include_last_offset with offsets[-1] < indices.numel()): the fast path
// (embedding_bag_fast_path: float, half or bfloat16 weight with unit row stride, no padding_idx,
// unit-stride per-sample weights) sums each bag over [offsets[b], offsets[b + 1]); the other way
// sums every index into the bag offset2bag names, which puts the indices past the last offset in
// the last bag. bag_size (mean, max) always counts to the end of the indices, less the padding
// indices of each bag. kiln does the same, so every output matches eager's.
#include <cstring>
#include <vector>

#include "base/element_cast.h"
#include "ir/infer/infer_util.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/indexing_internal.h"
#include "kernels/cpu/indexing_util.h"

namespace kiln::cpu {
namespace {

enum Mode : int64_t { kSum = 0, kMean = 1, kMax = 2 };

struct Bags {
  std::vector<int64_t> indices;     // [n], each in [0, rows)
  std::vector<int64_t> offsets;     // the offsets as given, include_last_offset's last one too
  std::vector<int64_t> offset2bag;  // [n]: the bag of each index (-1 before any bag)
  int64_t count = 0;                // bags
};

Result<std::vector<int64_t>> int64_values(const Tensor& t) {
  KILN_ASSIGN_OR_RETURN(Tensor values, index_as_int64(t));
  const int64_t* p = values.data<int64_t>();
  return std::vector<int64_t>(p, p + values.numel());
}

// The indices and offsets, checked as eager checks them, and each index's bag: the number of
// bag starts at or before it, less one.
Result<Bags> read_bags(const Tensor& indices, const Tensor& offsets, int64_t rows,
                       int64_t count) {
  Bags bags;
  bags.count = count;
  KILN_ASSIGN_OR_RETURN(bags.indices, int64_values(indices));
  KILN_ASSIGN_OR_RETURN(bags.offsets, int64_values(offsets));
  const int64_t n = static_cast<int64_t>(bags.indices.size());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = bags.indices[i];
    if (v < 0 || v >= rows) {
      return out_of_range("_embedding_bag: index ", i, " of input takes value ", v,
                          ", which is not in the valid range [0, ", rows, ")");
    }
  }
  if (!bags.offsets.empty()) {
    if (bags.offsets.front() != 0) {
      return invalid_argument("_embedding_bag: offsets[0] has to be 0, found ",
                              bags.offsets.front());
    }
    if (bags.offsets.back() > n) {
      return invalid_argument("_embedding_bag: offsets[-1] can not be greater than input's ",
                              "length ", n, ", found ", bags.offsets.back());
    }
  }
  std::vector<int64_t> starts(n + 1, 0);
  for (int64_t b = 0; b < count; ++b) {
    const int64_t at = bags.offsets[b];
    if (at < 0 || at > n) {
      return invalid_argument("_embedding_bag: offsets[", b, "] = ", at,
                              " is outside [0, ", n, "]");
    }
    ++starts[at];
  }
  bags.offset2bag.resize(n);
  int64_t running = -1;
  for (int64_t i = 0; i < n; ++i) {
    running += starts[i];
    bags.offset2bag[i] = running;
  }
  return bags;
}

// Eager's bag sizes for mean and max: offset differences, the last bag to the end of the indices.
std::vector<int64_t> bag_sizes(const Bags& bags) {
  std::vector<int64_t> sizes(bags.count, 0);
  const int64_t n = static_cast<int64_t>(bags.indices.size());
  for (int64_t b = 0; b < bags.count; ++b) {
    sizes[b] = (b + 1 < bags.count ? bags.offsets[b + 1] : n) - bags.offsets[b];
  }
  return sizes;
}

template <typename I>
void write_ints(const Tensor& out, const std::vector<int64_t>& values) {
  I* dst = out.data<I>();
  for (size_t i = 0; i < values.size(); ++i) dst[i] = static_cast<I>(values[i]);
}

Status write_index_output(const Tensor& out, const std::vector<int64_t>& values) {
  if (out.numel() != static_cast<int64_t>(values.size())) {
    return internal_error("_embedding_bag: an index output of ", out.numel(),
                          " elements for ", values.size(), " values");
  }
  if (out.dtype() == DType::kInt32) {
    write_ints<int32_t>(out, values);
  } else {
    write_ints<int64_t>(out, values);
  }
  return ok_status();
}

struct Options {
  Mode mode = kSum;
  bool fast = false;
  int64_t padding_idx = -1;
  const Tensor* per_sample_weights = nullptr;
};

// Sum or mean into `acc` [bags, d]; `sizes` loses one per padding index of each bag (mean).
template <typename T, typename C>
void accumulate(const Tensor& weight, const Bags& bags, const Options& o, const C* scale,
                std::vector<C>& acc, std::vector<int64_t>& sizes) {
  const int64_t d = weight.size(1);
  const int64_t row_stride = weight.strides()[0], col_stride = weight.strides()[1];
  const T* w = weight.data<T>();
  auto add_row = [&](int64_t bag, int64_t i) {
    const T* row = w + bags.indices[i] * row_stride;
    const C s = scale ? scale[i] : C(1);
    C* dst = acc.data() + bag * d;
    for (int64_t k = 0; k < d; ++k) dst[k] += static_cast<C>(row[k * col_stride]) * s;
  };
  const int64_t n = static_cast<int64_t>(bags.indices.size());
  const int64_t given = static_cast<int64_t>(bags.offsets.size());
  if (o.fast) {
    for (int64_t b = 0; b < bags.count; ++b) {
      const int64_t end = b + 1 < given ? bags.offsets[b + 1] : n;
      for (int64_t i = bags.offsets[b]; i < end; ++i) add_row(b, i);
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t bag = bags.offset2bag[i];
    if (bag < 0 || bag >= bags.count) continue;
    if (bags.indices[i] == o.padding_idx) {
      if (o.mode == kMean) --sizes[bag];
      continue;
    }
    add_row(bag, i);
  }
}

// Max over each bag, the first of equal maxima kept; a NaN is taken only as a bag's first value.
template <typename T, typename C>
void maximum(const Tensor& weight, const Bags& bags, const Options& o, std::vector<C>& acc,
             std::vector<int64_t>& arg, std::vector<int64_t>& sizes) {
  const int64_t d = weight.size(1);
  const int64_t row_stride = weight.strides()[0], col_stride = weight.strides()[1];
  const T* w = weight.data<T>();
  std::vector<bool> seen(bags.count, false);
  for (size_t i = 0; i < bags.indices.size(); ++i) {
    const int64_t bag = bags.offset2bag[i];
    if (bag < 0 || bag >= bags.count) continue;
    const int64_t index = bags.indices[i];
    if (index == o.padding_idx) {
      --sizes[bag];
      continue;
    }
    const T* row = w + index * row_stride;
    for (int64_t k = 0; k < d; ++k) {
      const C v = static_cast<C>(row[k * col_stride]);
      C& current = acc[bag * d + k];
      if (!seen[bag] || v > current) {
        current = v;
        arg[bag * d + k] = index;
      }
    }
    seen[bag] = true;
  }
}

template <typename T>
Status embedding_bag_typed(ir::OpContext& ctx, const Tensor& weight, const Bags& bags,
                           const Options& o) {
  using C = ComputeType<T>;
  const int64_t d = weight.size(1);
  std::vector<C> acc(static_cast<size_t>(bags.count * d), C(0));
  std::vector<int64_t> sizes = o.mode == kSum ? std::vector<int64_t>(bags.count, 0)
                                              : bag_sizes(bags);
  std::vector<int64_t> arg(o.mode == kMax ? bags.count * d : 0, 0);
  if (o.mode == kMax) {
    maximum<T, C>(weight, bags, o, acc, arg, sizes);
  } else {
    std::vector<C> scale;
    if (o.per_sample_weights) {
      KILN_ASSIGN_OR_RETURN(Tensor psw, o.per_sample_weights->contiguous());
      const T* p = psw.data<T>();
      for (int64_t i = 0; i < psw.numel(); ++i) scale.push_back(static_cast<C>(p[i]));
    }
    accumulate<T, C>(weight, bags, o, scale.empty() ? nullptr : scale.data(), acc, sizes);
    if (o.mode == kMean) {
      for (int64_t b = 0; b < bags.count; ++b) {
        if (sizes[b] <= 0) continue;  // an empty bag (or all padding) stays zero
        for (int64_t k = 0; k < d; ++k) acc[b * d + k] /= static_cast<C>(sizes[b]);
      }
    }
  }
  T* out = ctx.output_tensor(0).data<T>();
  for (size_t i = 0; i < acc.size(); ++i) out[i] = element_cast<T>(acc[i]);
  const Tensor& offset2bag = ctx.output_tensor(1);
  if (offset2bag.numel() != 0) KILN_RETURN_IF_ERROR(write_index_output(offset2bag, bags.offset2bag));
  KILN_RETURN_IF_ERROR(write_index_output(ctx.output_tensor(2), sizes));
  // max_indices: the arg max for max; a copy of bag_size for mean; zeros for sum.
  return write_index_output(ctx.output_tensor(3), o.mode == kMax ? arg : sizes);
}

}  // namespace

// _embedding_bag(weight, indices, offsets, scale_grad_by_freq, mode, sparse, per_sample_weights,
// include_last_offset, padding_idx). Inference has checked the arguments' dtypes and ranks.
Status embedding_bag_kernel(ir::OpContext& ctx) {
  const Tensor& weight = ctx.tensor(0);
  const Tensor& indices = ctx.tensor(1);
  const Tensor& offsets = ctx.tensor(2);
  Options o;
  o.mode = static_cast<Mode>(ctx.int_arg(4));
  o.per_sample_weights = ctx.optional_tensor(6);
  const bool include_last_offset = ctx.bool_arg(7);
  o.padding_idx = ctx.int_arg(8);
  KILN_RETURN_IF_ERROR(ctx.error());
  o.fast = ir::embedding_bag_fast_path(weight, o.per_sample_weights, o.padding_idx);
  const int64_t count = offsets.size(0) - (include_last_offset ? 1 : 0);
  KILN_ASSIGN_OR_RETURN(Bags bags, read_bags(indices, offsets, weight.size(0), count));
  return dispatch_dtype(weight.dtype(), [&]<typename T>() -> Status {
    if constexpr (std::is_floating_point_v<ComputeType<T>>) {
      return embedding_bag_typed<T>(ctx, weight, bags, o);
    } else {
      return invalid_argument("_embedding_bag: expected a floating weight, found ",
                              weight.description());
    }
  });
}

}  // namespace kiln::cpu
