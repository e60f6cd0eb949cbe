// The timing cache: which algorithm (tactic) timing chose for a GEMM or convolution, so that an
// engine is timed once per GPU and library version and later loads take the answer. Process-wide,
// kept in memory and, when a path is set (kiln.compile's timing_cache_path, or the environment's
// KILN_TIMING_CACHE), in a text file of "key<TAB>choice" lines (a choice is one index per
// library call, comma-separated) that several processes may append to. Keys name the GPU, the
// library version and the whole problem, so one file serves every GPU and library it has seen; a
// line that cannot be read is skipped.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::cuda {

class TacticCache {
 public:
  static TacticCache& process();

  // Sets the file (empty: memory only). Lines already in it are read on the next lookup.
  void set_path(const std::string& path);
  std::string path() const;

  // The candidate indices chosen for `key`; empty when not timed yet.
  std::vector<int64_t> find(const std::string& key);
  // Remembers the choice and appends it to the file (best effort: a file that cannot be written
  // leaves the choice in memory only).
  void store(const std::string& key, const std::vector<int64_t>& choice);

 private:
  void load_locked();
  mutable std::mutex mutex_;
  std::string path_;
  bool loaded_ = false;
  std::map<std::string, std::vector<int64_t>> entries_;
};

// "NVIDIA H100 80GB HBM3 sm_90" for the current device ("" when none answers).
std::string device_tactic_tag();

}  // namespace kiln::cuda
