// thaw/platform/threads.h — the thread pool every kernel takes.
//
//   thaw::ThreadPool pool(2);                       // 0 = one thread per core
//   pool.ParallelFor(num_blocks, [&](size_t block) { ...work on block... });
//
// With THAW_WITH_TBB the pool wraps a tbb::task_arena of the chosen size; without
// it (firmware-adjacent builds) it runs every task on the calling thread. The
// caller decides how work is split into tasks, so results never depend on the
// thread count: a task computes the same bits wherever it runs.
#ifndef THAW_PLATFORM_THREADS_H_
#define THAW_PLATFORM_THREADS_H_

#include <cstddef>
#include <type_traits>
#include <utility>

#include "platform/status.h"

namespace thaw {

// A non-owning, non-allocating reference to a callable `void(size_t)`.
// The callable must outlive the call it is passed to.
class TaskRef {
 public:
  template <class F, class = std::enable_if_t<
                         !std::is_same<std::decay_t<F>, TaskRef>::value>>
  TaskRef(const F& f)  // NOLINT: implicit by design, like std::function_ref
      : object_(&f), call_([](const void* o, size_t i) {
          (*static_cast<const F*>(o))(i);
        }) {}
  void operator()(size_t i) const { call_(object_, i); }

 private:
  const void* object_;
  void (*call_)(const void*, size_t);
};

class ThreadPool {
 public:
  // num_threads == 0, or more than the machine has cores, gives one thread
  // per core. Without TBB it is always 1. A negative count gives one thread
  // and an InvalidArgument status(), which a model built on the pool returns.
  explicit ThreadPool(int num_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

#if THAW_SERIAL_ONLY
  // The firmware profile is serial: a constant lets the compiler drop the
  // kernels' multi-task paths (3.4 KB of its c_finetune).
  int num_threads() const { return 1; }
#else
  int num_threads() const { return num_threads_; }
#endif
  // Ok, or why the pool could not be made as asked.
  const Status& status() const { return status_; }

  // Runs task(i) for every i in [0, num_tasks), possibly concurrently, and
  // returns when all are done. Tasks must not throw. With one thread (or one
  // task) it runs inline on the caller, without touching the scheduler.
  void ParallelFor(size_t num_tasks, TaskRef task);

  // A process-wide single-thread pool, for callers that do not care.
  static ThreadPool& Serial();

 private:
  int num_threads_ = 1;
  Status status_;
  void* arena_ = nullptr;  // tbb::task_arena*, hidden to keep TBB out of headers
};

// Whether this build runs tasks on several threads (THAW_WITH_TBB).
bool ThreadsEnabled();

// Offers the rest of this thread's time slice to another thread: the back-off
// of a spinning wait whose partner may have been descheduled.
void YieldToOtherThreads();

}  // namespace thaw

#endif  // THAW_PLATFORM_THREADS_H_
