#include "cuda/kernel_library.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "cuda/cuda_check.h"
#include "cuda/kernel_module.h"
#include "cuda/kernel_sources.h"

namespace kiln::cuda {
namespace {

// The families' device code (kernels/*.cuh), embedded by the build.
constexpr std::string_view kCopySource =
#include "cuda/kernels/copy.cuh.inc"
    ;
constexpr std::string_view kReduceSource =
#include "cuda/kernels/reduce.cuh.inc"
    ;
constexpr std::string_view kSoftmaxSource =
#include "cuda/kernels/softmax.cuh.inc"
    ;
constexpr std::string_view kNormSource =
#include "cuda/kernels/norm.cuh.inc"
    ;
constexpr std::string_view kPoolSource =
#include "cuda/kernels/pool.cuh.inc"
    ;
constexpr std::string_view kGatherSource =
#include "cuda/kernels/gather.cuh.inc"
    ;

// Schedules, as the device code numbers them.
enum RowMode : int { kRowWarp = 0, kRowBlock = 1, kRowLong = 2, kColumn = 3 };
enum ReduceMode : int { kReduceRowWarp = 0, kReduceRowBlock = 1, kReduceColumn = 2 };

constexpr int64_t kMaxGridX = 2147483647;
constexpr int kWarpRowMax = 1024;      // longest row a warp holds in registers (32 per lane)
constexpr int kBlockRowThreads = 512;  // the row kernels' __launch_bounds__
constexpr int kBlockRowMax = 8 * kBlockRowThreads;  // longest row a block holds in registers

// Adds the family's device code after kiln_lib (copy.cuh), which every family builds on.
void add_family(ModuleSource& module, std::string_view file, std::string_view code) {
  module.add_once("copy.cuh", std::string(kCopySource));
  module.add_once(std::string(file), std::string(code));
}

std::string add_entry(ModuleSource& module, const std::string& name, int max_threads,
                      const std::string& params, const std::string& body) {
  module.add_once(name, str_cat("extern \"C\" __global__ void __launch_bounds__(", max_threads,
                                ") ", name, "(", params, ") {\n  ", body, "\n}\n"));
  return name;
}

unsigned grid_for(int64_t units, int64_t per_block) {
  return static_cast<unsigned>(
      std::clamp<int64_t>((units + per_block - 1) / per_block, 1, kMaxGridX));
}

int64_t pow2_at_least(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

// Threads for a block that holds a row of n elements, 8 per thread.
unsigned block_row_threads(int64_t n) {
  return static_cast<unsigned>(
      std::clamp<int64_t>(pow2_at_least((n + 7) / 8), 128, kBlockRowThreads));
}

// A view walked by kernels: size-1 dims dropped, and neighbours merged wherever every operand
// steps through them as one dim (outer stride == inner stride * inner size).
struct Walk {
  Shape sizes;
  std::vector<Shape> strides;  // one per operand
};

Walk coalesce(const Shape& sizes, const std::vector<Shape>& strides) {
  Walk walk;
  walk.strides.resize(strides.size());
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    bool merge = !walk.sizes.empty();
    for (size_t k = 0; k < strides.size() && merge; ++k) {
      merge = walk.strides[k].back() == strides[k][d] * sizes[d];
    }
    if (merge) {
      walk.sizes.back() *= sizes[d];
      for (size_t k = 0; k < strides.size(); ++k) walk.strides[k].back() = strides[k][d];
    } else {
      walk.sizes.push_back(sizes[d]);
      for (size_t k = 0; k < strides.size(); ++k) walk.strides[k].push_back(strides[k][d]);
    }
  }
  return walk;
}

KTensor view(void* data, const Shape& sizes, const Shape& strides) {
  KTensor t;
  t.data = data;
  t.rank = static_cast<int32_t>(sizes.size());
  for (size_t d = 0; d < sizes.size(); ++d) {
    t.sizes[d] = sizes[d];
    t.strides[d] = strides[d];
  }
  return t;
}

Status check_rank(const Tensor& t, std::string_view what) {
  if (t.dim() > kMaxKernelDims) {
    return invalid_argument(what, ": expected a tensor of rank <= ", kMaxKernelDims, ", found ",
                            t.description());
  }
  return ok_status();
}

Status check_same_sizes(const Tensor& a, std::string_view a_name, const Tensor& b,
                        std::string_view b_name, std::string_view what) {
  if (a.sizes() != b.sizes()) {
    return invalid_argument(what, ": expected ", b_name, " with the sizes of ", a_name, " ",
                            a.description(), ", found ", b.description());
  }
  return ok_status();
}

Status check_contiguous(const Tensor& t, std::string_view name, std::string_view what) {
  if (!t.is_contiguous()) {
    return invalid_argument(what, ": expected ", name, " to be contiguous, found ", t.description(),
                            " with strides ", shape_to_string(t.strides()));
  }
  return ok_status();
}

// Checked after the shapes: a launch with nothing to do needs neither data nor a kernel.
Status check_data(std::initializer_list<const Tensor*> tensors, std::string_view what) {
  for (const Tensor* t : tensors) {
    if (t->raw_data() == nullptr) {
      return invalid_argument(what, ": tensor ", t->description(), " has no device data");
    }
  }
  return ok_status();
}
Status check_launchable(cudaKernel_t kernel, std::initializer_list<const Tensor*> tensors,
                        std::string_view what) {
  KILN_RETURN_IF_ERROR(check_data(tensors, what));
  if (kernel == nullptr) return invalid_argument(what, ": no kernel was given");
  return ok_status();
}

int64_t numel_of(const Shape& sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

}  // namespace

// --- module source --------------------------------------------------------------------------

Result<KTensor> make_ktensor(const Tensor& t) {
  if (t.dim() > kMaxKernelDims) {
    return unsupported("CUDA kernels take tensors of rank <= ", kMaxKernelDims, ", found ",
                       t.description());
  }
  return view(t.raw_data(), t.sizes(), t.strides());
}

bool ModuleSource::add_once(const std::string& key, const std::string& code) {
  if (contains(key)) return false;
  keys_.push_back(key);
  pieces_.push_back(code);
  return true;
}

bool ModuleSource::contains(const std::string& key) const {
  return std::find(keys_.begin(), keys_.end(), key) != keys_.end();
}

std::string ModuleSource::text() const {
  std::string text(kernel_prelude());
  for (const std::string& piece : pieces_) {
    text += "\n";
    text += piece;
  }
  return text;
}

std::string_view device_type_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float";
    case DType::kFloat16: return "kiln_half";
    case DType::kBFloat16: return "kiln_bf16";
    case DType::kFloat64: return "double";
    case DType::kInt64: return "i64";
    case DType::kInt32: return "int";
    case DType::kInt16: return "short";
    case DType::kInt8: return "signed char";
    case DType::kUInt8: return "unsigned char";
    case DType::kBool: return "bool";
  }
  return "float";
}

