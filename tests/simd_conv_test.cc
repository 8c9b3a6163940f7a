// Convolution through tiles of the packed GEMM against a double reference on
// every compiled and supported target: odd sizes, stride 2, padding at every
// edge, channels that are not a multiple of the vector length, the 1x1 fast
// path, several tiles; forward with an epilogue, both gradients; the same
// bits for 1 and 2 threads; scratch exactly as asked.
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "hwy/tests/hwy_gtest.h"
#include "simd/conv.h"
#include "simd/scalar.h"
#include "simd/targets.h"
#include "tests/epilogue_util.h"
#include "tests/simd_test_util.h"

namespace thaw {
namespace simd {
namespace {

ConvShape Make(size_t batch, size_t h, size_t w, size_t cin, size_t cout, size_t k, size_t stride,
               bool same) {
  ConvShape s;
  s.batch = batch;
  s.in_h = h;
  s.in_w = w;
  s.in_c = cin;
  s.out_c = cout;
  s.kernel_h = s.kernel_w = k;
  s.stride_h = s.stride_w = stride;
  if (same) {  // Keras "same": ceil(h / stride), the extra padding at the bottom
    s.out_h = (h + stride - 1) / stride;
    s.out_w = (w + stride - 1) / stride;
    const size_t pad_h = std::max<long>(0, static_cast<long>((s.out_h - 1) * stride + k) -
                                               static_cast<long>(h));
    const size_t pad_w = std::max<long>(0, static_cast<long>((s.out_w - 1) * stride + k) -
                                               static_cast<long>(w));
    s.pad_top = pad_h / 2;
    s.pad_left = pad_w / 2;
  } else {
    s.out_h = (h - k) / stride + 1;
    s.out_w = (w - k) / stride + 1;
  }
  return s;
}

std::vector<ConvShape> Shapes() {
  return {Make(1, 5, 5, 1, 1, 3, 1, true),   Make(2, 7, 6, 3, 5, 3, 1, true),
          Make(2, 8, 8, 3, 17, 3, 2, true),  Make(1, 9, 7, 17, 9, 3, 2, false),
          Make(3, 6, 6, 16, 8, 1, 1, false), Make(2, 5, 5, 9, 31, 1, 2, false),
          Make(1, 4, 4, 2, 3, 5, 1, true),   Make(4, 14, 14, 32, 32, 3, 1, true),
          Make(2, 28, 28, 1, 16, 3, 1, true),
          // One vector of output channels (AVX3's 16 forward, AVX2's 8 for
          // dx), 13 wide: tiles of two blocks of rows, the last one short.
          Make(2, 13, 13, 8, 16, 3, 1, true),
          // Windows that are not square: 3x1 stride (2, 1), 1x5, 3x2 stride (1, 2) narrow.
          Wide(Make(2, 9, 8, 6, 5, 3, 2, true), 1, 1, true),
          Wide(Make(1, 6, 11, 8, 4, 1, 1, false), 5, 1, false),
          Wide(Make(2, 7, 9, 2, 8, 3, 1, true), 2, 2, true)};
}

// Exactly the scratch asked for, then guards.
struct Scratch {
  explicit Scratch(size_t n) : floats(n), mem(hwy::AllocateAligned<float>(n + 16)) {
    for (size_t i = 0; i < n + 16; ++i) mem[i] = kGuard;
  }
  bool GuardIntact() const {
    for (size_t i = floats; i < floats + 16; ++i) {
      if (!Array::SameBits(mem[i], kGuard)) return false;
    }
    return true;
  }
  size_t floats;
  hwy::AlignedFreeUniquePtr<float[]> mem;
};

void ExpectNear(const std::vector<float>& expected, const float* actual, double scale,
                const char* what) {
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], 1e-5 * scale) << what << " element " << i;
  }
}

HWY_BEFORE_TEST(ConvTest);

TEST_P(ConvTest, DispatchesToParamTarget) { EXPECT_EQ(GetParam(), DispatchedTarget()); }

