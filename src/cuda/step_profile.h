// Per-step GPU timing of a bound plan, for finding where an engine spends its time:
// KILN_CUDA_PROFILE=N makes the CUDA runtime run every binding's steps one launch at a time (no
// CUDA graph), bracket each with CUDA events, and after N runs print to stderr the mean time per
// step kind and the slowest steps, with the host time binding took.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "kiln/status.h"

namespace kiln::cuda {

class Step;

// The number of runs to profile before reporting, from KILN_CUDA_PROFILE (0: profiling off).
int profile_runs_from_env();

class StepProfile {
 public:
  ~StepProfile();
  // Records an event on `stream` before step `index` (and, with index == steps, after the last).
  Status mark(size_t index, size_t steps, cudaStream_t stream);
  // Waits for the run's events and adds each step's time.
  Status finish_run();
  int runs() const { return runs_; }

  std::vector<double> bind_ms;  // host time each step took to bind
  // The report over the runs so far.
  std::string report(const std::string& engine, const std::string& shapes,
                     const std::vector<const Step*>& steps) const;

 private:
  std::vector<cudaEvent_t> events_;
  std::vector<double> total_ms_;
  int runs_ = 0;
};

}  // namespace kiln::cuda
