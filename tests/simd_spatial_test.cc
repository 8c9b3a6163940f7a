// Depthwise convolution and pooling against their references on every
// compiled and supported target: odd sizes, stride 2, "same" padding at
// every edge, overlapping windows, global pooling, channel counts around the
// lane counts; 1 and 2 threads give the same bits.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

#include "hwy/tests/hwy_gtest.h"
#include "simd/scalar.h"
#include "simd/spatial.h"
#include "simd/targets.h"
#include "tests/epilogue_util.h"
#include "tests/simd_test_util.h"

namespace thaw {
namespace simd {
namespace {

// A channels-preserving window op: kernel k, stride, Keras "same" or "valid".
ConvShape Window(size_t batch, size_t h, size_t w, size_t c, size_t k, size_t stride, bool same) {
  ConvShape s;
  s.batch = batch;
  s.in_h = h;
  s.in_w = w;
  s.in_c = s.out_c = c;
  s.kernel_h = s.kernel_w = k;
  s.stride_h = s.stride_w = stride;
  if (same) {
    s.out_h = (h + stride - 1) / stride;
    s.out_w = (w + stride - 1) / stride;
    const long pad_h = static_cast<long>((s.out_h - 1) * stride + k) - static_cast<long>(h);
    const long pad_w = static_cast<long>((s.out_w - 1) * stride + k) - static_cast<long>(w);
    s.pad_top = pad_h > 0 ? static_cast<size_t>(pad_h) / 2 : 0;
    s.pad_left = pad_w > 0 ? static_cast<size_t>(pad_w) / 2 : 0;
  } else {
    s.out_h = (h - k) / stride + 1;
    s.out_w = (w - k) / stride + 1;
  }
  return s;
}

std::vector<ConvShape> Shapes() {
  return {Window(1, 5, 5, 1, 3, 1, true),   Window(2, 7, 6, 3, 3, 2, true),
          Window(2, 8, 8, 17, 3, 2, true),  Window(1, 9, 7, 9, 3, 1, false),
          Window(3, 6, 6, 16, 2, 2, false), Window(2, 5, 5, 33, 3, 2, false),
          Window(1, 7, 7, 5, 7, 1, false),  Window(2, 14, 14, 32, 3, 1, true),
          Window(1, 4, 4, 8, 3, 1, true),
          // The depthwise weight gradient in 4 uneven groups of images; in
          // two chunks of channels.
          Window(5, 6, 6, 16, 3, 1, true),  Window(2, 6, 6, 70, 3, 1, true),
          // Windows that are not square: 3x1 stride (2, 1), 2x3 stride (2, 3).
          Wide(Window(2, 9, 8, 6, 3, 2, true), 1, 1, true),
          Wide(Window(1, 8, 10, 5, 2, 2, false), 3, 3, false)};
}

size_t InSize(const ConvShape& s) { return s.batch * s.in_h * s.in_w * s.in_c; }
size_t OutSize(const ConvShape& s) { return s.batch * s.out_h * s.out_w * s.in_c; }

void ExpectNear(const std::vector<float>& expected, const std::vector<float>& actual,
                double tolerance, const char* what) {
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], tolerance) << what << " element " << i;
  }
}

HWY_BEFORE_TEST(SpatialTest);

TEST_P(SpatialTest, DispatchesToParamTarget) { EXPECT_EQ(GetParam(), DispatchedTarget()); }

