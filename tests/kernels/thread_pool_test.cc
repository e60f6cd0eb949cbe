#include "kernels/cpu/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace kiln::cpu {
namespace {

// Runs parallel_for over [begin, end) and checks every index is visited exactly once by chunks
// that stay inside the range.
void expect_exact_cover(ThreadPool& pool, int64_t begin, int64_t end, int64_t grain) {
  const int64_t length = std::max<int64_t>(end - begin, 0);
  std::vector<std::atomic<int>> hits(static_cast<size_t>(length));
  std::atomic<bool> out_of_range{false};
  pool.parallel_for(begin, end, grain, [&](int64_t lo, int64_t hi) {
    if (lo < begin || hi > end || lo >= hi) out_of_range = true;
    for (int64_t i = lo; i < hi && i >= begin && i < end; ++i) hits[i - begin].fetch_add(1);
  });
  EXPECT_FALSE(out_of_range) << "range [" << begin << ", " << end << ") grain " << grain;
  for (int64_t i = 0; i < length; ++i) {
    ASSERT_EQ(hits[i].load(), 1) << "index " << begin + i << " of [" << begin << ", " << end
                                 << ") grain " << grain;
  }
}

TEST(ThreadPoolTest, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 4, 7}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (auto [begin, end] : std::vector<std::pair<int64_t, int64_t>>{
             {0, 0}, {0, 1}, {0, 2}, {0, 7}, {5, 6}, {-3, 10}, {0, 100}, {17, 1000}, {0, 4097}}) {
      for (int64_t grain : {-1, 0, 1, 2, 3, 16, 1000, 5000}) {
        expect_exact_cover(pool, begin, end, grain);
      }
    }
  }
}

TEST(ThreadPoolTest, EmptyAndReversedRangesCallNothing) {
  ThreadPool pool(4);
  int calls = 0;
  pool.parallel_for(5, 5, 1, [&](int64_t, int64_t) { ++calls; });
  pool.parallel_for(9, 2, 1, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(ThreadPoolTest, SmallRangeRunsInlineAsOneChunk) {
  ThreadPool pool(4);
  std::vector<std::pair<int64_t, int64_t>> chunks;
  std::thread::id ran_on;
  pool.parallel_for(0, 10, 8, [&](int64_t lo, int64_t hi) {
    chunks.emplace_back(lo, hi);
    ran_on = std::this_thread::get_id();
  });
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0], std::make_pair(int64_t{0}, int64_t{10}));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(ThreadPoolTest, OneThreadPoolRunsOnCaller) {
  ThreadPool pool(0);  // taken as 1
  EXPECT_EQ(pool.num_threads(), 1);
  std::set<std::thread::id> seen;
  pool.parallel_for(0, 1000, 1, [&](int64_t, int64_t) { seen.insert(std::this_thread::get_id()); });
  EXPECT_EQ(seen, std::set<std::thread::id>{std::this_thread::get_id()});
}

TEST(ThreadPoolTest, ChunksRespectGrainAndThreadCount) {
  ThreadPool pool(4);
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> chunks;
  pool.parallel_for(0, 1000, 300, [&](int64_t lo, int64_t hi) {
    std::lock_guard<std::mutex> lock(mu);
    chunks.emplace_back(lo, hi);
  });
  EXPECT_EQ(chunks.size(), 3u);  // 1000 / 300 grains
  for (auto [lo, hi] : chunks) EXPECT_GE(hi - lo, 300);
  chunks.clear();
  pool.parallel_for(0, 1000, 1, [&](int64_t lo, int64_t hi) {
    std::lock_guard<std::mutex> lock(mu);
    chunks.emplace_back(lo, hi);
  });
  EXPECT_EQ(chunks.size(), 4u);  // never more chunks than threads
}

TEST(ThreadPoolTest, RegionFlagIsSetInsideChunks) {
  ThreadPool pool(3);
  EXPECT_FALSE(in_parallel_region());
  std::atomic<int> inside{0}, chunks{0};
  pool.parallel_for(0, 3, 1, [&](int64_t, int64_t) {
    chunks.fetch_add(1);
    if (in_parallel_region()) inside.fetch_add(1);
  });
  EXPECT_EQ(inside.load(), chunks.load());
  EXPECT_FALSE(in_parallel_region());
}

TEST(ThreadPoolTest, NestedCallsRunInlineAndComplete) {
  ThreadPool pool(4);
  constexpr int64_t kOuter = 16, kInner = 100;
  std::vector<std::atomic<int>> hits(kOuter * kInner);
  pool.parallel_for(0, kOuter, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const std::thread::id outer_thread = std::this_thread::get_id();
      pool.parallel_for(0, kInner, 1, [&](int64_t a, int64_t b) {
        EXPECT_EQ(std::this_thread::get_id(), outer_thread);
        for (int64_t j = a; j < b; ++j) hits[i * kInner + j].fetch_add(1);
      });
      // The default pool nests inline too, even though it is a different pool.
      parallel_for(0, 10, 1,
                   [&](int64_t, int64_t) { EXPECT_EQ(std::this_thread::get_id(), outer_thread); });
    }
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
}

TEST(ThreadPoolTest, ConcurrentCallersShareThePool) {
  ThreadPool pool(3);
  constexpr int kCallers = 6, kRounds = 200;
  constexpr int64_t kLength = 257;
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        std::vector<int> hits(kLength, 0);  // chunks are disjoint, so plain ints suffice
        pool.parallel_for(0, kLength, 1 + (round + t) % 5, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) ++hits[i];
        });
        for (int h : hits) ASSERT_EQ(h, 1);
        total.fetch_add(kLength);
      }
    });
  }
  for (std::thread& c : callers) c.join();
  EXPECT_EQ(total.load(), int64_t{kCallers} * kRounds * kLength);
}

TEST(ThreadPoolTest, DefaultPoolWorks) {
  ThreadPool& pool = default_thread_pool();
  EXPECT_GE(pool.num_threads(), 1);
  EXPECT_EQ(&pool, &default_thread_pool());
  std::atomic<int64_t> sum{0};
  parallel_for(0, 10000, 7, [&](int64_t lo, int64_t hi) {
    int64_t local = 0;
    for (int64_t i = lo; i < hi; ++i) local += i;
    sum.fetch_add(local);
  });
  EXPECT_EQ(sum.load(), int64_t{10000} * 9999 / 2);
}

TEST(ThreadPoolTest, UsesSeveralThreadsWhenWorkIsSlow) {
  ThreadPool pool(2);
  std::mutex mu;
  std::set<std::thread::id> seen;
  // Every chunk waits until two distinct threads have arrived, which needs a worker to help.
  std::atomic<int> arrived{0};
  pool.parallel_for(0, 2, 1, [&](int64_t, int64_t) {
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.insert(std::this_thread::get_id());
    }
    arrived.fetch_add(1);
    while (arrived.load() < 2) std::this_thread::yield();
  });
  EXPECT_EQ(seen.size(), 2u);
}

}  // namespace
}  // namespace kiln::cpu
