#include "cuda/step_profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numeric>

#include "cuda/cuda_check.h"
#include "cuda/plan.h"

namespace kiln::cuda {

int profile_runs_from_env() {
  const char* env = std::getenv("KILN_CUDA_PROFILE");
  if (!env || !*env) return 0;
  const int runs = std::atoi(env);
  return runs > 0 ? runs : 0;
}

StepProfile::~StepProfile() {
  for (cudaEvent_t e : events_) (void)cudaEventDestroy(e);
}

Status StepProfile::mark(size_t index, size_t steps, cudaStream_t stream) {
  if (events_.size() < steps + 1) {
    const size_t old = events_.size();
    events_.resize(steps + 1, nullptr);
    for (size_t i = old; i < events_.size(); ++i) KILN_CUDA_CHECK(cudaEventCreate(&events_[i]));
    total_ms_.resize(steps, 0.0);
  }
  KILN_CUDA_CHECK(cudaEventRecord(events_[index], stream));
  return ok_status();
}

Status StepProfile::finish_run() {
  if (events_.empty()) return ok_status();
  KILN_CUDA_CHECK(cudaEventSynchronize(events_.back()));
  for (size_t i = 0; i < total_ms_.size(); ++i) {
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
    total_ms_[i] += ms;
  }
  ++runs_;
  return ok_status();
}

namespace {

// The `count` steps with the largest `ms` (times `scale`), one line each, largest first.
std::string slowest(const std::vector<const Step*>& steps, const std::vector<double>& ms,
                    double scale, size_t count, size_t width) {
  std::vector<size_t> order(std::min(steps.size(), ms.size()));
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ms[a] > ms[b]; });
  std::string out;
  char line[64];
  for (size_t r = 0; r < order.size() && r < count; ++r) {
    const size_t i = order[r];
    std::snprintf(line, sizeof(line), "  %9.4f ms  step %4zu  ", ms[i] * scale, i);
    out += line + steps[i]->describe().substr(0, width) + "\n";
  }
  return out;
}

}  // namespace

std::string StepProfile::report(const std::string& engine, const std::string& shapes,
                                const std::vector<const Step*>& steps) const {
  const double runs = std::max(runs_, 1);
  const double total = std::accumulate(total_ms_.begin(), total_ms_.end(), 0.0) / runs;
  const double bind = std::accumulate(bind_ms.begin(), bind_ms.end(), 0.0);
  std::string out = str_cat("kiln CUDA profile: engine '", engine, "' inputs ", shapes, ": ",
                            steps.size(), " steps, ", total, " ms per run (mean of ", runs_,
                            " runs, launches timed one by one), binding took ", bind, " ms\n");
  std::map<std::string, std::pair<double, int>> by_kind;
  std::map<std::string, double> bind_by_kind;
  for (size_t i = 0; i < steps.size() && i < total_ms_.size(); ++i) {
    auto& entry = by_kind[std::string(steps[i]->kind())];
    entry.first += total_ms_[i] / runs;
    entry.second += 1;
    if (i < bind_ms.size()) bind_by_kind[std::string(steps[i]->kind())] += bind_ms[i];
  }
  std::vector<std::pair<std::string, std::pair<double, int>>> kinds(by_kind.begin(), by_kind.end());
  std::sort(kinds.begin(), kinds.end(),
            [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  char line[512];
  for (const auto& [kind, entry] : kinds) {
    std::snprintf(line, sizeof(line), "  %-12s %9.3f ms %5.1f%%  %4d steps  bind %8.1f ms\n",
                  kind.c_str(), entry.first, total > 0 ? 100.0 * entry.first / total : 0.0,
                  entry.second, bind_by_kind[kind]);
    out += line;
  }
  out += "  slowest steps:\n" + slowest(steps, total_ms_, 1.0 / runs, 25, 160);
  // Binding's slowest steps: a library's first use shows as one step far above its kind's rest.
  out += "  slowest binds:\n" + slowest(steps, bind_ms, 1.0, 8, 120);
  return out;
}

}  // namespace kiln::cuda
