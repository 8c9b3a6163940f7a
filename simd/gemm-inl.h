// thaw/simd/gemm-inl.h — the packed, cache-blocked SGEMM behind simd/gemm.h.
// Included once per Highway target (toggling guard below).
//
// Two paths, chosen from the shape and the transposes only (never from the
// thread count):
//
// 1. Packed (Goto/BLIS). The product is first oriented (see Orient): it
//    computes C' = L * R, where L is M x K, R is K x N, and C' is either C
//    (L = op(A), R = op(B)) or C^T (L = op(B)^T, R = op(A)^T). Then
//
//      for jc in N, step NC:            R block columns
//        for pc in K, step kc <= KC:    never split across threads
//          pack R[pc, jc] into kc x NR panels (shared by all tasks)
//          work items of rows (or columns) of C', on any task:
//            for ic in rows, step MC:   pack L[ic, pc] into kc x MR panels
//              for jr in columns, step NR:
//                for ir in ic.., step MR: microkernel, an MR x NR tile
//
//    The microkernel keeps MR x NV vectors of C' in registers (NR = NV *
//    lanes), loads NV vectors of R and broadcasts one L value per row per k.
//    Packing absorbs the transposes. Either pack is skipped when the operand
//    already has the panel's contiguity and stays in cache anyway (the
//    skinny shapes of training); the microkernel then reads the caller's
//    memory, and only a last, partial panel or tile is copied (padded).
//
// 2. Dot product, for C = A B^T with both operands contiguous along k and
//    one side skinny (a dense layer's forward product at small batch):
//    tiles of dot products, no packing at all (see UseDot).
//
// Threads: one ParallelFor per call; tasks claim work items in a fixed
// order (see WorkQueue).
//
// Numerics: each element of C' is the sum over k blocks (in order) of a
// sequential MulAdd chain over that block, added to C (or to zero); on the
// dot path, lane-wise chains over all of k, then a fixed reduction tree.
// Work items never cut a chain, so the bits are the same for any number of
// threads. MulAdd fuses on FMA targets (AVX2, AVX3, NEON, SVE), so bits
// differ between targets; the tests use a rounding-error bound.

#if defined(THAW_SIMD_GEMM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef THAW_SIMD_GEMM_INL_H_
#undef THAW_SIMD_GEMM_INL_H_
#else
#define THAW_SIMD_GEMM_INL_H_
#endif

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "platform/threads.h"
#include "simd/epilogue-inl.h"  // also activation-inl.h, elementwise-inl.h
#include "simd/gemm.h"
#include "simd/gemm_plan.h"
#include "simd/target_shapes.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Tests can compile this file a second time with another tile shape (see
// tests/simd_gemm_tiles_test.cc); they rename the namespace so that the two
// builds do not collide.
#ifndef THAW_GEMM_NAMESPACE
#define THAW_GEMM_NAMESPACE gemm
#endif
namespace THAW_GEMM_NAMESPACE {

// ---- Tile shape and block sizes ----

// This target's row of simd/target_shapes.h: its tiles, and its lanes
// (checked below against the compiler's), the data planners read.
constexpr int kShapeIndex = simd::TargetShapeIndex(HWY_TARGET, simd::kBuildArch);
static_assert(kShapeIndex >= 0, "no row for this target in simd/target_shapes.h");
constexpr simd::TargetShape kShape = simd::kTargetShapes[kShapeIndex];
static_assert(kShape.vector_bytes == 0
                  ? HWY_HAVE_SCALABLE
                  : kShape.vector_bytes / sizeof(float) ==
                        hn::MaxLanes(hn::ScalableTag<float>()),
              "simd/target_shapes.h gives this target another vector size than Highway");

// Register tile: kMR rows x kNV vectors of accumulators (the table's
// gemm_rows x gemm_vectors; the register budget is explained there).
// Everything below uses kMR, kNV and the run-time Lanes(d), so a shape is
// right on every target by construction (SVE's lane count is only known at
// run time).
#if defined(THAW_GEMM_TEST_MR) && defined(THAW_GEMM_TEST_NV)
// Tests only: another target's shape, e.g. AVX3's 8 x 2 on an AVX2 machine.
constexpr size_t kMR = THAW_GEMM_TEST_MR;
constexpr size_t kNV = THAW_GEMM_TEST_NV;
#else
constexpr size_t kMR = kShape.gemm_rows;
constexpr size_t kNV = kShape.gemm_vectors;
#endif
static_assert(kMR >= 1 && kMR <= simd::internal::kConvImageSlackPixels && kNV >= 1 &&
                  kNV <= 3,
              "tile shape");

// Cache blocking and the serial threshold: simd/gemm_plan.h.
constexpr size_t kKC = simd::gemm_plan::kKC;
constexpr size_t kMC = simd::gemm_plan::kMC;
static_assert(kMC % kMR == 0, "MC must be a multiple of MR");

using simd::gemm_plan::DivCeil;
using simd::gemm_plan::RoundUp;

HWY_INLINE size_t VecLanes() {
  const hn::ScalableTag<float> d;
  return hn::Lanes(d);
}
// NR: columns of C' per tile (run time: SVE lanes are a run-time value).
HWY_INLINE size_t TileCols() { return kNV * VecLanes(); }
// Whether a panel of `cols` columns fits one vector where the tile has more:
// then the tiles that read it take one vector (no FMAs on padding columns).
HWY_INLINE bool OneVector(size_t cols) { return kNV > 1 && cols <= VecLanes(); }

// The tile as plain data, for the decisions of simd/gemm_plan.h (the same
// ones GemmScratchFloats makes for this target from the table).
HWY_INLINE simd::gemm_plan::Tile PlanTile() {
  return simd::gemm_plan::Tile{kMR, kNV, VecLanes()};
}

// Columns per R block, a multiple of NR.
HWY_INLINE size_t NBlock() { return simd::gemm_plan::NBlock(PlanTile()); }

// ---- The oriented problem and the plan ----

// C' = L * R with L M x K, R K x N, C' M x N, all strided views:
//   L(i, p) = l[i * l_rs + p * l_ks], R(p, j) = r[p * r_ks + j * r_js],
//   C'(i, j) = c[i * c_rs + j * c_cs].
// The plan decides from the layout flags, which follow from the transposes
// alone, never from stride values (a leading dimension can be 1 when a
// matrix has one row or column): so the plan, and the scratch it needs, are
// known from (m, n, k, transposes, threads) before any pointer is.
struct Operands {
  const float* l;
  size_t l_rs, l_ks;
  const float* r;
  size_t r_ks, r_js;
  float* c;
  size_t c_rs, c_cs;
  size_t M, N, K;
  bool l_rows;  // rows of L are contiguous in k (l_ks == 1)
  bool r_rows;  // rows of R are contiguous in j (r_js == 1)
  bool c_transposed;  // C' = C^T (c_rs == 1)
};

using simd::gemm_plan::Split;

// The operands, oriented, and simd/gemm_plan.h's decisions: which operands
// are packed (else read in place), the split and the task count.
struct Plan {
  Operands o;
  simd::gemm_plan::Decision decision;
};

// The two ways to write C = op(A) op(B) as C' = L R (the flags and sizes
// are simd/gemm_plan.h's Orient).
HWY_INLINE Operands Orient(bool transpose_c, const float* a, size_t lda,
                           bool trans_a, const float* b, size_t ldb,
                           bool trans_b, float* c, size_t ldc, size_t m,
                           size_t n, size_t k) {
  const simd::gemm_plan::Oriented shape =
      simd::gemm_plan::Orient(transpose_c, trans_a, trans_b, m, n, k);
  Operands o;
  o.M = shape.M;
  o.N = shape.N;
  o.K = shape.K;
  o.l_rows = shape.l_rows;
  o.r_rows = shape.r_rows;
  o.c_transposed = shape.c_transposed;
  if (!transpose_c) {  // C = op(A) op(B)
    o.l = a;
    o.l_rs = trans_a ? 1 : lda;
    o.l_ks = trans_a ? lda : 1;
    o.r = b;
    o.r_ks = trans_b ? 1 : ldb;
    o.r_js = trans_b ? ldb : 1;
    o.c = c;
    o.c_rs = ldc;
    o.c_cs = 1;
  } else {  // C^T = op(B)^T op(A)^T
    o.l = b;
    o.l_rs = trans_b ? ldb : 1;
    o.l_ks = trans_b ? 1 : ldb;
    o.r = a;
    o.r_ks = trans_a ? lda : 1;
    o.r_js = trans_a ? 1 : lda;
    o.c = c;
    o.c_rs = 1;
    o.c_cs = ldc;
  }
  return o;
}

// The decisions are simd/gemm_plan.h's Decide, for this target's tile.
HWY_INLINE Plan MakePlan(const float* a, size_t lda, bool trans_a,
                         const float* b, size_t ldb, bool trans_b, float* c,
                         size_t ldc, size_t m, size_t n, size_t k,
                         int threads) {
  Plan plan;
  plan.decision = simd::gemm_plan::Decide(PlanTile(), m, n, k, trans_a, trans_b, threads);
  plan.o = Orient(plan.decision.o.c_transposed, a, lda, trans_a, b, ldb, trans_b, c, ldc, m, n,
                  k);
  return plan;
}

// ---- Scratch ----

// Where things live in the caller's scratch, for one plan (see
// simd/gemm_plan.h): only what the plan uses.
using ScratchLayout = simd::gemm_plan::Layout;

HWY_INLINE ScratchLayout PlanLayout(const Plan& plan) {
  return simd::gemm_plan::LayoutOf(PlanTile(), plan.decision);
}

// ---- Packing ----

// Whether the packs can move 4 x 4 blocks with 128-bit vectors (every
// target but SCALAR, whose vectors hold one float).
#if HWY_TARGET == HWY_SCALAR
constexpr bool kTranspose4 = false;
#else
constexpr bool kTranspose4 = true;
#endif

// out[t * out_stride + i] = in[i * in_stride + t] for i, t < 4: four rows
// of four contiguous floats become four columns, with two rounds of
// interleaves (32-bit, then 64-bit) on 128-bit vectors.
HWY_INLINE void Transpose4x4(const float* HWY_RESTRICT in, size_t in_stride,
                             float* HWY_RESTRICT out, size_t out_stride) {
#if HWY_TARGET == HWY_SCALAR
  for (size_t i = 0; i < 4; ++i) {
    for (size_t t = 0; t < 4; ++t) out[t * out_stride + i] = in[i * in_stride + t];
  }
#else
  const hn::CappedTag<float, 4> d4;
  const hn::Repartition<uint64_t, decltype(d4)> d64;
  const auto r0 = hn::LoadU(d4, in);
  const auto r1 = hn::LoadU(d4, in + in_stride);
  const auto r2 = hn::LoadU(d4, in + 2 * in_stride);
  const auto r3 = hn::LoadU(d4, in + 3 * in_stride);
  // t0 = r00 r10 r01 r11, t1 = r20 r30 r21 r31, t2/t3: elements 2 and 3.
  const auto t0 = hn::BitCast(d64, hn::InterleaveLower(d4, r0, r1));
  const auto t1 = hn::BitCast(d64, hn::InterleaveLower(d4, r2, r3));
  const auto t2 = hn::BitCast(d64, hn::InterleaveUpper(d4, r0, r1));
  const auto t3 = hn::BitCast(d64, hn::InterleaveUpper(d4, r2, r3));
  hn::StoreU(hn::BitCast(d4, hn::InterleaveLower(d64, t0, t1)), d4, out);
  hn::StoreU(hn::BitCast(d4, hn::InterleaveUpper(d64, t0, t1)), d4,
             out + out_stride);
  hn::StoreU(hn::BitCast(d4, hn::InterleaveLower(d64, t2, t3)), d4,
             out + 2 * out_stride);
  hn::StoreU(hn::BitCast(d4, hn::InterleaveUpper(d64, t2, t3)), d4,
             out + 3 * out_stride);
#endif
}

// R rows [k0, k0 + kc), columns [j0, j1) into kc x NR panels at dst (panel
// q covers columns j0 + q * NR ..; element (p, j) at p * NR + j). Columns
// past j1 in the last panel are zero. Reads R in its storage order (rows of
// R, or rows of R^T when r_js != 1) so the hardware prefetchers see
// sequential streams; writes are whole panel rows, with aligned stores
// (dst must be vector-aligned, as the 64-byte-aligned scratch is).
// Out of line, as PackLeft: a pack copies a whole kc x (j1 - j0) block, so a
// call costs nothing next to it; inlined, the two were copied nine times
// into RunPlan's task (RunTask is inlined twice), 17 KB of AVX2 code in the
// firmware profile's c_finetune.
inline HWY_NOINLINE void PackRight(const Operands& o, size_t k0, size_t kc,
                                   size_t j0, size_t j1,
                                   float* HWY_RESTRICT dst) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t nr = kNV * N;
  const size_t full = (j1 - j0) / nr;        // whole panels
  const size_t tail = (j1 - j0) - full * nr;  // columns in the last one
  const size_t panel = kc * nr;               // floats per panel
  if (o.r_js == 1) {
    // 8 rows of R at a time, panel by panel: 8 sequential read streams, and
    // 8 consecutive rows (512 B at NR = 16) written per panel. Walking all
    // panels for one row instead would write to addresses kc * NR * 4 B
    // apart (16 KiB: the same L1 set) and thrash it.
    constexpr size_t kRows = 8;
    for (size_t p0 = 0; p0 < kc; p0 += kRows) {
      const size_t p1 = std::min(kc, p0 + kRows);
      const float* src0 = o.r + (k0 + p0) * o.r_ks + j0;
      float* out0 = dst + p0 * nr;
      for (size_t q = 0; q < full; ++q) {
        const float* src = src0 + q * nr;
        float* out = out0 + q * panel;
        for (size_t p = p0; p < p1; ++p, src += o.r_ks, out += nr) {
          hn::Store(hn::LoadU(d, src), d, out);
          if constexpr (kNV > 1) hn::Store(hn::LoadU(d, src + N), d, out + N);
          if constexpr (kNV > 2) {
            hn::Store(hn::LoadU(d, src + 2 * N), d, out + 2 * N);
          }
        }
      }
      if (tail != 0) {
        // Whole vectors, then the last few columns; zeros to NR. Per row,
        // not memcpy and fill: those calls cost more than the copy (a
        // 16-column tail of a 32-column panel is a convolution's 16
        // channels on AVX3).
        const float* src = src0 + full * nr;
        float* out = out0 + full * panel;
        const size_t vectors = tail / N;
        for (size_t p = p0; p < p1; ++p, src += o.r_ks, out += nr) {
          size_t j = 0;
          for (size_t v = 0; v < vectors; ++v, j += N) hn::Store(hn::LoadU(d, src + j), d, out + j);
          for (; j < tail; ++j) out[j] = src[j];
          for (; j < nr; ++j) out[j] = 0.0f;
        }
      }
    }
    return;
  }
  // Transposing: R's columns are storage rows (contiguous when r_ks == 1).
  for (size_t q = 0; q * nr < j1 - j0; ++q) {
    const size_t cols = std::min(nr, j1 - j0 - q * nr);
    const float* src = o.r + k0 * o.r_ks + (j0 + q * nr) * o.r_js;
    float* out = dst + q * panel;
    size_t p = 0;
    if (kTranspose4 && o.r_ks == 1 && nr % 4 == 0) {
      // 4 columns x 4 k at a time; columns past `cols` stay for the tail.
      const size_t cols4 = cols / 4 * 4;
      for (; p + 4 <= kc; p += 4) {
        for (size_t j = 0; j < cols4; j += 4) {
          Transpose4x4(src + j * o.r_js + p, o.r_js, out + p * nr + j, nr);
        }
        for (size_t t = 0; t < 4; ++t) {
          float* row = out + (p + t) * nr;
          for (size_t j = cols4; j < cols; ++j) row[j] = src[j * o.r_js + p + t];
          for (size_t j = cols; j < nr; ++j) row[j] = 0.0f;
        }
      }
    }
    for (; p < kc; ++p) {
      const float* in = src + p * o.r_ks;
      float* row = out + p * nr;
      for (size_t j = 0; j < cols; ++j) row[j] = in[j * o.r_js];
      for (size_t j = cols; j < nr; ++j) row[j] = 0.0f;
    }
  }
}

