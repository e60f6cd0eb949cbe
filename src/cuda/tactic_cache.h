// The timing cache: which algorithm (tactic) timing chose for a GEMM or convolution, so that an
// engine is timed once per GPU and library version and later loads take the answer. Process-wide,
// kept in memory and, when a path is set (kiln.compile's timing_cache_path, or the environment's
// KILN_TIMING_CACHE), in a text file of "key<TAB>choice" lines (a choice is one index per
// library call, comma-separated) that several processes may append to. Keys name the GPU, the
// library version and the whole problem, so one file serves every GPU and library it has seen; a
// line that cannot be read is skipped.
//
// Beside the choices it keeps blobs: the serialized cuDNN plans of attention and convolutions, so
// that a later process restores a plan instead of building it (cuDNN compiles some engines at
// run time: 0.4-0.7 s for a fused attention graph on an H100). They live only on disk, in the
// folder "<path>.plans/", one file per key written whole and renamed into place (so concurrent
// processes never see half of one); reading the choices never reads them. A blob file that is
// damaged, truncated or not the key's reads as absent. The folder is bounded (BlobLimits): blobs
// past max_blob_bytes are not kept, and past max_total_bytes the least recently used are deleted.
//
// All members are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::cuda {

class TacticCache {
 public:
  struct BlobLimits {
    size_t max_blob_bytes = size_t{16} << 20;    // one blob; a larger one is not kept
    size_t max_total_bytes = size_t{256} << 20;  // the whole folder, every GPU and version in it
  };

  static TacticCache& process();

  // Sets the file (empty: memory only). Lines already in it are read on the next lookup.
  void set_path(const std::string& path);
  std::string path() const;

  // The candidate indices chosen for `key`; empty when not timed yet.
  std::vector<int64_t> find(const std::string& key);
  // Remembers the choice and appends it to the file (best effort: a file that cannot be written
  // leaves the choice in memory only).
  void store(const std::string& key, const std::vector<int64_t>& choice);

  // The bytes stored for `key` in the blob folder, checked against their recorded length and
  // checksum; empty when there are none, no path is set, or the stored copy is damaged. Blobs and
  // choices are apart: the same key may have both.
  std::vector<uint8_t> find_blob(const std::string& key);
  // Writes `bytes` as `key`'s blob, replacing any earlier one (best effort: without a path, with
  // a folder that cannot be written, with bytes past max_blob_bytes or a key holding a newline or
  // tab, nothing is kept). Then trims the folder to max_total_bytes, oldest use first.
  void store_blob(const std::string& key, const std::vector<uint8_t>& bytes);
  // Whether blobs are kept at all (a path is set), so that a caller may skip serializing.
  bool keeps_blobs() const;
  void set_blob_limits(const BlobLimits& limits);

 private:
  void load_locked();
  std::string blob_folder_locked() const;
  void trim_blobs_locked(const std::string& folder, const std::string& keep);
  mutable std::mutex mutex_;
  std::string path_;
  bool loaded_ = false;
  std::map<std::string, std::vector<int64_t>> entries_;
  BlobLimits blob_limits_;
};

// Where a plan builder (AttentionPlan, ConvPlan) looks for its serialized plan and keeps the one it
// builds: a cache and the problem's key in it, which names the GPU (device_tactic_tag()) and the
// whole problem. No cache: the plan is built and not kept. The cache must outlive the call only.
struct PlanCacheSlot {
  TacticCache* cache = nullptr;
  std::string key;
};

// "NVIDIA H100 80GB HBM3 sm_90" for the current device ("" when none answers).
std::string device_tactic_tag();

}  // namespace kiln::cuda
