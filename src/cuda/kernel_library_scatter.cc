// The kernel library's scatter family (kernel_library_scatter.h): gather, scatter and
// scatter_reduce, index_put, masked_scatter.
#include "cuda/kernel_library_scatter.h"

#include <algorithm>

#include "cuda/cuda_check.h"
#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {

using namespace kernel_lib;

namespace {

constexpr std::string_view kScatterSource =
#include "cuda/kernels/scatter.cuh.inc"
    ;

constexpr int kThreads = 256;
// masked_scatter's chunk: one block's threads, an element each (kiln_scatter::masked_scatter).
constexpr int kMaskChunk = 1024;

// The host mirror of kiln_scatter::ScatterArgs (scatter.cuh), passed by value.
struct ScatterArgs {
  KTensor out, index, at, src, lin;
  int64_t dim_size = 0, dim_stride = 0, dim_lin = 0;
  double value = 0;
  int32_t* counts = nullptr;
  int32_t include_self = 1;
  int32_t pad_ = 0;
};
static_assert(sizeof(ScatterArgs) == 5 * sizeof(KTensor) + 48,
              "must match kiln_scatter::ScatterArgs");

// The host mirror of kiln_scatter::IndexOperands (scatter.cuh), passed by value.
struct IndexPutOperands {
  const void* data[kMaxKernelDims] = {};
  int64_t strides[kMaxKernelDims][kMaxKernelDims] = {};
  int64_t size[kMaxKernelDims] = {};
  int64_t stride[kMaxKernelDims] = {};
  int32_t wide[kMaxKernelDims] = {};
  int32_t count = 0;
  int32_t pad_ = 0;
};
static_assert(sizeof(IndexPutOperands) == 744, "must match kiln_scatter::IndexOperands");

enum ScatterPhase : int { kIdentity = 0, kCombine = 1, kFinish = 2 };
enum MaskPhase : int { kCount = 0, kScan = 1, kScatter = 2 };

constexpr std::string_view kReduceEnums[] = {"kAssign", "kSum", "kProd", "kMean", "kAmax", "kAmin"};
constexpr std::string_view kReduceTags[] = {"assign", "sum", "prod", "mean", "amax", "amin"};

// A 0-d tensor as the 1-D tensor of one element that gather and scatter take it for.
Tensor at_least_1d(const Tensor& t) {
  return t.dim() == 0 ? t.view_as({1}, {1}, t.offset()) : t;
}

Status check_index_dtype(const Tensor& index, std::string_view what) {
  if (index.dtype() != DType::kInt64 && index.dtype() != DType::kInt32) {
    return invalid_argument(what, ": expected an int64 or int32 index, found ",
                            index.description());
  }
  return ok_status();
}

Status check_no_broadcast(const Tensor& out, std::string_view what) {
  for (int64_t d = 0; d < out.dim(); ++d) {
    if (out.size(d) > 1 && out.strides()[d] == 0) {
      return invalid_argument(what,
                              ": expected an output without broadcast (stride 0) dims, found ",
                              out.description(), " with strides ", shape_to_string(out.strides()));
    }
  }
  return ok_status();
}

// index against `target` (gather's input or scatter's out, both at least 1-D) and `src`: the
// same rank, no dim larger apart from `dim` of target.
Status check_gather_shapes(const Tensor& target, int64_t dim, const Tensor& index,
                           const Tensor* src, std::string_view what) {
  KILN_RETURN_IF_ERROR(check_rank(target, what));
  KILN_RETURN_IF_ERROR(check_index_dtype(index, what));
  if (dim < 0 || dim >= target.dim()) {
    return invalid_argument(what, ": expected dim in [0, ", target.dim(), ") for ",
                            target.description(), ", found ", dim);
  }
  if (index.dim() != target.dim() || (src && src->dim() != target.dim())) {
    return invalid_argument(what, ": expected index", src ? " and src" : "", " of rank ",
                            target.dim(), " like ", target.description(), ", found index ",
                            index.description(),
                            src ? str_cat(" and src ", src->description()) : "");
  }
  for (int64_t d = 0; d < target.dim(); ++d) {
    if ((d != dim && index.size(d) > target.size(d)) || (src && index.size(d) > src->size(d))) {
      return invalid_argument(what, ": expected index ", index.description(), " no larger than ",
                              target.description(), " apart from dim ", dim,
                              src ? str_cat(" and no larger than src ", src->description()) : "");
    }
  }
  return ok_status();
}

// A view's strides laid over index's dims, the stride along `dim` zeroed.
KTensor over_index(void* data, const Tensor& index, const Shape& strides, int64_t dim) {
  Shape s = strides;
  s[dim] = 0;
  return kernel_lib::view(data, index.sizes(), s);
}

// Where out[indices]'s dims come from (as launch_index_tensor lays out in[indices]): the output
// is [leading..., block..., trailing...], where `block` is the index tensors broadcast together.
struct IndexLayout {
  std::vector<const Tensor*> tensors;  // the index tensors (None entries dropped)
  std::vector<int64_t> picks;          // the dim of out each one indexes
  Shape block;
  Shape sizes;                 // out[indices]'s
  std::vector<int64_t> keeps;  // per indexed-shape dim: the dim of out it keeps, -1 in the block
};

Result<IndexLayout> index_layout(const Tensor& out, const std::vector<const Tensor*>& indices) {
  constexpr std::string_view kWhat = "index_put";
  if (static_cast<int64_t>(indices.size()) > out.dim()) {
    return invalid_argument("index_put: ", indices.size(), " indices for ", out.description(),
                            " of rank ", out.dim());
  }
  IndexLayout layout;
  bool adjacent = true;
  for (size_t i = 0; i < indices.size(); ++i) {
    const Tensor* index = indices[i];
    if (!index) continue;
    if (index->dtype() == DType::kBool || index->dtype() == DType::kUInt8) {
      return invalid_argument("index_put: index ", i, " is a ", dtype_name(index->dtype()),
                              " mask (not supported); expected int64 or int32 indices, found ",
                              index->description());
    }
    KILN_RETURN_IF_ERROR(check_index_dtype(*index, kWhat));
    if (index->dim() > kMaxKernelDims) {
      return invalid_argument("index_put: expected index tensors of rank <= ", kMaxKernelDims,
                              ", found index ", i, " ", index->description());
    }
    const int64_t dim = static_cast<int64_t>(i);
    if (!layout.picks.empty() && layout.picks.back() != dim - 1) adjacent = false;
    layout.picks.push_back(dim);
    layout.tensors.push_back(index);
    // Right-aligned broadcasting, as NumPy's.
    const Shape& s = index->sizes();
    Shape& b = layout.block;
    if (s.size() > b.size()) b.insert(b.begin(), s.size() - b.size(), 1);
    for (size_t k = 0; k < s.size(); ++k) {
      int64_t& have = b[b.size() - s.size() + k];
      if (have == s[k] || s[k] == 1) continue;
      if (have != 1) {
        return invalid_argument("index_put: index tensors do not broadcast together: index ", i,
                                " ", index->description(), " against the others' shape ",
                                shape_to_string(b));
      }
      have = s[k];
    }
  }
  if (layout.tensors.empty()) {
    return invalid_argument("index_put: expected at least one index tensor for ", out.description(),
                            ", found only None entries");
  }
  const int64_t first = layout.picks.front();
  auto keep = [&](int64_t d) {
    layout.sizes.push_back(out.size(d));
    layout.keeps.push_back(d);
  };
  auto picked = [&](int64_t d) {
    return std::find(layout.picks.begin(), layout.picks.end(), d) != layout.picks.end();
  };
  if (adjacent) {
    for (int64_t d = 0; d < first; ++d) keep(d);
  }
  for (int64_t s : layout.block) {
    layout.sizes.push_back(s);
    layout.keeps.push_back(-1);
  }
  for (int64_t d = adjacent ? first : 0; d < out.dim(); ++d) {
    if (!picked(d)) keep(d);
  }
  if (static_cast<int64_t>(layout.sizes.size()) > kMaxKernelDims) {
    return invalid_argument("index_put: expected an indexed shape of rank <= ", kMaxKernelDims,
                            ", found ", shape_to_string(layout.sizes), " for ", out.description());
  }
  return layout;
}

}  // namespace

