// The plain data planners read for a SIMD target (simd/target_shapes.h,
// simd/targets.h's DescribeTarget) against that target's own code, on every
// target this build compiled and this CPU runs: the lanes of its vectors,
// the GEMM's tiles, and the scratch its kernels ask for (gemm-inl.h's query
// in the target's code) against the queries answered from data. Then the
// descriptions of targets this CPU cannot run, and the refusals.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "simd/conv.h"
#include "simd/gemm.h"
#include "simd/targets.h"
#include "tests/status_text.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tests/simd_target_shapes_test.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "simd/gemm-inl.h"

#include "hwy/tests/hwy_gtest.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The description from data is what this target's code uses: its lanes,
// its tiles, and what dispatch (pinned to this target) reports.
HWY_NOINLINE void TestDescriptionIsWhatTheCodeUses() {
  simd::TargetDescription described;
  HWY_ASSERT(simd::DescribeTarget(HWY_TARGET, 0, &described).ok());
  const size_t lanes = hn::Lanes(hn::ScalableTag<float>());
  HWY_ASSERT(lanes == described.lanes);
  HWY_ASSERT(int64_t{HWY_TARGET} == described.shape->target);
  HWY_ASSERT(gemm::kMR == described.shape->gemm_rows);
  HWY_ASSERT(gemm::kNV == described.shape->gemm_vectors);
  HWY_ASSERT(gemm::kDR == described.shape->dot_rows);
  HWY_ASSERT(gemm::TileCols() == described.shape->gemm_vectors * described.lanes);
  HWY_ASSERT(lanes == simd::internal::LanesByRunning(HWY_TARGET));

  const simd::TargetDescription dispatched = simd::DispatchedTargetDescription();
  HWY_ASSERT(dispatched.shape == described.shape);
  HWY_ASSERT(lanes == dispatched.lanes);

  // By name, and with this CPU's vector length given: the same.
  simd::TargetDescription named;
  const std::string name = std::string(described.shape->name) + ":" + std::to_string(lanes * 32);
  HWY_ASSERT(simd::DescribeTargetNamed(name.c_str(), &named).ok());
  HWY_ASSERT(named.shape == described.shape);
  HWY_ASSERT(lanes == named.lanes);
}

