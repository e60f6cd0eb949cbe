// The random family's host half (kernel_library_random.h).
#include "cuda/kernel_library_random.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "cuda/cuda_check.h"
#include "cuda/kernel_library_common.h"
#include "cuda/kernel_module.h"

namespace kiln::cuda {
namespace {

constexpr std::string_view kRandomSource =
#include "cuda/kernels/random.cuh.inc"
    ;

using namespace kernel_lib;

constexpr int kThreads = 256;          // the element kernels' __launch_bounds__
constexpr int kRandpermThreads = 512;  // randperm's block, at most

void add_random(ModuleSource& module) { add_family(module, "random.cuh", kRandomSource); }

bool is_float_type(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat16 || dtype == DType::kBFloat16;
}

// The draw kernel, then the advance of the state by the draws it used.
Status launch_with_advance(cudaKernel_t kernel, cudaKernel_t advance, dim3 grid, dim3 block,
                           size_t shared, cudaStream_t stream, void** args,
                           GeneratorState* state, int64_t draws) {
  KILN_RETURN_IF_ERROR(launch_kernel(kernel, grid, block, shared, stream, args));
  uint64_t used = static_cast<uint64_t>(draws);
  void* advance_args[] = {&state, &used};
  return launch_kernel(advance, dim3(1), dim3(1), 0, stream, advance_args);
}

// What every launch needs beyond its tensors: both kernels and a state.
Status check_generator(cudaKernel_t kernel, cudaKernel_t advance, const GeneratorState* state,
                       std::string_view what) {
  if (kernel == nullptr || advance == nullptr) {
    return invalid_argument(what, ": no kernel was given (the draw and the advance are needed)");
  }
  if (state == nullptr) return invalid_argument(what, ": no generator state was given");
  return ok_status();
}

}  // namespace

// --- generator states ---------------------------------------------------------------------------

DeviceGenerators::~DeviceGenerators() {
  // Errors are dropped: at process exit the CUDA runtime may already be gone, and a destructor
  // has no one to report to.
  int current = -1;
  const bool known = cudaGetDevice(&current) == cudaSuccess;
  for (const auto& [device, state] : states_) {
    if (cudaSetDevice(device) == cudaSuccess) cudaFree(state);
  }
  if (known) cudaSetDevice(current);
  cudaGetLastError();
}

Result<GeneratorState*> DeviceGenerators::current() {
  int device = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = states_.find(device); it != states_.end()) return it->second;
  std::random_device entropy;
  GeneratorState seeded;
  seeded.seed = (static_cast<uint64_t>(entropy()) << 32) ^ static_cast<uint64_t>(entropy());
  void* memory = nullptr;
  KILN_CUDA_CHECK(cudaMalloc(&memory, sizeof(GeneratorState)));
  auto* state = static_cast<GeneratorState*>(memory);
  if (cudaError_t error = cudaMemcpy(state, &seeded, sizeof(seeded), cudaMemcpyHostToDevice);
      error != cudaSuccess) {
    cudaFree(memory);
    return cuda_status(error, "cudaMemcpy(generator state)");
  }
  states_[device] = state;
  return state;
}

std::string generator_advance_kernel(ModuleSource& module) {
  add_random(module);
  return add_entry(module, "kiln_random_advance", 32,
                   "kiln_random::State* state, u64 draws",
                   "kiln_random::advance(state, draws);");
}

int64_t rand_draws(int64_t numel) { return (numel + 3) / 4; }
int64_t randperm_draws(int64_t n) { return (n + 1) / 2; }
int64_t dropout_draws(int64_t numel) { return (numel + 1) / 2; }

// --- rand, randn --------------------------------------------------------------------------------

std::string rand_kernel(ModuleSource& module, RandomDistribution distribution, DType dtype) {
  add_random(module);
  const bool normal = distribution == RandomDistribution::kNormal;
  return add_entry(module, str_cat(normal ? "kiln_randn_" : "kiln_rand_", dtype_tag(dtype)),
                   kThreads, "KTensor out, i64 n, const kiln_random::State* state",
                   str_cat("kiln_random::", normal ? "randn" : "rand", "<",
                           device_type_name(dtype), ">(out, n, state);"));
}

Status launch_rand(cudaKernel_t kernel, cudaKernel_t advance, const Tensor& out,
                   GeneratorState* state, cudaStream_t stream) {
  constexpr std::string_view kWhat = "rand";
  KILN_RETURN_IF_ERROR(check_rank(out, kWhat));
  if (!is_float_type(out.dtype())) {
    return invalid_argument("rand: expected a float32, float16 or bfloat16 output, found ",
                            out.description());
  }
  int64_t n = out.numel();
  if (n == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_data({&out}, kWhat));
  KILN_RETURN_IF_ERROR(check_generator(kernel, advance, state, kWhat));
  const Walk walk = coalesce(out.sizes(), {out.strides()});
  KTensor kout = view(out.raw_data(), walk.sizes, walk.strides[0]);
  const int64_t draws = rand_draws(n);
  void* args[] = {&kout, &n, &state};
  return launch_with_advance(kernel, advance, dim3(grid_for(draws, kThreads)), dim3(kThreads), 0,
                             stream, args, state, draws);
}

// --- randperm -----------------------------------------------------------------------------------

