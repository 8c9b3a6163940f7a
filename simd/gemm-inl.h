// thaw/simd/gemm-inl.h — the plain vectorised GEMM behind simd/gemm.h.
// Included once per Highway target (toggling guard below).
//
// GemmRows computes rows [row_begin, row_end) of C; the caller splits C's rows
// into fixed blocks, so a C element's bits never depend on the thread count.
// No packing and no cache blocking yet:
//  - B row-major (trans_b == false): tiles of up to 4 rows x 2 vectors of C
//    stay in registers over the whole k loop; per p, one or two B vectors are
//    loaded and MulAdd'ed with a broadcast A(i, p) per row.
//  - B transposed, A not (trans_b && !trans_a): C[i, j] = dot(A[i, :], B[j, :])
//    with vector accumulators along k, four B rows per A row.
//  - both transposed: C^T = B_stored * A_stored is the first case with the
//    result written transposed (vectors run down a column of C).
// MulAdd fuses on FMA targets (AVX2, AVX3, NEON, SVE), so results differ
// between targets by rounding; within one target they are fixed.

#if defined(THAW_SIMD_GEMM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_GEMM_INL_H_
#undef THAW_SIMD_GEMM_INL_H_
#else
#define THAW_SIMD_GEMM_INL_H_
#endif

#include <cstddef>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