Result<Tensor> scatter_broadcast_to(const Tensor& t, const Shape& sizes, std::string_view what) {
  const int64_t rank = static_cast<int64_t>(sizes.size());
  if (t.dim() > rank) {
    return invalid_argument(what, ": ", t.description(), " does not broadcast to ",
                            shape_to_string(sizes));
  }
  Shape strides(rank, 0);
  const int64_t lead = rank - t.dim();
  for (int64_t d = 0; d < t.dim(); ++d) {
    const int64_t size = t.size(d);
    if (size == sizes[lead + d]) {
      strides[lead + d] = size == 1 ? 0 : t.strides()[d];
    } else if (size != 1) {
      return invalid_argument(what, ": ", t.description(), " does not broadcast to ",
                              shape_to_string(sizes));
    }
  }
  return t.view_as(sizes, strides, t.offset());
}

// --- gather -----------------------------------------------------------------------------------

std::string gather_kernel(ModuleSource& module, DType dtype, DType index) {
  add_family(module, "scatter.cuh", kScatterSource);
  return add_entry(
      module, str_cat("kiln_gather_", dtype_tag(dtype), "_", dtype_tag(index)), kThreads,
      "KTensor in, KTensor index, KTensor out, i64 dim_size, i64 dim_stride, i64 total",
      str_cat("kiln_scatter::gather<", device_type_name(dtype), ", ", device_type_name(index),
              ">(in, index, out, dim_size, dim_stride, total);"));
}

