// A small fixed-size thread pool for the CPU backend's compute kernels (GEMM, convolution).
//
// parallel_for splits [begin, end) into at most num_threads() contiguous chunks of at least about
// `grain` indices, runs them on the pool's workers and on the calling thread, and returns when
// every chunk has finished. Work is claimed dynamically, so a caller whose workers are busy
// elsewhere simply runs more chunks itself: progress never depends on a worker becoming free.
//
// Thread safety: parallel_for may be called from several threads at once; their jobs share the
// workers. A parallel_for issued from inside a chunk (nested parallelism) runs inline on the thread
// that issued it, so nesting cannot deadlock and never oversubscribes the machine.
//
// `fn` must not throw: kiln reports errors with Status, and an exception escaping a worker ends the
// process.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::cpu {

class ThreadPool {
 public:
  // `num_threads` counts the calling thread: a pool of N starts N - 1 workers. Values below 1 are
  // taken as 1 (everything runs inline).
  explicit ThreadPool(int num_threads);
  // Joins the workers; no parallel_for may be in flight on this pool.
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(chunk_begin, chunk_end) over disjoint chunks covering [begin, end) exactly once each.
  // Runs inline (one call fn(begin, end)) when the range holds fewer than two grains, when the pool
  // has one thread, or when called from inside a chunk. `grain` below 1 is taken as 1.
  void parallel_for(int64_t begin, int64_t end, int64_t grain,
                    const std::function<void(int64_t, int64_t)>& fn);

 private:
  struct Job;

  void worker_loop();
  static void run_chunk(Job& job, int64_t index);

  int num_threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> queue_;  // jobs with chunks not yet claimed; guarded by mu_
  bool stop_ = false;       // guarded by mu_
  std::vector<std::thread> workers_;
};

// The process-wide pool, created on first use and never destroyed (so kernels running during
// static destruction still find it). Its size is KILN_NUM_THREADS when that is a positive integer,
// else std::thread::hardware_concurrency().
ThreadPool& default_thread_pool();

// default_thread_pool().parallel_for(...).
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// True on a thread that is running a parallel_for chunk (where nested calls run inline). Kernels
// use it to skip splitting work that cannot be spread further.
bool in_parallel_region();

}  // namespace kiln::cpu
