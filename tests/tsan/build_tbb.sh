#!/usr/bin/env bash
# Builds oneTBB instrumented with ThreadSanitizer, from Debian's own source
# package at exactly the version of the installed libtbb-dev, and installs it
# into a cache directory; prints that directory's path as its last line.
#
# Why: TSan only understands the synchronisation it sees. Debian's libtbb is
# not instrumented, so every hand-over between TBB's workers (task queues,
# the arena's mailboxes) is invisible and a TSan build of thaw against it
# reports thousands of races that are not there. The instrumented build has
# the same version and Debian patches, so the headers thaw compiles against
# and the library it runs on still agree.
#
# The cache lives outside the work tree, keyed by the Debian version, so a
# fresh clone on the same machine (CI) reuses it; when present the script
# prints "cached" and builds nothing.
# Usage: tests/tsan/build_tbb.sh      (THAW_TBB_TSAN_CACHE=DIR overrides the
#                                      cache root, default ~/.cache/thaw)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# dpkg-dev: dpkg-source, which apt-get source runs to unpack and patch.
"$root/.ci/deps" dpkg-dev

native=$(dpkg --print-architecture)
version=$(dpkg-query -W -f='${Version}' "libtbb-dev:$native")
source_package=$(dpkg-query -W -f='${source:Package}' "libtbb-dev:$native")
cache=${THAW_TBB_TSAN_CACHE:-$HOME/.cache/thaw}/$source_package-$version-tsan
install="$cache/install"
if [[ -f "$install/lib/cmake/TBB/TBBConfig.cmake" && -f "$cache/complete" ]]; then
  echo "thaw: instrumented oneTBB $version: cached in $install" >&2
  echo "$install"
  exit 0
fi

# apt-get source needs a deb-src line. Debian 12 describes its archive in
# /etc/apt/sources.list.d/debian.sources (deb822); add the matching source
# entry in a file of our own rather than editing the system's.
if ! apt-cache showsrc "$source_package" 2>/dev/null | grep -qx "Version: $version"; then
  list=/etc/apt/sources.list.d/thaw-deb-src.sources
  if [[ $(id -u) -ne 0 ]]; then
    echo "thaw: apt-get source $source_package=$version needs a deb-src entry; as root, run" \
         "this script again (it writes $list), or enable Debian's source archive yourself" >&2
    exit 1
  fi
  echo "thaw: enabling Debian source packages in $list" >&2
  cat > "$list" <<'EOF'
# Written by thaw's tests/tsan/build_tbb.sh: Debian 12 source packages, for
# apt-get source (the ThreadSanitizer build of oneTBB).
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
fi

rm -rf "$cache"
mkdir -p "$cache/src"
(cd "$cache/src" && apt-get source -qq "$source_package=$version" >&2)
src=$(find "$cache/src" -mindepth 1 -maxdepth 1 -type d -name "$source_package-*" | head -n 1)
[[ -f "$src/CMakeLists.txt" ]] || { echo "thaw: no unpacked source under $cache/src" >&2; exit 1; }

# TBB_SANITIZE is oneTBB's own switch: it adds -fsanitize=thread to the
# compile and link of libtbb and tbbmalloc. tbbmalloc is built (and installed
# beside libtbb) because libtbb dlopens libtbbmalloc.so.2 for its scalable
# allocations, first from its own directory: without one there it would load
# Debian's uninstrumented copy from the system path.
# RelWithDebInfo: reports that pass through TBB name its file and line.
# The compile is niced and two jobs wide: the machine is shared.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$src" -B "$cache/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX="$install" -DCMAKE_INSTALL_LIBDIR=lib \
  -DBUILD_SHARED_LIBS=ON -DTBB_TEST=OFF -DTBB_EXAMPLES=OFF -DTBB_STRICT=OFF \
  -DTBB_SANITIZE=thread -DTBBMALLOC_BUILD=ON -DTBBMALLOC_PROXY_BUILD=OFF \
  "${launcher[@]}" >&2
nice -n 19 cmake --build "$cache/build" -j2 >&2
cmake --install "$cache/build" >&2
rm -rf "$cache/build" "$cache/src"
echo "$version" > "$cache/complete"
echo "thaw: instrumented oneTBB $version installed in $install" >&2
echo "$install"
