// thaw/simd/target_shapes.h — the facts about each SIMD target that decide
// how much scratch thaw's kernels need, as plain data: its float32 lanes
// and the register tiles the GEMM uses on it. One table, read by the
// kernels (simd/gemm-inl.h takes its tile constants from it, at compile
// time) and by planners (simd/targets.h: DescribeTarget), which therefore
// cannot disagree, and plans for a target need none of its instructions.
//
//   constexpr const thaw::simd::TargetShape* avx2 =
//       thaw::simd::FindTargetShape(HWY_AVX2, thaw::simd::TargetArch::kX86);
//   // avx2->vector_bytes == 32, avx2->gemm_rows == 6, avx2->gemm_vectors == 2
//
// Plain C++ (no per-target code): include it anywhere.
#ifndef THAW_SIMD_TARGET_SHAPES_H_
#define THAW_SIMD_TARGET_SHAPES_H_

#include <cstddef>
#include <cstdint>

#include "hwy/detect_compiler_arch.h"  // HWY_ARCH_*
#include "hwy/detect_targets.h"        // HWY_AVX2, HWY_NEON, ... (defined on every architecture)

namespace thaw {
namespace simd {

// The instruction set family a row belongs to. One Highway target can mean
// two shapes: NEON on 64-bit Arm has 32 vector registers, on 32-bit Arm 16.
enum class TargetArch : uint8_t { kX86, kArm64, kArm32, kRiscV, kOther };

// This build's architecture.
#if HWY_ARCH_X86
inline constexpr TargetArch kBuildArch = TargetArch::kX86;
#elif HWY_ARCH_ARM_A64
inline constexpr TargetArch kBuildArch = TargetArch::kArm64;
#elif HWY_ARCH_ARM_V7
inline constexpr TargetArch kBuildArch = TargetArch::kArm32;
#elif HWY_ARCH_RVV
inline constexpr TargetArch kBuildArch = TargetArch::kRiscV;
#else
inline constexpr TargetArch kBuildArch = TargetArch::kOther;
#endif

struct TargetShape {
  int64_t target;        // Highway's bit (HWY_AVX2, ...)
  TargetArch arch;
  const char* name;      // Highway's name of the target
  // Bytes of one full vector (ScalableTag<float>: vector_bytes / 4 lanes);
  // 0 when the CPU chooses (SVE, SVE2, RVV: planners must be told).
  size_t vector_bytes;
  // The packed GEMM's register tile (simd/gemm-inl.h): gemm_rows (MR) rows
  // of C by gemm_vectors (NV) vectors, so NR = NV x lanes columns. The
  // register budget: accumulators + NV loads + 1 broadcast fit the file,
  //   16 registers (x86 up to AVX2, 32-bit Arm, ...): 6 x 2 (12 + 2 + 1);
  //   32 registers (AVX3, 64-bit Arm, RVV): 8 x 2 on AVX3, 8 x 3 on Arm
  //     and RVV (narrower vectors: 24 + 3 + 1);
  //   SCALAR (one float per register): 4 x 3.
  size_t gemm_rows;
  size_t gemm_vectors;
  // Rows of A per tile of the GEMM's dot-product path (4 x 4 dot products
  // with 32 registers, 3 x 4 with 16). It needs no scratch; it is here so
  // that every tile shape lives in this one table.
  size_t dot_rows;
};

// The rows. Highway's targets by architecture; EMU128 and SCALAR, the
// portable fallbacks, once per architecture since their tiles follow it.
inline constexpr TargetShape kTargetShapes[] = {
    {HWY_AVX3_DL, TargetArch::kX86, "AVX3_DL", 64, 8, 2, 4},
    {HWY_AVX3, TargetArch::kX86, "AVX3", 64, 8, 2, 4},
    {HWY_AVX2, TargetArch::kX86, "AVX2", 32, 6, 2, 3},
    {HWY_SSE4, TargetArch::kX86, "SSE4", 16, 6, 2, 3},
    {HWY_SSSE3, TargetArch::kX86, "SSSE3", 16, 6, 2, 3},
    {HWY_EMU128, TargetArch::kX86, "EMU128", 16, 6, 2, 3},
    {HWY_SCALAR, TargetArch::kX86, "SCALAR", 4, 4, 3, 2},

    {HWY_SVE2_128, TargetArch::kArm64, "SVE2_128", 16, 8, 3, 4},
    {HWY_SVE_256, TargetArch::kArm64, "SVE_256", 32, 8, 3, 4},
    {HWY_SVE2, TargetArch::kArm64, "SVE2", 0, 8, 3, 4},
    {HWY_SVE, TargetArch::kArm64, "SVE", 0, 8, 3, 4},
    {HWY_NEON, TargetArch::kArm64, "NEON", 16, 8, 3, 4},
    {HWY_EMU128, TargetArch::kArm64, "EMU128", 16, 8, 3, 4},
    {HWY_SCALAR, TargetArch::kArm64, "SCALAR", 4, 4, 3, 2},

    {HWY_NEON, TargetArch::kArm32, "NEON", 16, 6, 2, 3},
    {HWY_EMU128, TargetArch::kArm32, "EMU128", 16, 6, 2, 3},
    {HWY_SCALAR, TargetArch::kArm32, "SCALAR", 4, 4, 3, 2},

    {HWY_RVV, TargetArch::kRiscV, "RVV", 0, 8, 3, 4},
    {HWY_EMU128, TargetArch::kRiscV, "EMU128", 16, 8, 3, 4},
    {HWY_SCALAR, TargetArch::kRiscV, "SCALAR", 4, 4, 3, 2},

    {HWY_PPC8, TargetArch::kOther, "PPC8", 16, 6, 2, 3},
    {HWY_WASM, TargetArch::kOther, "WASM", 16, 6, 2, 3},
    {HWY_WASM_EMU256, TargetArch::kOther, "WASM_EMU256", 32, 6, 2, 3},
    {HWY_EMU128, TargetArch::kOther, "EMU128", 16, 6, 2, 3},
    {HWY_SCALAR, TargetArch::kOther, "SCALAR", 4, 4, 3, 2},
};

// The index in kTargetShapes of `target` on `arch`, or -1.
constexpr int TargetShapeIndex(int64_t target, TargetArch arch) {
  int i = 0;
  for (const TargetShape& row : kTargetShapes) {
    if (row.target == target && row.arch == arch) return i;
    ++i;
  }
  return -1;
}

// The row of `target` on `arch`, or null.
constexpr const TargetShape* FindTargetShape(int64_t target, TargetArch arch) {
  const int i = TargetShapeIndex(target, arch);
  return i < 0 ? nullptr : &kTargetShapes[i];
}

// Every target a build could compile has a row for its architecture.
constexpr bool BuildTargetsHaveShapes() {
  for (int shift = 0; shift < 63; ++shift) {
    const int64_t bit = int64_t{1} << shift;
    if ((HWY_TARGETS & bit) != 0 && TargetShapeIndex(bit, kBuildArch) < 0) return false;
  }
  return true;
}
static_assert(BuildTargetsHaveShapes(),
              "a compiled SIMD target has no row in simd/target_shapes.h: add its lanes and tiles");

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_TARGET_SHAPES_H_
