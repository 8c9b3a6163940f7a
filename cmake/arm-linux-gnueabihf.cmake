# Cross-build thaw for 32-bit Arm Linux (armv7 hard-float, Debian's armhf) on a
# Debian 12 amd64 host, using the multiarch :armhf packages (libhwy-dev:armhf,
# libtbb-dev:armhf, ...) and running every test through qemu-user.
# tests/run_arm.sh armhf shows the setup.
#
#   cmake -S . -B build/armhf -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/arm-linux-gnueabihf.cmake -DTHAW_BUILD_BENCH=OFF
#   cmake --build build/armhf && ctest --test-dir build/armhf
#
# Debian's armhf baseline is ARMv7-A with VFPv3-D16 and no NEON, so the
# library is built for that baseline (no -mfpu here) and Highway compiles its
# NEON target with a target attribute (+neon-vfpv4) and picks it at run time
# when the CPU has NEON. THAW_QEMU_CPU picks the emulated CPU: cortex-a15
# (NEON and VFPv4: kernel tests run on NEON and EMU128).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
# Debian multiarch, as for aarch64: the :armhf libraries and CMake packages live
# in /usr/lib/arm-linux-gnueabihf, headers in /usr/include.
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

set(THAW_QEMU_CPU "cortex-a15" CACHE STRING "qemu-arm -cpu model that runs the tests")
# No -L, as for aarch64: the :armhf runtime packages are where the loader looks.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm -cpu ${THAW_QEMU_CPU})
