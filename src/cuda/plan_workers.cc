#include "cuda/plan_workers.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace kiln::cuda {
namespace {

// cuDNN's plan restore is mostly host work; a handful of threads covers a model's convolutions
// (ResNet-50: 24 distinct ones) without crowding the caller's cores.
constexpr unsigned kMaxWorkers = 8;

class PlanWorkers {
 public:
  PlanWorkers() {
    const unsigned n = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxWorkers);
    for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
  }

  void submit(int device, std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.emplace_back(device, std::move(task));
    }
    ready_.notify_one();
  }

 private:
  void work() {
    int current = -1;
    for (;;) {
      std::pair<int, std::function<void()>> item;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty(); });
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      // A task whose device cannot be made current still runs: it reports the error itself
      // (its first CUDA call fails the same way).
      if (item.first != current && cudaSetDevice(item.first) == cudaSuccess) current = item.first;
      item.second();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::pair<int, std::function<void()>>> queue_;
  std::vector<std::thread> threads_;
};

}  // namespace

void submit_plan_work(int device, std::function<void()> task) {
  // Never destroyed: the threads wait on the queue until the process ends, and destroying them
  // at exit would race CUDA's and cuDNN's own teardown.
  static PlanWorkers* const workers = new PlanWorkers();
  workers->submit(device, std::move(task));
}

}  // namespace kiln::cuda