std::string_view dtype_tag(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "f32";
    case DType::kFloat16: return "f16";
    case DType::kBFloat16: return "bf16";
    case DType::kFloat64: return "f64";
    case DType::kInt64: return "i64";
    case DType::kInt32: return "i32";
    case DType::kInt16: return "i16";
    case DType::kInt8: return "i8";
    case DType::kUInt8: return "u8";
    case DType::kBool: return "b8";
  }
  return "f32";
}

// --- reductions -----------------------------------------------------------------------------

std::string reduce_kernel(ModuleSource& module, ReduceOp op, DType in, DType out) {
  static constexpr std::string_view kOps[] = {"sum", "mean", "max", "min", "prod", "any", "all"};
  static constexpr std::string_view kEnums[] = {"kSum",  "kMean", "kMax", "kMin",
                                                "kProd", "kAny",  "kAll"};
  const size_t o = static_cast<size_t>(op);
  add_family(module, "reduce.cuh", kReduceSource);
  const std::string name =
      str_cat("kiln_reduce_", kOps[o], "_", dtype_tag(in), "_", dtype_tag(out));
  return add_entry(
      module, name, 1024, "KTensor in, KTensor out, KTensor red, i64 outputs, i64 count, int mode",
      str_cat("kiln_reduce::reduce<kiln_reduce::", kEnums[o], ", ", device_type_name(in), ", ",
              device_type_name(out), ">(in, out, red, outputs, count, mode);"));
}

