#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hwy/targets.h"
#include "platform/cpu.h"
#include "platform/memory.h"
#include "platform/random.h"
#include "platform/span.h"
#include "platform/status.h"
#include "platform/terminal.h"
#include "platform/threads.h"
#include "simd/targets.h"

namespace thaw {
namespace {

Status FailsWith(int value) {
  if (value < 0) return InvalidArgument("x: value %d is negative", value);
  return Status::Ok();
}

Status Forwards(int value) {
  THAW_RETURN_IF_ERROR(FailsWith(value));
  return NotFound("reached the end");
}

TEST(StatusTest, OkHasNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_STREQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "ok");
}

#if THAW_ERROR_STRINGS
TEST(StatusTest, FormatsMessageAndCode) {
  Status s = FailsWith(-3);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_STREQ(s.message(), "x: value -3 is negative");
  EXPECT_EQ(s.ToString(), "invalid argument: x: value -3 is negative");
}
#else
// Without error strings (firmware, THAW_ERROR_STRINGS=OFF) the same call
// keeps the code and reads the code's fixed text; nothing was formatted.
TEST(StatusTest, KeepsTheCodeAndAFixedText) {
  Status s = FailsWith(-3);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_STREQ(s.message(), "an argument is malformed");
  EXPECT_EQ(s.ToString(), "invalid argument: an argument is malformed");
  EXPECT_STREQ(Status(StatusCode::kDataLoss, "dropped").message(), "a file's contents are corrupt");
  EXPECT_EQ(sizeof(Status), sizeof(StatusCode));  // the code, nothing more
}

TEST(StatusTest, EveryCodeHasItsOwnFixedText) {
  const StatusCode codes[] = {StatusCode::kInvalidArgument, StatusCode::kFailedPrecondition,
                              StatusCode::kResourceExhausted, StatusCode::kNotFound,
                              StatusCode::kDataLoss, StatusCode::kIoError, StatusCode::kInternal};
  std::set<std::string> texts;
  for (StatusCode code : codes) {
    const std::string text = Status(code, "").message();
    EXPECT_FALSE(text.empty()) << StatusCodeName(code);
    EXPECT_TRUE(texts.insert(text).second) << StatusCodeName(code) << " repeats \"" << text << "\"";
  }
}
#endif

TEST(StatusTest, ReturnIfErrorForwardsTheFirstError) {
  EXPECT_EQ(Forwards(-1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Forwards(1).code(), StatusCode::kNotFound);
}

TEST(CheckDeathTest, AbortsWithFileAndCondition) {
  EXPECT_DEATH(THAW_CHECK(1 + 1 == 3), "platform_test.cc:[0-9]+: 1 \\+ 1 == 3");
}

TEST(MemoryTest, AlignedAllocIsAligned) {
  for (size_t bytes : {1, 63, 64, 65, 4097}) {
    void* p = AlignedAlloc(bytes);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(IsAligned(p));
    std::memset(p, 0xab, bytes);
    AlignedFree(p);
  }
  EXPECT_EQ(AlignUp(0), 0u);
  EXPECT_EQ(AlignUp(1), 64u);
  EXPECT_EQ(AlignUp(64), 64u);
  EXPECT_EQ(AlignUp(65), 128u);
}

TEST(SpanTest, ViewsArraysListsAndVectors) {
  float array[3] = {1, 2, 3};
  Span<float> a(array);
  EXPECT_EQ(a.size(), 3u);
  a[1] = 5;
  EXPECT_EQ(array[1], 5);
  std::vector<float> v = {4, 5};
  Span<const float> b(v);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b[1], 5);
  auto sum = [](Span<const float> s) {
    float t = 0;
    for (float x : s) t += x;
    return t;
  };
  EXPECT_EQ(sum({1.0f, 2.0f, 3.5f}), 6.5f);
}

class ThreadPoolTest : public ::testing::TestWithParam<int> {};

TEST_P(ThreadPoolTest, RunsEveryTaskExactlyOnce) {
  ThreadPool pool(GetParam());
  EXPECT_GE(pool.num_threads(), 1);
  for (size_t tasks : {0, 1, 2, 7, 1000}) {
    std::vector<std::atomic<int>> hits(tasks);
    for (auto& h : hits) h = 0;
    pool.ParallelFor(tasks, [&](size_t i) { hits[i].fetch_add(1); });
    for (size_t i = 0; i < tasks; ++i) EXPECT_EQ(hits[i].load(), 1) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, ThreadPoolTest, ::testing::Values(1, 2, 3));

// The high half of a 64 x 64-bit product without unsigned __int128 (32-bit
// targets): the same as the 128-bit product where that exists, and the same
// numbers from Below as before (drawn with __int128 on x86-64).
TEST(RandomTest, MulHighIsTheHighHalfAndBelowIsUnchanged) {
  EXPECT_EQ(Random::MulHigh(~uint64_t{0}, ~uint64_t{0}), 0xFFFFFFFFFFFFFFFEull);
  EXPECT_EQ(Random::MulHigh(uint64_t{1} << 63, 4), 2u);
  EXPECT_EQ(Random::MulHigh(0xFFFFFFFFull, 0xFFFFFFFFull), 0u);
#if defined(__SIZEOF_INT128__)
  Random pairs(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t a = pairs.Next(), b = i % 3 == 0 ? pairs.Next() >> (i % 64) : pairs.Next();
    const auto wide = static_cast<unsigned __int128>(a) * b;
    ASSERT_EQ(Random::MulHigh(a, b), static_cast<uint64_t>(wide >> 64)) << a << " * " << b;
  }
#endif
  Random r(42);
  for (size_t expected : {741567u, 159910u, 278601u, 344191u, 38030u, 868230u, 218405u, 800634u}) {
    EXPECT_EQ(r.Below(1000003), expected);
  }
}

TEST(ThreadPoolTest, GetsAtMostOneThreadPerCore) {
  ThreadPool pool(1000);
  ThreadPool all(0);
  if (!ThreadsEnabled()) {
    EXPECT_EQ(pool.num_threads(), 1);
    EXPECT_EQ(all.num_threads(), 1);
    return;
  }
  EXPECT_EQ(pool.num_threads(), HardwareThreads());
  EXPECT_EQ(all.num_threads(), HardwareThreads());
}

TEST(ThreadPoolTest, TasksRunOnSeveralThreadsWhenBuiltWithTbb) {
  if (!ThreadsEnabled() || HardwareThreads() < 2) GTEST_SKIP() << "one thread only";
  ThreadPool pool(2);
  std::atomic<int> running{0}, overlap{0};
  pool.ParallelFor(64, [&](size_t) {
    if (running.fetch_add(1) > 0) overlap = 1;
    for (int spin = 0; spin < 5000000 && overlap == 0; ++spin) {
    }
    running.fetch_sub(1);
  });
  EXPECT_EQ(overlap.load(), 1);
}

TEST(CpuTest, DispatchedTargetIsSupportedAndCompiled) {
  const std::string supported = simd::SupportedTargetNames();
  const std::string compiled = simd::CompiledTargetNames();
  const std::string dispatched = simd::DispatchedTargetName();
  EXPECT_FALSE(supported.empty());
  EXPECT_NE(supported.find(dispatched), std::string::npos) << supported;
  EXPECT_NE(compiled.find(dispatched), std::string::npos) << compiled;
  EXPECT_GE(HardwareThreads(), 1);
}

// The hwcap queries agree with the targets offered: Highway's own detection
// on aarch64, and thaw's correction of it on 32-bit Arm, where Highway 1.0.3
// alone never offers NEON (simd/offered_targets.h).
TEST(CpuTest, ArmFeatureQueriesAgreeWithTheTargetsOffered) {
#if defined(HWY_COMPILE_ONLY_STATIC)
  GTEST_SKIP() << "one static target: nothing is offered at run time";
#else
  const int64_t offered = simd::SupportedTargets();
#if defined(__aarch64__)
  EXPECT_FALSE(Arm32HasNeonAndVfpv4());
  EXPECT_EQ(Arm64HasSve(), (offered & (HWY_SVE | HWY_SVE_256 | HWY_SVE2 | HWY_SVE2_128)) != 0)
      << simd::SupportedTargetNames();
  EXPECT_EQ(Arm64HasSve2(), (offered & (HWY_SVE2 | HWY_SVE2_128)) != 0)
      << simd::SupportedTargetNames();
#elif defined(__arm__)
  EXPECT_FALSE(Arm64HasSve());
  EXPECT_FALSE(Arm64HasSve2());
  EXPECT_EQ(Arm32HasNeonAndVfpv4(), (offered & HWY_NEON) != 0) << simd::SupportedTargetNames();
  if (Arm32HasNeonAndVfpv4()) {
    EXPECT_EQ(simd::DispatchedTarget(), HWY_NEON);
  }
#else
  (void)offered;
  EXPECT_FALSE(Arm32HasNeonAndVfpv4());
  EXPECT_FALSE(Arm64HasSve());
  EXPECT_FALSE(Arm64HasSve2());
#endif
#endif  // HWY_COMPILE_ONLY_STATIC
}

// Points standard output at `fd` for its lifetime, then back.
class StdoutRedirect {
 public:
  explicit StdoutRedirect(int fd) : saved_(::dup(STDOUT_FILENO)) {
    std::fflush(stdout);
    ::dup2(fd, STDOUT_FILENO);
  }
  ~StdoutRedirect() {
    std::fflush(stdout);
    ::dup2(saved_, STDOUT_FILENO);
    ::close(saved_);
  }
  StdoutRedirect(const StdoutRedirect&) = delete;
  StdoutRedirect& operator=(const StdoutRedirect&) = delete;

 private:
  int saved_;
};

TEST(TerminalTest, StdoutIsATerminalOnlyWhenItIsOne) {
  const int null = ::open("/dev/null", O_WRONLY);
  ASSERT_GE(null, 0);
  {
    StdoutRedirect redirect(null);
    EXPECT_FALSE(StdoutIsTerminal());
  }
  ::close(null);
  // A pseudo-terminal, as a terminal emulator or ssh gives a program.
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0) GTEST_SKIP() << "no pseudo-terminals here";
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  const int terminal = ::open(::ptsname(master), O_WRONLY | O_NOCTTY);
  ASSERT_GE(terminal, 0);
  {
    StdoutRedirect redirect(terminal);
    EXPECT_TRUE(StdoutIsTerminal());
  }
  ::close(terminal);
  ::close(master);
}

}  // namespace
}  // namespace thaw
