#include "platform/threads.h"

#include <thread>

#include "platform/cpu.h"
#include "platform/status.h"

#if THAW_WITH_TBB
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#endif

namespace thaw {

bool ThreadsEnabled() { return THAW_WITH_TBB != 0; }

void YieldToOtherThreads() { std::this_thread::yield(); }

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads < 0) {
    status_ = InvalidArgument("ThreadPool: num_threads must be 0 (one per core) or positive, "
                              "got %d", num_threads);
    return;
  }
#if THAW_WITH_TBB
  // TBB gives an arena no more threads than the machine has cores (and warns
  // when asked for more), so the pool says what it really gets.
  const int cores = HardwareThreads();
  num_threads_ = (num_threads == 0 || num_threads > cores) ? cores : num_threads;
  if (num_threads_ > 1) {
    auto* arena = new tbb::task_arena(num_threads_);
    arena->initialize();  // create it now, not on the first step
    arena_ = arena;
  }
#else
  (void)num_threads;
  num_threads_ = 1;
#endif
}

ThreadPool::~ThreadPool() {
#if THAW_WITH_TBB
  delete static_cast<tbb::task_arena*>(arena_);
#endif
}

void ThreadPool::ParallelFor(size_t num_tasks, TaskRef task) {
  if (num_tasks == 0) return;
#if THAW_WITH_TBB
  if (arena_ != nullptr && num_tasks > 1) {
    static_cast<tbb::task_arena*>(arena_)->execute([&] {
      // Tasks are already coarse and uniform (the caller sized them), so a
      // static split has the least overhead; results do not depend on it.
      tbb::parallel_for(
          tbb::blocked_range<size_t>(0, num_tasks, 1),
          [&](const tbb::blocked_range<size_t>& r) {
            for (size_t i = r.begin(); i != r.end(); ++i) task(i);
          },
          tbb::static_partitioner());
    });
    return;
  }
#endif
  for (size_t i = 0; i < num_tasks; ++i) task(i);
}

ThreadPool& ThreadPool::Serial() {
  static ThreadPool* serial = new ThreadPool(1);
  return *serial;
}

}  // namespace thaw
