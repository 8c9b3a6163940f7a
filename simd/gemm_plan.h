// thaw/simd/gemm_plan.h — the packed GEMM's decisions that fix its scratch
// (orientation, which operands it packs, how many tasks, the areas of the
// scratch), as plain code over plain data: a register tile (rows, vectors,
// float lanes) and the problem's sizes and transposes. simd/gemm-inl.h runs
// exactly these decisions on every target, and GemmScratchFloats answers
// from them for any target, on any CPU (simd/targets.h).
//
//   const simd::gemm_plan::Tile avx3{8, 2, 16};  // rows, vectors, lanes
//   size_t floats = simd::gemm_plan::ScratchFloats(avx3, 8, 10, 32, false, true, 1);
//
// Internal to simd/: core plans through simd/gemm.h's queries.
#ifndef THAW_SIMD_GEMM_PLAN_H_
#define THAW_SIMD_GEMM_PLAN_H_

#include <cstddef>

namespace thaw {
namespace simd {
namespace gemm_plan {

// The microkernel's register tile: `rows` (MR) rows of C' by `vectors` (NV)
// vectors of `lanes` floats (NR = NV x lanes columns).
struct Tile {
  size_t rows;
  size_t vectors;
  size_t lanes;
  size_t cols() const { return vectors * lanes; }
};

// Cache blocking, sized for a 32-48 KiB L1D and a 0.5-2 MiB L2 per core:
//  - kc <= 256: one packed R panel, kc x NR floats = 16 KiB at NR = 16
//    (AVX2), 32 KiB at NR = 32 (AVX3), stays in L1 while the ir loop runs;
//  - MC = 144 rows (a multiple of 4, 6 and 8): the packed L block,
//    144 x 256 x 4 B = 144 KiB, stays in L2;
//  - NC = 2048 columns: the packed R block, 256 x 2048 x 4 B = 2 MiB, in L3.
// K is cut into equal blocks (K = 300 gives 150 + 150, not 256 + 44).
constexpr size_t kKC = 256;
constexpr size_t kMC = 144;
constexpr size_t kNC = 2048;

// Below this many multiply-adds (~20 us on one AVX2 core) a product runs
// on the calling thread. Measured on a 2-vCPU Zen 3 VM: an idle TBB worker
// needs 10-60 us to join a parallel region, so 2 threads were 5-15% slower
// than 1 at 64^3 (2^18 multiply-adds) and only 1.1-1.5x faster at 2^20.
constexpr size_t kSerialMacs = size_t{1} << 20;

// From this many multiply-adds a column split gives each task a fixed
// share (Decision::fixed_shares).
constexpr size_t kFixedShareMacs = size_t{1} << 24;

// Columns of B per tile of the dot-product path (every target).
constexpr size_t kDotCols = 4;

constexpr size_t DivCeil(size_t a, size_t b) { return (a + b - 1) / b; }
constexpr size_t RoundUp(size_t a, size_t b) { return DivCeil(a, b) * b; }

// The largest k block: K split into DivCeil(K, kKC) equal blocks.
size_t KBlock(size_t k);
// Columns per R block, a multiple of NR.
size_t NBlock(const Tile& tile);
// Tasks a product of m x n x k runs on, given `threads` (1: the caller's).
size_t TaskCount(size_t m, size_t n, size_t k, int threads);
// Whether C = A B^T (A m x k and B n x k, both rows contiguous in k) takes
// the dot-product path (no scratch) rather than the packed one.
bool UseDot(size_t m, size_t n, size_t k);

// Whether C = A B^T takes the one-row path (no scratch): one row of A,
// where the dot-product path does not take it.
bool UseRow(size_t m, size_t n, size_t k, bool trans_a, bool trans_b);

// C' = L R with L M x K, R K x N: C' is C (L = op(A), R = op(B)) or C^T
// (L = op(B)^T, R = op(A)^T). The layout flags follow from the transposes
// alone, never from stride values, so the plan is known before any pointer.
struct Oriented {
  size_t M, N, K;
  bool l_rows;        // rows of L are contiguous in k
  bool r_rows;        // rows of R are contiguous in j
  bool c_transposed;  // C' = C^T
};
Oriented Orient(bool transpose_c, bool trans_a, bool trans_b, size_t m, size_t n, size_t k);

enum class Split { kNone, kRows, kCols };

struct Decision {
  Oriented o;
  bool pack_left;   // else the kernel reads L in place
  bool pack_right;  // else the kernel reads R in place (needs r_rows)
  Split split;
  size_t tasks;
  // Column split: each task takes a fixed share of every block's panels
  // and runs the blocks in order, with no waits; else the tasks claim items
  // from a queue (simd/gemm-inl.h).
  bool fixed_shares;
};
// The packed path's plan for C = op(A) op(B) (m, n, k > 0).
Decision Decide(const Tile& tile, size_t m, size_t n, size_t k, bool trans_a, bool trans_b,
                int threads);

// Where things live in the caller's scratch, in floats. Areas start at
// multiples of 16 floats (64 bytes) from the 64-byte-aligned scratch.
struct Layout {
  size_t right = 0;       // the packed R block, shared
  size_t left = 0;        // per task: the packed L block
  size_t edge_left = 0;   // per task: last partial L tile, in place
  size_t edge_right = 0;  // per task: last partial R panel, in place
  size_t per_task = 0;    // left + edges
  size_t total = 0;       // right + tasks * per_task
};
Layout LayoutOf(const Tile& tile, const Decision& plan);

// Floats of scratch one product needs: the plan's packing buffers, 0 on the
// dot path and when m, n or k is 0.
size_t ScratchFloats(const Tile& tile, size_t m, size_t n, size_t k, bool trans_a, bool trans_b,
                     int threads);
// The largest of the four layouts'.
size_t ScratchFloats(const Tile& tile, size_t m, size_t n, size_t k, int threads);

}  // namespace gemm_plan
}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_GEMM_PLAN_H_