namespace detail {

// Writes one vector of results to C': c' = acc, or c' += acc when
// accumulating. Lane l goes to c[l], or to c[l * ldc] when kTransposeC (C'
// is then C transposed: its vector lanes run down a column of C).
// kPartial: only the first `cols` lanes are valid. Partial and strided
// vectors go through a stack copy (SafeCopyN; MaskedLoad/BlendedStore may
// fault in 1.0.3). When not accumulating, C is never read (it may hold NaN).
template <bool kPartial, bool kTransposeC, class D, class V>
HWY_INLINE void StoreCVector(D d, V acc, float* c, size_t ldc, size_t cols,
                             bool accumulate) {
  if constexpr (kTransposeC) {
    HWY_ALIGN float buf[HWY_LANES(float)];
    hn::Store(acc, d, buf);
    for (size_t l = 0; l < cols; ++l) {
      float& out = c[l * ldc];
      out = accumulate ? out + buf[l] : buf[l];
    }
  } else if constexpr (kPartial) {
    (void)ldc;
    HWY_ALIGN float buf[HWY_LANES(float)];
    if (accumulate) {
      hn::Store(hn::Zero(d), d, buf);
      hn::SafeCopyN(cols, d, c, buf);
      acc = hn::Add(hn::Load(d, buf), acc);
    }
    hn::Store(acc, d, buf);
    hn::SafeCopyN(cols, d, buf, c);
  } else {
    (void)ldc;
    (void)cols;
    if (accumulate) acc = hn::Add(hn::LoadU(d, c), acc);
    hn::StoreU(acc, d, c);
  }
}

// A tile of C' = A' * B' with B' row-major: kRows rows x kVecs vectors (or
// one partial vector of `cols` lanes). A'(r, p) is
// a[r * a_row_stride + p * a_col_stride], B'(p, j) is b[p * ldb + j], and
// C'(r, j) is c[r * ldc + j], or c[j * ldc + r] when kTransposeC.
// Accumulators are separate variables (SVE vectors cannot live in arrays);
// the ones a shape does not use are dead code.
template <size_t kRows, size_t kVecs, bool kPartial, bool kTransposeC>
HWY_INLINE void GemmTile(const float* a, size_t a_row_stride,
                         size_t a_col_stride, const float* b, size_t ldb,
                         float* c, size_t ldc, size_t k, size_t cols,
                         bool accumulate) {
  static_assert(kRows >= 1 && kRows <= 4, "1 to 4 rows");
  static_assert(kVecs == 1 || (kVecs == 2 && !kPartial), "1 or 2 vectors");
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  // Steps between C' rows and between C' vectors, in floats.
  const size_t c_row = kTransposeC ? 1 : ldc;
  const size_t c_vec = kTransposeC ? N * ldc : N;
  auto c00 = hn::Zero(d), c01 = hn::Zero(d), c10 = hn::Zero(d);
  auto c11 = hn::Zero(d), c20 = hn::Zero(d), c21 = hn::Zero(d);
  auto c30 = hn::Zero(d), c31 = hn::Zero(d);
  HWY_ALIGN float b_tail[HWY_LANES(float)];
  if constexpr (kPartial) hn::Store(hn::Zero(d), d, b_tail);
  for (size_t p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    auto b0 = hn::Zero(d);
    auto b1 = hn::Zero(d);
    if constexpr (kPartial) {
      hn::SafeCopyN(cols, d, bp, b_tail);
      b0 = hn::Load(d, b_tail);
    } else {
      b0 = hn::LoadU(d, bp);
      if constexpr (kVecs == 2) b1 = hn::LoadU(d, bp + N);
    }
    const float* ap = a + p * a_col_stride;
    const auto a0 = hn::Set(d, ap[0]);
    c00 = hn::MulAdd(a0, b0, c00);
    if constexpr (kVecs == 2) c01 = hn::MulAdd(a0, b1, c01);
    if constexpr (kRows > 1) {
      const auto a1 = hn::Set(d, ap[a_row_stride]);
      c10 = hn::MulAdd(a1, b0, c10);
      if constexpr (kVecs == 2) c11 = hn::MulAdd(a1, b1, c11);
    }
    if constexpr (kRows > 2) {
      const auto a2 = hn::Set(d, ap[2 * a_row_stride]);
      c20 = hn::MulAdd(a2, b0, c20);
      if constexpr (kVecs == 2) c21 = hn::MulAdd(a2, b1, c21);
    }
    if constexpr (kRows > 3) {
      const auto a3 = hn::Set(d, ap[3 * a_row_stride]);
      c30 = hn::MulAdd(a3, b0, c30);
      if constexpr (kVecs == 2) c31 = hn::MulAdd(a3, b1, c31);
    }
  }
  const size_t first_cols = kVecs == 2 ? N : cols;
  StoreCVector<kPartial, kTransposeC>(d, c00, c, ldc, first_cols, accumulate);
  if constexpr (kVecs == 2) {
    StoreCVector<false, kTransposeC>(d, c01, c + c_vec, ldc, N, accumulate);
  }
  if constexpr (kRows > 1) {
    float* c1 = c + c_row;
    StoreCVector<kPartial, kTransposeC>(d, c10, c1, ldc, first_cols,
                                        accumulate);
    if constexpr (kVecs == 2) {
      StoreCVector<false, kTransposeC>(d, c11, c1 + c_vec, ldc, N, accumulate);
    }
  }
  if constexpr (kRows > 2) {
    float* c2 = c + 2 * c_row;
    StoreCVector<kPartial, kTransposeC>(d, c20, c2, ldc, first_cols,
                                        accumulate);
    if constexpr (kVecs == 2) {
      StoreCVector<false, kTransposeC>(d, c21, c2 + c_vec, ldc, N, accumulate);
    }
  }
  if constexpr (kRows > 3) {
    float* c3 = c + 3 * c_row;
    StoreCVector<kPartial, kTransposeC>(d, c30, c3, ldc, first_cols,
                                        accumulate);
    if constexpr (kVecs == 2) {
      StoreCVector<false, kTransposeC>(d, c31, c3 + c_vec, ldc, N, accumulate);
    }
  }
}

// kRows rows of C' (layout as in GemmTile), all `cols` columns.
template <size_t kRows, bool kTransposeC>
HWY_INLINE void GemmTileRow(const float* a, size_t a_row_stride,
                            size_t a_col_stride, const float* b, size_t ldb,
                            float* c, size_t ldc, size_t cols, size_t k,
                            bool accumulate) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t c_col = kTransposeC ? ldc : 1;  // step between C' columns
  size_t j = 0;
  for (; j + 2 * N <= cols; j += 2 * N) {
    GemmTile<kRows, 2, false, kTransposeC>(a, a_row_stride, a_col_stride, b + j,
                                           ldb, c + j * c_col, ldc, k, 2 * N,
                                           accumulate);
  }
  if (j + N <= cols) {
    GemmTile<kRows, 1, false, kTransposeC>(a, a_row_stride, a_col_stride, b + j,
                                           ldb, c + j * c_col, ldc, k, N,
                                           accumulate);
    j += N;
  }
  if (j < cols) {
    GemmTile<kRows, 1, true, kTransposeC>(a, a_row_stride, a_col_stride, b + j,
                                          ldb, c + j * c_col, ldc, k, cols - j,
                                          accumulate);
  }
}

