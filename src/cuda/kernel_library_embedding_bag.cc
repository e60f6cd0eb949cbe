// The embedding_bag family's host half (kernel_library_embedding_bag.h).
#include "cuda/kernel_library_embedding_bag.h"

#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

constexpr std::string_view kEmbeddingBagSource =
#include "cuda/kernels/embedding_bag.cuh.inc"
    ;

using namespace kernel_lib;

constexpr int kThreads = 256;

// The host mirror of kiln_embedding_bag::BagArgs.
struct BagArgs {
  int64_t bags, bag_size_len, rows, padding_idx;
  int32_t has_weights;
  int32_t pad_ = 0;
};

std::string_view mode_name(EmbeddingBagMode mode) {
  switch (mode) {
    case EmbeddingBagMode::kSum: return "sum";
    case EmbeddingBagMode::kMean: return "mean";
    case EmbeddingBagMode::kMax: return "max";
  }
  return "?";
}

bool is_float_type(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat16 || dtype == DType::kBFloat16;
}

// The kernel's view of an optional output: null data where it is not written.
KTensor optional_view(const Tensor* t) {
  return t ? view(t->raw_data(), t->sizes(), t->strides()) : KTensor{};
}

Status check_output(const Tensor* t, std::string_view name, const Shape& sizes, DType dtype) {
  if (!t || (t->sizes() == sizes && t->dtype() == dtype)) return ok_status();
  return invalid_argument("embedding_bag: expected ", name, " ", shape_to_string(sizes), " in ",
                          dtype_name(dtype), ", found ", t->description());
}

}  // namespace

std::string embedding_bag_kernel(ModuleSource& module, EmbeddingBagMode mode, DType weight,
                                 DType index) {
  add_family(module, "embedding_bag.cuh", kEmbeddingBagSource);
  return add_entry(
      module,
      str_cat("kiln_embedding_bag_", mode_name(mode), "_", dtype_tag(weight), "_",
              dtype_tag(index)),
      kThreads,
      "KTensor weight, KTensor indices, KTensor offsets, KTensor psw, KTensor out, "
      "KTensor offset2bag, KTensor bag_size, KTensor max_indices, kiln_embedding_bag::BagArgs a, "
      "i64 total",
      str_cat("kiln_embedding_bag::embedding_bag<", static_cast<int>(mode), ", ",
              device_type_name(weight), ", ", device_type_name(index),
              ">(weight, indices, offsets, psw, out, offset2bag, bag_size, max_indices, a, "
              "total);"));
}

Status launch_embedding_bag(cudaKernel_t kernel, const Tensor& weight, const Tensor& indices,
                            const Tensor& offsets, const Tensor* per_sample_weights,
                            const EmbeddingBagOutputs& outputs, const EmbeddingBagParams& params,
                            cudaStream_t stream) {
  constexpr std::string_view kWhat = "embedding_bag";
  if (weight.dim() != 2 || indices.dim() != 1 || offsets.dim() != 1) {
    return invalid_argument(
        "embedding_bag: expected weight [rows, d], indices [n] and offsets [bags], found ",
        weight.description(), ", ", indices.description(), " and ", offsets.description());
  }
  const DType index = indices.dtype();
  if (!is_float_type(weight.dtype()) || (index != DType::kInt32 && index != DType::kInt64) ||
      offsets.dtype() != index) {
    return invalid_argument(
        "embedding_bag: expected a float weight and indices and offsets of one dtype, int32 or "
        "int64, found ",
        weight.description(), ", ", indices.description(), " and ", offsets.description());
  }
  const bool max = params.mode == EmbeddingBagMode::kMax;
  const int64_t n = indices.size(0), d = weight.size(1);
  if (per_sample_weights &&
      (max || params.mode == EmbeddingBagMode::kMean || per_sample_weights->dim() != 1 ||
       per_sample_weights->size(0) != n || per_sample_weights->dtype() != weight.dtype())) {
    return invalid_argument("embedding_bag: expected per_sample_weights [", n, "] in ",
                            dtype_name(weight.dtype()), " with mode sum, found ",
                            per_sample_weights->description(), " with mode ",
                            mode_name(params.mode));
  }
  if (params.include_last_offset && offsets.size(0) < 1) {
    return invalid_argument("embedding_bag: include_last_offset needs at least one offset");
  }
  const int64_t bags = offsets.size(0) - (params.include_last_offset ? 1 : 0);
  KILN_RETURN_IF_ERROR(check_output(outputs.output, "output", {bags, d}, weight.dtype()));
  KILN_RETURN_IF_ERROR(check_output(outputs.offset2bag, "offset2bag", {n}, index));
  KILN_RETURN_IF_ERROR(check_output(outputs.bag_size, "bag_size", {offsets.size(0)}, index));
  KILN_RETURN_IF_ERROR(check_output(outputs.max_indices, "max_indices",
                                    max ? Shape{bags, d} : Shape{0}, index));
  // Eager's kernel has a thread per (bag, feature): with none, it writes nothing at all.
  const int64_t total = bags * d;
  if (total == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_launchable(kernel, {&offsets}, kWhat));
  // Empty tensors (no indices, an empty table) may have no data; nothing reads them then.
  for (const Tensor* t : {&weight, &indices, per_sample_weights, outputs.output,
                          outputs.offset2bag, outputs.bag_size, outputs.max_indices}) {
    if (t && t->numel() > 0) KILN_RETURN_IF_ERROR(check_data({t}, kWhat));
  }
  KTensor kweight = view(weight.raw_data(), weight.sizes(), weight.strides());
  KTensor kindices = view(indices.raw_data(), indices.sizes(), indices.strides());
  KTensor koffsets = view(offsets.raw_data(), offsets.sizes(), offsets.strides());
  KTensor kpsw = optional_view(per_sample_weights);
  KTensor kout = optional_view(outputs.output);
  KTensor ko2b = optional_view(outputs.offset2bag);
  KTensor ksizes = optional_view(outputs.bag_size);
  KTensor karg = optional_view(max ? outputs.max_indices : nullptr);
  BagArgs args{bags, offsets.size(0), weight.size(0), params.padding_idx,
               per_sample_weights ? 1 : 0};
  int64_t count = total;
  void* launch_args[] = {&kweight, &kindices, &koffsets, &kpsw, &kout,
                         &ko2b,    &ksizes,   &karg,     &args, &count};
  return launch_kernel(kernel, dim3(grid_for(total, kThreads)), dim3(kThreads), 0, stream,
                       launch_args);
}

}  // namespace kiln::cuda