// L rows [i0, i1), k [k0, k0 + kc) into kc x MR panels at dst (panel q
// covers rows i0 + q * MR ..; element (i, p) at p * MR + i). Rows past i1
// in the last panel are zero. Writes are sequential; reads are MR
// sequential streams (rows of L, or one row of L^T at a time).
inline HWY_NOINLINE void PackLeft(const Operands& o, size_t k0, size_t kc,
                                  size_t i0, size_t i1,
                                  float* HWY_RESTRICT dst) {
  const size_t panel = kc * kMR;  // floats per panel
  const size_t full = (i1 - i0) / kMR;
  if (o.l_rs == 1) {
    // Columns of L are contiguous (L^T is stored): MR floats per k. 8 rows
    // of L^T at a time, panel by panel, as in PackRight.
    constexpr size_t kRows = 8;
    const size_t tail = (i1 - i0) - full * kMR;
    for (size_t p0 = 0; p0 < kc; p0 += kRows) {
      const size_t p1 = std::min(kc, p0 + kRows);
      const float* src0 = o.l + i0 + (k0 + p0) * o.l_ks;
      for (size_t q = 0; q < full; ++q) {
        const float* src = src0 + q * kMR;
        float* out = dst + q * panel + p0 * kMR;
        for (size_t p = p0; p < p1; ++p, src += o.l_ks, out += kMR) {
          std::memcpy(out, src, kMR * sizeof(float));
        }
      }
      if (tail != 0) {
        const float* src = src0 + full * kMR;
        float* out = dst + full * panel + p0 * kMR;
        for (size_t p = p0; p < p1; ++p, src += o.l_ks, out += kMR) {
          std::memcpy(out, src, tail * sizeof(float));
          std::fill(out + tail, out + kMR, 0.0f);
        }
      }
    }
    return;
  }
  for (size_t i = i0; i < i1; i += kMR, dst += panel) {
    const size_t rows = std::min(kMR, i1 - i);
    const float* src = o.l + i * o.l_rs + k0 * o.l_ks;
    size_t p = 0;
    if (kTranspose4 && o.l_ks == 1 && rows == kMR) {
      // Rows of L are contiguous in k: 4 rows x 4 k at a time, the MR % 4
      // remaining rows one by one.
      constexpr size_t kRows4 = kMR / 4 * 4;
      for (; p + 4 <= kc; p += 4) {
        float* out = dst + p * kMR;
        for (size_t r = 0; r < kRows4; r += 4) {
          Transpose4x4(src + r * o.l_rs + p, o.l_rs, out + r, kMR);
        }
        for (size_t r = kRows4; r < kMR; ++r) {
          const float* in = src + r * o.l_rs + p;
          for (size_t t = 0; t < 4; ++t) out[t * kMR + r] = in[t];
        }
      }
    }
    for (; p < kc; ++p) {
      const float* in = src + p * o.l_ks;
      float* out = dst + p * kMR;
      for (size_t r = 0; r < rows; ++r) out[r] = in[r * o.l_rs];
      for (size_t r = rows; r < kMR; ++r) out[r] = 0.0f;
    }
  }
}

// ---- Microkernel ----

// One row of the tile: c_v += broadcast(a) * b_v for the kV vectors.
template <size_t kV, class D, class V>
HWY_INLINE void FmaRow(D d, float a, V b0, V b1, V b2, V& c0, V& c1, V& c2) {
  const V va = hn::Set(d, a);
  c0 = hn::MulAdd(va, b0, c0);
  if constexpr (kV > 1) c1 = hn::MulAdd(va, b1, c1);
  if constexpr (kV > 2) c2 = hn::MulAdd(va, b2, c2);
}