// C' (+)= A' * B' for a rows x cols C', B' row-major (layouts as in
// GemmTile), in tiles of up to 4 rows x 2 vectors.
template <bool kTransposeC>
HWY_INLINE void GemmRowMajorB(const float* a, size_t a_row_stride,
                              size_t a_col_stride, const float* b, size_t ldb,
                              float* c, size_t ldc, size_t rows, size_t cols,
                              size_t k, bool accumulate) {
  const size_t c_row = kTransposeC ? 1 : ldc;
  size_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    GemmTileRow<4, kTransposeC>(a + i * a_row_stride, a_row_stride,
                                a_col_stride, b, ldb, c + i * c_row, ldc, cols,
                                k, accumulate);
  }
  const float* a_rest = a + i * a_row_stride;
  float* c_rest = c + i * c_row;
  switch (rows - i) {
    case 3:
      GemmTileRow<3, kTransposeC>(a_rest, a_row_stride, a_col_stride, b, ldb,
                                  c_rest, ldc, cols, k, accumulate);
      break;
    case 2:
      GemmTileRow<2, kTransposeC>(a_rest, a_row_stride, a_col_stride, b, ldb,
                                  c_rest, ldc, cols, k, accumulate);
      break;
    case 1:
      GemmTileRow<1, kTransposeC>(a_rest, a_row_stride, a_col_stride, b, ldb,
                                  c_rest, ldc, cols, k, accumulate);
      break;
    default:
      break;
  }
}

// C[i, j0 .. j0 + kCols) = dot(A[i, :], B[j, :]) for B stored n x k (the
// trans_b layout). b points at row j0 of that storage, c at C(i, j0).
template <size_t kCols>
HWY_INLINE void GemmDotTile(const float* a_row, const float* b, size_t ldb,
                            float* c, size_t k, bool accumulate) {
  static_assert(kCols >= 1 && kCols <= 4, "1 to 4 columns");
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  size_t p = 0;
  for (; p + N <= k; p += N) {
    const auto va = hn::LoadU(d, a_row + p);
    s0 = hn::MulAdd(va, hn::LoadU(d, b + p), s0);
    if constexpr (kCols > 1) s1 = hn::MulAdd(va, hn::LoadU(d, b + ldb + p), s1);
    if constexpr (kCols > 2) {
      s2 = hn::MulAdd(va, hn::LoadU(d, b + 2 * ldb + p), s2);
    }
    if constexpr (kCols > 3) {
      s3 = hn::MulAdd(va, hn::LoadU(d, b + 3 * ldb + p), s3);
    }
  }
  if (p < k) {
    // Zero-padded copies: padded lanes add 0 * 0.
    const size_t rem = k - p;
    HWY_ALIGN float a_tail[HWY_LANES(float)];
    HWY_ALIGN float b_tail[HWY_LANES(float)];
    hn::Store(hn::Zero(d), d, a_tail);
    hn::Store(hn::Zero(d), d, b_tail);
    hn::SafeCopyN(rem, d, a_row + p, a_tail);
    const auto va = hn::Load(d, a_tail);
    hn::SafeCopyN(rem, d, b + p, b_tail);
    s0 = hn::MulAdd(va, hn::Load(d, b_tail), s0);
    if constexpr (kCols > 1) {
      hn::SafeCopyN(rem, d, b + ldb + p, b_tail);
      s1 = hn::MulAdd(va, hn::Load(d, b_tail), s1);
    }
    if constexpr (kCols > 2) {
      hn::SafeCopyN(rem, d, b + 2 * ldb + p, b_tail);
      s2 = hn::MulAdd(va, hn::Load(d, b_tail), s2);
    }
    if constexpr (kCols > 3) {
      hn::SafeCopyN(rem, d, b + 3 * ldb + p, b_tail);
      s3 = hn::MulAdd(va, hn::Load(d, b_tail), s3);
    }
  }
  const float r0 = hn::GetLane(hn::SumOfLanes(d, s0));
  c[0] = accumulate ? c[0] + r0 : r0;
  if constexpr (kCols > 1) {
    const float r1 = hn::GetLane(hn::SumOfLanes(d, s1));
    c[1] = accumulate ? c[1] + r1 : r1;
  }
  if constexpr (kCols > 2) {
    const float r2 = hn::GetLane(hn::SumOfLanes(d, s2));
    c[2] = accumulate ? c[2] + r2 : r2;
  }
  if constexpr (kCols > 3) {
    const float r3 = hn::GetLane(hn::SumOfLanes(d, s3));
    c[3] = accumulate ? c[3] + r3 : r3;
  }
}

}  // namespace detail