TEST_P(SpatialTest, DepthwiseMatchesTheReference) {
  std::mt19937 rng(1);
  for (const ConvShape& s : Shapes()) {
    SCOPED_TRACE(Describe(s));
    const std::vector<float> x = RandomFloats(InSize(s), rng), w = RandomFloats(9 * 9 * s.in_c, rng),
                             dy = RandomFloats(OutSize(s), rng), bias = RandomFloats(s.in_c, rng),
                             mean = RandomFloats(s.in_c, rng), scale = RandomFloats(s.in_c, rng),
                             shift = RandomFloats(s.in_c, rng);
    std::vector<float> y_ref(OutSize(s)), dx_ref(InSize(s)), dw_ref(s.kernel_h * s.kernel_w * s.in_c);
    ScalarDepthwiseForward(x.data(), w.data(), y_ref.data(), s);
    ScalarDepthwiseBackward(x.data(), w.data(), dy.data(), dx_ref.data(), dw_ref.data(), s);
    std::vector<float> first_y, first_dx, first_dw;
    for (ThreadPool* pool : {&ThreadPool::Serial(), &Pool()}) {
      std::vector<float> y(OutSize(s)), dx(InSize(s)), dw(dw_ref.size());
      DepthwiseForward(x.data(), w.data(), y.data(), s, *pool);
      std::vector<float> scratch(DepthwiseBackwardScratchFloats(s, true));
      DepthwiseBackward(x.data(), w.data(), dy.data(), dx.data(), dw.data(), s, scratch.data(),
                        *pool);
      ExpectNear(y_ref, y, 1e-5 * s.kernel_h * s.kernel_w, "y");
      ExpectNear(dx_ref, dx, 1e-5 * s.kernel_h * s.kernel_w, "dx");
      ExpectNear(dw_ref, dw, 1e-5 * s.pixels(), "dw");
      // The epilogue (bias, a folded BatchNorm, ReLU6) equals adding,
      // normalising and clamping afterwards.
      GemmEpilogue epilogue;
      epilogue.bias = bias.data();
      epilogue.mean = mean.data();
      epilogue.scale = scale.data();
      epilogue.shift = shift.data();
      epilogue.activation = GemmActivation::kRelu6;
      std::vector<float> fused(y.size());
      DepthwiseForward(x.data(), w.data(), fused.data(), s, *pool, epilogue);
      ApplyEpilogueByHand(epilogue, y.data(), s.pixels(), s.in_c, s.in_c);
      EXPECT_TRUE(SameBits(y, fused.data()));
      if (first_y.empty()) {
        first_y = fused;
        first_dx = dx;
        first_dw = dw;
      } else {
        EXPECT_TRUE(SameBits(first_y, fused.data())) << "1 vs 2 threads";
        EXPECT_TRUE(SameBits(first_dx, dx.data())) << "1 vs 2 threads";
        EXPECT_TRUE(SameBits(first_dw, dw.data())) << "1 vs 2 threads";
      }
    }
  }
}

// Pooling gives the reference's bits (same order, no fused multiply-add).
// A NaN anywhere in a window makes its maximum NaN, as in PyTorch (it used
// to be kept only when it was the window's first tap).
TEST_P(SpatialTest, MaxPoolPropagatesNaN) {
  const ConvShape s = Window(1, 4, 4, 19, 2, 2, false);
  std::vector<float> x(InSize(s), 0.5f), y(OutSize(s)), ref(OutSize(s));
  x[(1 * s.in_w + 1) * s.in_c + 3] = std::numeric_limits<float>::quiet_NaN();  // tap (1,1) of window (0,0)
  x[(0 * s.in_w + 2) * s.in_c + 18] = std::numeric_limits<float>::quiet_NaN();  // tap (0,0) of window (0,1)
  MaxPoolForward(x.data(), y.data(), s, ThreadPool::Serial());
  ScalarMaxPoolForward(x.data(), ref.data(), s);
  for (size_t i = 0; i < y.size(); ++i) {
    const bool nan = i == 3 || i == s.in_c + 18;
    EXPECT_EQ(std::isnan(y[i]), nan) << i;
    EXPECT_EQ(std::isnan(ref[i]), nan) << "reference " << i;
  }
}

