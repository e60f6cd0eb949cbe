#include "cuda/tactic_cache.h"

#include <cuda_runtime_api.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>

#include "base/hash.h"

namespace kiln::cuda {
namespace {

namespace fs = std::filesystem;

// A blob file: one header line, "kiln blob 1<TAB><byte count><TAB><xxhash64, 16 hex digits><TAB>
// <key>", then the bytes. The name is a digest of the key; the header's key settles collisions.
constexpr std::string_view kBlobMagic = "kiln blob 1";
constexpr std::string_view kBlobSuffix = ".blob";
constexpr std::string_view kTempMarker = ".tmp";
// A temporary file older than this is left from a process that died while writing.
constexpr auto kStaleTempAge = std::chrono::hours(1);

bool blob_key_ok(const std::string& key) {
  return !key.empty() && key.find_first_of("\t\n") == std::string::npos;
}

std::string blob_file_name(const std::string& key) {
  return Digest128().add(key).hex() + std::string(kBlobSuffix);
}

std::string hex64(uint64_t v) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(v));
  return text;
}

std::string blob_header(const std::string& key, const std::vector<uint8_t>& bytes) {
  return std::string(kBlobMagic) + "\t" + std::to_string(bytes.size()) + "\t" +
         hex64(xxhash64(bytes.data(), bytes.size())) + "\t" + key + "\n";
}

// The bytes of a blob file whose header names `key` and whose length and checksum match the
// header's; empty for anything else (missing, truncated, extended, damaged, another key's).
std::vector<uint8_t> read_blob_file(const fs::path& file, const std::string& key,
                                    size_t max_bytes) {
  std::error_code error;
  const uintmax_t file_size = fs::file_size(file, error);
  const size_t max_header = kBlobMagic.size() + key.size() + 64;
  if (error || file_size > max_bytes + max_header) return {};
  std::ifstream in(file, std::ios::binary);
  std::vector<uint8_t> data(static_cast<size_t>(file_size));
  if (!in || !in.read(reinterpret_cast<char*>(data.data()), data.size())) return {};
  const auto newline = std::find(data.begin(), data.end(), uint8_t{'\n'});
  if (newline == data.end()) return {};
  // magic TAB count TAB hash TAB key
  const std::string header(data.begin(), newline);
  const size_t tab1 = header.find('\t');
  const size_t tab2 = tab1 == std::string::npos ? tab1 : header.find('\t', tab1 + 1);
  const size_t tab3 = tab2 == std::string::npos ? tab2 : header.find('\t', tab2 + 1);
  if (tab3 == std::string::npos || header.compare(0, tab1, kBlobMagic) != 0 ||
      header.compare(tab3 + 1, std::string::npos, key) != 0) {
    return {};
  }
  const std::string count = header.substr(tab1 + 1, tab2 - tab1 - 1);
  const std::string hash = header.substr(tab2 + 1, tab3 - tab2 - 1);
  if (count.empty() || count.size() > 12 ||
      count.find_first_not_of("0123456789") != std::string::npos || hash.size() != 16 ||
      hash.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return {};
  }
  const size_t body = static_cast<size_t>(std::distance(data.begin(), newline)) + 1;
  if (std::stoull(count) != data.size() - body) return {};
  std::vector<uint8_t> bytes(data.begin() + body, data.end());
  if (bytes.empty() || hex64(xxhash64(bytes.data(), bytes.size())) != hash) return {};
  return bytes;
}

// "3" or "1,4" as indices; empty when malformed.
std::vector<int64_t> parse_choice(const std::string& text) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string part = text.substr(start, comma - start);
    if (part.empty() || part.size() > 9 ||
        part.find_first_not_of("0123456789") != std::string::npos) {
      return {};
    }
    out.push_back(std::stoll(part));
    start = comma + 1;
  }
  return out;
}

}  // namespace

TacticCache& TacticCache::process() {
  static TacticCache* cache = [] {
    auto* c = new TacticCache();  // never destroyed: used from static destructors' engines
    if (const char* env = std::getenv("KILN_TIMING_CACHE"); env && *env) c->path_ = env;
    return c;
  }();
  return *cache;
}

void TacticCache::set_path(const std::string& path) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (path == path_) return;
  path_ = path;
  loaded_ = false;
}

std::string TacticCache::path() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return path_;
}

void TacticCache::load_locked() {
  if (loaded_) return;
  loaded_ = true;
  if (path_.empty()) return;
  std::ifstream in(path_);
  std::string line;
  while (std::getline(in, line)) {
    const size_t tab = line.rfind('\t');
    if (line.empty() || line[0] == '#' || tab == std::string::npos || tab + 1 >= line.size()) {
      continue;
    }
    std::vector<int64_t> choice = parse_choice(line.substr(tab + 1));
    if (!choice.empty()) entries_[line.substr(0, tab)] = std::move(choice);
  }
}

