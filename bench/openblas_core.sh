# Sourced by the bench scripts: names OpenBLAS's best kernel family for this
# CPU in OPENBLAS_CORETYPE, for the bench commands of the script alone, and
# prints it. Debian's OpenBLAS 0.3.21 picks kernels from the CPU model and
# silently falls back to SSE3 (Prescott) kernels on models it does not know
# (it did so on an Emerald Rapids VM), and some machines preset
# OPENBLAS_CORETYPE to a weaker family: a preset is replaced (and reported).
# AVX-512 -> SkylakeX; AVX2 + FMA -> Haswell (on the Zen 3 we measured, the
# auto-detected Zen core runs the same AVX2 kernels, within noise of Haswell);
# otherwise (aarch64, older x86) the library's own choice.
# THAW_OPENBLAS_CORETYPE=... forces a family, for experiments.
thaw_best_core=
if [[ -n "${THAW_OPENBLAS_CORETYPE:-}" ]]; then
  thaw_best_core=$THAW_OPENBLAS_CORETYPE
elif grep -qw avx512f /proc/cpuinfo; then
  thaw_best_core=SkylakeX
elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  thaw_best_core=Haswell
fi
if [[ -n "${OPENBLAS_CORETYPE:-}" && "$OPENBLAS_CORETYPE" != "$thaw_best_core" ]]; then
  echo "note: OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE was preset; the bench uses ${thaw_best_core:-the library default}"
fi
if [[ -n "$thaw_best_core" ]]; then
  export OPENBLAS_CORETYPE=$thaw_best_core
else
  unset OPENBLAS_CORETYPE
fi
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<auto>}"