Status launch_gather(cudaKernel_t kernel, const Tensor& in_any, int64_t dim,
                     const Tensor& index_any, const Tensor& out_any, cudaStream_t stream) {
  constexpr std::string_view kWhat = "gather";
  const Tensor in = at_least_1d(in_any), index = at_least_1d(index_any), out = at_least_1d(out_any);
  if (index.numel() == 0 && out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_gather_shapes(in, dim, index, nullptr, kWhat));
  KILN_RETURN_IF_ERROR(check_same_sizes(index, "index", out, "output", kWhat));
  if (out.dtype() != in.dtype()) {
    return invalid_argument("gather: expected an output of the input's dtype ",
                            dtype_name(in.dtype()), ", found ", out.description());
  }
  KILN_RETURN_IF_ERROR(check_no_broadcast(out, kWhat));
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &index, &out}, kWhat));
  KTensor kin = over_index(in.raw_data(), index, in.strides(), dim);
  KTensor kindex = view(index.raw_data(), index.sizes(), index.strides());
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  int64_t dim_size = in.size(dim), dim_stride = in.strides()[dim], total = index.numel();
  void* args[] = {&kin, &kindex, &kout, &dim_size, &dim_stride, &total};
  return launch_kernel(kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream, args);
}

// --- scatter and scatter_reduce ---------------------------------------------------------------

std::optional<ScatterReduce> parse_scatter_reduce(std::string_view name) {
  if (name == "sum" || name == "add") return ScatterReduce::kSum;
  if (name == "prod" || name == "multiply") return ScatterReduce::kProd;
  if (name == "mean") return ScatterReduce::kMean;
  if (name == "amax") return ScatterReduce::kAmax;
  if (name == "amin") return ScatterReduce::kAmin;
  return std::nullopt;
}

bool scatter_reduce_takes(DType dtype) {
  return dtype != DType::kBool && dtype != DType::kFloat64;
}

std::string scatter_kernel(ModuleSource& module, ScatterReduce reduce, DType dtype, DType index,
                           bool from_value) {
  add_family(module, "scatter.cuh", kScatterSource);
  const size_t r = static_cast<size_t>(reduce);
  return add_entry(module,
                   str_cat("kiln_scatter_", kReduceTags[r], "_", dtype_tag(dtype), "_",
                           dtype_tag(index), from_value ? "_value" : ""),
                   kThreads, "kiln_scatter::ScatterArgs a, int phase, i64 total",
                   str_cat("kiln_scatter::scatter<kiln_scatter::", kReduceEnums[r], ", ",
                           device_type_name(dtype), ", ", device_type_name(index), ", ",
                           from_value ? "true" : "false", ">(a, phase, total);"));
}

