#include "cuda/tactic_cache.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace kiln::cuda {
namespace {

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
