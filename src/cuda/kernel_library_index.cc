// The kernel library's advanced indexing (aten.index.Tensor) and scans (cumsum)
// (kernel_library.h).
#include <algorithm>
#include <cstdlib>

#include "cuda/cuda_check.h"
#include "cuda/kernel_library.h"
#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

constexpr std::string_view kIndexSource =
#include "cuda/kernels/index.cuh.inc"
    ;
constexpr std::string_view kScanSource =
#include "cuda/kernels/scan.cuh.inc"
    ;

// Schedules, as scan.cuh numbers them.
enum ScanMode : int { kScanWarp = 0, kScanBlock = 1, kScanColumn = 2 };
constexpr int64_t kScanVec = 4;            // elements per lane per step (kiln_scan::kVec)
constexpr int64_t kScanWarpRowMax = 1024;  // longer rows get a block each

// The host mirror of kiln_index::Operands (index.cuh), passed by value.
struct IndexOperands {
  const void* data[kMaxKernelDims] = {};
  int64_t strides[kMaxKernelDims][kMaxKernelDims] = {};
  int64_t size[kMaxKernelDims] = {};
  int64_t stride[kMaxKernelDims] = {};
  int32_t wide[kMaxKernelDims] = {};
  int32_t count = 0;
  int32_t pad_ = 0;
};
static_assert(sizeof(IndexOperands) == 744, "must match kiln_index::Operands");

// Where in[indices]'s dims come from: the output is [leading..., block..., trailing...], where
// `block` is the index tensors broadcast together and the others are the input's dims without
// an index, those before the first indexed dim leading only when the indexed dims are adjacent.
struct IndexLayout {
  std::vector<const Tensor*> tensors;  // the index tensors (None entries dropped)
  std::vector<int64_t> picks;          // the input dim each one indexes
  Shape block;
  Shape sizes;                 // the output's
  std::vector<int64_t> keeps;  // per output dim: the input dim it keeps, -1 in the block
};

Status check_index_tensor(const Tensor& index, size_t i) {
  if (index.dtype() == DType::kBool || index.dtype() == DType::kUInt8) {
    return invalid_argument("index: index ", i, " is a ", dtype_name(index.dtype()),
                            " mask, whose result's shape depends on its values (not supported); "
                            "expected int64 or int32 indices, found ",
                            index.description());
  }
  if (index.dtype() != DType::kInt64 && index.dtype() != DType::kInt32) {
    return invalid_argument("index: expected int64 or int32 indices, found index ", i, " ",
                            index.description());
  }
  if (index.dim() > kMaxKernelDims) {
    return invalid_argument("index: expected index tensors of rank <= ", kMaxKernelDims,
                            ", found index ", i, " ", index.description());
  }
  return ok_status();
}

Result<IndexLayout> index_layout(const Tensor& in, const std::vector<const Tensor*>& indices) {
  if (static_cast<int64_t>(indices.size()) > in.dim()) {
    return invalid_argument("index: ", indices.size(), " indices for input ", in.description(),
                            " of rank ", in.dim());
  }
  IndexLayout layout;
  bool adjacent = true;
  for (size_t i = 0; i < indices.size(); ++i) {
    const Tensor* index = indices[i];
    if (!index) continue;
    KILN_RETURN_IF_ERROR(check_index_tensor(*index, i));
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
        return invalid_argument("index: index tensors do not broadcast together: index ", i, " ",
                                index->description(), " against the others' shape ",
                                shape_to_string(b));
      }
      have = s[k];
    }
  }
  const int64_t first = layout.picks.empty() ? in.dim() : layout.picks.front();
  auto keep = [&](int64_t d) {
    layout.sizes.push_back(in.size(d));
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
  for (int64_t d = adjacent ? first : 0; d < in.dim(); ++d) {
    if (!picked(d)) keep(d);
  }
  if (static_cast<int64_t>(layout.sizes.size()) > kMaxKernelDims) {
    return invalid_argument("index: expected a result of rank <= ", kMaxKernelDims, ", found ",
                            shape_to_string(layout.sizes), " for input ", in.description());
  }
  return layout;
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

}  // namespace

using namespace kernel_lib;

// --- advanced indexing ------------------------------------------------------------------------

std::string index_tensor_kernel(ModuleSource& module, DType dtype) {
  add_family(module, "index.cuh", kIndexSource);
  return add_entry(
      module, str_cat("kiln_index_", dtype_tag(dtype)), 256,
      "KTensor in, KTensor out, kiln_index::Operands indices, i64 total",
      str_cat("kiln_index::index<", device_type_name(dtype), ">(in, out, indices, total);"));
}