Status launch_reduce(cudaKernel_t kernel, const Tensor& in, const Tensor& out_keepdim,
                     cudaStream_t stream) {
  constexpr std::string_view kWhat = "reduce";
  KILN_RETURN_IF_ERROR(check_rank(in, "reduce input"));
  const Tensor& out = out_keepdim;
  if (out.dim() != in.dim()) {
    return invalid_argument("reduce: expected the output in keepdim form, of rank ", in.dim(),
                            " like the input ", in.description(), ", found ", out.description());
  }
  Shape kept_sizes, kept_in, kept_out, red_sizes, red_in;
  for (int64_t d = 0; d < in.dim(); ++d) {
    if (out.size(d) == in.size(d)) {
      kept_sizes.push_back(in.size(d));
      kept_in.push_back(in.strides()[d]);
      kept_out.push_back(out.strides()[d]);
    } else if (out.size(d) == 1) {
      red_sizes.push_back(in.size(d));
      red_in.push_back(in.strides()[d]);
    } else {
      return invalid_argument("reduce: output ", out.description(), " dim ", d, " has size ",
                              out.size(d), "; expected ", in.size(d),
                              " (kept) or 1 (reduced) for input ", in.description());
    }
  }
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &out}, kWhat));

  const Walk kept = coalesce(kept_sizes, {kept_in, kept_out});
  Walk red = coalesce(red_sizes, {red_in});
  if (red.sizes.empty()) red = Walk{{1}, {{1}}};
  const int64_t outputs = numel_of(kept.sizes), count = numel_of(red.sizes);
  KTensor kin = view(in.raw_data(), kept.sizes, kept.strides[0]);
  KTensor kout = view(out.raw_data(), kept.sizes, kept.strides[1]);
  KTensor kred = view(nullptr, red.sizes, red.strides[0]);

  const bool contiguous_rows = red.sizes.size() == 1 && red.strides[0][0] == 1;
  const int64_t red_inner = std::llabs(red.strides[0].back());
  const int64_t kept_inner = kept.sizes.empty() ? 0 : std::llabs(kept.strides[0].back());
  // A thread per output when the outputs' inputs lie closer together than a row's elements and
  // there are enough outputs to fill the 32 lanes; otherwise a warp or block per output.
  const bool column =
      outputs > 1 && (count <= 8 || (!contiguous_rows && kept_inner < red_inner && outputs >= 32));
  int mode;
  dim3 grid, block;
  if (column) {
    const int64_t blocks = (outputs + 31) / 32;
    int64_t ny = 1;
    while (ny < 32 && ny * 16 <= count && blocks * ny < 2048) ny *= 2;
    mode = kReduceColumn;
    block = dim3(32, static_cast<unsigned>(ny));
    grid = dim3(grid_for(outputs, 32));
  } else if (count > 1024 || (count > 256 && outputs < 1024)) {
    mode = kReduceRowBlock;
    block = dim3(static_cast<unsigned>(std::clamp<int64_t>(pow2_at_least(count / 8), 64, 1024)));
    grid = dim3(grid_for(outputs, 1));
  } else {
    mode = kReduceRowWarp;
    block = dim3(256);
    grid = dim3(grid_for(outputs, 8));
  }
  int64_t n_outputs = outputs, n_count = count;
  void* args[] = {&kin, &kout, &kred, &n_outputs, &n_count, &mode};
  return launch_kernel(kernel, grid, block, 0, stream, args);
}

// --- softmax ----------------------------------------------------------------------------------

std::string softmax_kernel(ModuleSource& module, DType in, DType out, bool log) {
  add_family(module, "softmax.cuh", kSoftmaxSource);
  const std::string name =
      str_cat("kiln_softmax_", dtype_tag(in), "_", dtype_tag(out), log ? "_log" : "");
  return add_entry(
      module, name, kBlockRowThreads,
      "KTensor in, KTensor out, i64 rows, i64 n, i64 xs, i64 ys, int mode",
      str_cat("kiln_softmax::softmax<", device_type_name(in), ", ", device_type_name(out), ", ",
              log ? "true" : "false", ">(in, out, rows, n, xs, ys, mode);"));
}

Status launch_softmax(cudaKernel_t kernel, const Tensor& in, const Tensor& out, int64_t dim,
                      cudaStream_t stream) {
  constexpr std::string_view kWhat = "softmax";
  KILN_RETURN_IF_ERROR(check_rank(in, kWhat));
  KILN_RETURN_IF_ERROR(check_same_sizes(in, "input", out, "output", kWhat));
  const int64_t rank = in.dim();
  if (dim < 0 || dim >= std::max<int64_t>(rank, 1)) {
    return invalid_argument("softmax: expected dim in [0, ", std::max<int64_t>(rank, 1),
                            ") for input ", in.description(), ", found ", dim);
  }
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
  if (n == 1) xs = ys = 1;
  KTensor kin = view(in.raw_data(), rows_walk.sizes, rows_walk.strides[0]);
  KTensor kout = view(out.raw_data(), rows_walk.sizes, rows_walk.strides[1]);

  const int64_t rows_inner = rows_walk.sizes.empty() ? 0 : std::llabs(rows_walk.strides[0].back());
  const bool contiguous = xs == 1 && ys == 1;
  // A thread per row for very short rows, or for strided rows whose neighbours are adjacent.
  const bool column =
      rows > 1 && (n <= 8 || (!contiguous && rows_inner < std::llabs(xs) && rows >= 128));
  int mode;
  dim3 grid, block;
  if (column) {
    mode = kColumn;
    block = dim3(256);
    grid = dim3(grid_for(rows, 256));
  } else if (n <= kWarpRowMax) {
    mode = kRowWarp;
    block = dim3(256);
    grid = dim3(grid_for(rows, 8));
  } else if (n <= kBlockRowMax) {
    mode = kRowBlock;
    block = dim3(block_row_threads(n));
    grid = dim3(grid_for(rows, 1));
  } else {
    mode = kRowLong;
    block = dim3(kBlockRowThreads);
    grid = dim3(grid_for(rows, 1));
  }
  void* args[] = {&kin, &kout, &rows, &n, &xs, &ys, &mode};
  return launch_kernel(kernel, grid, block, 0, stream, args);
}

