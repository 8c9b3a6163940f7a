// The floor under thaw_cold_start's "launch -> main" (bench/cold_start.cc): a
// program whose main only prints when it began, in the same JSON. Built by
// bench/run_cold_start.sh alone, as is and linked (--no-as-needed) to libhwy,
// libtbb or both, so that the report shows what loading each library and
// running its static constructors adds before main.
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdio>

int main() {
  const long long ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now().time_since_epoch())
                           .count();
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  timespec cpu;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  std::printf("{\"phases\": [[\"main\", %lld, %ld, %lld]]}\n", ns, usage.ru_minflt,
              cpu.tv_sec * 1000000000LL + cpu.tv_nsec);
  return 0;
}