std::vector<int64_t> TacticCache::find(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  load_locked();
  auto it = entries_.find(key);
  return it == entries_.end() ? std::vector<int64_t>{} : it->second;
}

void TacticCache::store(const std::string& key, const std::vector<int64_t>& choice) {
  if (choice.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  load_locked();
  entries_[key] = choice;
  if (path_.empty() || key.find_first_of("\t\n") != std::string::npos) return;
  std::error_code error;
  const std::filesystem::path file(path_);
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), error);
  const bool fresh = !std::filesystem::exists(file, error);
  std::ofstream out(path_, std::ios::app);
  if (!out) return;
  if (fresh) out << "# kiln timing cache: problem<TAB>chosen algorithm, one per line\n";
  out << key << '\t';
  for (size_t i = 0; i < choice.size(); ++i) out << (i ? "," : "") << choice[i];
  out << '\n';
}

std::string TacticCache::blob_folder_locked() const {
  return path_.empty() ? std::string() : path_ + ".plans";
}

std::vector<uint8_t> TacticCache::find_blob(const std::string& key) {
  if (!blob_key_ok(key)) return {};
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string folder = blob_folder_locked();
  if (folder.empty()) return {};
  const fs::path file = fs::path(folder) / blob_file_name(key);
  std::vector<uint8_t> bytes = read_blob_file(file, key, blob_limits_.max_blob_bytes);
  if (!bytes.empty()) {  // a use: trimming deletes the least recently used first
    std::error_code error;
    fs::last_write_time(file, fs::file_time_type::clock::now(), error);
  }
  return bytes;
}

void TacticCache::store_blob(const std::string& key, const std::vector<uint8_t>& bytes) {
  if (bytes.empty() || !blob_key_ok(key)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string folder = blob_folder_locked();
  if (folder.empty() || bytes.size() > blob_limits_.max_blob_bytes) return;
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) return;
  // Written aside and renamed into place, so that a reader (this process or another) sees the
  // old blob or the new one, never part of one.
  static std::atomic<uint64_t> serial{0};
  const std::string name = blob_file_name(key);
  const fs::path file = fs::path(folder) / name;
  const fs::path temp =
      fs::path(folder) / (name + std::string(kTempMarker) + std::to_string(::getpid()) + "." +
                          std::to_string(serial.fetch_add(1)));
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    const std::string header = blob_header(key, bytes);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      fs::remove(temp, error);
      return;
    }
  }
  fs::rename(temp, file, error);
  if (error) {
    fs::remove(temp, error);
    return;
  }
  trim_blobs_locked(folder, name);
}

bool TacticCache::keeps_blobs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !path_.empty();
}

void TacticCache::set_blob_limits(const BlobLimits& limits) {
  std::lock_guard<std::mutex> lock(mutex_);
  blob_limits_ = limits;
}

void TacticCache::trim_blobs_locked(const std::string& folder, const std::string& keep) {
  struct Blob {
    fs::file_time_type used;
    uintmax_t size;
    fs::path path;
  };
  std::vector<Blob> blobs;
  uintmax_t total = 0;
  const auto now = fs::file_time_type::clock::now();
  std::error_code error;
  for (fs::directory_iterator it(folder, error); !error && it != fs::directory_iterator();
       it.increment(error)) {
    std::error_code entry_error;
    if (!it->is_regular_file(entry_error)) continue;
    const std::string name = it->path().filename().string();
    const fs::file_time_type used = it->last_write_time(entry_error);
    const uintmax_t size = it->file_size(entry_error);
    if (entry_error) continue;
    if (name.find(kTempMarker) != std::string::npos) {
      if (now - used > kStaleTempAge) fs::remove(it->path(), entry_error);
      continue;  // else another writer's, about to be renamed
    }
    if (name.size() <= kBlobSuffix.size() ||
        name.compare(name.size() - kBlobSuffix.size(), kBlobSuffix.size(), kBlobSuffix) != 0) {
      continue;
    }
    blobs.push_back({used, size, it->path()});
    total += size;
  }
  if (total <= blob_limits_.max_total_bytes) return;
  std::sort(blobs.begin(), blobs.end(), [](const Blob& a, const Blob& b) {
    return a.used != b.used ? a.used < b.used : a.path < b.path;
  });
  for (const Blob& blob : blobs) {
    if (total <= blob_limits_.max_total_bytes) break;
    if (blob.path.filename() == keep) continue;
    std::error_code remove_error;
    if (fs::remove(blob.path, remove_error)) total -= blob.size;
  }
}

std::string device_tactic_tag() {
  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return "";
  }
  return std::string(prop.name) + " sm_" + std::to_string(prop.major * 10 + prop.minor);
}

}  // namespace kiln::cuda