std::string attention_softmax_kernel(ModuleSource& module, DType scores,
                                     std::optional<DType> mask) {
  add_family(module, "softmax.cuh", kSoftmaxSource);
  const std::string name = str_cat("kiln_attention_softmax_", dtype_tag(scores),
                                   mask ? str_cat("_mask_", dtype_tag(*mask)) : std::string());
  const std::string_view mask_type = mask ? device_type_name(*mask) : "float";
  return add_entry(
      module, name, kBlockRowThreads,
      "char* scores, i64 rows, i64 heads, i64 lq, i64 lk, KTensor mask, float scale, int causal, "
      "int mode",
      str_cat("kiln_softmax::attention_softmax<", device_type_name(scores), ", ", mask_type, ", ",
              mask ? "true" : "false",
              ">(scores, rows, heads, lq, lk, mask, scale, causal, mode);"));
}

Status launch_attention_softmax(cudaKernel_t kernel, const Tensor& scores, const Tensor* mask,
                                float scale, bool causal, cudaStream_t stream) {
  constexpr std::string_view kWhat = "attention softmax";
  if (scores.dim() != 4) {
    return invalid_argument("attention softmax: expected scores [B, H, Lq, Lk], found ",
                            scores.description());
  }
  KILN_RETURN_IF_ERROR(check_contiguous(scores, "scores", kWhat));
  KTensor kmask;
  if (mask) {
    if (mask->dim() > 4) {
      return invalid_argument("attention softmax: expected a mask of rank <= 4, found ",
                              mask->description());
    }
    if (mask->dtype() != DType::kBool && !is_floating(mask->dtype())) {
      return invalid_argument("attention softmax: expected a bool or floating mask, found ",
                              mask->description());
    }
    // Right-aligned broadcast to the scores' four dims.
    kmask.data = mask->raw_data();
    kmask.rank = 4;
    const int64_t lead = 4 - mask->dim();
    for (int64_t d = 0; d < 4; ++d) {
      kmask.sizes[d] = scores.size(d);
      if (d < lead) continue;
      const int64_t size = mask->size(d - lead);
      if (size == scores.size(d)) {
        kmask.strides[d] = size == 1 ? 0 : mask->strides()[d - lead];
      } else if (size != 1) {
        return invalid_argument("attention softmax: mask ", mask->description(),
                                " does not broadcast to scores ", scores.description());
      }
    }
  }
  int64_t heads = scores.size(1), lq = scores.size(2), lk = scores.size(3);
  int64_t rows = scores.size(0) * heads * lq;
  if (scores.numel() == 0) return ok_status();
  if (mask) {
    KILN_RETURN_IF_ERROR(check_launchable(kernel, {&scores, mask}, kWhat));
  } else {
    KILN_RETURN_IF_ERROR(check_launchable(kernel, {&scores}, kWhat));
  }
  int mode;
  dim3 grid, block;
  if (lk <= kWarpRowMax) {
    mode = kRowWarp;
    block = dim3(256);
    grid = dim3(grid_for(rows, 8));
  } else if (lk <= kBlockRowMax) {
    mode = kRowBlock;
    block = dim3(block_row_threads(lk));
    grid = dim3(grid_for(rows, 1));
  } else {
    mode = kRowLong;
    block = dim3(kBlockRowThreads);
    grid = dim3(grid_for(rows, 1));
  }
  void* data = scores.raw_data();
  int causal_flag = causal ? 1 : 0;
  void* args[] = {&data, &rows, &heads, &lq, &lk, &kmask, &scale, &causal_flag, &mode};
  return launch_kernel(kernel, grid, block, 0, stream, args);
}

// --- normalization ----------------------------------------------------------------------------