std::string randperm_kernel(ModuleSource& module, DType dtype) {
  add_random(module);
  return add_entry(module, str_cat("kiln_randperm_", dtype_tag(dtype)), kRandpermThreads,
                   "KTensor out, int n, int p, const kiln_random::State* state",
                   str_cat("kiln_random::randperm<", device_type_name(dtype),
                           ">(out, n, p, state);"));
}

Status launch_randperm(cudaKernel_t kernel, cudaKernel_t advance, const Tensor& out,
                       GeneratorState* state, cudaStream_t stream) {
  constexpr std::string_view kWhat = "randperm";
  if (out.dim() != 1) {
    return invalid_argument("randperm: expected a 1-D output [n], found ", out.description());
  }
  if (out.dtype() == DType::kBool || out.dtype() == DType::kFloat64) {
    return invalid_argument("randperm: expected an integer, float32, float16 or bfloat16 "
                            "output, found ", out.description());
  }
  const int64_t n = out.size(0);
  if (n > kRandpermMax) {
    return invalid_argument("randperm: expected n <= ", kRandpermMax, " (one block's sort), found ",
                            out.description());
  }
  if (n == 0) return ok_status();
  KILN_RETURN_IF_ERROR(check_data({&out}, kWhat));
  KILN_RETURN_IF_ERROR(check_generator(kernel, advance, state, kWhat));
  KTensor kout = view(out.raw_data(), out.sizes(), out.strides());
  int n32 = static_cast<int>(n);
  int p = static_cast<int>(pow2_at_least(n));
  const unsigned threads =
      static_cast<unsigned>(std::clamp<int64_t>(p / 2, 32, kRandpermThreads));
  void* args[] = {&kout, &n32, &p, &state};
  return launch_with_advance(kernel, advance, dim3(1), dim3(threads),
                             static_cast<size_t>(p) * sizeof(uint64_t), stream, args, state,
                             randperm_draws(n));
}

// --- native_dropout -----------------------------------------------------------------------------

std::string dropout_kernel(ModuleSource& module, DType dtype) {
  add_random(module);
  return add_entry(module, str_cat("kiln_dropout_", dtype_tag(dtype)), kThreads,
                   "KTensor in, KTensor out, KTensor mask, i64 n, u64 threshold, float scale, "
                   "const kiln_random::State* state",
                   str_cat("kiln_random::dropout<", device_type_name(dtype),
                           ">(in, out, mask, n, threshold, scale, state);"));
}

Status launch_dropout(cudaKernel_t kernel, cudaKernel_t advance, const Tensor& in,
                      const Tensor* out, const Tensor* mask, double p, GeneratorState* state,
                      cudaStream_t stream) {
  constexpr std::string_view kWhat = "native_dropout";
  KILN_RETURN_IF_ERROR(check_rank(in, kWhat));
  if (!is_float_type(in.dtype())) {
    return invalid_argument("native_dropout: expected a float32, float16 or bfloat16 input, "
                            "found ", in.description());
  }
  if (!(p > 0.0 && p <= 1.0)) {
    return invalid_argument("native_dropout: expected 0 < p <= 1 (p == 0 is the identity), "
                            "found ", p);
  }
  if (out) {
    KILN_RETURN_IF_ERROR(check_same_sizes(in, "input", *out, "output", kWhat));
    if (out->dtype() != in.dtype()) {
      return invalid_argument("native_dropout: expected the output in ", dtype_name(in.dtype()),
                              " like the input, found ", out->description());
    }
  }
  if (mask) {
    KILN_RETURN_IF_ERROR(check_same_sizes(in, "input", *mask, "mask", kWhat));
    if (mask->dtype() != DType::kBool) {
      return invalid_argument("native_dropout: expected a bool mask, found ",
                              mask->description());
    }
  }
  int64_t n = in.numel();
  if (n == 0 || (!out && !mask)) return ok_status();
  KILN_RETURN_IF_ERROR(check_data({&in}, kWhat));
  for (const Tensor* t : {out, mask}) {
    if (t) {
      KILN_RETURN_IF_ERROR(check_data({t}, kWhat));
    }
  }
  KILN_RETURN_IF_ERROR(check_generator(kernel, advance, state, kWhat));
  // An absent output walks with the input's strides and is never followed.
  const Shape& out_strides = out ? out->strides() : in.strides();
  const Shape& mask_strides = mask ? mask->strides() : in.strides();
  const Walk walk = coalesce(in.sizes(), {in.strides(), out_strides, mask_strides});
  KTensor kin = view(in.raw_data(), walk.sizes, walk.strides[0]);
  KTensor kout = view(out ? out->raw_data() : nullptr, walk.sizes, walk.strides[1]);
  KTensor kmask = view(mask ? mask->raw_data() : nullptr, walk.sizes, walk.strides[2]);
  // Kept when the 53-bit uniform k * 2^-53 >= p, i.e. k >= ceil(p * 2^53) (exact: a power-of-two
  // scaling); p == 1 gives 2^53, above every k.
  uint64_t threshold = static_cast<uint64_t>(std::ceil(std::ldexp(p, 53)));
  // The scale in double, then float, as the CPU kernel's static_cast<float>(1.0 / (1.0 - p)).
  float scale = p < 1.0 ? static_cast<float>(1.0 / (1.0 - p)) : 0.0f;
  const int64_t draws = dropout_draws(n);
  void* args[] = {&kin, &kout, &kmask, &n, &threshold, &scale, &state};
  return launch_with_advance(kernel, advance, dim3(grid_for(draws, kThreads)), dim3(kThreads), 0,
                             stream, args, state, draws);
}

}  // namespace kiln::cuda