TEST_P(SpatialTest, PoolingEqualsTheReference) {
  std::mt19937 rng(2);
  std::vector<ConvShape> shapes = Shapes();
  shapes.push_back(Window(2, 7, 7, 19, 7, 1, false));  // global average pooling of 7 x 7
  // Windows that do not overlap: padded, with gaps between them, padded on top.
  for (const ConvShape& s : {Window(2, 7, 7, 9, 2, 2, true), Window(1, 8, 8, 5, 2, 3, false),
                             Window(2, 10, 10, 6, 3, 3, true), Window(1, 13, 9, 4, 3, 4, true)}) {
    shapes.push_back(s);
  }
  for (const ConvShape& s : shapes) {
    SCOPED_TRACE(Describe(s));
    std::vector<float> x = RandomFloats(InSize(s), rng);
    for (size_t i = 0; i < x.size(); i += 7) x[i] = x[i / 2];  // ties: first tap wins
    const std::vector<float> dy = RandomFloats(OutSize(s), rng);
    std::vector<float> max_ref(OutSize(s)), max_dx_ref(InSize(s)), avg_ref(OutSize(s)),
        avg_dx_ref(InSize(s));
    ScalarMaxPoolForward(x.data(), max_ref.data(), s);
    ScalarMaxPoolBackward(x.data(), max_ref.data(), dy.data(), max_dx_ref.data(), s);
    ScalarAvgPoolForward(x.data(), avg_ref.data(), s);
    ScalarAvgPoolBackward(dy.data(), avg_dx_ref.data(), s);
    for (ThreadPool* pool : {&ThreadPool::Serial(), &Pool()}) {
      std::vector<float> y(OutSize(s)), dx(InSize(s));
      MaxPoolForward(x.data(), y.data(), s, *pool);
      EXPECT_TRUE(SameBits(max_ref, y.data())) << "max forward";
      std::fill(dx.begin(), dx.end(), std::nanf(""));  // every element is written
      MaxPoolBackward(x.data(), y.data(), dy.data(), dx.data(), s, *pool);
      EXPECT_TRUE(SameBits(max_dx_ref, dx.data())) << "max backward";
      AvgPoolForward(x.data(), y.data(), s, *pool);
      EXPECT_TRUE(SameBits(avg_ref, y.data())) << "avg forward";
      AvgPoolBackward(dy.data(), dx.data(), s, *pool);
      EXPECT_TRUE(SameBits(avg_dx_ref, dx.data())) << "avg backward";
    }
    // Every window's gradient goes somewhere exactly once (max pooling).
    double total_dy = 0, total_dx = 0;
    for (float g : dy) total_dy += g;
    for (float g : max_dx_ref) total_dx += g;
    EXPECT_NEAR(total_dx, total_dy, 1e-4 * dy.size());
  }
}

// With a mask, max pooling's backward gives the bits of pooling's backward
// then the activation's (the ReLU or ReLU6 that produced x): windows whose
// maximum is 0 (all taps clipped) or 6 send nothing back.
TEST_P(SpatialTest, MaskedMaxPoolBackwardIsPoolingThenTheActivation) {
  std::mt19937 rng(3);
  std::vector<ConvShape> shapes = Shapes();
  shapes.push_back(Window(2, 7, 7, 9, 2, 2, true));   // disjoint, padded
  shapes.push_back(Window(1, 8, 8, 5, 2, 3, false));  // disjoint, gaps
  size_t windows = 0, clipped = 0;  // clipped: windows whose dy the mask stops
  for (const ConvShape& s : shapes) {
    SCOPED_TRACE(Describe(s));
    for (PoolMask mask : {PoolMask::kRelu, PoolMask::kRelu6}) {
      std::vector<float> x = RandomFloats(InSize(s), rng);
      for (float& v : x) v *= 8.0f;  // some above 6
      if (mask == PoolMask::kRelu) {
        ScalarReluForward(x.data(), x.data(), x.size());
      } else {
        ScalarRelu6Forward(x.data(), x.data(), x.size());
      }
      const std::vector<float> dy = RandomFloats(OutSize(s), rng);
      std::vector<float> y(OutSize(s)), ref(InSize(s));
      ScalarMaxPoolForward(x.data(), y.data(), s);
      ScalarMaxPoolBackward(x.data(), y.data(), dy.data(), ref.data(), s);
      if (mask == PoolMask::kRelu) {
        ScalarReluBackward(x.data(), ref.data(), ref.data(), ref.size());
      } else {
        ScalarRelu6Backward(x.data(), ref.data(), ref.data(), ref.size());
      }
      windows += y.size();
      for (float top : y) clipped += top <= 0.0f || (mask == PoolMask::kRelu6 && top >= 6.0f);
      for (ThreadPool* pool : {&ThreadPool::Serial(), &Pool()}) {
        std::vector<float> dx(InSize(s), std::nanf(""));
        MaxPoolBackward(x.data(), y.data(), dy.data(), dx.data(), s, *pool, mask);
        EXPECT_TRUE(SameBits(ref, dx.data())) << (mask == PoolMask::kRelu ? "relu" : "relu6");
      }
    }
  }
  EXPECT_GT(clipped, windows / 20);
  EXPECT_LT(clipped, windows / 2);
}

}  // namespace
}  // namespace simd
}  // namespace thaw