Status launch_scatter(cudaKernel_t kernel, const Tensor& out_any, int64_t dim,
                      const Tensor& index_any, const Tensor* src_any, const ScatterParams& params,
                      const Tensor* counts, cudaStream_t stream) {
  constexpr std::string_view kWhat = "scatter";
  const Tensor out = at_least_1d(out_any), index = at_least_1d(index_any);
  const std::optional<Tensor> src =
      src_any ? std::optional<Tensor>(at_least_1d(*src_any)) : std::nullopt;
  if (index.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_gather_shapes(out, dim, index, src ? &*src : nullptr, kWhat));
  if (src && src->dtype() != out.dtype()) {
    return invalid_argument("scatter: expected src of the output's dtype ", dtype_name(out.dtype()),
                            ", found ", src->description());
  }
  KILN_RETURN_IF_ERROR(check_no_broadcast(out, kWhat));
  const bool reduces = params.reduce != ScatterReduce::kAssign;
  if (reduces && !scatter_reduce_takes(out.dtype())) {
    return invalid_argument("scatter: no reduction for ", out.description());
  }
  const bool mean = params.reduce == ScatterReduce::kMean;
  if (mean) {
    if (!counts || counts->dtype() != DType::kInt32 || counts->numel() < out.numel() ||
        !counts->is_contiguous()) {
      return invalid_argument("scatter: mean expects int32 contiguous counts of at least ",
                              out.numel(), " elements, found ",
                              counts ? counts->description() : std::string("none"));
    }
    KILN_RETURN_IF_ERROR(check_data({counts}, kWhat));
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&out, &index}, kWhat));
  if (src) KILN_RETURN_IF_ERROR(check_data({&*src}, kWhat));

  ScatterArgs a;
  a.out = view(out.raw_data(), out.sizes(), out.strides());
  a.index = view(index.raw_data(), index.sizes(), index.strides());
  a.at = over_index(out.raw_data(), index, out.strides(), dim);
  a.src = src ? view(src->raw_data(), index.sizes(), src->strides())
              : view(nullptr, index.sizes(), Shape(index.dim(), 0));
  const Shape row_major = contiguous_strides(out.sizes());
  a.lin = over_index(nullptr, index, row_major, dim);
  a.dim_size = out.size(dim);
  a.dim_stride = out.strides()[dim];
  a.dim_lin = row_major[dim];
  a.value = params.value;
  a.counts = mean ? static_cast<int32_t*>(counts->raw_data()) : nullptr;
  a.include_self = params.include_self || !reduces ? 1 : 0;

  auto run = [&](int phase, int64_t total) {
    void* args[] = {&a, &phase, &total};
    return launch_kernel(kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream, args);
  };
  if (mean) {
    KILN_CUDA_CHECK(cudaMemsetAsync(a.counts, 0, out.numel() * sizeof(int32_t), stream));
  }
  if (!a.include_self) KILN_RETURN_IF_ERROR(run(kIdentity, index.numel()));
  KILN_RETURN_IF_ERROR(run(kCombine, index.numel()));
  if (mean) KILN_RETURN_IF_ERROR(run(kFinish, out.numel()));
  return ok_status();
}

// --- index_put --------------------------------------------------------------------------------

std::string index_put_kernel(ModuleSource& module, DType dtype, bool accumulate) {
  add_family(module, "scatter.cuh", kScatterSource);
  return add_entry(
      module, str_cat("kiln_index_put_", dtype_tag(dtype), accumulate ? "_accumulate" : ""),
      kThreads, "KTensor dest, KTensor values, kiln_scatter::IndexOperands indices, i64 total",
      str_cat("kiln_scatter::index_put<", device_type_name(dtype), ", ",
              accumulate ? "true" : "false", ">(dest, values, indices, total);"));
}

std::string masked_put_kernel(ModuleSource& module, DType dtype, DType mask, bool accumulate) {
  add_family(module, "scatter.cuh", kScatterSource);
  return add_entry(
      module,
      str_cat("kiln_masked_put_", dtype_tag(dtype), "_", dtype_tag(mask),
              accumulate ? "_accumulate" : ""),
      kThreads, "KTensor out, KTensor mask, KTensor values, i64 total",
      str_cat("kiln_scatter::masked_put<", device_type_name(dtype), ", ",
              accumulate ? "true" : "false", ", ", device_type_name(mask),
              ">(out, mask, values, total);"));
}