// Rows [row_begin, row_end) of C (+)= op(A) * op(B); arguments as in
// simd::Gemm. Requires k > 0 (the caller handles k == 0), n > 0.
HWY_INLINE void GemmRows(const float* HWY_RESTRICT a, size_t lda, bool trans_a,
                         const float* HWY_RESTRICT b, size_t ldb, bool trans_b,
                         float* HWY_RESTRICT c, size_t ldc, size_t row_begin,
                         size_t row_end, size_t n, size_t k, bool accumulate) {
  const size_t rows = row_end - row_begin;
  if (!trans_b) {
    // C' = C and A' = op(A): A(i, p) = a[i * row_stride + p * col_stride].
    const size_t row_stride = trans_a ? 1 : lda;
    const size_t col_stride = trans_a ? lda : 1;
    detail::GemmRowMajorB<false>(a + row_begin * row_stride, row_stride,
                                 col_stride, b, ldb, c + row_begin * ldc, ldc,
                                 rows, n, k, accumulate);
  } else if (!trans_a) {
    for (size_t i = row_begin; i < row_end; ++i) {
      const float* a_row = a + i * lda;
      float* c_row = c + i * ldc;
      size_t j = 0;
      for (; j + 4 <= n; j += 4) {
        detail::GemmDotTile<4>(a_row, b + j * ldb, ldb, c_row + j, k,
                               accumulate);
      }
      switch (n - j) {
        case 3:
          detail::GemmDotTile<3>(a_row, b + j * ldb, ldb, c_row + j, k,
                                 accumulate);
          break;
        case 2:
          detail::GemmDotTile<2>(a_row, b + j * ldb, ldb, c_row + j, k,
                                 accumulate);
          break;
        case 1:
          detail::GemmDotTile<1>(a_row, b + j * ldb, ldb, c_row + j, k,
                                 accumulate);
          break;
        default:
          break;
      }
    }
  } else {
    // Both transposed: C^T = B_stored (n x k) * A_stored (k x m), a product
    // with a row-major right operand whose result is written transposed.
    // C' = C^T restricted to this block's rows of C: C'(j, i) = C(row_begin +
    // i, j); A'(j, p) = b[j * ldb + p]; B'(p, i) = a[p * lda + row_begin + i].
    detail::GemmRowMajorB<true>(b, ldb, 1, a + row_begin, lda,
                                c + row_begin * ldc, ldc, n, rows, k,
                                accumulate);
  }
}

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_GEMM_INL_H_ (toggle)