// Writes one row of kV accumulators to a row of C' with unit column stride:
// full vectors, c = acc or c += acc.
template <size_t kV, class D, class V>
HWY_INLINE void StoreRow(D d, V c0, V c1, V c2, float* HWY_RESTRICT out,
                         bool add) {
  const size_t N = hn::Lanes(d);
  if (add) {
    c0 = hn::Add(hn::LoadU(d, out), c0);
    if constexpr (kV > 1) c1 = hn::Add(hn::LoadU(d, out + N), c1);
    if constexpr (kV > 2) c2 = hn::Add(hn::LoadU(d, out + 2 * N), c2);
  }
  hn::StoreU(c0, d, out);
  if constexpr (kV > 1) hn::StoreU(c1, d, out + N);
  if constexpr (kV > 2) hn::StoreU(c2, d, out + 2 * N);
}

// Stores one row of kV accumulators into the stack tile (row stride NR).
template <size_t kV, class D, class V>
HWY_INLINE void SpillRow(D d, V c0, V c1, V c2, float* HWY_RESTRICT out) {
  const size_t N = hn::Lanes(d);
  hn::Store(c0, d, out);
  if constexpr (kV > 1) hn::Store(c1, d, out + N);
  if constexpr (kV > 2) hn::Store(c2, d, out + 2 * N);
}

// Row r of a tile's accumulators: with kBlocks == 1, kV vectors of row r
// (a = L(r, p)); with kBlocks > 1 (one vector of columns), row r of each
// of kBlocks blocks of rows, kRows rows apart (c_b: row b * kRows + r, L's
// at a[b * block]).
template <size_t kV, size_t kBlocks, class D, class V>
HWY_INLINE void FmaTileRow(D d, const float* HWY_RESTRICT a, size_t block, V b0, V b1, V b2,
                           V& c0, V& c1, V& c2) {
  if constexpr (kBlocks == 1) {
    FmaRow<kV>(d, a[0], b0, b1, b2, c0, c1, c2);
  } else {
    c0 = hn::MulAdd(hn::Set(d, a[0]), b0, c0);
    c1 = hn::MulAdd(hn::Set(d, a[block]), b0, c1);
    if constexpr (kBlocks > 2) c2 = hn::MulAdd(hn::Set(d, a[2 * block]), b0, c2);
  }
}

// Row r's accumulators (as FmaTileRow's) to C' rows of unit column stride,
// those below `rows`; through the epilogue e first when kEpilogue (finished
// sums, add == false; the tile's columns start at C's column e_col).
template <size_t kV, size_t kBlocks, size_t kRows, bool kEpilogue = false, class D, class V>
HWY_INLINE void StoreTileRow(D d, V c0, V c1, V c2, size_t r, float* HWY_RESTRICT c, size_t c_rs,
                             size_t rows, bool add, const simd::GemmEpilogue* e = nullptr,
                             size_t e_col = 0) {
  if constexpr (kEpilogue) {
    const size_t N = hn::Lanes(d);
    c0 = EpilogueVector(d, *e, c0, e_col);
    if constexpr (kBlocks > 1) {
      c1 = EpilogueVector(d, *e, c1, e_col);
      if constexpr (kBlocks > 2) c2 = EpilogueVector(d, *e, c2, e_col);
    } else {
      if constexpr (kV > 1) c1 = EpilogueVector(d, *e, c1, e_col + N);
      if constexpr (kV > 2) c2 = EpilogueVector(d, *e, c2, e_col + 2 * N);
    }
  }
  if constexpr (kBlocks == 1) {
    if (r < rows) StoreRow<kV>(d, c0, c1, c2, c + r * c_rs, add);
  } else {
    if (r < rows) StoreRow<1>(d, c0, c0, c0, c + r * c_rs, add);
    if (kRows + r < rows) StoreRow<1>(d, c1, c1, c1, c + (kRows + r) * c_rs, add);
    if (kBlocks > 2 && 2 * kRows + r < rows) {
      StoreRow<1>(d, c2, c2, c2, c + (2 * kRows + r) * c_rs, add);
    }
  }
}

// Row r's accumulators into the stack tile, rows `stride` floats apart.
template <size_t kV, size_t kBlocks, size_t kRows, class D, class V>
HWY_INLINE void SpillTileRow(D d, V c0, V c1, V c2, size_t r, float* HWY_RESTRICT tile,
                             size_t stride) {
  if constexpr (kBlocks == 1) {
    SpillRow<kV>(d, c0, c1, c2, tile + r * stride);
  } else {
    SpillRow<1>(d, c0, c0, c0, tile + r * stride);
    SpillRow<1>(d, c1, c1, c1, tile + (kRows + r) * stride);
    if constexpr (kBlocks > 2) SpillRow<1>(d, c2, c2, c2, tile + (2 * kRows + r) * stride);
  }
}

// The rows x cols corner of the stack tile (row stride nr) to C' (c = tile
// or c += tile), element by element. Out of line, once for every Tile
// instantiation: it is the edge tiles' path, and its loops (vectorised by
// the compiler) were about half of each instantiation's code.
inline HWY_NOINLINE void WriteSpilled(const float* HWY_RESTRICT tile, size_t nr, float* HWY_RESTRICT c,
                               size_t c_rs, size_t c_cs, size_t rows, size_t cols, bool add) {
  if (c_cs == 1) {
    for (size_t i = 0; i < rows; ++i) {
      float* out = c + i * c_rs;
      const float* in = tile + i * nr;
      if (add) {
        for (size_t j = 0; j < cols; ++j) out[j] += in[j];
      } else {
        for (size_t j = 0; j < cols; ++j) out[j] = in[j];
      }
    }
  } else {
    // Transposed C' (c_rs == 1 in practice): C' columns are rows of C.
    for (size_t j = 0; j < cols; ++j) {
      float* out = c + j * c_cs;
      if (add) {
        for (size_t i = 0; i < rows; ++i) out[i * c_rs] += tile[i * nr + j];
      } else {
        for (size_t i = 0; i < rows; ++i) out[i * c_rs] = tile[i * nr + j];
      }
    }
  }
}

// C'[rows x cols tile at c] (+)= L-tile * R-panel over kc steps of k.
// L tile: element (i, p) at l[i * l_rs + p * l_ks], kMR readable rows (a
// packed panel has l_rs = 1, l_ks = MR: kLeftPacked makes them constants).
// R panel: element (p, j) at r[p * r_ks + j], NR readable columns (packed:
// r_ks = NR, kRightPacked). Full tiles of a unit-column-stride C' are
// written from registers; others go through a stack tile. add == false
// never reads C.
// kV: the vectors of the tile that hold columns, kNV or, for a panel of at
// most one vector of columns (a 16-channel convolution on AVX3), 1: the
// FMAs on the padding columns are not done.
// kRows: the tile's rows, kMR or fewer (a convolution's output row of 14 is
// two tiles of 7, not 8 + 8 with 2 rows of padding). kBlocks > 1 (with
// kV == 1): kBlocks blocks of kRows rows, each in the registers another
// vector of columns would take (a convolution with 16 output channels on
// AVX3: 14 rows of one vector, twice the FMAs per load of R, and 14 sums
// in flight where 7 wait on the FMA latency).
// runs > 1: the k steps are `runs` runs of kc, the L of run u starting at
// l + u * l_run, R continuing from one run to the next (a convolution's
// kernel rows, rows of the padded image apart, all summed in registers).
// kEpilogue: the sums are final (add == false) and pass through the
// epilogue *e (EpilogueInRegisters) on their way out, C's columns from
// e_col; only for a full tile (cols == kV * N) of unit column stride.
// Not inlined, so that its registers are allocated for the k loop alone.
template <bool kLeftPacked, bool kRightPacked, size_t kV = kNV, size_t kRows = kMR,
          size_t kBlocks = 1, bool kEpilogue = false>