std::string layer_norm_kernel(ModuleSource& module, DType dtype, bool has_weight, bool has_bias,
                              bool rms) {
  add_family(module, "norm.cuh", kNormSource);
  const std::string name = str_cat(rms ? "kiln_rms_norm_" : "kiln_layer_norm_", dtype_tag(dtype),
                                   has_weight ? "_w" : "", has_bias ? "_b" : "");
  const std::string_view t = device_type_name(dtype);
  return add_entry(module, name, kBlockRowThreads,
                   str_cat("const ", t, "* x, const ", t, "* w, const ", t, "* b, ", t,
                           "* y, i64 rows, i64 n, float eps, int mode"),
                   str_cat("kiln_norm::norm<", t, ", ", has_weight ? "true" : "false", ", ",
                           has_bias ? "true" : "false", ", ", rms ? "true" : "false",
                           ">(x, w, b, y, rows, n, eps, mode);"));
}

Status launch_layer_norm(cudaKernel_t kernel, const Tensor& x, const Tensor* weight,
                         const Tensor* bias, const Tensor& out, int64_t normalized_numel,
                         double eps, cudaStream_t stream) {
  constexpr std::string_view kWhat = "layer norm";
  KILN_RETURN_IF_ERROR(check_same_sizes(x, "input", out, "output", kWhat));
  KILN_RETURN_IF_ERROR(check_contiguous(x, "the input", kWhat));
  KILN_RETURN_IF_ERROR(check_contiguous(out, "the output", kWhat));
  if (out.dtype() != x.dtype()) {
    return invalid_argument("layer norm: expected output ", out.description(), " in ",
                            dtype_name(x.dtype()), " like the input");
  }
  // normalized_numel must be the product of a run of trailing dims.
  int64_t trailing = 1;
  for (int64_t d = x.dim(); d-- > 0 && trailing < normalized_numel;) trailing *= x.size(d);
  if (normalized_numel <= 0 || trailing != normalized_numel) {
    return invalid_argument(
        "layer norm: expected normalized_numel to be the element count of "
        "trailing dims of ",
        x.description(), ", found ", normalized_numel);
  }
  for (const auto& [t, name] : {std::pair{weight, "weight"}, std::pair{bias, "bias"}}) {
    if (!t) continue;
    if (t->numel() != normalized_numel || t->dtype() != x.dtype()) {
      return invalid_argument("layer norm: expected ", name, " of ", normalized_numel, " ",
                              dtype_name(x.dtype()), " elements, found ", t->description());
    }
    KILN_RETURN_IF_ERROR(check_contiguous(*t, name, kWhat));
  }
  if (x.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&x, &out}, kWhat));
  for (const Tensor* t : {weight, bias}) {
    if (t) {
      KILN_RETURN_IF_ERROR(check_data({t}, kWhat));
    }
  }
  int64_t n = normalized_numel, rows = x.numel() / n;
  int mode;
  dim3 grid, block;
  if (n <= kWarpRowMax) {
    mode = kRowWarp;
    block = dim3(256);
    grid = dim3(grid_for(rows, 8));
  } else if (n <= kBlockRowMax) {
    mode = kRowBlock;
    block = dim3(block_row_threads(n));
    grid = dim3(grid_for(rows, 1));
  } else {
    mode = kRowLong;
    block = dim3(kBlockRowThreads);
    grid = dim3(grid_for(rows, 1));
  }
  void* xp = x.raw_data();
  void* wp = weight ? weight->raw_data() : nullptr;
  void* bp = bias ? bias->raw_data() : nullptr;
  void* yp = out.raw_data();
  float eps_f = static_cast<float>(eps);
  void* args[] = {&xp, &wp, &bp, &yp, &rows, &n, &eps_f, &mode};
  return launch_kernel(kernel, grid, block, 0, stream, args);
}

// --- pooling ----------------------------------------------------------------------------------

namespace {

// The host mirror of kiln_pool::Window (pool.cuh).
struct PoolWindow {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  int64_t divisor_override;
  int32_t count_include_pad;
  int32_t pad_ = 0;
};

Status check_pool_tensors(const Tensor& in, const Tensor& out, std::string_view what) {
  if (in.dim() != 4 || out.dim() != 4) {
    return invalid_argument(what, ": expected 4-D input and output [N, C, H, W], found ",
                            in.description(), " and ", out.description());
  }
  if (in.size(0) != out.size(0) || in.size(1) != out.size(1) || in.dtype() != out.dtype()) {
    return invalid_argument(what, ": expected output [", in.size(0), ", ", in.size(1),
                            ", Ho, Wo] in ", dtype_name(in.dtype()), " for input ",
                            in.description(), ", found ", out.description());
  }
  return ok_status();
}

// Channels-last inputs number outputs with C innermost, so neighbouring threads read neighbours.
int channels_last(const Tensor& in) {
  return in.size(1) > 1 && in.strides()[1] == 1 ? 1 : 0;
}

}  // namespace