TEST_P(ConvTest, ForwardMatchesTheReferenceWithAnEpilogue) {
  std::mt19937 rng(1);
  for (const ConvShape& s : Shapes()) {
    SCOPED_TRACE(Describe(s));
    const std::vector<float> x = RandomFloats(s.batch * s.in_h * s.in_w * s.in_c, rng);
    const std::vector<float> w = RandomFloats(s.patch() * s.out_c, rng);
    const std::vector<float> bias = RandomFloats(s.out_c, rng), mean = RandomFloats(s.out_c, rng),
                             scale = RandomFloats(s.out_c, rng), shift = RandomFloats(s.out_c, rng);
    std::vector<float> expected(s.pixels() * s.out_c);
    ScalarConvForward(x.data(), w.data(), expected.data(), s);
    std::vector<float> first;
    for (ThreadPool* pool : {&ThreadPool::Serial(), &Pool()}) {
      Scratch scratch(ConvForwardScratchFloats(s, pool->num_threads()));
      std::vector<float> y(s.pixels() * s.out_c, std::nanf(""));
      ConvForward(x.data(), w.data(), y.data(), s, scratch.mem.get(), *pool);
      ExpectNear(expected, y.data(), static_cast<double>(s.patch()), "y");
      EXPECT_TRUE(scratch.GuardIntact());
      // With bias, a folded BatchNorm and ReLU: the same as adding,
      // normalising and clamping afterwards. Also bias alone with ReLU6 (in
      // the tiles' registers too) and with tanh (a pass after them).
      GemmEpilogue epilogue;
      epilogue.bias = bias.data();
      epilogue.mean = mean.data();
      epilogue.scale = scale.data();
      epilogue.shift = shift.data();
      epilogue.activation = GemmActivation::kRelu;
      GemmEpilogue bias_only;
      bias_only.bias = bias.data();
      std::vector<float> fused(y.size());
      for (GemmActivation act : {GemmActivation::kRelu6, GemmActivation::kTanh}) {
        bias_only.activation = act;
        std::vector<float> by_hand = y;
        ConvForward(x.data(), w.data(), fused.data(), s, scratch.mem.get(), *pool, bias_only);
        ApplyEpilogueByHand(bias_only, by_hand.data(), s.pixels(), s.out_c, s.out_c);
        EXPECT_TRUE(SameBits(by_hand, fused.data())) << "bias, activation " << static_cast<int>(act);
      }
      ConvForward(x.data(), w.data(), fused.data(), s, scratch.mem.get(), *pool, epilogue);
      ApplyEpilogueByHand(epilogue, y.data(), s.pixels(), s.out_c, s.out_c);
      EXPECT_TRUE(SameBits(y, fused.data()));
      if (first.empty()) {
        first = fused;
      } else {
        EXPECT_TRUE(SameBits(first, fused.data())) << "1 vs 2 threads";
      }
    }
  }
}

TEST_P(ConvTest, BackwardMatchesTheReference) {
  std::mt19937 rng(2);
  for (const ConvShape& s : Shapes()) {
    SCOPED_TRACE(Describe(s));
    const std::vector<float> x = RandomFloats(s.batch * s.in_h * s.in_w * s.in_c, rng);
    const std::vector<float> w = RandomFloats(s.patch() * s.out_c, rng);
    const std::vector<float> dy = RandomFloats(s.pixels() * s.out_c, rng);
    std::vector<float> expected_dx(x.size()), expected_dw(w.size());
    ScalarConvBackward(x.data(), w.data(), dy.data(), expected_dx.data(), expected_dw.data(), s);
    std::vector<float> first_dx, first_dw;
    for (ThreadPool* pool : {&ThreadPool::Serial(), &Pool()}) {
      for (int which = 0; which < 3; ++which) {  // both, dx only, dw only
        const bool want_dx = which != 2, want_dw = which != 1;
        Scratch scratch(ConvBackwardScratchFloats(s, want_dx, want_dw, pool->num_threads()));
        std::vector<float> dx(x.size(), std::nanf("")), dw(w.size(), std::nanf(""));
        ConvBackward(x.data(), w.data(), dy.data(), want_dx ? dx.data() : nullptr,
                     want_dw ? dw.data() : nullptr, s, scratch.mem.get(), *pool);
        EXPECT_TRUE(scratch.GuardIntact());
        if (want_dx) {
          ExpectNear(expected_dx, dx.data(), static_cast<double>(s.kernel_h * s.kernel_w * s.out_c), "dx");
        }
        if (want_dw) ExpectNear(expected_dw, dw.data(), static_cast<double>(s.pixels()), "dw");
        if (which == 0) {
          if (first_dx.empty()) {
            first_dx = dx;
            first_dw = dw;
          } else {
            EXPECT_TRUE(SameBits(first_dx, dx.data())) << "1 vs 2 threads";
            EXPECT_TRUE(SameBits(first_dw, dw.data())) << "1 vs 2 threads";
          }
        }
      }
    }
  }
}

