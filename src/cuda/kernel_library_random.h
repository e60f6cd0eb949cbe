// The random family of kiln's kernel library (kernels/random.cuh): rand, randn, randperm and
// native_dropout in training, drawn on the GPU from Philox4x32-10 keyed by a generator state
// {seed, offset} in device memory. The contract is kernel_library.h's: `*_kernel` adds device
// code and an entry point and returns its name (deterministic), `launch_*` checks shapes, then
// launches. Values are random, not eager's (torch's generator is not shared); their
// distributions, ranges and dropout's rule are those of kiln's CPU reference kernels
// (kernels/cpu/random.cc).
//
// Every launch_* enqueues two kernels on `stream`: the one that draws, reading the state, and
// kiln_random_advance, one thread adding the draws used to the state's offset. Launches on one
// state must therefore be ordered (one stream, as an engine's are); each launch, and each replay
// of a CUDA graph that captured one, draws numbers no earlier launch on that state drew.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "cuda/kernel_library.h"

namespace kiln::cuda {

// The longest randperm: one block sorts n keys of 8 bytes (padded to a power of two) in shared
// memory, within the 48 KiB a block gets without opting in to more, and a key's low 12 bits
// hold its index. Longer ones are left to PyTorch (the verdict checks).
inline constexpr int64_t kRandpermMax = 4096;

// A generator's state in device memory (the device mirror is kiln_random::State): draw i of a
// launch is Philox4x32-10 of counter offset + i under key seed, 128 bits.
struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;
};

// Generator states in device memory, one per GPU that asks, each made on first use with a seed
// from std::random_device and offset 0, and freed (cudaFree) with this object. A random step
// owns one (shared by its bindings) and asks for it while binding, never inside a launch.
// Thread-safe.
class DeviceGenerators {
 public:
  DeviceGenerators() = default;
  ~DeviceGenerators();
  DeviceGenerators(const DeviceGenerators&) = delete;
  DeviceGenerators& operator=(const DeviceGenerators&) = delete;

  // The current device's state (allocated and seeded, synchronously, the first time).
  Result<GeneratorState*> current();

 private:
  std::mutex mutex_;
  std::map<int, GeneratorState*> states_;  // by device ordinal
};

// The entry point that advances a state's offset (launched by every launch_* below).
std::string generator_advance_kernel(ModuleSource& module);

// rand / randn into `out` (float32, float16 or bfloat16; any strides), elements numbered in
// row-major order. rand: uniform on [0, 1) with as many random bits as the dtype's significand
// (24, 11, 8), so every value is exact and below 1. randn: standard normal by Box-Muller in
// fp32, then rounded to the dtype. Four elements per draw.
enum class RandomDistribution : uint8_t { kUniform, kNormal };
std::string rand_kernel(ModuleSource& module, RandomDistribution distribution, DType dtype);
Status launch_rand(cudaKernel_t kernel, cudaKernel_t advance, const Tensor& out,
                   GeneratorState* state, cudaStream_t stream);

// randperm(n) into `out` [n] (any stride): a uniformly random permutation of 0..n-1 (random
// 51-bit keys sorted in one block), n <= kRandpermMax, in int64, int32, int16, int8, uint8,
// float32, float16 or bfloat16 (the caller checks that n - 1 fits the dtype exactly). Two keys
// per draw.
std::string randperm_kernel(ModuleSource& module, DType dtype);
Status launch_randperm(cudaKernel_t kernel, cudaKernel_t advance, const Tensor& out,
                       GeneratorState* state, cudaStream_t stream);

// native_dropout in training: mask = (53-bit uniform >= p), out = in * mask * (1 / (1 - p)) in
// fp32 (p == 1: nothing kept, scale 0, so out is 0, or NaN where in is NaN or inf), as kiln's
// CPU kernel and eager compute it. `in` float32, float16 or bfloat16, any strides; `out` (in's
// dtype) and `mask` (bool) with in's sizes, any strides, either may be null (not written).
// 0 < p <= 1. Two elements per draw.
std::string dropout_kernel(ModuleSource& module, DType dtype);
Status launch_dropout(cudaKernel_t kernel, cudaKernel_t advance, const Tensor& in,
                      const Tensor* out, const Tensor* mask, double p, GeneratorState* state,
                      cudaStream_t stream);

// Draws (128-bit blocks) a launch uses: what the offset advances by.
int64_t rand_draws(int64_t numel);      // 4 elements each
int64_t randperm_draws(int64_t n);      // 2 keys each
int64_t dropout_draws(int64_t numel);   // 2 elements each

}  // namespace kiln::cuda