std::string pool2d_kernel(ModuleSource& module, PoolKind kind, DType dtype) {
  add_family(module, "pool.cuh", kPoolSource);
  const bool max = kind == PoolKind::kMax;
  const std::string name = str_cat(max ? "kiln_max_pool2d_" : "kiln_avg_pool2d_", dtype_tag(dtype));
  return add_entry(module, name, 256,
                   "KTensor in, KTensor out, kiln_pool::Window win, i64 total, int channels_last",
                   str_cat("kiln_pool::pool<", max ? 0 : 1, ", ", device_type_name(dtype),
                           ">(in, out, win, total, channels_last);"));
}

Status launch_pool2d(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                     const Pool2dParams& params, cudaStream_t stream) {
  constexpr std::string_view kWhat = "pool2d";
  KILN_RETURN_IF_ERROR(check_pool_tensors(in, out, kWhat));
  for (int i = 0; i < 2; ++i) {
    if (params.kernel[i] < 1 || params.stride[i] < 1 || params.dilation[i] < 1 ||
        params.padding[i] < 0) {
      return invalid_argument(
          "pool2d: expected kernel, stride and dilation >= 1 and padding >= 0, "
          "found kernel ",
          params.kernel[i], ", stride ", params.stride[i], ", dilation ", params.dilation[i],
          ", padding ", params.padding[i]);
    }
    if (params.padding[i] * 2 > params.kernel[i]) {
      return invalid_argument(
          "pool2d: expected padding at most half the kernel size (PyTorch's "
          "rule), found padding ",
          params.padding[i], " for kernel ", params.kernel[i]);
    }
  }
  if (params.divisor_override < 0) {
    return invalid_argument("pool2d: expected divisor_override >= 0 (0: none), found ",
                            params.divisor_override);
  }
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &out}, kWhat));
  KTensor kin = view(in.raw_data(), in.sizes(), in.strides());
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  PoolWindow win{params.kernel[0],        params.kernel[1],
                 params.stride[0],        params.stride[1],
                 params.padding[0],       params.padding[1],
                 params.dilation[0],      params.dilation[1],
                 params.divisor_override, params.count_include_pad ? 1 : 0};
  int64_t total = out.numel();
  int layout = channels_last(in);
  void* args[] = {&kin, &kout, &win, &total, &layout};
  return launch_kernel(kernel, dim3(grid_for(total, 256)), dim3(256), 0, stream, args);
}

std::string adaptive_avg_pool2d_kernel(ModuleSource& module, DType dtype) {
  add_family(module, "pool.cuh", kPoolSource);
  return add_entry(module, str_cat("kiln_adaptive_avg_pool2d_", dtype_tag(dtype)), 256,
                   "KTensor in, KTensor out, i64 total, int channels_last",
                   str_cat("kiln_pool::Window win = {};\n  kiln_pool::pool<2, ",
                           device_type_name(dtype), ">(in, out, win, total, channels_last);"));
}

Status launch_adaptive_avg_pool2d(cudaKernel_t kernel, const Tensor& in, const Tensor& out,
                                  cudaStream_t stream) {
  constexpr std::string_view kWhat = "adaptive_avg_pool2d";
  KILN_RETURN_IF_ERROR(check_pool_tensors(in, out, kWhat));
  if (out.numel() == 0) return ok_status();
  if (in.size(2) == 0 || in.size(3) == 0) {
    return invalid_argument("adaptive_avg_pool2d: expected a non-empty input plane, found ",
                            in.description());
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &out}, kWhat));
  KTensor kin = view(in.raw_data(), in.sizes(), in.strides());
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  int64_t total = out.numel();
  int layout = channels_last(in);
  void* args[] = {&kin, &kout, &total, &layout};
  return launch_kernel(kernel, dim3(grid_for(total, 256)), dim3(256), 0, stream, args);
}

// --- gathers ----------------------------------------------------------------------------------

namespace {

Status check_index_dtype(const Tensor& index, std::string_view what) {
  if (index.dtype() != DType::kInt64 && index.dtype() != DType::kInt32) {
    return invalid_argument(what, ": expected int64 or int32 indices, found ", index.description());
  }
  return ok_status();
}

}  // namespace

std::string embedding_kernel(ModuleSource& module, DType weight, DType index) {
  add_family(module, "gather.cuh", kGatherSource);
  return add_entry(
      module, str_cat("kiln_embedding_", dtype_tag(weight), "_", dtype_tag(index)), 256,
      "const char* weight, KTensor indices, char* out, i64 vocab, i64 row_bytes, i64 rows, "
      "int unit",
      str_cat("kiln_gather::embedding<", device_type_name(index),
              ">(weight, indices, out, vocab, row_bytes, rows, unit);"));
}

