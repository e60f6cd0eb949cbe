// For tests of kiln's cuDNN users: why cuDNN cannot be used here (no CUDA device, no cuDNN 9), so
// that their GPU halves skip with the reason instead of failing.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "cuda/cudnn_library.h"

namespace kiln::cuda {

// Empty when a CUDA device and cuDNN 9 are usable.
inline std::string why_no_cudnn() {
  int devices = 0;
  const cudaError_t error = cudaGetDeviceCount(&devices);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(error);
  }
  if (devices == 0) return "no CUDA device";
  Status s = cudnn_available();
  return s.ok() ? std::string() : s.message();
}

// ---- plans kept in the tactic cache ----

// A timing-cache path `name` in the temporary folder `folder`, with no cache file or kept plans.
inline std::string fresh_cache_path(const std::string& folder, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / folder;
  std::filesystem::create_directories(dir);
  const std::string path = (dir / name).string();
  std::filesystem::remove(path);
  std::filesystem::remove_all(path + ".plans");
  return path;
}

// The full key under which the cache at `path` holds the plans kept for `slot_key` ("" when it
// holds none): the slot key with cuDNN's versions, as the blob file's header line names it. Also
// says how large they are.
inline std::string cached_plan_key(const std::string& path, const std::string& slot_key) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(path + ".plans", error)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string header;
    std::getline(in, header);
    const size_t at = header.find("\t" + slot_key + " ");
    if (at != std::string::npos) {
      std::printf("[ cached   ] %s: %llu bytes\n", slot_key.c_str(),
                  static_cast<unsigned long long>(entry.file_size()));
      return header.substr(at + 1);
    }
  }
  return "";
}

}  // namespace kiln::cuda

#define SKIP_WITHOUT_CUDNN()                                            \
  do {                                                                  \
    if (std::string why = ::kiln::cuda::why_no_cudnn(); !why.empty()) { \
      GTEST_SKIP() << why;                                              \
    }                                                                   \
  } while (0)