HWY_NOINLINE void Tile(size_t kc, const float* HWY_RESTRICT l, size_t l_rs,
                     size_t l_ks, const float* HWY_RESTRICT r, size_t r_ks,
                     float* HWY_RESTRICT c, size_t c_rs, size_t c_cs,
                     size_t rows, size_t cols, bool add, size_t runs = 1,
                     size_t l_run = 0, const simd::GemmEpilogue* e = nullptr,
                     size_t e_col = 0) {
  static_assert(kRows >= 1 && kRows <= kMR, "tile rows");
  static_assert(kBlocks == 1 || (kV == 1 && kBlocks <= kNV && kBlocks <= 3), "row blocks");
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const size_t nr = kNV * N;
  if constexpr (kEpilogue) THAW_CHECK(cols == kV * N && c_cs == 1 && !add);
  if constexpr (kLeftPacked) {
    l_rs = 1;
    l_ks = kMR;
  }
  if constexpr (kRightPacked) r_ks = nr;
  // Start fetching the C tile now: it is read (or its lines owned) only
  // after the k loop, and with a short k (a weight gradient over a batch,
  // k = 32..64) a miss to L3 there would cost ~15% of the tile.
  if (c_cs == 1) {
    for (size_t i = 0; i < rows; ++i) {
      hwy::Prefetch(c + i * c_rs);
      hwy::Prefetch(c + i * c_rs + cols - 1);
    }
  } else {
    for (size_t j = 0; j < cols; ++j) {
      hwy::Prefetch(c + j * c_cs);
      hwy::Prefetch(c + j * c_cs + (rows - 1) * c_rs);
    }
  }
  using V = hn::Vec<decltype(d)>;
  V c00 = hn::Zero(d), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  V c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
  V c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;
  V c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
  for (size_t run = 0; run < runs; ++run) {
    const float* HWY_RESTRICT lp = l + run * l_run;
    const size_t block = kRows * l_rs;  // kBlocks > 1: rows of the next block
    for (size_t p = 0; p < kc; ++p) {
      const V b0 = hn::LoadU(d, r);
      V b1 = b0, b2 = b0;
      if constexpr (kV > 1) b1 = hn::LoadU(d, r + N);
      if constexpr (kV > 2) b2 = hn::LoadU(d, r + 2 * N);
      FmaTileRow<kV, kBlocks>(d, lp, block, b0, b1, b2, c00, c01, c02);
      if constexpr (kRows > 1) FmaTileRow<kV, kBlocks>(d, lp + l_rs, block, b0, b1, b2, c10, c11, c12);
      if constexpr (kRows > 2) FmaTileRow<kV, kBlocks>(d, lp + 2 * l_rs, block, b0, b1, b2, c20, c21, c22);
      if constexpr (kRows > 3) FmaTileRow<kV, kBlocks>(d, lp + 3 * l_rs, block, b0, b1, b2, c30, c31, c32);
      if constexpr (kRows > 4) FmaTileRow<kV, kBlocks>(d, lp + 4 * l_rs, block, b0, b1, b2, c40, c41, c42);
      if constexpr (kRows > 5) FmaTileRow<kV, kBlocks>(d, lp + 5 * l_rs, block, b0, b1, b2, c50, c51, c52);
      if constexpr (kRows > 6) FmaTileRow<kV, kBlocks>(d, lp + 6 * l_rs, block, b0, b1, b2, c60, c61, c62);
      if constexpr (kRows > 7) FmaTileRow<kV, kBlocks>(d, lp + 7 * l_rs, block, b0, b1, b2, c70, c71, c72);
      lp += l_ks;
      r += r_ks;
    }
  }
  if (cols == kV * N && c_cs == 1) {
    // Straight from registers; rows past `rows` are padding.
    const auto store = [&](V a, V b, V x, size_t row) HWY_ATTR {
      StoreTileRow<kV, kBlocks, kRows, kEpilogue>(d, a, b, x, row, c, c_rs, rows, add, e, e_col);
    };
    store(c00, c01, c02, 0);
    if constexpr (kRows > 1) store(c10, c11, c12, 1);
    if constexpr (kRows > 2) store(c20, c21, c22, 2);
    if constexpr (kRows > 3) store(c30, c31, c32, 3);
    if constexpr (kRows > 4) store(c40, c41, c42, 4);
    if constexpr (kRows > 5) store(c50, c51, c52, 5);
    if constexpr (kRows > 6) store(c60, c61, c62, 6);
    if constexpr (kRows > 7) store(c70, c71, c72, 7);
    return;
  }
  // Partial columns or a transposed C': through a stack tile (rows NR
  // floats apart; N for blocks of rows), then element by element.
  if constexpr (kEpilogue) return;  // full tiles only (checked above)
  HWY_ALIGN float tile[kMR * kNV * HWY_LANES(float)];
  const size_t stride = kBlocks > 1 ? N : nr;
  SpillTileRow<kV, kBlocks, kRows>(d, c00, c01, c02, 0, tile, stride);
  if constexpr (kRows > 1) SpillTileRow<kV, kBlocks, kRows>(d, c10, c11, c12, 1, tile, stride);
  if constexpr (kRows > 2) SpillTileRow<kV, kBlocks, kRows>(d, c20, c21, c22, 2, tile, stride);
  if constexpr (kRows > 3) SpillTileRow<kV, kBlocks, kRows>(d, c30, c31, c32, 3, tile, stride);
  if constexpr (kRows > 4) SpillTileRow<kV, kBlocks, kRows>(d, c40, c41, c42, 4, tile, stride);
  if constexpr (kRows > 5) SpillTileRow<kV, kBlocks, kRows>(d, c50, c51, c52, 5, tile, stride);
  if constexpr (kRows > 6) SpillTileRow<kV, kBlocks, kRows>(d, c60, c61, c62, 6, tile, stride);
  if constexpr (kRows > 7) SpillTileRow<kV, kBlocks, kRows>(d, c70, c71, c72, 7, tile, stride);
  WriteSpilled(tile, stride, c, c_rs, c_cs, rows, cols, add);
}

// ---- Threads: ordered work items ----

// A GEMM call is one ParallelFor of `tasks` tasks, which claim work items
// from a shared counter in a fixed order. Not one ParallelFor per phase: on
// the 2-vCPU VM we measured, an idle TBB worker took 12-60 us to start each
// parallel region, and a call with a separate R-packing region per k block
// paid that 2-8 times per call (256^3 on 2 threads ran at 1.5x one thread).
// With claiming, a late worker simply takes fewer items.
//
// Items come in phases: pack R for a (jc, pc) block, then compute with it.
// An item starts only when every item of the earlier phases has finished.
// That wait only ever targets items already claimed by a running task, so
// it ends even when the pool runs the tasks one after the other. Which task
// runs an item never changes the bits: items are whole tiles, and a tile's
// k blocks run in order (each is a later phase).
class WorkQueue {
 public:
  explicit WorkQueue(size_t total) : total_(total) {}
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Claims the next item in order; false once all are claimed.
  bool Claim(size_t* item) {
    *item = next_.fetch_add(1, std::memory_order_relaxed);
    return *item < total_;
  }
  // Waits until `count` items have finished. Since no item finishes before
  // all earlier phases have, when `count` is where a phase begins this
  // means: every item before it has finished (and its writes are visible).
  void WaitFinished(size_t count) const {
    for (size_t spins = 0;
         finished_.load(std::memory_order_acquire) < count; ++spins) {
      if (spins < 4096) {
        hwy::Pause();
      } else {
        YieldToOtherThreads();  // the other task may be descheduled
      }
    }
  }
  void Finish() { finished_.fetch_add(1, std::memory_order_release); }

 private:
  const size_t total_;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> finished_{0};
};

// Runs item(t, index) for every index in [0, items) on `tasks` tasks, for
// single-phase work (no waits).
template <class Fn>
HWY_INLINE void ForEachItem(size_t items, size_t tasks, ThreadPool& pool,
                            const Fn& item) {
  if (tasks <= 1) {
    for (size_t i = 0; i < items; ++i) item(size_t{0}, i);
    return;
  }
  WorkQueue queue(items);
  pool.ParallelFor(tasks, [&](size_t t) HWY_ATTR {
    size_t i;
    while (queue.Claim(&i)) {
      item(t, i);
      queue.Finish();
    }
  });
}

// ---- Dot-product path (A and B both contiguous along k) ----

// C = A B^T with rows of A and rows of B (the trans_b storage) contiguous in
// k: C(i, j) = dot(A row i, B row j). This needs no packing, no scratch
// and no transposes, and wastes no lanes when n is tiny (a 10-class output
// layer), at the price of a horizontal sum per element of C. Tile: kDR rows
// of A x kDC rows of B, kDR * kDC accumulators + kDR + 1 vectors:
//   16 registers: 3 x 4 (12 + 3 + 1); 32 registers: 4 x 4 (16 + 4 + 1).
// Per vector of k: kDR + kDC loads for kDR * kDC FMAs.
#if defined(THAW_GEMM_TEST_DR)
constexpr size_t kDR = THAW_GEMM_TEST_DR;  // tests only, as kMR above
#else
constexpr size_t kDR = kShape.dot_rows;  // simd/target_shapes.h
#endif
constexpr size_t kDC = simd::gemm_plan::kDotCols;

// Sums of the lanes of v0..v3 into out[0..4). On fixed-width targets with
// 4+ lanes: halve each vector to 128 bits, then a 4 x 4 transpose-add (two
// rounds of interleave + add), 4 sums for ~9 shuffles and adds in all.
#if HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE
template <class D>
HWY_INLINE hn::Vec<hn::CappedTag<float, 4>> HalveTo4(D d, hn::Vec<D> v) {
  if constexpr (hn::MaxLanes(d) <= 4) {
    return v;
  } else {
    const hn::Half<D> dh;
    return HalveTo4(dh, hn::Add(hn::LowerHalf(dh, v), hn::UpperHalf(dh, v)));
  }
}
#endif

template <class D, class V>
HWY_INLINE void SumLanes4(D d, V v0, V v1, V v2, V v3, float* out) {
#if HWY_TARGET == HWY_SCALAR || HWY_HAVE_SCALABLE
  out[0] = hn::GetLane(hn::SumOfLanes(d, v0));
  out[1] = hn::GetLane(hn::SumOfLanes(d, v1));
  out[2] = hn::GetLane(hn::SumOfLanes(d, v2));
  out[3] = hn::GetLane(hn::SumOfLanes(d, v3));
#else
  const hn::CappedTag<float, 4> d4;
  const hn::Repartition<uint64_t, decltype(d4)> d64;
  const auto w0 = HalveTo4(d, v0), w1 = HalveTo4(d, v1);
  const auto w2 = HalveTo4(d, v2), w3 = HalveTo4(d, v3);
  // t0 = w0_0+w0_2, w1_0+w1_2, w0_1+w0_3, w1_1+w1_3; t1 likewise for w2, w3.
  const auto t0 = hn::BitCast(d64, hn::Add(hn::InterleaveLower(d4, w0, w1),
                                           hn::InterleaveUpper(d4, w0, w1)));
  const auto t1 = hn::BitCast(d64, hn::Add(hn::InterleaveLower(d4, w2, w3),
                                           hn::InterleaveUpper(d4, w2, w3)));
  const auto sums = hn::Add(hn::BitCast(d4, hn::InterleaveLower(d64, t0, t1)),
                            hn::BitCast(d4, hn::InterleaveUpper(d64, t0, t1)));
  hn::StoreU(sums, d4, out);
#endif
}

