#include "kernels/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

namespace kiln::cpu {

namespace {

// Set while a thread runs a chunk; nested parallel_for calls then run inline.
thread_local bool t_in_parallel_region = false;

// Marks the current thread as inside a chunk for the lifetime of the guard.
class RegionGuard {
 public:
  RegionGuard() : previous_(t_in_parallel_region) { t_in_parallel_region = true; }
  ~RegionGuard() { t_in_parallel_region = previous_; }
  RegionGuard(const RegionGuard&) = delete;
  RegionGuard& operator=(const RegionGuard&) = delete;

 private:
  bool previous_;
};

int threads_from_environment() {
  if (const char* text = std::getenv("KILN_NUM_THREADS")) {
    char* tail = nullptr;
    long value = std::strtol(text, &tail, 10);
    if (tail != text && *tail == '\0' && value >= 1 && value <= 1024)
      return static_cast<int>(value);
  }
  unsigned hardware = std::thread::hardware_concurrency();
  return hardware == 0 ? 1 : static_cast<int>(std::min(hardware, 1024u));
}

}  // namespace

// One parallel_for call. It lives on the caller's stack: workers touch it only while it sits in the
// pool's queue (under mu_) or between claiming a chunk and reporting that chunk done, and the
// caller returns only after taking it out of the queue and seeing every chunk done.
struct ThreadPool::Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t begin = 0;
  int64_t length = 0;
  int64_t num_chunks = 0;
  std::atomic<int64_t> next_chunk{0};
  std::mutex done_mu;
  std::condition_variable done_cv;
  int64_t chunks_done = 0;  // guarded by done_mu
};

ThreadPool::ThreadPool(int num_threads) : num_threads_(std::max(num_threads, 1)) {
  workers_.reserve(num_threads_ - 1);
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run_chunk(Job& job, int64_t index) {
  // Balanced split: chunk sizes differ by at most one index.
  int64_t lo = job.begin + job.length * index / job.num_chunks;
  int64_t hi = job.begin + job.length * (index + 1) / job.num_chunks;
  {
    RegionGuard guard;
    (*job.fn)(lo, hi);
  }
  std::lock_guard<std::mutex> lock(job.done_mu);
  if (++job.chunks_done == job.num_chunks) job.done_cv.notify_all();
}

void ThreadPool::worker_loop() {
  t_in_parallel_region = true;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_ is set and nothing is left
    Job* job = queue_.front();
    int64_t index = job->next_chunk.fetch_add(1, std::memory_order_relaxed);
    if (index + 1 >= job->num_chunks) queue_.pop_front();  // its last chunk is now claimed
    if (index >= job->num_chunks) continue;
    lock.unlock();
    run_chunk(*job, index);
    lock.lock();
  }
}

void ThreadPool::parallel_for(int64_t begin, int64_t end, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t length = end - begin;
  int64_t num_chunks = std::min<int64_t>(length / grain, num_threads_);
  if (num_chunks <= 1 || t_in_parallel_region) {
    RegionGuard guard;
    fn(begin, end);
    return;
  }
  Job job;
  job.fn = &fn;
  job.begin = begin;
  job.length = length;
  job.num_chunks = num_chunks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(&job);
  }
  for (int64_t i = 1; i < num_chunks; ++i) cv_.notify_one();
  // The caller works too, so the job finishes even when every worker is busy with other jobs.
  for (;;) {
    int64_t index = job.next_chunk.fetch_add(1, std::memory_order_relaxed);
    if (index >= num_chunks) break;
    run_chunk(job, index);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find(queue_.begin(), queue_.end(), &job);
    if (it != queue_.end()) queue_.erase(it);
  }
  std::unique_lock<std::mutex> lock(job.done_mu);
  job.done_cv.wait(lock, [&job] { return job.chunks_done == job.num_chunks; });
}

ThreadPool& default_thread_pool() {
  // Deliberately leaked: workers blocked in the pool must outlive every static that might use it.
  static ThreadPool* pool = new ThreadPool(threads_from_environment());
  return *pool;
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  default_thread_pool().parallel_for(begin, end, grain, fn);
}

bool in_parallel_region() {
  return t_in_parallel_region;
}

}  // namespace kiln::cpu
