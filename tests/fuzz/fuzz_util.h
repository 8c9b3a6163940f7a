// thaw/tests/fuzz/fuzz_util.h — what the libFuzzer harnesses share: a scratch
// directory per process, the input written into it as a file, and a check
// that stops the fuzzer with a message.
//
//   extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
//     const std::string path = thaw::fuzz::WriteInput("input.idx", data, size);
//     std::vector<uint8_t> labels;
//     size_t count = 0;
//     const thaw::Status s = thaw::LoadIdxLabels(path, &labels, &count);
//     THAW_FUZZ_CHECK(s.ok() || s.message()[0] != '\0', "a failure without a message");
//     return 0;
//   }
//
// The loaders under test read files, so each input goes through a file.
// libFuzzer runs one input at a time per process; with -jobs or -fork each
// process has its own directory, removed at a normal exit (not after a crash:
// it may help to look at it).
#ifndef THAW_TESTS_FUZZ_FUZZ_UTIL_H_
#define THAW_TESTS_FUZZ_FUZZ_UTIL_H_

#include <stdio.h>
#include <stdlib.h>  // mkdtemp

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

// Aborts (libFuzzer then saves the input as a crash) when `condition` is
// false, saying which property broke. Unlike assert(), never compiled out.
#define THAW_FUZZ_CHECK(condition, what)                                        \
  do {                                                                          \
    if (!(condition)) ::thaw::fuzz::Fail(__FILE__, __LINE__, #condition, what); \
  } while (0)

namespace thaw {
namespace fuzz {

[[noreturn]] inline void Fail(const char* file, int line, const char* condition,
                              const std::string& what) {
  fprintf(stderr, "%s:%d: fuzz check failed: %s\n  %s\n", file, line, condition, what.c_str());
  fflush(stderr);
  abort();
}

inline void RemoveScratchDir();

// The process's directory, made on first use under $TMPDIR (or /tmp).
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    const char* tmp = getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp") + "/thaw_fuzz_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      perror(pattern.c_str());
      abort();  // no place for inputs: nothing can be fuzzed
    }
    return pattern;
  }();
  // Registered once `dir` exists, so it runs before `dir` is destroyed.
  static const int removed_at_exit = std::atexit(RemoveScratchDir);
  (void)removed_at_exit;
  return dir;
}

inline void RemoveScratchDir() {
  std::error_code ignored;
  std::filesystem::remove_all(ScratchDir(), ignored);
}

inline std::string ScratchPath(const std::string& name) { return ScratchDir() + "/" + name; }

// Writes `size` bytes at `data` as the whole file ScratchPath(name) and
// returns its path. Through stdio, so the harness does not rely on the file
// code (platform/files.h) that it tests.
inline std::string WriteInput(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = ScratchPath(name);
  FILE* file = fopen(path.c_str(), "wb");
  const bool written = file != nullptr && (size == 0 || fwrite(data, 1, size, file) == size);
  const bool closed = file != nullptr && fclose(file) == 0;
  if (!written || !closed) {
    perror(path.c_str());
    abort();  // the disk, not thaw: stop rather than test nothing
  }
  return path;
}

// The whole file at `path`, through stdio (as WriteInput).
inline std::vector<unsigned char> ReadFile(const std::string& path) {
  std::vector<unsigned char> bytes;
  FILE* file = fopen(path.c_str(), "rb");
  if (file == nullptr) {
    perror(path.c_str());
    abort();
  }
  unsigned char chunk[4096];
  for (size_t n; (n = fread(chunk, 1, sizeof(chunk), file)) > 0;) {
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  fclose(file);
  return bytes;
}

}  // namespace fuzz
}  // namespace thaw

#endif  // THAW_TESTS_FUZZ_FUZZ_UTIL_H_