Status launch_index_tensor(cudaKernel_t kernel, const Tensor& in,
                           const std::vector<const Tensor*>& indices, const Tensor& out,
                           cudaStream_t stream) {
  constexpr std::string_view kWhat = "index";
  KILN_RETURN_IF_ERROR(check_rank(in, kWhat));
  KILN_ASSIGN_OR_RETURN(IndexLayout layout, index_layout(in, indices));
  if (out.sizes() != layout.sizes || out.dtype() != in.dtype()) {
    return invalid_argument("index: expected output ", dtype_name(in.dtype()),
                            shape_to_string(layout.sizes), ", found ", out.description());
  }
  KILN_RETURN_IF_ERROR(check_no_broadcast(out, kWhat));
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &out}, kWhat));
  for (const Tensor* index : layout.tensors) {
    KILN_RETURN_IF_ERROR(check_data({index}, kWhat));
  }

  // Every operand laid over the output's dims, then coalesced together.
  const size_t rank = layout.sizes.size(), count = layout.tensors.size();
  const size_t block_at =
      std::find(layout.keeps.begin(), layout.keeps.end(), -1) - layout.keeps.begin();
  std::vector<Shape> strides(2 + count, Shape(rank, 0));
  for (size_t d = 0; d < rank; ++d) {
    if (layout.keeps[d] >= 0) strides[0][d] = in.strides()[layout.keeps[d]];
    strides[1][d] = out.strides()[d];
  }
  for (size_t k = 0; k < count; ++k) {
    const Tensor& index = *layout.tensors[k];
    const size_t lead = layout.block.size() - static_cast<size_t>(index.dim());
    for (int64_t j = 0; j < index.dim(); ++j) {
      if (index.size(j) != 1) strides[2 + k][block_at + lead + j] = index.strides()[j];
    }
  }
  const Walk walk = coalesce(layout.sizes, strides);
  KTensor kin = view(in.raw_data(), walk.sizes, walk.strides[0]);
  KTensor kout = view(out.raw_data(), walk.sizes, walk.strides[1]);
  IndexOperands ops;
  ops.count = static_cast<int32_t>(count);
  for (size_t k = 0; k < count; ++k) {
    const Tensor& index = *layout.tensors[k];
    ops.data[k] = index.raw_data();
    for (size_t d = 0; d < walk.sizes.size(); ++d) ops.strides[k][d] = walk.strides[2 + k][d];
    ops.size[k] = in.size(layout.picks[k]);
    ops.stride[k] = in.strides()[layout.picks[k]];
    ops.wide[k] = index.dtype() == DType::kInt64 ? 1 : 0;
  }
  int64_t total = out.numel();
  void* args[] = {&kin, &kout, &ops, &total};
  return launch_kernel(kernel, dim3(grid_for(total, 256)), dim3(256), 0, stream, args);
}

// --- scans ------------------------------------------------------------------------------------

std::string cumsum_kernel(ModuleSource& module, DType in, DType out) {
  add_family(module, "scan.cuh", kScanSource);
  return add_entry(module, str_cat("kiln_cumsum_", dtype_tag(in), "_", dtype_tag(out)),
                   kBlockRowThreads,
                   "KTensor in, KTensor out, i64 rows, i64 n, i64 xs, i64 ys, int mode",
                   str_cat("kiln_scan::cumsum<", device_type_name(in), ", ", device_type_name(out),
                           ">(in, out, rows, n, xs, ys, mode);"));
}

Status launch_cumsum(cudaKernel_t kernel, const Tensor& in, const Tensor& out, int64_t dim,
                     cudaStream_t stream) {
  constexpr std::string_view kWhat = "cumsum";
  KILN_RETURN_IF_ERROR(check_rank(in, kWhat));
  KILN_RETURN_IF_ERROR(check_same_sizes(in, "input", out, "output", kWhat));
  const int64_t rank = in.dim();
  if (dim < 0 || dim >= std::max<int64_t>(rank, 1)) {
    return invalid_argument("cumsum: expected dim in [0, ", std::max<int64_t>(rank, 1),
                            ") for input ", in.description(), ", found ", dim);
  }
  KILN_RETURN_IF_ERROR(check_no_broadcast(out, kWhat));
  if (in.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &out}, kWhat));

  Shape row_sizes, row_in, row_out;
  for (int64_t d = 0; d < rank; ++d) {
    if (d == dim) continue;
    row_sizes.push_back(in.size(d));
    row_in.push_back(in.strides()[d]);
    row_out.push_back(out.strides()[d]);
  }
  const Walk rows_walk = coalesce(row_sizes, {row_in, row_out});
  int64_t rows = numel_of(rows_walk.sizes);
  int64_t n = rank == 0 ? 1 : in.size(dim);
  int64_t xs = rank == 0 ? 1 : in.strides()[dim], ys = rank == 0 ? 1 : out.strides()[dim];
  KTensor kin = view(in.raw_data(), rows_walk.sizes, rows_walk.strides[0]);
  KTensor kout = view(out.raw_data(), rows_walk.sizes, rows_walk.strides[1]);

  // A thread per row for very short rows, or where neighbouring rows are adjacent in memory and
  // there are enough of them to fill warps; otherwise a warp per row, or a block per long row.
  const int64_t rows_inner = rows_walk.sizes.empty() ? 0 : std::llabs(rows_walk.strides[0].back());
  const bool column = rows > 1 && (n <= 4 || (rows_inner < std::llabs(xs) && rows >= 128));
  int mode;
  dim3 grid, block;
  if (column) {
    mode = kScanColumn;
    block = dim3(256);
    grid = dim3(grid_for(rows, 256));
  } else if (n <= kScanWarpRowMax) {
    mode = kScanWarp;
    block = dim3(256);
    grid = dim3(grid_for(rows, 8));
  } else {
    mode = kScanBlock;
    block = dim3(static_cast<unsigned>(std::clamp<int64_t>(
        pow2_at_least((n + 32 * kScanVec - 1) / (32 * kScanVec)) * 32, 64, kBlockRowThreads)));
    grid = dim3(grid_for(rows, 1));
  }
  void* args[] = {&kin, &kout, &rows, &n, &xs, &ys, &mode};
  return launch_kernel(kernel, grid, block, 0, stream, args);
}

}  // namespace kiln::cuda