// One column of the dot tile: acc_r += a_r * b for the kR A rows. The A
// vectors stay in registers and each B vector is loaded once: kR + kC loads
// per kR * kC FMAs (3 + 4 per 12 on AVX2). Loading all of B first instead
// needs kR * kC + kC + 1 registers (17 at 3 x 4), and then the compiler
// folds B loads into the FMAs, reloading each kR times (15 loads per 12).
template <size_t kR, class V>
HWY_INLINE void DotColumn(V b, V a0, V a1, V a2, V a3, V& c0, V& c1, V& c2,
                          V& c3) {
#if HWY_ARCH_X86 && HWY_TARGET != HWY_SCALAR && HWY_COMPILER_GCC && !HWY_COMPILER_CLANG
  // GCC 12 otherwise folds the load of b into each of the kR FMAs as a
  // memory operand (kR loads instead of one: 15 loads per 12 FMAs at 3 x 4,
  // load-bound at ~78% of peak on Zen 3). An empty asm with b in a vector
  // register makes it load b once. GCC only (HWY_COMPILER_GCC is also set
  // for clang): clang 14 refuses the asm ("inline asm not supported yet:
  // don't know how to handle tied indirect register inputs"), and the clang
  // build (tests/fuzz) is for finding bugs, not for speed.
  asm("" : "+v"(b.raw));
#endif
  c0 = hn::MulAdd(a0, b, c0);
  if constexpr (kR > 1) c1 = hn::MulAdd(a1, b, c1);
  if constexpr (kR > 2) c2 = hn::MulAdd(a2, b, c2);
  if constexpr (kR > 3) c3 = hn::MulAdd(a3, b, c3);
}

// The first `rem` (< Lanes) floats at src, zero-padded, via `buf`.
template <class D>
HWY_INLINE hn::Vec<D> LoadTail(D d, const float* HWY_RESTRICT src, size_t rem,
                               float* HWY_RESTRICT buf) {
  hn::Store(hn::Zero(d), d, buf);
  hn::SafeCopyN(rem, d, src, buf);
  return hn::Load(d, buf);
}

// Writes kC sums to C row `c` (c = sum, or c += sum).
template <size_t kC>
HWY_INLINE void StoreDotRow(const float* sums, float* HWY_RESTRICT c,
                            bool add) {
  for (size_t j = 0; j < kC; ++j) c[j] = add ? c[j] + sums[j] : sums[j];
}

// C[kR x kC at c] (+)= A[kR rows at a, stride lda] . B[kC rows at b,
// stride ldb]^T over k. The last partial vector of k goes through zeroed
// stack copies (both operands, so padding lanes add 0 * 0).
// Not inlined: inside the (large) driver the compiler ran out of general
// registers and spilled the row pointers in the k loop (~10% slower).
template <size_t kR, size_t kC>
HWY_NOINLINE void DotTile(size_t k, const float* HWY_RESTRICT a, size_t lda,
                        const float* HWY_RESTRICT b, size_t ldb,
                        float* HWY_RESTRICT c, size_t ldc, bool add) {
  static_assert(kR >= 1 && kR <= 4 && kC >= 1 && kC <= 4, "dot tile");
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  using V = hn::Vec<decltype(d)>;
  V c00 = hn::Zero(d), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00;
  V c12 = c00, c13 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00;
  V c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  // Accumulator c<r><c> belongs to A row r and B row c.
  size_t p = 0;
  for (; p + N <= k; p += N) {
    const V a0 = hn::LoadU(d, a + p);
    V a1 = a0, a2 = a0, a3 = a0;
    if constexpr (kR > 1) a1 = hn::LoadU(d, a + lda + p);
    if constexpr (kR > 2) a2 = hn::LoadU(d, a + 2 * lda + p);
    if constexpr (kR > 3) a3 = hn::LoadU(d, a + 3 * lda + p);
    DotColumn<kR>(hn::LoadU(d, b + p), a0, a1, a2, a3, c00, c10, c20, c30);
    if constexpr (kC > 1) {
      DotColumn<kR>(hn::LoadU(d, b + ldb + p), a0, a1, a2, a3, c01, c11, c21,
                    c31);
    }
    if constexpr (kC > 2) {
      DotColumn<kR>(hn::LoadU(d, b + 2 * ldb + p), a0, a1, a2, a3, c02, c12,
                    c22, c32);
    }
    if constexpr (kC > 3) {
      DotColumn<kR>(hn::LoadU(d, b + 3 * ldb + p), a0, a1, a2, a3, c03, c13,
                    c23, c33);
    }
  }
  if (p < k) {
    const size_t rem = k - p;
    HWY_ALIGN float buf[HWY_LANES(float)];
    const V a0 = LoadTail(d, a + p, rem, buf);
    V a1 = a0, a2 = a0, a3 = a0;
    if constexpr (kR > 1) a1 = LoadTail(d, a + lda + p, rem, buf);
    if constexpr (kR > 2) a2 = LoadTail(d, a + 2 * lda + p, rem, buf);
    if constexpr (kR > 3) a3 = LoadTail(d, a + 3 * lda + p, rem, buf);
    DotColumn<kR>(LoadTail(d, b + p, rem, buf), a0, a1, a2, a3, c00, c10, c20,
                  c30);
    if constexpr (kC > 1) {
      DotColumn<kR>(LoadTail(d, b + ldb + p, rem, buf), a0, a1, a2, a3, c01,
                    c11, c21, c31);
    }
    if constexpr (kC > 2) {
      DotColumn<kR>(LoadTail(d, b + 2 * ldb + p, rem, buf), a0, a1, a2, a3,
                    c02, c12, c22, c32);
    }
    if constexpr (kC > 3) {
      DotColumn<kR>(LoadTail(d, b + 3 * ldb + p, rem, buf), a0, a1, a2, a3,
                    c03, c13, c23, c33);
    }
  }
  float sums[4];
  SumLanes4(d, c00, c01, c02, c03, sums);
  StoreDotRow<kC>(sums, c, add);
  if constexpr (kR > 1) {
    SumLanes4(d, c10, c11, c12, c13, sums);
    StoreDotRow<kC>(sums, c + ldc, add);
  }
  if constexpr (kR > 2) {
    SumLanes4(d, c20, c21, c22, c23, sums);
    StoreDotRow<kC>(sums, c + 2 * ldc, add);
  }
  if constexpr (kR > 3) {
    SumLanes4(d, c30, c31, c32, c33, sums);
    StoreDotRow<kC>(sums, c + 3 * ldc, add);
  }
}

// kC (< kDC at the right edge) columns for rows [i0, i1) of C.
template <size_t kC>
HWY_INLINE void DotColumns(size_t i0, size_t i1, size_t k, const float* a,
                           size_t lda, const float* b, size_t ldb, float* c,
                           size_t ldc, bool add) {
  size_t i = i0;
  for (; i + kDR <= i1; i += kDR) {
    DotTile<kDR, kC>(k, a + i * lda, lda, b, ldb, c + i * ldc, ldc, add);
  }
  const float* a_rest = a + i * lda;
  float* c_rest = c + i * ldc;
  switch (i1 - i) {
    case 3:
      if constexpr (kDR > 3) DotTile<3, kC>(k, a_rest, lda, b, ldb, c_rest, ldc, add);
      break;
    case 2:
      if constexpr (kDR > 2) DotTile<2, kC>(k, a_rest, lda, b, ldb, c_rest, ldc, add);
      break;
    case 1:
      DotTile<1, kC>(k, a_rest, lda, b, ldb, c_rest, ldc, add);
      break;
    default:
      break;
  }
}

// Rows [i0, i1) x columns [j0, j1) of C = A B^T (+ C). Column groups of
// kDC B rows (they stay in L1) outside, row groups of kDR inside. When the
// rows of A exceed 256 KiB they go in blocks of 128 KiB (a multiple of kDR
// rows) around that, so that A is read from memory once, not once per
// column group (4096 x 10 x 256: +18%).
HWY_INLINE void DotBlock(size_t i0, size_t i1, size_t j0, size_t j1, size_t k,
                         const float* a, size_t lda, const float* b,
                         size_t ldb, float* c, size_t ldc, bool add) {
  const size_t row_bytes = k * sizeof(float);
  const size_t block_rows =
      (i1 - i0) * row_bytes <= (size_t{256} << 10)
          ? i1 - i0
          : std::max(kDR, (size_t{128} << 10) / row_bytes / kDR * kDR);
  for (size_t ib = i0; ib < i1; ib += block_rows) {
    const size_t ie = std::min(i1, ib + block_rows);
    size_t j = j0;
    for (; j + kDC <= j1; j += kDC) {
      DotColumns<kDC>(ib, ie, k, a, lda, b + j * ldb, ldb, c + j, ldc, add);
    }
    switch (j1 - j) {
      case 3:
        DotColumns<3>(ib, ie, k, a, lda, b + j * ldb, ldb, c + j, ldc, add);
        break;
      case 2:
        DotColumns<2>(ib, ie, k, a, lda, b + j * ldb, ldb, c + j, ldc, add);
        break;
      case 1:
        DotColumns<1>(ib, ie, k, a, lda, b + j * ldb, ldb, c + j, ldc, add);
        break;
      default:
        break;
    }
  }
}

// Whether C = A B^T (A m x k and B n x k, both rows contiguous in k) takes
// the dot-product path rather than the packed one (simd/gemm_plan.h: the
// scratch planners see depends on it), and the tasks a product runs on.
using simd::gemm_plan::TaskCount;
using simd::gemm_plan::UseDot;

