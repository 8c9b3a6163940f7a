# Cross-build thaw for 64-bit Arm Linux on a Debian 12 amd64 host, using the
# multiarch :arm64 packages (libhwy-dev:arm64, libtbb-dev:arm64, ...) and
# running every test through qemu-user. tests/run_arm.sh arm64 shows the setup.
#
#   cmake -S . -B build/arm64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DTHAW_BUILD_BENCH=OFF
#   cmake --build build/arm64 && ctest --test-dir build/arm64
#
# THAW_QEMU_CPU picks the emulated CPU, and so the Highway targets the tests
# dispatch to: max (SVE2, 512-bit vectors), max,sve-default-vector-length=16
# (SVE2_128), cortex-a72 (NEON only). Changing it relinks the tests, no more.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Debian multiarch: libraries and CMake packages of the :arm64 packages live in
# /usr/lib/aarch64-linux-gnu, headers in /usr/include. No sysroot and no
# CMAKE_FIND_ROOT_PATH: both architectures share the one root.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

set(THAW_QEMU_CPU "max" CACHE STRING "qemu-aarch64 -cpu model that runs the tests")
# No -L: the :arm64 runtime packages are installed where the loader looks, and
# -L /usr/aarch64-linux-gnu mixes two glibc builds (every thread start hangs).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -cpu ${THAW_QEMU_CPU})