Status launch_masked_put(cudaKernel_t kernel, const Tensor& out, const Tensor& mask,
                         const Tensor& values, cudaStream_t stream) {
  constexpr std::string_view kWhat = "index_put with a mask";
  KILN_RETURN_IF_ERROR(check_rank(out, kWhat));
  const int64_t rank = out.dim(), lead = mask.dim();
  bool fits = (mask.dtype() == DType::kBool || mask.dtype() == DType::kUInt8) && lead <= rank;
  for (int64_t d = 0; fits && d < lead; ++d) fits = mask.size(d) == out.size(d);
  if (!fits) {
    return invalid_argument("index_put: expected a bool or uint8 mask with the sizes of the "
                            "output's leading dims ", out.description(), ", found ",
                            mask.description());
  }
  if (values.dtype() != out.dtype()) {
    return invalid_argument("index_put: expected values of the output's dtype ",
                            dtype_name(out.dtype()), ", found ", values.description());
  }
  // One selected row: out's trailing dims. A values dim beyond them counts the rows: 1 only.
  const Shape row(out.sizes().begin() + lead, out.sizes().end());
  Tensor per_row = values;
  if (values.dim() == static_cast<int64_t>(row.size()) + 1 && values.size(0) == 1) {
    per_row = values.view_as(Shape(values.sizes().begin() + 1, values.sizes().end()),
                             Shape(values.strides().begin() + 1, values.strides().end()),
                             values.offset());
  }
  KILN_ASSIGN_OR_RETURN(Tensor vals, scatter_broadcast_to(per_row, row, "index_put values"));
  KILN_RETURN_IF_ERROR(check_no_broadcast(out, kWhat));
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&out, &mask, &vals}, kWhat));
  Shape mask_strides(rank, 0), value_strides(rank, 0);
  for (int64_t d = 0; d < rank; ++d) {
    if (d < lead) {
      mask_strides[d] = mask.size(d) == 1 ? 0 : mask.strides()[d];
    } else {
      value_strides[d] = vals.strides()[d - lead];
    }
  }
  const Walk walk = coalesce(out.sizes(), {out.strides(), mask_strides, value_strides});
  KTensor kout = view(out.raw_data(), walk.sizes, walk.strides[0]);
  KTensor kmask = view(mask.raw_data(), walk.sizes, walk.strides[1]);
  KTensor kvalues = view(vals.raw_data(), walk.sizes, walk.strides[2]);
  int64_t total = out.numel();
  void* args[] = {&kout, &kmask, &kvalues, &total};
  return launch_kernel(kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream, args);
}

Result<Shape> index_put_indexed_shape(const Tensor& out,
                                      const std::vector<const Tensor*>& indices) {
  KILN_ASSIGN_OR_RETURN(IndexLayout layout, index_layout(out, indices));
  return layout.sizes;
}

Status launch_index_put(cudaKernel_t kernel, const Tensor& out,
                        const std::vector<const Tensor*>& indices, const Tensor& values,
                        cudaStream_t stream) {
  constexpr std::string_view kWhat = "index_put";
  KILN_RETURN_IF_ERROR(check_rank(out, kWhat));
  KILN_ASSIGN_OR_RETURN(IndexLayout layout, index_layout(out, indices));
  if (values.dtype() != out.dtype()) {
    return invalid_argument("index_put: expected values of the output's dtype ",
                            dtype_name(out.dtype()), ", found ", values.description());
  }
  KILN_ASSIGN_OR_RETURN(Tensor vals,
                        scatter_broadcast_to(values, layout.sizes, "index_put values"));
  KILN_RETURN_IF_ERROR(check_no_broadcast(out, kWhat));
  const int64_t total = numel_of(layout.sizes);
  if (total == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&out, &vals}, kWhat));
  for (const Tensor* index : layout.tensors) {
    KILN_RETURN_IF_ERROR(check_data({index}, kWhat));
  }

  // Every operand laid over the indexed shape's dims, then coalesced together.
  const size_t rank = layout.sizes.size(), count = layout.tensors.size();
  const size_t block_at =
      std::find(layout.keeps.begin(), layout.keeps.end(), -1) - layout.keeps.begin();
  std::vector<Shape> strides(2 + count, Shape(rank, 0));
  for (size_t d = 0; d < rank; ++d) {
    if (layout.keeps[d] >= 0) strides[0][d] = out.strides()[layout.keeps[d]];
    strides[1][d] = vals.strides()[d];
  }
  for (size_t k = 0; k < count; ++k) {
    const Tensor& index = *layout.tensors[k];
    const size_t lead = layout.block.size() - static_cast<size_t>(index.dim());
    for (int64_t j = 0; j < index.dim(); ++j) {
      if (index.size(j) != 1) strides[2 + k][block_at + lead + j] = index.strides()[j];
    }
  }
  const Walk walk = coalesce(layout.sizes, strides);
  KTensor kdest = view(out.raw_data(), walk.sizes, walk.strides[0]);
  KTensor kvalues = view(vals.raw_data(), walk.sizes, walk.strides[1]);
  IndexPutOperands ops;
  ops.count = static_cast<int32_t>(count);
  for (size_t k = 0; k < count; ++k) {
    const Tensor& index = *layout.tensors[k];
    ops.data[k] = index.raw_data();
    for (size_t d = 0; d < walk.sizes.size(); ++d) ops.strides[k][d] = walk.strides[2 + k][d];
    ops.size[k] = out.size(layout.picks[k]);
    ops.stride[k] = out.strides()[layout.picks[k]];
    ops.wide[k] = index.dtype() == DType::kInt64 ? 1 : 0;
  }
  int64_t n = total;
  void* args[] = {&kdest, &kvalues, &ops, &n};
  return launch_kernel(kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream, args);
}