// The dot-product path: items of whole column groups (or, with few columns,
// row groups), about 4 per task so that a late or slow thread takes fewer.
HWY_INLINE void RunDot(const float* a, size_t lda, const float* b, size_t ldb,
                       float* c, size_t ldc, size_t m, size_t n, size_t k,
                       bool add, const simd::GemmEpilogue& epilogue,
                       ThreadPool& pool) {
  const size_t tasks = TaskCount(m, n, k, pool.num_threads());
  if (tasks <= 1) {
    DotBlock(0, m, 0, n, k, a, lda, b, ldb, c, ldc, add);
    ApplyEpilogue(epilogue, c, ldc, 0, m, 0, n);
    return;
  }
  const size_t col_groups = DivCeil(n, kDC), row_groups = DivCeil(m, kDR);
  const bool by_columns = col_groups >= 4 * tasks || col_groups >= row_groups;
  const size_t groups = by_columns ? col_groups : row_groups;
  const size_t unit = (by_columns ? kDC : kDR) * DivCeil(groups, 4 * tasks);
  const size_t extent = by_columns ? n : m;
  ForEachItem(DivCeil(extent, unit), tasks, pool,
              [&](size_t /*task*/, size_t i) HWY_ATTR {
                const size_t begin = i * unit;
                const size_t end = std::min(extent, begin + unit);
                const size_t i0 = by_columns ? 0 : begin;
                const size_t i1 = by_columns ? m : end;
                const size_t j0 = by_columns ? begin : 0;
                const size_t j1 = by_columns ? end : n;
                DotBlock(i0, i1, j0, j1, k, a, lda, b, ldb, c, ldc, add);
                ApplyEpilogue(epilogue, c, ldc, i0, i1, j0, j1);
              });
}

// ---- Blocks and tasks ----

// Per-call state shared by all tasks.
struct Run {
  Plan plan;
  ScratchLayout layout;
  float* scratch;
  size_t nc;  // columns per R block
  bool accumulate;
  const simd::GemmEpilogue& epilogue;
};

// Once the last k block of rows [i0, i1) x columns [j0, j1) of C' is done:
// the epilogue on that block, in C's coordinates.
HWY_INLINE void FinishBlock(const Run& run, size_t k_end, size_t i0, size_t i1,
                            size_t j0, size_t j1) {
  const Operands& o = run.plan.o;
  if (k_end != o.K) return;
  if (o.c_transposed) {
    ApplyEpilogue(run.epilogue, o.c, o.c_cs, j0, j1, i0, i1);
  } else {
    ApplyEpilogue(run.epilogue, o.c, o.c_rs, i0, i1, j0, j1);
  }
}

HWY_INLINE float* TaskArea(const Run& run, size_t task) {
  return run.scratch + run.layout.right + task * run.layout.per_task;
}

// What a task's slice of the scratch holds: the packed L block of rows
// [i0, i1) for k from k0 (kNone: nothing yet). Column-split items of one k
// block all need the same L block, so a task packs it once, not per item.
struct TaskState {
  static constexpr size_t kNone = ~size_t{0};
  size_t k0 = kNone, i0 = 0, i1 = 0;
};

// Half-height tiles for short packed L tiles (TileOf), except in the
// firmware profile (THAW_COMPACT_KERNELS): 4 KB of code for the edges.
#if THAW_COMPACT_KERNELS
constexpr bool kHalfTiles = false;
#else
constexpr bool kHalfTiles = true;
#endif

// The microkernel for one tile of `cols` columns: kNV vectors of columns,
// each operand packed or read in place; or, for a panel of at most one
// vector with L read in place (R is then packed or copied), one vector:
// no FMAs on padding columns. Not with L packed too (L's last tile or a
// packed L block: few FMAs to save, and one more copy of the kernel in
// every binary). A packed L tile of at most kMR / 2 rows (the last rows of
// a 10-row product: 8 + 2) computes kMR / 2 rows, not kMR: half the FMAs,
// with as many sums in flight as a full tile of one vector (kHalfTiles).
HWY_INLINE void TileOf(bool l_packed, bool r_packed, size_t kc, const float* l, size_t l_rs,
                       size_t l_ks, const float* r, size_t r_ks, float* c, size_t c_rs,
                       size_t c_cs, size_t rows, size_t cols, bool add) {
  constexpr size_t kHalf = kMR / 2;
  if (OneVector(cols) && !l_packed) {
    Tile<false, true, 1>(kc, l, l_rs, l_ks, r, 0, c, c_rs, c_cs, rows, cols, add);
  } else if (kHalfTiles && l_packed && rows <= kHalf) {
    if constexpr (kHalfTiles) {
      if (r_packed) {
        Tile<true, true, kNV, kHalf>(kc, l, 0, 0, r, 0, c, c_rs, c_cs, rows, cols, add);
      } else {
        Tile<true, false, kNV, kHalf>(kc, l, 0, 0, r, r_ks, c, c_rs, c_cs, rows, cols, add);
      }
    }
  } else if (l_packed) {
    if (r_packed) {
      Tile<true, true>(kc, l, 0, 0, r, 0, c, c_rs, c_cs, rows, cols, add);
    } else {
      Tile<true, false>(kc, l, 0, 0, r, r_ks, c, c_rs, c_cs, rows, cols, add);
    }
  } else if (r_packed) {
    Tile<false, true>(kc, l, l_rs, l_ks, r, 0, c, c_rs, c_cs, rows, cols, add);
  } else {
    Tile<false, false>(kc, l, l_rs, l_ks, r, r_ks, c, c_rs, c_cs, rows, cols, add);
  }
}

// One task's share of one (jc, pc) block: rows [i_begin, i_end) and columns
// [j_begin, j_end) of C' (multiples of MR / NR, or the matrix end), k rows
// [k0, k0 + kc). R is packed at run.scratch (panel 0 = column jc) when
// plan.decision.pack_right; pack_own_right makes this task pack its own
// columns first (column split).
HWY_INLINE void RunTask(const Run& run, size_t task, TaskState* state,
                        size_t i_begin, size_t i_end, size_t j_begin,
                        size_t j_end, size_t jc, size_t k0, size_t kc,
                        bool pack_own_right) {
  const Plan& plan = run.plan;
  const Operands& o = plan.o;
  const size_t nr = TileCols();
  const bool add = run.accumulate || k0 > 0;
  float* const right = run.scratch;
  float* const left = TaskArea(run, task);
  float* const edge_left = left + run.layout.left;
  float* const edge_right = edge_left + run.layout.edge_left;
  // This task's own R panels start at a place that does not move with kc:
  // with k blocks of unequal length (K = 257: 129 + 128), a start of
  // (j_begin - jc) * kc would let a task packing the shorter block write
  // over the end of another task's panels of the longer one, which the
  // other task may still be reading (fixed shares do not wait).
  float* const own_right = right + (j_begin - jc) * simd::gemm_plan::KBlock(o.K);
  if (pack_own_right) PackRight(o, k0, kc, j_begin, j_end, own_right);
  // In-place operands: the last partial panel / tile is copied, padded.
  const size_t last_panel = o.N / nr * nr;
  const size_t last_tile = o.M / kMR * kMR;
  if (!plan.decision.pack_right && j_end == o.N && last_panel < o.N) {
    PackRight(o, k0, kc, last_panel, o.N, edge_right);
  }
  for (size_t ic = i_begin; ic < i_end; ic += kMC) {
    const size_t i_stop = std::min(i_end, ic + kMC);
    if (plan.decision.pack_left) {
      if (state->k0 != k0 || state->i0 != ic || state->i1 != i_stop) {
        PackLeft(o, k0, kc, ic, i_stop, left);
        *state = TaskState{k0, ic, i_stop};
      }
    } else if (i_stop == o.M && last_tile < o.M) {
      PackLeft(o, k0, kc, last_tile, o.M, edge_left);
    }
    for (size_t jr = j_begin; jr < j_end; jr += nr) {
      const size_t cols = std::min(nr, o.N - jr);
      const float* r_tile;
      bool r_packed = true;
      if (plan.decision.pack_right) {
        r_tile = pack_own_right ? own_right + (jr - j_begin) * kc : right + (jr - jc) * kc;
      } else if (cols < nr) {
        r_tile = edge_right;
      } else {
        r_tile = o.r + k0 * o.r_ks + jr;
        r_packed = false;
      }
      float* c_col = o.c + jr * o.c_cs;
      for (size_t ir = ic; ir < i_stop; ir += kMR) {
        const size_t rows = std::min(kMR, o.M - ir);
        const float* l_tile;
        bool l_packed = true;
        if (plan.decision.pack_left) {
          l_tile = left + (ir - ic) * kc;
        } else if (rows < kMR) {
          l_tile = edge_left;
        } else {
          l_tile = o.l + ir * o.l_rs + k0 * o.l_ks;
          l_packed = false;
        }
        float* c_tile = c_col + ir * o.c_rs;
        TileOf(l_packed, r_packed, kc, l_tile, o.l_rs, o.l_ks, r_tile, o.r_ks, c_tile, o.c_rs,
               o.c_cs, rows, cols, add);
      }
    }
  }
}

// The work items of one (jc, pc) block of C' = L R. Row split (and one
// task): first `packs` items pack R's panels of the block, `panels_per_pack`
// each, into the shared buffer; then `computes` items of `rows_per_item`
// rows of C' each (all of the block's columns). Column split: `computes`
// items of `panels_per_item` panels each, which pack their own R panels and
// all of L.
struct BlockItems {
  size_t jc, j_stop, k0, kc;
  size_t packs, computes;
};

struct Schedule {
  size_t kc_max, nc;
  size_t panels_per_pack;  // row split: R panels per pack item
  size_t rows_per_item;    // row split
  size_t panels_per_item;  // column split
};

HWY_INLINE BlockItems ItemsOf(const Plan& plan, const Schedule& sched,
                              size_t jc, size_t k0) {
  const size_t nr = TileCols();
  BlockItems b;
  b.jc = jc;
  b.j_stop = std::min(plan.o.N, jc + sched.nc);
  b.k0 = k0;
  b.kc = std::min(sched.kc_max, plan.o.K - k0);
  const size_t panels = DivCeil(b.j_stop - jc, nr);
  if (plan.decision.split == Split::kCols) {
    b.packs = 0;
    b.computes = DivCeil(panels, sched.panels_per_item);
  } else {
    b.packs = plan.decision.pack_right ? DivCeil(panels, sched.panels_per_pack) : 0;
    b.computes = DivCeil(plan.o.M, sched.rows_per_item);
  }
  return b;
}