Status launch_embedding(cudaKernel_t kernel, const Tensor& weight, const Tensor& indices,
                        const Tensor& out, cudaStream_t stream) {
  constexpr std::string_view kWhat = "embedding";
  if (weight.dim() != 2) {
    return invalid_argument("embedding: expected a [V, D] weight, found ", weight.description());
  }
  KILN_RETURN_IF_ERROR(check_contiguous(weight, "the weight", kWhat));
  KILN_RETURN_IF_ERROR(check_index_dtype(indices, kWhat));
  KILN_RETURN_IF_ERROR(check_rank(indices, "embedding indices"));
  Shape expected = indices.sizes();
  expected.push_back(weight.size(1));
  if (out.sizes() != expected || out.dtype() != weight.dtype()) {
    return invalid_argument("embedding: expected output ", dtype_name(weight.dtype()),
                            shape_to_string(expected), ", found ", out.description());
  }
  KILN_RETURN_IF_ERROR(check_contiguous(out, "the output", kWhat));
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&weight, &indices, &out}, kWhat));
  const void* wp = weight.raw_data();
  void* yp = out.raw_data();
  int64_t row_bytes = weight.size(1) * static_cast<int64_t>(dtype_size(weight.dtype()));
  int unit = 16;
  while (unit > 1 && (row_bytes % unit != 0 || reinterpret_cast<uintptr_t>(wp) % unit != 0 ||
                      reinterpret_cast<uintptr_t>(yp) % unit != 0)) {
    unit /= 2;
  }
  const int64_t units = row_bytes / unit;
  const unsigned tx = static_cast<unsigned>(std::clamp<int64_t>(pow2_at_least(units), 32, 256));
  const unsigned ty = 256 / tx;
  KTensor kindices = view(indices.raw_data(), indices.sizes(), indices.strides());
  int64_t vocab = weight.size(0), rows = indices.numel();
  void* args[] = {&wp, &kindices, &yp, &vocab, &row_bytes, &rows, &unit};
  return launch_kernel(kernel, dim3(grid_for(rows, ty)), dim3(tx, ty), 0, stream, args);
}

std::string index_select_kernel(ModuleSource& module, DType dtype, DType index) {
  add_family(module, "gather.cuh", kGatherSource);
  const std::string_view i = device_type_name(index);
  return add_entry(module, str_cat("kiln_index_select_", dtype_tag(dtype), "_", dtype_tag(index)),
                   256,
                   str_cat("KTensor in, KTensor out, const ", i,
                           "* index, i64 index_stride, int dim, i64 total"),
                   str_cat("kiln_gather::index_select<", device_type_name(dtype), ", ", i,
                           ">(in, out, index, index_stride, dim, total);"));
}

Status launch_index_select(cudaKernel_t kernel, const Tensor& in, int64_t dim, const Tensor& index,
                           const Tensor& out, cudaStream_t stream) {
  constexpr std::string_view kWhat = "index_select";
  KILN_RETURN_IF_ERROR(check_rank(in, kWhat));
  if (in.dim() == 0 || dim < 0 || dim >= in.dim()) {
    return invalid_argument("index_select: expected dim in [0, ", in.dim(), ") of input ",
                            in.description(), ", found ", dim);
  }
  KILN_RETURN_IF_ERROR(check_index_dtype(index, kWhat));
  if (index.dim() > 1) {
    return invalid_argument("index_select: expected a 1-D index, found ", index.description());
  }
  Shape expected = in.sizes();
  expected[dim] = index.numel();
  if (out.sizes() != expected || out.dtype() != in.dtype()) {
    return invalid_argument("index_select: expected output ", dtype_name(in.dtype()),
                            shape_to_string(expected), ", found ", out.description());
  }
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&in, &index, &out}, kWhat));
  KTensor kin = view(in.raw_data(), in.sizes(), in.strides());
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  void* ip = index.raw_data();
  int64_t index_stride = index.dim() == 1 ? index.strides()[0] : 0;
  int d = static_cast<int>(dim);
  int64_t total = out.numel();
  void* args[] = {&kin, &kout, &ip, &index_stride, &d, &total};
  return launch_kernel(kernel, dim3(grid_for(total, 256)), dim3(256), 0, stream, args);
}

// --- data movement ----------------------------------------------------------------------------

std::string copy_kernel(ModuleSource& module, DType src, DType dst) {
  add_family(module, "copy.cuh", kCopySource);
  return add_entry(module, str_cat("kiln_copy_", dtype_tag(src), "_", dtype_tag(dst)), 256,
                   "KTensor src, KTensor dst, i64 n, int flat",
                   str_cat("kiln_copy::copy<", device_type_name(src), ", ", device_type_name(dst),
                           ">(src, dst, n, flat);"));
}

