// The kernel library's sort family: sort and topk along one dim (kernel_library_sort.h).
#include "cuda/kernel_library_sort.h"

#include <algorithm>

#include "cuda/cuda_check.h"
#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

constexpr std::string_view kSortSource =
#include "cuda/kernels/sort.cuh.inc"
    ;

constexpr int kSortThreads = 512;  // the entry points' __launch_bounds__
constexpr size_t kPairBytes = sizeof(uint64_t) + sizeof(int32_t);  // a key and an index

constexpr int64_t kLongSortBlocks = 64;
constexpr size_t kLongSortScratchMax = size_t{256} << 20;

}  // namespace

using namespace kernel_lib;

size_t sort_scratch_bytes(int64_t rows, int64_t n) {
  if (n <= kSortRowMax || rows <= 0) return 0;
  const size_t row_bytes = static_cast<size_t>(pow2_at_least(n)) * kPairBytes;
  const int64_t fit = std::max<int64_t>(1, static_cast<int64_t>(kLongSortScratchMax / row_bytes));
  return static_cast<size_t>(std::min({rows, kLongSortBlocks, fit})) * row_bytes;
}

std::string sort_kernel(ModuleSource& module, DType dtype) {
  add_family(module, "sort.cuh", kSortSource);
  return add_entry(module, str_cat("kiln_sort_", dtype_tag(dtype)), kSortThreads,
                   "KTensor in, KTensor values, KTensor indices, i64 rows, int n, int k, int p, "
                   "i64 xs, i64 vs, i64 is, int descending, u64* global_pairs",
                   str_cat("kiln_sort::sort_rows<", device_type_name(dtype),
                           ">(in, values, indices, rows, n, k, p, xs, vs, is, descending, "
                           "global_pairs);"));
}

Status launch_sort(cudaKernel_t kernel, const Tensor& in, const Tensor* values,
                   const Tensor* indices, int64_t dim, bool descending, cudaStream_t stream,
                   void* scratch, size_t scratch_bytes) {
  constexpr std::string_view kWhat = "sort";
  KILN_RETURN_IF_ERROR(check_rank(in, kWhat));
  const int64_t rank = in.dim();
  if (dim < 0 || dim >= std::max<int64_t>(rank, 1)) {
    return invalid_argument("sort: expected dim in [0, ", std::max<int64_t>(rank, 1),
                            ") for input ", in.description(), ", found ", dim);
  }
  const int64_t n = rank == 0 ? 1 : in.size(dim);
  if (n > kSortLongRowMax) {
    return invalid_argument("sort: expected rows of at most ", kSortLongRowMax,
                            " elements along dim ", dim, ", found ", in.description());
  }
  const size_t row_bytes = static_cast<size_t>(pow2_at_least(n)) * kPairBytes;
  if (n > kSortRowMax && (scratch == nullptr || scratch_bytes < row_bytes)) {
    return invalid_argument("sort: rows of ", n, " elements (over ", kSortRowMax,
                            ") need scratch of at least ", row_bytes, " bytes, found ",
                            scratch_bytes);
  }
  // k: the outputs' size along dim, the same for both, at most n; their other dims are in's.
  const Tensor* first = values ? values : indices;
  if (!first) return ok_status();  // nothing is read
  int64_t k = -1;
  if (first->dim() == rank) k = rank == 0 ? 1 : first->size(dim);
  for (const auto& [t, name] : {std::pair{values, "values"}, std::pair{indices, "indices"}}) {
    if (!t) continue;
    bool fits = t->dim() == rank && k >= 0 && k <= n;
    for (int64_t d = 0; fits && d < rank; ++d) {
      fits = t->size(d) == (d == dim ? k : in.size(d));
    }
    if (!fits) {
      return invalid_argument("sort: expected ", name, " with the sizes of input ",
                              in.description(), " but at most ", n, " along dim ", dim,
                              " (the same for values and indices), found ", t->description());
    }
  }
  if (values && values->dtype() != in.dtype()) {
    return invalid_argument("sort: expected values in ", dtype_name(in.dtype()),
                            " like the input, found ", values->description());
  }
  if (indices && indices->dtype() != DType::kInt64) {
    return invalid_argument("sort: expected int64 indices, found ", indices->description());
  }
  const int64_t out_numel = first->numel();
  if (out_numel == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in}, kWhat));
  for (const Tensor* t : {values, indices}) {
    if (t) {
      KILN_RETURN_IF_ERROR(check_data({t}, kWhat));
    }
  }

  // An absent output gets contiguous strides for the walk: they only keep the rows' dims from
  // merging where they would not for the others, and are never followed.
  Shape out_sizes = first->sizes();
  const Shape dense = contiguous_strides(out_sizes);
  const Shape& v_strides = values ? values->strides() : dense;
  const Shape& i_strides = indices ? indices->strides() : dense;
  Shape row_sizes, row_in, row_v, row_i;
  for (int64_t d = 0; d < rank; ++d) {
    if (d == dim) continue;
    row_sizes.push_back(in.size(d));
    row_in.push_back(in.strides()[d]);
    row_v.push_back(v_strides[d]);
    row_i.push_back(i_strides[d]);
  }
  const Walk walk = coalesce(row_sizes, {row_in, row_v, row_i});
  int64_t rows = numel_of(walk.sizes);
  KTensor kin = view(in.raw_data(), walk.sizes, walk.strides[0]);
  KTensor kvalues = view(values ? values->raw_data() : nullptr, walk.sizes, walk.strides[1]);
  KTensor kindices = view(indices ? indices->raw_data() : nullptr, walk.sizes, walk.strides[2]);
  int64_t xs = rank == 0 ? 1 : in.strides()[dim];
  int64_t vs = rank == 0 ? 1 : v_strides[dim];
  int64_t is = rank == 0 ? 1 : i_strides[dim];
  int n32 = static_cast<int>(n), k32 = static_cast<int>(k);
  int p = static_cast<int>(pow2_at_least(n));
  int descending_flag = descending ? 1 : 0;
  const unsigned threads =
      static_cast<unsigned>(std::clamp<int64_t>(p / 2, 32, kSortThreads));
  const bool long_rows = n > kSortRowMax;
  const size_t shared = long_rows ? 0 : static_cast<size_t>(p) * kPairBytes;
  void* global_pairs = long_rows ? scratch : nullptr;
  // Long rows: as many blocks as the scratch holds rows' pairs; each walks rows grid-stride.
  const int64_t blocks =
      long_rows ? std::min<int64_t>(rows, static_cast<int64_t>(scratch_bytes / row_bytes)) : rows;
  void* args[] = {&kin, &kvalues, &kindices, &rows,           &n32,         &k32, &p,
                  &xs,  &vs,      &is,       &descending_flag, &global_pairs};
  return launch_kernel(kernel, dim3(grid_for(blocks, 1)), dim3(threads), shared, stream, args);
}

}  // namespace kiln::cuda