// Moves `b` to the next (jc, pc) block in order (pc inner). False at the end.
HWY_INLINE bool NextBlock(const Plan& plan, const Schedule& sched,
                          BlockItems* b) {
  size_t jc = b->jc, k0 = b->k0 + sched.kc_max;
  if (k0 >= plan.o.K) {
    k0 = 0;
    jc += sched.nc;
    if (jc >= plan.o.N) return false;
  }
  *b = ItemsOf(plan, sched, jc, k0);
  return true;
}

// Item `local` of block `b`, on task t. R's packed block starts at
// run.scratch (its panel 0 is column b.jc).
HWY_INLINE void RunItem(const Run& run, const Schedule& sched,
                        const BlockItems& b, size_t local, size_t t,
                        TaskState* state) {
  const Plan& plan = run.plan;
  const Operands& o = plan.o;
  const size_t nr = TileCols();
  if (plan.decision.split == Split::kCols) {
    const size_t j0 = b.jc + local * sched.panels_per_item * nr;
    const size_t j1 = std::min(b.j_stop, j0 + sched.panels_per_item * nr);
    RunTask(run, t, state, 0, o.M, j0, j1, b.jc, b.k0, b.kc,
            plan.decision.pack_right);
    FinishBlock(run, b.k0 + b.kc, 0, o.M, j0, j1);
  } else if (local < b.packs) {
    const size_t j0 = local * sched.panels_per_pack * nr;
    const size_t j1 =
        std::min(b.j_stop - b.jc, j0 + sched.panels_per_pack * nr);
    PackRight(o, b.k0, b.kc, b.jc + j0, b.jc + j1, run.scratch + j0 * b.kc);
  } else {
    const size_t i0 = (local - b.packs) * sched.rows_per_item;
    const size_t i1 = std::min(o.M, i0 + sched.rows_per_item);
    RunTask(run, t, state, i0, i1, b.jc, b.j_stop, b.jc, b.k0, b.kc, false);
    FinishBlock(run, b.k0 + b.kc, i0, i1, b.jc, b.j_stop);
  }
}

// All items of all blocks, claimed in order by the tasks.
HWY_INLINE void RunPlan(const Plan& plan, bool accumulate,
                        const simd::GemmEpilogue& epilogue, float* scratch,
                        const ScratchLayout& layout, ThreadPool& pool) {
  const Run run{plan, layout, scratch, NBlock(), accumulate, epilogue};
  const Operands& o = plan.o;
  const size_t nr = TileCols();
  const size_t tasks = plan.decision.tasks;
  Schedule sched;
  sched.kc_max = simd::gemm_plan::KBlock(o.K);
  sched.nc = run.nc;
  const size_t panels = DivCeil(std::min(o.N, sched.nc), nr);
  if (tasks <= 1) {
    // The plain Goto loop: one pack item, one compute item (RunTask walks
    // the MC row blocks).
    sched.panels_per_pack = panels;
    sched.rows_per_item = o.M;
    sched.panels_per_item = panels;
  } else {
    // Items of (nearly) equal size, 2 per task or more, a multiple of the
    // task count per phase: every phase ends with a wait for its last item,
    // so 7 full items and a small 8th cost ~10% at 1024^3. Finer items
    // would balance a late thread better, but each row item streams all of
    // R's block from L2/L3 again and packs its own L rows: on 2 threads, 4-8
    // items per task were 3-15% slower than 2.
    const size_t row_items =
        RoundUp(std::max(DivCeil(o.M, kMC), 2 * tasks), tasks);
    sched.rows_per_item = RoundUp(DivCeil(o.M, row_items), kMR);
    sched.panels_per_pack = DivCeil(panels, 2 * tasks);
    sched.panels_per_item = DivCeil(panels, 2 * tasks);
  }
  // (num_threads() is the constant 1 in the serial firmware profile, which
  // then compiles none of this.)
  if (pool.num_threads() > 1 && plan.decision.fixed_shares) {
    // Each task owns a fixed, contiguous share of every block's panels and
    // runs the blocks in order: no task waits for another, none reads what
    // another wrote (L is read in place or packed by each task for itself),
    // and each packs its L block once per k block.
    pool.ParallelFor(tasks, [&](size_t t) HWY_ATTR {
      TaskState state;
      BlockItems block = ItemsOf(plan, sched, 0, 0);
      do {
        const size_t panels_here = DivCeil(block.j_stop - block.jc, nr);
        const size_t p0 = panels_here * t / tasks, p1 = panels_here * (t + 1) / tasks;
        if (p0 == p1) continue;
        const size_t j0 = block.jc + p0 * nr;
        const size_t j1 = std::min(block.j_stop, block.jc + p1 * nr);
        RunTask(run, t, &state, 0, o.M, j0, j1, block.jc, block.k0, block.kc,
                plan.decision.pack_right);
        FinishBlock(run, block.k0 + block.kc, 0, o.M, j0, j1);
      } while (NextBlock(plan, sched, &block));
    });
    return;
  }
  size_t total = 0;
  BlockItems b = ItemsOf(plan, sched, 0, 0);
  do {
    total += b.packs + b.computes;
  } while (NextBlock(plan, sched, &b));

  WorkQueue queue(total);
  auto task = [&](size_t t) HWY_ATTR {
    BlockItems block = ItemsOf(plan, sched, 0, 0);
    size_t block_begin = 0;  // index of the block's first item
    TaskState state;
    size_t item;
    while (queue.Claim(&item)) {
      while (item >= block_begin + block.packs + block.computes) {
        block_begin += block.packs + block.computes;
        NextBlock(plan, sched, &block);
      }
      const size_t local = item - block_begin;
      // Packing waits for the previous block's computes (same buffer);
      // computing waits for this block's packs, and hence for every earlier
      // k block of the same tiles.
      queue.WaitFinished(local < block.packs ? block_begin
                                             : block_begin + block.packs);
      RunItem(run, sched, block, local, t, &state);
      queue.Finish();
    }
  };
  if (tasks <= 1) {
    task(0);
  } else {
    pool.ParallelFor(tasks, task);
  }
}

// C[1 x n] (+)= a[1 x k] B^T, both with rows contiguous (a batch of one
// through a dense layer, where the dot-product path does not take it): each
// output's sum in its own chain of single-lane multiply-adds, four outputs
// at a time, in the packed path's k blocks and order, so the bits of that
// row in a larger product. B's rows are read once, in place; the packed
// path would copy all of B transposed and run 8-row tiles for one row (at
// batch 1 the reference CNN's 1568 -> 10 head was half of its time).
inline HWY_NOINLINE void RunRow(const float* a, const float* b, size_t ldb, float* c, size_t n,
                               size_t k, bool add) {
  const hn::CappedTag<float, 1> d;
  using V = hn::Vec<decltype(d)>;
  const size_t kc = simd::gemm_plan::KBlock(k);
  for (size_t k0 = 0; k0 < k; k0 += kc) {
    const size_t k1 = std::min(k, k0 + kc);
    for (size_t j = 0; j < n; j += 4) {
      // Outputs past n (the last group) repeat output j and are not stored.
      const float* r0 = b + j * ldb;
      const float* r1 = j + 1 < n ? r0 + ldb : r0;
      const float* r2 = j + 2 < n ? r0 + 2 * ldb : r0;
      const float* r3 = j + 3 < n ? r0 + 3 * ldb : r0;
      V s0 = hn::Zero(d), s1 = s0, s2 = s0, s3 = s0;
      for (size_t p = k0; p < k1; ++p) {
        const V x = hn::Set(d, a[p]);
        s0 = hn::MulAdd(x, hn::Set(d, r0[p]), s0);
        s1 = hn::MulAdd(x, hn::Set(d, r1[p]), s1);
        s2 = hn::MulAdd(x, hn::Set(d, r2[p]), s2);
        s3 = hn::MulAdd(x, hn::Set(d, r3[p]), s3);
      }
      const float sums[4] = {hn::GetLane(s0), hn::GetLane(s1), hn::GetLane(s2), hn::GetLane(s3)};
      for (size_t i = 0; i < 4 && j + i < n; ++i) {
        c[j + i] = add || k0 > 0 ? c[j + i] + sums[i] : sums[i];
      }
    }
  }
}

// Floats of scratch GemmT needs for one product: the plan's packing
// buffers (the dot path needs none); simd::GemmScratchFloats gives the same
// from simd/target_shapes.h's row for this target.
HWY_INLINE size_t GemmScratchFloatsT(size_t m, size_t n, size_t k,
                                     bool trans_a, bool trans_b, int threads) {
  return simd::gemm_plan::ScratchFloats(PlanTile(), m, n, k, trans_a, trans_b, threads);
}

// The same whatever the transposes: the largest of the four.
HWY_INLINE size_t GemmScratchFloatsT(size_t m, size_t n, size_t k,
                                     int threads) {
  return simd::gemm_plan::ScratchFloats(PlanTile(), m, n, k, threads);
}