// The scratch this target's kernels take (gemm-inl.h's query, in this
// target's code) is the scratch planned from data, for shapes around the
// tile, panel and block edges, every layout, 1 to 3 threads; and the
// convolution's queries answer the same planned or dispatched.
HWY_NOINLINE void TestScratchFromDataIsTheKernelsOwn() {
  simd::TargetDescription described;
  HWY_ASSERT(simd::DescribeTarget(HWY_TARGET, 0, &described).ok());
  const size_t mr = gemm::kMR, nr = gemm::TileCols();
  const std::vector<size_t> sides = {1,      mr - 1 + (mr == 1), mr + 1, nr,  nr + 1,
                                     3 * nr + 2, 64,            143,    145, 300, 2100};
  const std::vector<size_t> depths = {1, 7, 64, 257, 1100};
  size_t nonzero = 0;
  for (size_t m : sides) {
    for (size_t n : sides) {
      for (size_t k : depths) {
        for (int t = 0; t < 4; ++t) {
          for (int threads = 1; threads <= 3; ++threads) {
            const bool trans_a = (t & 1) != 0, trans_b = (t & 2) != 0;
            const size_t own = gemm::GemmScratchFloatsT(m, n, k, trans_a, trans_b, threads);
            const size_t here = simd::GemmScratchFloats(m, n, k, trans_a, trans_b, threads);
            simd::ScopedPlanningTarget machine(&described);
            const size_t planned = simd::GemmScratchFloats(m, n, k, trans_a, trans_b, threads);
            HWY_ASSERT(own == planned);
            HWY_ASSERT(own == here);
            nonzero += own != 0;
          }
        }
      }
    }
  }
  HWY_ASSERT(nonzero > 100);  // the packed path, not only the dot path

  simd::ConvShape s;
  s.batch = 3;
  s.in_h = s.in_w = 9;
  s.in_c = 6;
  s.out_h = s.out_w = 9;
  s.out_c = 5;
  s.kernel_h = s.kernel_w = 3;
  s.pad_top = s.pad_left = 1;
  for (int threads = 1; threads <= 2; ++threads) {
    const size_t forward = simd::ConvForwardScratchFloats(s, threads);
    const size_t backward = simd::ConvBackwardScratchFloats(s, true, true, threads);
    simd::ScopedPlanningTarget machine(&described);
    HWY_ASSERT(forward == simd::ConvForwardScratchFloats(s, threads));
    HWY_ASSERT(backward == simd::ConvBackwardScratchFloats(s, true, true, threads));
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace thaw {

HWY_BEFORE_TEST(TargetShapesTest);
HWY_EXPORT_AND_TEST_P(TargetShapesTest, TestDescriptionIsWhatTheCodeUses);
HWY_EXPORT_AND_TEST_P(TargetShapesTest, TestScratchFromDataIsTheKernelsOwn);

namespace {

// Every compiled target is described, whether or not this CPU runs it; the
// table's row is the one its kernels were compiled with (gemm-inl.h
// static_asserts the lanes against Highway's).
TEST(TargetDescriptionTest, EveryCompiledTargetIsDescribed) {
  for (int shift = 0; shift < 63; ++shift) {
    const int64_t bit = int64_t{1} << shift;
    if (!simd::IsCompiledTarget(bit)) continue;
    const simd::TargetShape* shape = simd::FindTargetShape(bit, simd::kBuildArch);
    ASSERT_NE(shape, nullptr) << simd::TargetNames(bit);
    simd::TargetDescription d;
    const Status s = simd::DescribeTarget(bit, shape->vector_bytes == 0 ? 256 : 0, &d);
    ASSERT_TRUE(s.ok()) << simd::TargetNames(bit) << ": " << s.message();
    EXPECT_EQ(d.shape, shape);
    EXPECT_EQ(d.lanes, shape->vector_bytes == 0 ? 8u : shape->vector_bytes / 4);
  }
}

// Targets of x86 and 64-bit Arm from any CPU, by bit and by name, as the
// table states them (the x86 and Arm rows are checked by running in the
// per-target tests above, here and under qemu).
TEST(TargetDescriptionTest, DescribesTheOtherArchitecturesTargets) {
  struct Expected {
    const char* name;
    int64_t target;
    size_t lanes, rows, vectors;
  };
  const bool arm32 = simd::kBuildArch == simd::TargetArch::kArm32;
  const Expected expected[] = {
      {"AVX3_DL", HWY_AVX3_DL, 16, 8, 2},
      {"AVX3", HWY_AVX3, 16, 8, 2},
      {"AVX2", HWY_AVX2, 8, 6, 2},
      {"SSE4", HWY_SSE4, 4, 6, 2},
      {"SSSE3", HWY_SSSE3, 4, 6, 2},
      {"SVE2_128", HWY_SVE2_128, 4, 8, 3},
      {"SVE_256", HWY_SVE_256, 8, 8, 3},
      {"SVE:512", HWY_SVE, 16, 8, 3},
      {"SVE2:2048", HWY_SVE2, 64, 8, 3},
      {"SVE2:384", HWY_SVE2, 8, 8, 3},  // Highway: the largest power of two
      // 32-bit Arm's NEON has 16 vector registers, 64-bit Arm's 32.
      {"NEON", HWY_NEON, 4, arm32 ? 6u : 8u, arm32 ? 2u : 3u},
      {"SCALAR", HWY_SCALAR, 1, 4, 3},
  };
  for (const Expected& e : expected) {
    simd::TargetDescription d;
    Status s = simd::DescribeTargetNamed(e.name, &d);
    ASSERT_TRUE(s.ok()) << e.name << ": " << s.message();
    EXPECT_EQ(d.shape->target, e.target) << e.name;
    EXPECT_EQ(d.lanes, e.lanes) << e.name;
    EXPECT_EQ(d.shape->gemm_rows, e.rows) << e.name;
    EXPECT_EQ(d.shape->gemm_vectors, e.vectors) << e.name;
    simd::TargetDescription by_bit;
    const std::string name = e.name;
    const size_t colon = name.find(':');
    const size_t bits = colon == std::string::npos ? 0 : std::stoul(name.substr(colon + 1));
    s = simd::DescribeTarget(e.target, bits, &by_bit);
    ASSERT_TRUE(s.ok()) << e.name << ": " << s.message();
    EXPECT_EQ(by_bit.shape, d.shape) << e.name;
    EXPECT_EQ(by_bit.lanes, d.lanes) << e.name;
  }
}

TEST(TargetDescriptionTest, RefusesWhatItCannotDescribe) {
  simd::TargetDescription d;
  Status s = simd::DescribeTargetNamed("NO_SUCH_TARGET", &d);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(s, "not a SIMD target thaw can plan for")) << s.message();
  EXPECT_TRUE(MessageContains(s, "AVX2")) << s.message();  // lists what it knows
  EXPECT_EQ(simd::DescribeTargetNamed("AVX", &d).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(simd::DescribeTargetNamed("", &d).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(simd::DescribeTargetNamed(nullptr, &d).code(), StatusCode::kInvalidArgument);
  s = simd::DescribeTargetNamed("SVE2:500", &d);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(s, "multiple of 128")) << s.message();
  EXPECT_EQ(simd::DescribeTargetNamed("SVE2:4096", &d).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(simd::DescribeTargetNamed("SVE2:", &d).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(simd::DescribeTargetNamed("SVE2:x", &d).code(), StatusCode::kInvalidArgument);
  s = simd::DescribeTargetNamed("AVX2:512", &d);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageContains(s, "256-bit vectors")) << s.message();
  // Not one bit, or no target.
  EXPECT_EQ(simd::DescribeTarget(0, 0, &d).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(simd::DescribeTarget(HWY_AVX2 | HWY_SSE4, 0, &d).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(simd::DescribeTarget(int64_t{1}, 0, &d).code(), StatusCode::kInvalidArgument);
  // A CPU-chosen length this CPU cannot tell: it must be given.
  if ((simd::SupportedTargets() & HWY_SVE) == 0 || !simd::IsCompiledTarget(HWY_SVE)) {
    s = simd::DescribeTarget(HWY_SVE, 0, &d);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(MessageContains(s, "SVE:512")) << s.message();
  }
}

}  // namespace
}  // namespace thaw
#endif  // HWY_ONCE