std::string mask_bias_kernel(ModuleSource& module, DType bias) {
  add_family(module, "copy.cuh", kCopySource);
  return add_entry(module, str_cat("kiln_mask_bias_", dtype_tag(bias)), 256,
                   "KTensor src, KTensor dst, i64 n, int flat",
                   str_cat("kiln_copy::copy<bool, ", device_type_name(bias),
                           ", kiln_copy::MaskBiasOp<", device_type_name(bias),
                           ">>(src, dst, n, flat);"));
}

Status launch_copy(cudaKernel_t kernel, const Tensor& src, const Tensor& dst, cudaStream_t stream) {
  constexpr std::string_view kWhat = "copy";
  KILN_RETURN_IF_ERROR(check_rank(src, kWhat));
  KILN_RETURN_IF_ERROR(check_same_sizes(src, "source", dst, "destination", kWhat));
  for (int64_t d = 0; d < dst.dim(); ++d) {
    if (dst.size(d) > 1 && dst.strides()[d] == 0) {
      return invalid_argument(
          "copy: expected a destination without broadcast (stride 0) dims, "
          "found ",
          dst.description(), " with strides ", shape_to_string(dst.strides()));
    }
  }
  if (dst.numel() == 0) return ok_status();
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    KILN_RETURN_IF_ERROR(check_data({&src, &dst}, kWhat));
    KILN_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.nbytes(),
                                    cudaMemcpyDeviceToDevice, stream));
    return ok_status();
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&src, &dst}, kWhat));
  const Walk walk = coalesce(dst.sizes(), {src.strides(), dst.strides()});
  KTensor ksrc = view(src.raw_data(), walk.sizes, walk.strides[0]);
  KTensor kdst = view(dst.raw_data(), walk.sizes, walk.strides[1]);
  int flat = walk.sizes.size() <= 1 &&
             (walk.sizes.empty() || (walk.strides[0][0] == 1 && walk.strides[1][0] == 1));
  int64_t n = dst.numel();
  void* args[] = {&ksrc, &kdst, &n, &flat};
  return launch_kernel(kernel, dim3(grid_for(n, 256)), dim3(256), 0, stream, args);
}

std::string fill_kernel(ModuleSource& module, DType dtype) {
  add_family(module, "copy.cuh", kCopySource);
  return add_entry(module, str_cat("kiln_fill_", dtype_tag(dtype)), 256,
                   "KTensor out, double value, i64 n, int flat",
                   str_cat("kiln_copy::fill<", device_type_name(dtype), ">(out, value, n, flat);"));
}

Status launch_fill(cudaKernel_t kernel, const Tensor& out, double value, cudaStream_t stream) {
  constexpr std::string_view kWhat = "fill";
  KILN_RETURN_IF_ERROR(check_rank(out, kWhat));
  if (out.numel() == 0) return ok_status();
  // Zero is all-zero bytes in every dtype.
  if (value == 0.0 && !std::signbit(value) && out.is_contiguous()) {
    KILN_RETURN_IF_ERROR(check_data({&out}, kWhat));
    KILN_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, out.nbytes(), stream));
    return ok_status();
  }
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&out}, kWhat));
  const Walk walk = coalesce(out.sizes(), {out.strides()});
  KTensor kout = view(out.raw_data(), walk.sizes, walk.strides[0]);
  int flat = walk.sizes.size() <= 1 && (walk.sizes.empty() || walk.strides[0][0] == 1);
  int64_t n = out.numel();
  void* args[] = {&kout, &value, &n, &flat};
  return launch_kernel(kernel, dim3(grid_for(n, 256)), dim3(256), 0, stream, args);
}

std::string arange_kernel(ModuleSource& module, DType dtype) {
  add_family(module, "copy.cuh", kCopySource);
  return add_entry(module, str_cat("kiln_arange_", dtype_tag(dtype)), 256,
                   "KTensor out, double start, double step",
                   str_cat("kiln_copy::arange<", device_type_name(dtype), ">(out, start, step);"));
}

Status launch_arange(cudaKernel_t kernel, const Tensor& out, double start, double step,
                     cudaStream_t stream) {
  if (out.dim() != 1) {
    return invalid_argument("arange: expected a 1-D output, found ", out.description());
  }
  if (out.numel() == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&out}, "arange"));
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  void* args[] = {&kout, &start, &step};
  return launch_kernel(kernel, dim3(grid_for(out.numel(), 256)), dim3(256), 0, stream, args);
}

}  // namespace kiln::cuda