// C (+)= op(A) op(B), then the epilogue, as in simd::Gemm; m, n > 0.
// scratch: 64-byte aligned, GemmScratchFloatsT(m, n, k, pool.num_threads())
// floats.
HWY_INLINE void GemmT(const float* a, size_t lda, bool trans_a, const float* b,
                      size_t ldb, bool trans_b, float* c, size_t ldc, size_t m,
                      size_t n, size_t k, bool accumulate, float* scratch,
                      ThreadPool& pool, const simd::GemmEpilogue& epilogue) {
  if (k == 0) {  // op(A) op(B) is an m x n zero matrix
    if (!accumulate) {
      for (size_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    }
    ApplyEpilogue(epilogue, c, ldc, 0, m, 0, n);
    return;
  }
  const int threads = pool.num_threads();
  if (!trans_a && trans_b && UseDot(m, n, k)) {
    RunDot(a, lda, b, ldb, c, ldc, m, n, k, accumulate, epilogue, pool);
    return;
  }
  if (simd::gemm_plan::UseRow(m, n, k, trans_a, trans_b)) {
    RunRow(a, b, ldb, c, n, k, accumulate);
    ApplyEpilogue(epilogue, c, ldc, 0, m, 0, n);
    return;
  }
  const Plan plan = MakePlan(a, lda, trans_a, b, ldb, trans_b, c, ldc, m, n,
                             k, threads);
  RunPlan(plan, accumulate, epilogue, scratch, PlanLayout(plan), pool);
}

// ---- Convolution straight from the image (simd/conv.cc) ----

// W[K x cout] as PackRight's panels of NR columns over the whole K (panel q
// at q * K * NR), zero past cout.
HWY_INLINE void PackConvWeightsT(const float* w, size_t k, size_t cout, float* panels) {
  Operands o{};
  o.r = w;
  o.r_ks = cout;
  o.r_js = 1;
  o.r_rows = true;
  o.K = k;
  o.N = cout;
  PackRight(o, 0, k, 0, cout, panels);
}

// ConvImageT's tile for output rows of out_w pixels: kRows of kMR or
// kMR - 1, and for a panel of one vector, blocks of them (kNV: the
// registers of the other vectors). The shape that computes the fewest
// padding rows (14 = 7 + 7 on AVX3, or one tile of 2 x 7 for one vector),
// the larger on a tie. Its padding rows are fewer than kMR: a short tile
// reads at most kMR - 1 pixels past an image row's end, in the slack.
struct ImageTile {
  size_t rows_per_block;
  size_t blocks;
  size_t rows() const { return rows_per_block * blocks; }
};

HWY_INLINE ImageTile ImageTileOf(size_t out_w, bool one_vector) {
  ImageTile best{kMR, 1};
  for (size_t blocks : {size_t{1}, one_vector ? kNV : size_t{1}}) {
    for (size_t per_block : {kMR, kMR - 1}) {
      const ImageTile t{per_block, blocks};
      const size_t computed = DivCeil(out_w, t.rows()) * t.rows();
      const size_t best_computed = DivCeil(out_w, best.rows()) * best.rows();
      if (computed < best_computed || (computed == best_computed && t.rows() > best.rows())) {
        best = t;
      }
    }
  }
  return best;
}

// One tile of ConvImageT: kernel_h runs of `run` k steps, `row` floats
// apart in the padded image, all in registers; one vector of columns when
// the panel has no more (always with kBlocks blocks of rows); the epilogue
// applied in registers when kEpilogue (from column jr).
template <size_t kRows, size_t kBlocks, bool kEpilogue>
HWY_INLINE void ConvTile(bool one_vector, size_t run, size_t kernel_h, const float* l, size_t cin,
                         size_t row, const float* panel, float* c, size_t cout, size_t rows,
                         size_t cols, const simd::GemmEpilogue* e, size_t jr) {
  if (kBlocks > 1 || one_vector) {
    Tile<false, true, 1, kRows, kBlocks, kEpilogue>(run, l, cin, 1, panel, 0, c, cout, 1, rows,
                                                    cols, false, kernel_h, row, e, jr);
  } else {
    Tile<false, true, kNV, kRows, 1, kEpilogue>(run, l, cin, 1, panel, 0, c, cout, 1, rows, cols,
                                                false, kernel_h, row, e, jr);
  }
}

// ConvImageT's tiles of one panel with the tile shape of `tile` and the
// epilogue in registers when kEpilogue.
template <bool kEpilogue>
HWY_INLINE void ConvPanel(const float* padded, size_t padded_w, size_t cin, size_t kernel_h,
                          size_t run, const float* panel, size_t cout, float* y, size_t out_h,
                          size_t out_w, size_t jr, size_t cols, bool one_vector, ImageTile tile,
                          const simd::GemmEpilogue* e) {
  const size_t row = padded_w * cin;
  const bool full = tile.rows_per_block == kMR;
  for (size_t oh = 0; oh < out_h; ++oh) {
    for (size_t ow = 0; ow < out_w; ow += tile.rows()) {
      const size_t rows = std::min(tile.rows(), out_w - ow);
      const float* l = padded + (oh * padded_w + ow) * cin;
      float* c = y + (oh * out_w + ow) * cout + jr;
      if (tile.blocks == 1) {
        if (full) {
          ConvTile<kMR, 1, kEpilogue>(one_vector, run, kernel_h, l, cin, row, panel, c, cout,
                                      rows, cols, e, jr);
        } else {
          ConvTile<kMR - 1, 1, kEpilogue>(one_vector, run, kernel_h, l, cin, row, panel, c, cout,
                                          rows, cols, e, jr);
        }
      } else if (full) {
        ConvTile<kMR, kNV, kEpilogue>(true, run, kernel_h, l, cin, row, panel, c, cout, rows,
                                      cols, e, jr);
      } else {
        ConvTile<kMR - 1, kNV, kEpilogue>(true, run, kernel_h, l, cin, row, panel, c, cout, rows,
                                          cols, e, jr);
      }
    }
  }
}

// Output rows [0, out_h) of a stride-1 convolution (one image, or a band of
// its rows): y[oh, ow, :] = the sum over (kh, kw, ci) of padded[oh + kh,
// ow + kw, ci] * W[kh, kw, ci, :], then the epilogue. `padded` is the input
// those rows read with its padding written out as zeros (padded_w pixels a
// row, cin floats a pixel), readable for kMR pixels past its end; `panels`
// is W packed by PackConvWeightsT. The patch matrix is never gathered: a
// kernel row's taps for the consecutive outputs of a tile are runs of
// kernel_w * cin floats, cin apart in `padded`, which the microkernel reads
// in place, kernel row after kernel row, summing all of them in registers
// (a tile does not cross output rows; the rows of a short last tile compute
// from whatever follows and are not stored). A panel of whole vectors takes
// an epilogue without activation, or with ReLU or ReLU6, in registers as
// the tile is stored; a short panel, or another activation, gets it in a
// pass over the panel's columns after its tiles (the same operations).
HWY_INLINE void ConvImageT(const float* padded, size_t padded_w, size_t cin, size_t kernel_h,
                           size_t kernel_w, const float* panels, size_t cout, float* y,
                           size_t out_h, size_t out_w, const simd::GemmEpilogue& epilogue) {
  const size_t N = VecLanes(), nr = TileCols(), run = kernel_w * cin, k = kernel_h * run;
  const bool in_registers = !EpilogueDoesNothing(epilogue) && EpilogueInRegisters(epilogue);
  for (size_t jr = 0; jr < cout; jr += nr) {  // a panel stays in L1 for the image
    const size_t cols = std::min(nr, cout - jr);
    const float* panel = panels + jr / nr * k * nr;
    const bool one_vector = OneVector(cols);
    const ImageTile tile = ImageTileOf(out_w, one_vector);
    const size_t tile_cols = tile.blocks > 1 || one_vector ? N : nr;
    if (in_registers && cols == tile_cols) {
      ConvPanel<true>(padded, padded_w, cin, kernel_h, run, panel, cout, y, out_h, out_w, jr,
                      cols, one_vector, tile, &epilogue);
      continue;
    }
    ConvPanel<false>(padded, padded_w, cin, kernel_h, run, panel, cout, y, out_h, out_w, jr, cols,
                     one_vector, tile, nullptr);
    ApplyEpilogue(epilogue, y, cout, 0, out_h * out_w, jr, jr + cols);
  }
}

// The weight gradient of the same convolution over a band: for each kernel
// row kh, dw[kh, :, :, :] ((kernel_w * cin) x cout) (+)= the sum over the
// band's `pixels` virtual outputs p (padded_w a row: the columns past the
// true width are "virtual", their dy rows zero) of padded[p + kh * padded_w
// + kw, ci] * dy[p, :], in pixel order. The run of a pixel's taps of one
// kernel row is contiguous in `padded`, and consecutive virtual pixels are
// cin apart: the microkernel reads both operands in place (k = pixels, in
// pieces of at most kKC). add == false overwrites dw on the first piece.
// Both are read past what is used (the rows of a short tile, the columns of
// a short panel, up to NR floats past dy's last row; discarded): `padded`
// has its slack pixels, dy must have NR readable floats after its end.
HWY_INLINE void ConvWeightBandT(const float* padded, size_t padded_w, size_t cin,
                                size_t kernel_h, size_t kernel_w, const float* dy, size_t cout,
                                size_t pixels, float* dw, bool add) {
  const size_t nr = TileCols(), run = kernel_w * cin;
  const size_t pieces = DivCeil(pixels, kKC);
  for (size_t kh = 0; kh < kernel_h; ++kh) {
    const float* l = padded + kh * padded_w * cin;
    float* c = dw + kh * run * cout;
    for (size_t piece = 0; piece < pieces; ++piece) {
      const size_t p0 = piece * pixels / pieces, p1 = (piece + 1) * pixels / pieces;
      const bool accumulate = add || piece > 0;
      for (size_t jr = 0; jr < cout; jr += nr) {
        const size_t cols = std::min(nr, cout - jr);
        const float* r = dy + p0 * cout + jr;
        for (size_t i = 0; i < run; i += kMR) {
          const size_t rows = std::min(kMR, run - i);
          const float* li = l + p0 * cin + i;
          float* ci = c + i * cout + jr;
          if (OneVector(cols)) {
            Tile<false, false, 1>(p1 - p0, li, 1, cin, r, cout, ci, cout, 1, rows, cols,
                                  accumulate);
          } else {
            Tile<false, false>(p1 - p0, li, 1, cin, r, cout, ci, cout, 1, rows, cols, accumulate);
          }
        }
      }
    }
  }
}

}  // namespace THAW_GEMM_NAMESPACE

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#endif  // THAW_SIMD_GEMM_INL_H_ (toggle)