// --- masked_scatter ---------------------------------------------------------------------------

std::string masked_scatter_kernel(ModuleSource& module, DType dtype) {
  add_family(module, "scatter.cuh", kScatterSource);
  return add_entry(
      module, str_cat("kiln_masked_scatter_", dtype_tag(dtype)), kMaskChunk,
      "KTensor out, KTensor mask, KTensor source, i64* chunk_counts, i64 n, i64 chunks, "
      "i64 source_n, int phase",
      str_cat("kiln_scatter::masked_scatter<", device_type_name(dtype),
              ">(out, mask, source, chunk_counts, n, chunks, source_n, phase);"));
}

int64_t masked_scatter_scratch_elements(int64_t numel) {
  return std::max<int64_t>((numel + kMaskChunk - 1) / kMaskChunk, 1);
}

Status launch_masked_scatter(cudaKernel_t kernel, const Tensor& out, const Tensor& mask,
                             const Tensor& source, const Tensor& chunk_counts,
                             cudaStream_t stream) {
  constexpr std::string_view kWhat = "masked_scatter";
  KILN_RETURN_IF_ERROR(check_rank(out, kWhat));
  KILN_RETURN_IF_ERROR(check_rank(source, kWhat));
  if (mask.dtype() != DType::kBool) {
    return invalid_argument("masked_scatter: expected a bool mask, found ", mask.description());
  }
  if (source.dtype() != out.dtype()) {
    return invalid_argument("masked_scatter: expected source of the output's dtype ",
                            dtype_name(out.dtype()), ", found ", source.description());
  }
  KILN_ASSIGN_OR_RETURN(Tensor m, scatter_broadcast_to(mask, out.sizes(), "masked_scatter mask"));
  KILN_RETURN_IF_ERROR(check_no_broadcast(out, kWhat));
  int64_t n = out.numel();
  if (n == 0) return ok_status();
  int64_t chunks = masked_scatter_scratch_elements(n);
  if (chunk_counts.dtype() != DType::kInt64 || chunk_counts.numel() < chunks ||
      !chunk_counts.is_contiguous()) {
    return invalid_argument("masked_scatter: expected int64 contiguous chunk counts of at least ",
                            chunks, " elements, found ", chunk_counts.description());
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&out, &m, &chunk_counts}, kWhat));
  int64_t source_n = source.numel();
  if (source_n > 0) KILN_RETURN_IF_ERROR(check_data({&source}, kWhat));

  // The mask and out walk out's sizes together (coalesced); source its own.
  const Walk walk = coalesce(out.sizes(), {out.strides(), m.strides()});
  KTensor kout = view(out.raw_data(), walk.sizes, walk.strides[0]);
  KTensor kmask = view(m.raw_data(), walk.sizes, walk.strides[1]);
  const Walk source_walk = coalesce(source.sizes(), {source.strides()});
  KTensor ksource = view(source.raw_data(), source_walk.sizes, source_walk.strides[0]);
  void* counts = chunk_counts.raw_data();
  auto run = [&](int phase, unsigned blocks) {
    void* args[] = {&kout, &kmask, &ksource, &counts, &n, &chunks, &source_n, &phase};
    return launch_kernel(kernel, dim3(blocks), dim3(kMaskChunk), 0, stream, args);
  };
  const unsigned grid = grid_for(chunks, 1);
  KILN_RETURN_IF_ERROR(run(kCount, grid));
  KILN_RETURN_IF_ERROR(run(kScan, 1));
  return run(kScatter, grid);
}

}  // namespace kiln::cuda
