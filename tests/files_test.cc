#include "platform/files.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/scratch_dir.h"

namespace thaw {
namespace {

bool Contains(const Status& s, const std::string& text) {
  return std::string(s.message()).find(text) != std::string::npos;
}

std::vector<unsigned char> Pattern(size_t n) {
  std::vector<unsigned char> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<unsigned char>((i * 37 + 11) & 0xFF);
  return bytes;
}

TEST(FilesTest, WriteThenReadGivesTheSameBytes) {
  ScratchDir dir;
  const std::string path = dir.Path("a.bin");
  // Larger than ReadFile's 64 KiB chunk, and with every byte value.
  const std::vector<unsigned char> bytes = Pattern(200000);
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  EXPECT_EQ(ReadBytes(path), bytes);
  std::vector<unsigned char> read = {1, 2, 3};  // replaced, not appended to
  ASSERT_TRUE(ReadFile(path, &read).ok());
  EXPECT_EQ(read, bytes);
  EXPECT_EQ(dir.List(), std::vector<std::string>{"a.bin"});  // no temporary left
}

TEST(FilesTest, EmptyFileRoundTrips) {
  ScratchDir dir;
  const std::string path = dir.Path("empty");
  ASSERT_TRUE(WriteFileAtomically(path, Span<const unsigned char>()).ok());
  EXPECT_EQ(std::filesystem::file_size(path), 0u);
  std::vector<unsigned char> read = {7};
  ASSERT_TRUE(ReadFile(path, &read).ok());
  EXPECT_TRUE(read.empty());
}

TEST(FilesTest, PiecesAreWrittenInOrder) {
  ScratchDir dir;
  const std::string path = dir.Path("pieces");
  const std::vector<unsigned char> a = {1, 2, 3}, empty, b = {4, 5};
  const Span<const unsigned char> pieces[3] = {a, empty, b};
  ASSERT_TRUE(WriteFileAtomically(path, pieces).ok());
  EXPECT_EQ(ReadBytes(path), (std::vector<unsigned char>{1, 2, 3, 4, 5}));
}

TEST(FilesTest, WriteReplacesTheOldFile) {
  ScratchDir dir;
  const std::string path = dir.Path("f");
  WriteBytes(path, Pattern(1000));
  const std::vector<unsigned char> shorter = {9, 8, 7};
  ASSERT_TRUE(WriteFileAtomically(path, shorter).ok());
  EXPECT_EQ(ReadBytes(path), shorter);
  EXPECT_EQ(dir.List(), std::vector<std::string>{"f"});
}

TEST(FilesTest, ReadingAMissingFileIsNotFound) {
  ScratchDir dir;
  const std::string path = dir.Path("missing.bin");
  std::vector<unsigned char> read;
  const Status s = ReadFile(path, &read);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(s, path + ": cannot open the file for reading: No such file or directory"))
      << s.message();
}

TEST(FilesTest, ReadingADirectoryIsAnIoError) {
  ScratchDir dir;
  std::vector<unsigned char> read;
  const Status s = ReadFile(dir.Path(), &read);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, "it is a directory, not a file")) << s.message();
}

// A device or a pipe may never end: /dev/zero was read until memory ran out
// (then std::bad_alloc escaped the API), and opening a pipe waited forever
// for a writer.
TEST(FilesTest, ReadingADeviceOrAPipeIsRefused) {
  std::vector<unsigned char> bytes;
  Status s = ReadFile("/dev/zero", &bytes);
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, "/dev/zero: cannot read: it is not a regular file")) << s.message();
  ScratchDir dir;
  const std::string fifo = dir.Path("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  s = ReadFile(fifo, &bytes);
  EXPECT_TRUE(Contains(s, "not a regular file")) << s.message();
}

TEST(FilesTest, WritingIntoAMissingDirectoryIsAnIoError) {
  ScratchDir dir;
  const std::string path = dir.Path("no_such_dir/f.bin");
  const Status s = WriteFileAtomically(path, Pattern(10));
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, path + ": cannot create a temporary file next to it: No such file or "
                              "directory"))
      << s.message();
  EXPECT_TRUE(dir.List().empty());
}

// rename() cannot put a file over a directory: the write itself succeeds, the
// last step fails, and the temporary file must go.
TEST(FilesTest, WritingOverADirectoryFailsAndRemovesTheTemporary) {
  ScratchDir dir;
  const std::string path = dir.Path("d");
  std::filesystem::create_directory(path);
  WriteBytes(dir.Path("d/inside"), {1, 2});
  const Status s = WriteFileAtomically(path, Pattern(10));
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, path + ": cannot rename the temporary file over it")) << s.message();
  EXPECT_TRUE(Contains(s, "Is a directory")) << s.message();
  EXPECT_TRUE(Contains(s, "the file at this path was not changed")) << s.message();
  EXPECT_EQ(dir.List(), std::vector<std::string>{"d"});
  EXPECT_TRUE(std::filesystem::is_directory(path));
  EXPECT_EQ(ReadBytes(dir.Path("d/inside")), (std::vector<unsigned char>{1, 2}));
}

// A write that fails halfway (here: the process file-size limit, which holds
// even for root, unlike permissions) must leave the old file byte-identical
// and no temporary behind.
TEST(FilesTest, AFailedWriteLeavesTheOldFileWhole) {
  ScratchDir dir;
  const std::string path = dir.Path("ckpt");
  const std::vector<unsigned char> old_bytes = Pattern(100);
  WriteBytes(path, old_bytes);

  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = 64;  // bytes
  void (*saved_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);  // EFBIG, not a signal death
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const Status s = WriteFileAtomically(path, Pattern(4096));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  std::signal(SIGXFSZ, saved_handler);

  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, path + ": write failed (temporary file " + path + ".tmp."))
      << s.message();
  EXPECT_TRUE(Contains(s, "File too large")) << s.message();
  EXPECT_EQ(ReadBytes(path), old_bytes);
  EXPECT_EQ(dir.List(), std::vector<std::string>{"ckpt"});
}

TEST(FilesTest, RelativePathsWriteIntoTheWorkingDirectory) {
  ScratchDir dir;
  const std::filesystem::path saved = std::filesystem::current_path();
  std::filesystem::current_path(dir.Path());
  const Status s = WriteFileAtomically("rel.bin", Pattern(5));
  std::filesystem::current_path(saved);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(ReadBytes(dir.Path("rel.bin")), Pattern(5));
  EXPECT_EQ(dir.List(), std::vector<std::string>{"rel.bin"});
}

}  // namespace
}  // namespace thaw
