// thaw/simd/gemm_plan.cc — see simd/gemm_plan.h. Compiled once, with the
// baseline flags: the kernels of every target and every planner call these
// same instructions, so even the floating-point cost estimate agrees.
#include "simd/gemm_plan.h"

#include <algorithm>

namespace thaw {
namespace simd {
namespace gemm_plan {

size_t KBlock(size_t k) { return DivCeil(k, DivCeil(k, kKC)); }

size_t NBlock(const Tile& tile) {
  const size_t nr = tile.cols();
  return std::max(nr, kNC / nr * nr);
}

size_t TaskCount(size_t m, size_t n, size_t k, int threads) {
  if (threads <= 1 || m * n * k < kSerialMacs) return 1;
  return static_cast<size_t>(threads);
}

// Measured on Zen 3 (AVX2) against the packed path: the dot path wins when
// one side is skinny (a batch of <= 64 rows, or <= 16 outputs), where the
// packed path pays transposing packs of both operands and pads n to NR. It
// loses when k < 64 (the horizontal sums dominate), and on larger squares
// (from 128^3: B's rows stream from L2/L3 once per row block, where the
// packed path keeps a panel in L1 for MC rows). Beyond k = 1024 only the
// few-column case keeps it: there the packed path transposes B into
// panels of NR columns, mostly zero padding, once per k block; measured on
// an AVX-512 Xeon, the dot path ran 32 x 10 x 1568 (a CNN's classifier) at
// 90 against 30 GFLOP/s, and every n <= 16 shape tried up to k = 4096 and
// m = 4096 faster, on AVX3 and AVX2; at n >= 32 and k > 1024 the packed
// path was faster on AVX3 (123 against 96 GFLOP/s at 32 x 32 x 1568).
bool UseDot(size_t m, size_t n, size_t k) {
  if (k < 64) return false;
  if (n <= 4 * kDotCols) return true;
  return k <= 1024 && m <= 64 && m * k * sizeof(float) <= (size_t{256} << 10);
}

bool UseRow(size_t m, size_t n, size_t k, bool trans_a, bool trans_b) {
  return m == 1 && !trans_a && trans_b && !UseDot(m, n, k);
}

Oriented Orient(bool transpose_c, bool trans_a, bool trans_b, size_t m, size_t n, size_t k) {
  Oriented o;
  o.K = k;
  if (!transpose_c) {  // C = op(A) op(B)
    o.M = m;
    o.N = n;
    o.l_rows = !trans_a;
    o.r_rows = !trans_b;
  } else {  // C^T = op(B)^T op(A)^T
    o.M = n;
    o.N = m;
    o.l_rows = trans_b;
    o.r_rows = trans_a;
  }
  o.c_transposed = transpose_c;
  return o;
}

namespace {

// Rough cycles on a 2-FMA-per-cycle core, to choose an orientation: the
// padded tile grid's FMAs, a transposing pack of R (~0.6 cycles per element
// with 4 x 4 transposes), and writing C once per k block: ~0.3 cycles per
// element from registers, ~2.5 through the stack tile when C' = C^T (the
// scattered scalar stores made the transposed orientation 2-3x slower on
// the small weight-gradient shapes, and ~30% slower on the larger ones).
double EstimatedCycles(const Tile& tile, const Oriented& o) {
  const size_t nr = tile.cols();
  const double tiles = static_cast<double>(DivCeil(o.M, tile.rows) * DivCeil(o.N, nr));
  const double k_blocks = static_cast<double>(DivCeil(o.K, kKC));
  const double c_elements = static_cast<double>(o.M * o.N);
  double cycles = tiles * static_cast<double>(tile.rows * tile.vectors * o.K) / 2.0;
  if (!o.r_rows) cycles += 0.6 * static_cast<double>(o.K * o.N);
  cycles += k_blocks * c_elements * (o.c_transposed ? 2.5 : 0.3);
  return cycles;
}

}  // namespace

Decision Decide(const Tile& tile, size_t m, size_t n, size_t k, bool trans_a, bool trans_b,
                int threads) {
  const Oriented normal = Orient(false, trans_a, trans_b, m, n, k);
  const Oriented transposed = Orient(true, trans_a, trans_b, m, n, k);
  Decision plan{};
  plan.o = EstimatedCycles(tile, transposed) < EstimatedCycles(tile, normal) ? transposed
                                                                             : normal;
  const Oriented& o = plan.o;
  const size_t nr = tile.cols();
  // R is read in place when its panels are contiguous rows and few row
  // tiles reuse them (M <= MC: one row block). L rows that are contiguous in
  // k are read in place too: the microkernel's broadcasts come
  // from MR sequential streams, and packing them was 2-10% slower from the
  // skinny shapes up to 512^3 (even at 1024^3 it gained only ~2%, so only L
  // of 4 MiB and more is packed, for the TLB). A strided L is
  // packed when several panels reuse it, else each k step touches MR floats
  // of a different cache line.
  plan.pack_right = !o.r_rows || o.M > kMC;
  plan.pack_left = o.N > 4 * nr && (!o.l_rows || o.M * o.K >= (size_t{1} << 20));
  plan.tasks = TaskCount(m, n, k, threads);
  plan.split = Split::kNone;
  if (plan.tasks > 1) {
    // Columns (each task packs its own R panels and reads or packs all of
    // L, and no task reads what another wrote) when there are at least two
    // panels per task; else rows when there are several MC blocks (R is
    // packed once, shared). Measured on a 2-vCPU AVX-512 EPYC: splitting
    // 512^3 and 1024^3 by rows, with a shared R block per k block and a wait
    // for it, ran 1.55x one thread; by columns 1.93x and 1.89x
    // (bench/results/avx3/gemm.md).
    plan.split = o.M > kMC && DivCeil(o.N, nr) < 2 * plan.tasks ? Split::kRows : Split::kCols;
    const size_t units =
        plan.split == Split::kRows ? DivCeil(o.M, tile.rows) : DivCeil(o.N, nr);
    plan.tasks = std::min(plan.tasks, units);
    if (plan.tasks <= 1) {
      plan.tasks = 1;
      plan.split = Split::kNone;
    }
  }
  // Fixed shares unless the product is one block, with L read in place,
  // and small: a late worker (10-60 us to join) then delays the end by its
  // lateness, where with the queue it takes fewer items. Otherwise the
  // queue costs a wait between k blocks, and items of one task each read
  // (or pack) all of L again. On that machine: 256^3 ran 1.4x one
  // thread split by rows, 1.57x with fixed shares; 256x784x64 (L packed)
  // 0.8x with the queue, 1.45x with fixed shares; 32x784x256 and 64x784x256
  // 1.7-1.8x with the queue either way, and 1.5x with fixed shares.
  const bool one_block = o.N <= NBlock(tile) && o.K <= kKC;
  plan.fixed_shares = plan.split == Split::kCols &&
                      (!one_block || plan.pack_left || m * n * k >= kFixedShareMacs);
  return plan;
}

namespace {
size_t Align16(size_t floats) { return RoundUp(floats, 16); }
}  // namespace

// Only what the plan uses: no R area when R is read in place, no L area when
// L is, edge buffers only for a partial last tile or panel read in place.
Layout LayoutOf(const Tile& tile, const Decision& plan) {
  const Oriented& o = plan.o;
  const size_t nr = tile.cols(), mr = tile.rows;
  const size_t kc = KBlock(o.K);
  Layout s;
  if (plan.pack_right) {
    s.right = Align16(kc * RoundUp(std::min(o.N, NBlock(tile)), nr));
  } else if (o.N % nr != 0) {
    s.edge_right = Align16(kc * nr);
  }
  if (plan.pack_left) {
    s.left = Align16(kc * RoundUp(std::min(o.M, kMC), mr));
  } else if (o.M % mr != 0) {
    s.edge_left = Align16(kc * mr);
  }
  s.per_task = s.left + s.edge_left + s.edge_right;
  s.total = s.right + plan.tasks * s.per_task;
  return s;
}

size_t ScratchFloats(const Tile& tile, size_t m, size_t n, size_t k, bool trans_a, bool trans_b,
                     int threads) {
  if (m == 0 || n == 0 || k == 0) return 0;
  if (!trans_a && trans_b && UseDot(m, n, k)) return 0;
  if (UseRow(m, n, k, trans_a, trans_b)) return 0;
  return LayoutOf(tile, Decide(tile, m, n, k, trans_a, trans_b, threads)).total;
}

size_t ScratchFloats(const Tile& tile, size_t m, size_t n, size_t k, int threads) {
  size_t floats = 0;
  for (int t = 0; t < 4; ++t) {
    floats = std::max(floats, ScratchFloats(tile, m, n, k, (t & 1) != 0, (t & 2) != 0, threads));
  }
  return floats;
}

}  // namespace gemm_plan
}  // namespace simd
}  // namespace thaw
