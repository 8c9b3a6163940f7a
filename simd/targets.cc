// thaw/simd/targets.cc — which Highway target thaw's kernels dispatch to.
// Compiled once per Highway target (foreach_target), with the same HWY_*
// defines as the kernel TUs (thaw_build_flags), so the dispatch below picks
// exactly what the kernels pick.
#include "simd/targets.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/targets.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep (must precede highway.h)
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace thaw {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

static int64_t DispatchedTargetImpl() { return HWY_TARGET; }

// Float lanes of a full vector (on SVE, what this CPU's vectors hold).
static size_t FloatLanesImpl() { return hn::Lanes(hn::ScalableTag<float>()); }

// NOLINTNEXTLINE(google-readability-namespace-comments)
}  // namespace HWY_NAMESPACE
}  // namespace thaw
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "hwy/targets.h"

#if defined(THAW_STATIC_TARGET)
// The firmware profile compiles the one target that its compiler flags make
// the baseline (HWY_COMPILE_ONLY_STATIC); THAW_ONE_TARGET (CMake) names it.
static_assert(HWY_TARGETS == THAW_STATIC_TARGET,
              "THAW_ONE_TARGET's compiler flags did not make it Highway's static target");
#endif

namespace thaw {

HWY_EXPORT(DispatchedTargetImpl);
HWY_EXPORT(FloatLanesImpl);

namespace simd {

int64_t DispatchedTarget() {
  return HWY_DYNAMIC_DISPATCH(DispatchedTargetImpl)();
}

const char* DispatchedTargetName() {
  return hwy::TargetName(DispatchedTarget());
}

std::string CompiledTargetNames() { return TargetNames(HWY_TARGETS); }

#if defined(HWY_COMPILE_ONLY_STATIC)
// One static target (the firmware profile): the CPU is asked for that
// target's features directly, as Highway would ask for them (the same lists
// as HWY_TARGET_STR), so nothing of libhwy.so is needed at run time: Debian
// ships no static libhwy, and this was the only call into it.
int64_t SupportedTargets() {
  bool runs = true;
#if HWY_ARCH_X86
  // Preprocessor tests, not `if`s: a compiler checks the feature names even
  // in a branch that is never taken, and clang 14 knows neither "f16c" nor
  // "vaes". Under clang those two are taken from the features every CPU
  // with them has: F16C came with AVX2 (Haswell, Zen), VAES with AVX3_DL's
  // VBMI2 (Ice Lake, Zen 4).
#if defined(__clang__)
#define THAW_CPU_HAS_F16C true
#define THAW_CPU_HAS_VAES true
#else
#define THAW_CPU_HAS_F16C __builtin_cpu_supports("f16c")
#define THAW_CPU_HAS_VAES __builtin_cpu_supports("vaes")
#endif
  __builtin_cpu_init();
#if HWY_STATIC_TARGET != HWY_SCALAR && HWY_STATIC_TARGET != HWY_EMU128
  runs = __builtin_cpu_supports("ssse3");
#endif
#if HWY_STATIC_TARGET <= HWY_SSE4  // better targets have lower bits
  runs = runs && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("sse4.2") &&
         __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("aes");
#endif
#if HWY_STATIC_TARGET <= HWY_AVX2
  runs = runs && __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2") &&
         __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
         __builtin_cpu_supports("fma") && THAW_CPU_HAS_F16C;
#endif
#if HWY_STATIC_TARGET <= HWY_AVX3
  runs = runs && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
#endif
#if HWY_STATIC_TARGET <= HWY_AVX3_DL
  runs = runs && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2") &&
         THAW_CPU_HAS_VAES && __builtin_cpu_supports("vpclmulqdq") &&
         __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bitalg") &&
         __builtin_cpu_supports("avx512vpopcntdq");
#endif
#undef THAW_CPU_HAS_F16C
#undef THAW_CPU_HAS_VAES
#endif
  // Elsewhere the target is what the compiler's flags promised: NEON is part
  // of every aarch64 core; an SVE build is not checked here yet.
  return runs ? HWY_STATIC_TARGET : 0;
}
#else
int64_t SupportedTargets() {
  const int64_t targets = hwy::SupportedTargets();
  // Highway 1.0.3 on Arm: a direct SupportedTargets() call leaves the chosen
  // target computed from the unadjusted CPU mask (SVE2 instead of SVE2_128).
  // Re-running the update restores the choice dispatch would make.
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
  return targets;
}
#endif  // HWY_COMPILE_ONLY_STATIC

std::string SupportedTargetNames() { return TargetNames(SupportedTargets()); }

int64_t CompiledTargetNamed(const char* name) {
  if (name == nullptr) return 0;
  for (int shift = 0; shift < 63; ++shift) {
    const int64_t bit = int64_t{1} << shift;
    if ((HWY_TARGETS & bit) != 0 && std::strcmp(hwy::TargetName(bit), name) == 0) return bit;
  }
  return 0;
}

bool IsCompiledTarget(int64_t target) { return internal::DispatchIndex(target) >= 0; }

namespace {

thread_local const TargetDescription* planning_target = nullptr;

// The row planners use for `target`: this build's architecture's, else
// x86's or 64-bit Arm's (the architectures whose rows are checked, by
// running, on this project's machines and under qemu), else null.
const TargetShape* PlannableShape(int64_t target) {
  const TargetShape* shape = FindTargetShape(target, kBuildArch);
  if (shape == nullptr) shape = FindTargetShape(target, TargetArch::kX86);
  if (shape == nullptr) shape = FindTargetShape(target, TargetArch::kArm64);
  return shape;
}

// Calls f(row) for every row planners can use, this architecture's first,
// each target once.
template <class F>
void ForEachPlannable(const F& f) {
  int64_t seen = 0;
  for (TargetArch arch : {kBuildArch, TargetArch::kX86, TargetArch::kArm64}) {
    for (const TargetShape& row : kTargetShapes) {
      if (row.arch != arch || (seen & row.target) != 0) continue;
      seen |= row.target;
      f(row);
    }
  }
}

// The name of one target bit: the table's, else Highway's.
const char* NameOf(int64_t bit) {
  const TargetShape* shape = PlannableShape(bit);
  return shape != nullptr ? shape->name : hwy::TargetName(bit);
}

std::string Hex(int64_t bits) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%llx", static_cast<unsigned long long>(bits));
  return text;
}

}  // namespace

Status DescribeTarget(int64_t target, size_t vector_bits, TargetDescription* out) {
  if (out == nullptr) return InvalidArgument("DescribeTarget: the output pointer is null");
  const TargetShape* shape =
      target != 0 && (target & (target - 1)) == 0 ? PlannableShape(target) : nullptr;
  if (shape == nullptr) {
    return InvalidArgument(
        "SIMD target %s is not one thaw can plan for; give one Highway target bit of %s",
        Hex(target).c_str(), PlannableTargetNames().c_str());
  }
  if (shape->vector_bytes != 0) {
    const size_t bits = shape->vector_bytes * 8;
    if (vector_bits != 0 && vector_bits != bits) {
      return InvalidArgument("SIMD target %s has %zu-bit vectors, not %zu; give 0 or %zu",
                             shape->name, bits, vector_bits, bits);
    }
    *out = TargetDescription{shape, shape->vector_bytes / sizeof(float)};
    return Status::Ok();
  }
  if (vector_bits == 0) {
    const size_t lanes = internal::LanesByRunning(target);
    if (lanes == 0) {
      return InvalidArgument(
          "SIMD target %s: its vector length is chosen by the CPU (128 to 2048 bits) and this "
          "CPU does not run it; give the length (PlanOptions::vector_bits, or the name "
          "\"%s:512\" for 512 bits)",
          shape->name, shape->name);
    }
    *out = TargetDescription{shape, lanes};
    return Status::Ok();
  }
  if (vector_bits % 128 != 0 || vector_bits > 2048) {
    return InvalidArgument(
        "SIMD target %s: %zu-bit vectors; the length is a multiple of 128 bits up to 2048",
        shape->name, vector_bits);
  }
  // Highway's full vector: the largest power of two of lanes that fits.
  size_t lanes = 4;
  while (lanes * 2 * 32 <= vector_bits) lanes *= 2;
  *out = TargetDescription{shape, lanes};
  return Status::Ok();
}

Status DescribeTargetNamed(const char* name, TargetDescription* out) {
  if (name == nullptr) return InvalidArgument("DescribeTargetNamed: the name is null");
  const char* colon = std::strchr(name, ':');
  const size_t length = colon != nullptr ? static_cast<size_t>(colon - name) : std::strlen(name);
  size_t bits = 0;
  if (colon != nullptr) {
    char* end = nullptr;
    const unsigned long long value = std::strtoull(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || value > 65536) {
      return InvalidArgument(
          "\"%s\" is not a SIMD target name: after the colon comes a vector length in bits "
          "(\"SVE2:512\")",
          name);
    }
    bits = static_cast<size_t>(value);
  }
  int64_t target = 0;
  ForEachPlannable([&](const TargetShape& row) {
    if (target == 0 && std::strlen(row.name) == length &&
        std::strncmp(row.name, name, length) == 0) {
      target = row.target;
    }
  });
  if (target == 0) {
    return InvalidArgument("\"%s\" is not a SIMD target thaw can plan for (it knows %s)", name,
                           PlannableTargetNames().c_str());
  }
  return DescribeTarget(target, bits, out);
}

TargetDescription DispatchedTargetDescription() {
  const TargetShape* shape = FindTargetShape(DispatchedTarget(), kBuildArch);
  // Every compiled target has a row (static_assert in target_shapes.h).
  THAW_CHECK(shape != nullptr);
  return TargetDescription{shape, HWY_DYNAMIC_DISPATCH(FloatLanesImpl)()};
}

std::string PlannableTargetNames() {
  std::string names;
  ForEachPlannable([&](const TargetShape& row) {
    if (!names.empty()) names += ' ';
    names += row.name;
  });
  return names;
}

ScopedPlanningTarget::ScopedPlanningTarget(const TargetDescription* target)
    : previous_(planning_target) {
  if (target != nullptr) planning_target = target;
}

ScopedPlanningTarget::~ScopedPlanningTarget() { planning_target = previous_; }

namespace internal {

TargetDescription PlanningTarget() {
  return planning_target != nullptr ? *planning_target : DispatchedTargetDescription();
}

size_t LanesByRunning(int64_t target) {
  const int index = DispatchIndex(target);
  if (index < 0 || (SupportedTargets() & target) == 0) return 0;
  return HWY_DISPATCH_TABLE(FloatLanesImpl)[index]();
}

// Highway 1.0.3's tables (hwy/highway.h, HWY_EXPORT): with one compiled
// target, that one alone; otherwise entry 0 initialises, then one entry per
// dynamic target in ChosenTarget's mask order, the fallback (SCALAR/EMU128)
// last. The mask macros are Highway's own, so this follows its layout.
int DispatchIndex(int64_t target) {
  if (target == 0 || (target & (target - 1)) != 0 || (target & HWY_TARGETS) == 0) return -1;
#if (HWY_TARGETS & (HWY_TARGETS - 1)) == 0
  return 0;
#else
  int64_t mask = HWY_CHOSEN_TARGET_SHIFT(target);
  if (mask == 0) mask = HWY_CHOSEN_TARGET_MASK_SCALAR;
  mask &= HWY_CHOSEN_TARGET_MASK_TARGETS;
  return mask == 0 ? -1 : static_cast<int>(hwy::Num0BitsBelowLS1Bit_Nonzero64(static_cast<uint64_t>(mask)));
#endif
}

}  // namespace internal

std::string TargetNames(int64_t targets) {
  const uint64_t bits = static_cast<uint64_t>(targets);
  std::string names;
  // Highway numbers better targets with lower bits, so this lists best first.
  for (int shift = 0; shift < 64; ++shift) {
    const uint64_t bit = uint64_t{1} << shift;
    if ((bits & bit) == 0) continue;
    if (!names.empty()) names += ' ';
    names += NameOf(static_cast<int64_t>(bit));
  }
  return names;
}

}  // namespace simd
}  // namespace thaw
#endif  // HWY_ONCE
