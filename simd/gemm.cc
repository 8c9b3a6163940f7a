// thaw/simd/gemm.cc — dispatch for simd/gemm.h. The whole product, threads
// included, runs in the dispatched target's code (simd/gemm-inl.h); the
// scratch queries run no target code: they read the target's row of
// simd/target_shapes.h through simd/gemm_plan.h, as the kernels do.
// Compiled once per Highway target (foreach_target).
#include "simd/gemm.h"

#include <cstddef>

#include "platform/status.h"
#include "simd/gemm_plan.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/gemm.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"
#include "simd/gemm-inl.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

static void GemmImpl(const float* a, size_t lda, bool trans_a, const float* b,
                     size_t ldb, bool trans_b, float* c, size_t ldc, size_t m,
                     size_t n, size_t k, bool accumulate, float* scratch,
                     ThreadPool& pool, const simd::GemmEpilogue& epilogue) {
  gemm::GemmT(a, lda, trans_a, b, ldb, trans_b, c, ldc, m, n, k, accumulate,
              scratch, pool, epilogue);
}

static void PackConvWeightsImpl(const float* w, size_t k, size_t cout, float* panels) {
  gemm::PackConvWeightsT(w, k, cout, panels);
}

static void ConvImageImpl(const float* padded, size_t padded_w, size_t cin, size_t kernel_h,
                          size_t kernel_w, const float* panels, size_t cout, float* y,
                          size_t out_h, size_t out_w, const simd::GemmEpilogue& epilogue) {
  gemm::ConvImageT(padded, padded_w, cin, kernel_h, kernel_w, panels, cout, y, out_h, out_w,
                   epilogue);
}

static void ConvWeightBandImpl(const float* padded, size_t padded_w, size_t cin,
                               size_t kernel_h, size_t kernel_w, const float* dy, size_t cout,
                               size_t pixels, float* dw, bool add) {
  gemm::ConvWeightBandT(padded, padded_w, cin, kernel_h, kernel_w, dy, cout, pixels, dw, add);
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "platform/memory.h"
#include "simd/offered_targets.h"
#include "simd/targets.h"

namespace thaw {

HWY_EXPORT(GemmImpl);
HWY_EXPORT(PackConvWeightsImpl);
HWY_EXPORT(ConvImageImpl);
HWY_EXPORT(ConvWeightBandImpl);

namespace simd {
namespace {

// The register tile of the target the queries answer for: the planning
// target (simd/targets.h) when one is set on this thread, else the
// dispatched one; what gemm-inl.h's PlanTile() is on that target.
gemm_plan::Tile QueryTile() {
  const TargetDescription target = internal::PlanningTarget();
  return gemm_plan::Tile{target.shape->gemm_rows, target.shape->gemm_vectors, target.lanes};
}

}  // namespace

size_t GemmScratchFloats(size_t m, size_t n, size_t k, int num_threads) {
  return gemm_plan::ScratchFloats(QueryTile(), m, n, k, num_threads);
}

size_t GemmScratchFloats(size_t m, size_t n, size_t k, bool trans_a,
                         bool trans_b, int num_threads) {
  return gemm_plan::ScratchFloats(QueryTile(), m, n, k, trans_a, trans_b, num_threads);
}

void Gemm(const float* a, size_t lda, bool trans_a, const float* b, size_t ldb,
          bool trans_b, float* c, size_t ldc, size_t m, size_t n, size_t k,
          bool accumulate, float* scratch, ThreadPool& pool,
          const GemmEpilogue& epilogue) {
  if (m == 0 || n == 0) return;
  // Leading dimensions below a row's length mean overlapping rows: a bug.
  THAW_CHECK(ldc >= n);
  if (k > 0) {
    THAW_CHECK(lda >= (trans_a ? m : k));
    THAW_CHECK(ldb >= (trans_b ? k : n));
    THAW_CHECK(IsAligned(scratch));
  }
  HWY_DYNAMIC_DISPATCH(GemmImpl)
  (a, lda, trans_a, b, ldb, trans_b, c, ldc, m, n, k, accumulate, scratch,
   pool, epilogue);
}

namespace internal {

size_t ConvWeightPanelsFloats(size_t k, size_t cout) {
  const gemm_plan::Tile tile = QueryTile();
  return k * gemm_plan::RoundUp(cout, tile.cols());
}

void PackConvWeights(const float* w, size_t k, size_t cout, float* panels) {
  HWY_DYNAMIC_DISPATCH(PackConvWeightsImpl)(w, k, cout, panels);
}

void ConvImage(const float* padded, size_t padded_w, size_t cin, size_t kernel_h,
               size_t kernel_w, const float* panels, size_t cout, float* y, size_t out_h,
               size_t out_w, const GemmEpilogue& epilogue) {
  HWY_DYNAMIC_DISPATCH(ConvImageImpl)
  (padded, padded_w, cin, kernel_h, kernel_w, panels, cout, y, out_h, out_w, epilogue);
}

size_t ConvWeightSlackFloats() { return QueryTile().cols(); }

void ConvWeightBand(const float* padded, size_t padded_w, size_t cin, size_t kernel_h,
                    size_t kernel_w, const float* dy, size_t cout, size_t pixels, float* dw,
                    bool add) {
  HWY_DYNAMIC_DISPATCH(ConvWeightBandImpl)
  (padded, padded_w, cin, kernel_h, kernel_w, dy, cout, pixels, dw, add);
}

}  // namespace internal
}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