// Several tiles: more output pixels than one tile holds. Tiles then run on
// both threads (each in its own scratch), the weight gradient in groups of
// tiles, and a stride-1 input gradient as a forward convolution: the bits
// must still be those of one thread. Shapes: "same" with 3 tiles, 10 tiles
// (groups of uneven length), "valid" (the turned kernel padded by 2),
// stride 2 (col2im), an even kernel, and three input channels (the direct
// kernels, the weight gradient in two groups of pixels); then images of
// several bands of output rows (stride 1, about 128 KiB of padded input a
// band): 40 x 40 x 32 "same" in 2 bands, 45 x 30 x 48 "valid" in 3.
TEST_P(ConvTest, ManyTilesMatchTheReferenceAndOneThread) {
  std::mt19937 rng(3);
  for (const ConvShape& s :
       {Make(3, 20, 20, 8, 4, 3, 1, true), Make(2, 25, 23, 16, 5, 3, 1, true),
        Make(3, 22, 22, 8, 6, 3, 1, false), Make(3, 31, 29, 16, 7, 3, 2, true),
        Make(3, 20, 21, 24, 3, 2, 1, true), Make(3, 30, 30, 3, 8, 3, 1, true),
        Make(1, 40, 40, 32, 8, 3, 1, true), Make(1, 45, 30, 48, 4, 3, 1, false)}) {
    SCOPED_TRACE(Describe(s));
    ASSERT_GE(s.pixels(), 2 * ConvTileRows(s));
    const std::vector<float> x = RandomFloats(s.batch * s.in_h * s.in_w * s.in_c, rng);
    const std::vector<float> w = RandomFloats(s.patch() * s.out_c, rng);
    const std::vector<float> dy = RandomFloats(s.pixels() * s.out_c, rng);
    std::vector<float> expected_dx(x.size()), expected_dw(w.size()), expected_y(dy.size());
    ScalarConvForward(x.data(), w.data(), expected_y.data(), s);
    ScalarConvBackward(x.data(), w.data(), dy.data(), expected_dx.data(), expected_dw.data(), s);
    std::vector<float> first_y, first_dx, first_dw;
    for (ThreadPool* pool : {&ThreadPool::Serial(), &Pool()}) {
      const int threads = pool->num_threads();
      Scratch forward(ConvForwardScratchFloats(s, threads));
      Scratch backward(ConvBackwardScratchFloats(s, true, true, threads));
      std::vector<float> y(dy.size(), std::nanf("")), dx(x.size(), std::nanf("")),
          dw(w.size(), std::nanf(""));
      ConvForward(x.data(), w.data(), y.data(), s, forward.mem.get(), *pool);
      ConvBackward(x.data(), w.data(), dy.data(), dx.data(), dw.data(), s, backward.mem.get(),
                   *pool);
      EXPECT_TRUE(forward.GuardIntact());
      EXPECT_TRUE(backward.GuardIntact());
      ExpectNear(expected_y, y.data(), static_cast<double>(s.patch()), "y");
      ExpectNear(expected_dx, dx.data(), static_cast<double>(s.kernel_h * s.kernel_w * s.out_c),
                 "dx");
      ExpectNear(expected_dw, dw.data(), static_cast<double>(s.pixels()), "dw");
      if (first_y.empty()) {
        first_y = y;
        first_dx = dx;
        first_dw = dw;
      } else {
        EXPECT_TRUE(SameBits(first_y, y.data())) << "1 vs 2 threads";
        EXPECT_TRUE(SameBits(first_dx, dx.data())) << "1 vs 2 threads";
        EXPECT_TRUE(SameBits(first_dw, dw.data())) << "1 vs 2 threads";
      }
    }
  }
}

}  // namespace
}  // namespace simd
}  // namespace thaw
