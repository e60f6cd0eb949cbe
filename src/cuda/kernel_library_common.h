// What the kernel library's files (kernel_library.cc, kernel_library_rows.cc,
// kernel_library_spatial.cc) share: adding a family's device code and entry points to a module,
// launch geometry, views walked by kernels, and the argument checks every launch makes first.
// Internal to the library; users include kernel_library.h.
#pragma once

#include <cuda_runtime_api.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "cuda/kernel_library.h"

namespace kiln::cuda::kernel_lib {

// Schedules, as the device code numbers them.
enum RowMode : int { kRowWarp = 0, kRowBlock = 1, kRowLong = 2, kColumn = 3 };
enum ReduceMode : int { kReduceRowWarp = 0, kReduceRowBlock = 1, kReduceColumn = 2 };

inline constexpr int64_t kMaxGridX = 2147483647;
inline constexpr int kWarpRowMax = 1024;      // longest row a warp holds in registers (32 per lane)
inline constexpr int kBlockRowThreads = 512;  // the row kernels' __launch_bounds__
inline constexpr int kBlockRowMax = 8 * kBlockRowThreads;  // longest row a block holds in registers

// Adds the family's device code after kiln_lib (copy.cuh), which every family builds on.
void add_family(ModuleSource& module, std::string_view file, std::string_view code);
// Adds `extern "C" __global__ void name(params) { body }` once; returns name.
std::string add_entry(ModuleSource& module, const std::string& name, int max_threads,
                      const std::string& params, const std::string& body);

unsigned grid_for(int64_t units, int64_t per_block);
int64_t pow2_at_least(int64_t v);
// Threads for a block that holds a row of n elements, 8 per thread.
unsigned block_row_threads(int64_t n);

// How a row kernel (softmax, attention softmax, norms) covers `rows` rows of `n` elements: a
// warp per row while a row fits a warp's registers, a block per row while it fits a block's,
// else a block looping over a long row.
struct RowLaunch {
  int mode = kRowWarp;
  dim3 grid, block;
};
RowLaunch row_launch(int64_t rows, int64_t n);

// A view walked by kernels: size-1 dims dropped, and neighbours merged wherever every operand
// steps through them as one dim (outer stride == inner stride * inner size).
struct Walk {
  Shape sizes;
  std::vector<Shape> strides;  // one per operand
};
Walk coalesce(const Shape& sizes, const std::vector<Shape>& strides);
KTensor view(void* data, const Shape& sizes, const Shape& strides);

Status check_rank(const Tensor& t, std::string_view what);
Status check_same_sizes(const Tensor& a, std::string_view a_name, const Tensor& b,
                        std::string_view b_name, std::string_view what);
Status check_contiguous(const Tensor& t, std::string_view name, std::string_view what);
// Checked after the shapes: a launch with nothing to do needs neither data nor a kernel.
Status check_data(std::initializer_list<const Tensor*> tensors, std::string_view what);
Status check_launchable(cudaKernel_t kernel, std::initializer_list<const Tensor*> tensors,
                        std::string_view what);
int64_t numel_of(const Shape& sizes);

}  // namespace kiln::cuda::kernel_lib
