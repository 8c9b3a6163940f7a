#include "platform/files.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/scratch_dir.h"
#include "tests/status_text.h"

namespace thaw {
namespace {

bool Contains(const Status& s, const std::string& text) { return MessageContains(s, text); }

std::string BaseName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// The whole file at `path`, read through FileReader.
Status ReadWhole(const std::string& path, std::vector<unsigned char>* out) {
  FileReader file;
  THAW_RETURN_IF_ERROR(file.Open(path));
  out->resize(file.size());
  return file.ReadAt(0, out->size(), out->data());
}

std::vector<unsigned char> Pattern(size_t n) {
  std::vector<unsigned char> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<unsigned char>((i * 37 + 11) & 0xFF);
  return bytes;
}

TEST(FilesTest, WriteThenReadGivesTheSameBytes) {
  ScratchDir dir;
  const std::string path = dir.Path("a.bin");
  // Larger than one 64 KiB read, and with every byte value.
  const std::vector<unsigned char> bytes = Pattern(200000);
  ASSERT_TRUE(WriteFileAtomically(path, bytes).ok());
  EXPECT_EQ(ReadBytes(path), bytes);
  std::vector<unsigned char> read;
  ASSERT_TRUE(ReadWhole(path, &read).ok());
  EXPECT_EQ(read, bytes);
  // A part, and a read past the end.
  FileReader file;
  ASSERT_TRUE(file.Open(path).ok());
  unsigned char part[3];
  ASSERT_TRUE(file.ReadAt(1000, 3, part).ok());
  EXPECT_EQ(std::vector<unsigned char>(part, part + 3),
            std::vector<unsigned char>(bytes.begin() + 1000, bytes.begin() + 1003));
  const Status past = file.ReadAt(bytes.size() - 1, 2, part);
  EXPECT_EQ(past.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(past, "the file ended at byte 200000 while reading 2 bytes at offset 199999"))
      << past.message();
  EXPECT_EQ(dir.List(), std::vector<std::string>{"a.bin"});  // no temporary left
}

TEST(FilesTest, EmptyFileRoundTrips) {
  ScratchDir dir;
  const std::string path = dir.Path("empty");
  ASSERT_TRUE(WriteFileAtomically(path, Span<const unsigned char>()).ok());
  EXPECT_EQ(std::filesystem::file_size(path), 0u);
  std::vector<unsigned char> read = {7};
  ASSERT_TRUE(ReadWhole(path, &read).ok());
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
  FileReader file;
  const Status s = file.Open(path);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(s, path + ": cannot open the file for reading: No such file or directory"))
      << s.message();
}

TEST(FilesTest, ReadingADirectoryIsAnIoError) {
  ScratchDir dir;
  FileReader file;
  const Status s = file.Open(dir.Path());
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, "it is a directory, not a file")) << s.message();
}

// A device or a pipe may never end: /dev/zero was read until memory ran out
// (then std::bad_alloc escaped the API), and opening a pipe waited forever
// for a writer.
TEST(FilesTest, ReadingADeviceOrAPipeIsRefused) {
  FileReader file;
  Status s = file.Open("/dev/zero");
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, "/dev/zero: cannot read: it is not a regular file")) << s.message();
  ScratchDir dir;
  const std::string fifo = dir.Path("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  s = file.Open(fifo);
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

// A directory, device, pipe or socket is never replaced by a regular file (a
// rename would do that, even over a device node when running as root).
TEST(FilesTest, WritingOverADirectoryOrAPipeIsRefused) {
  ScratchDir dir;
  const std::string path = dir.Path("d");
  std::filesystem::create_directory(path);
  WriteBytes(dir.Path("d/inside"), {1, 2});
  Status s = WriteFileAtomically(path, Pattern(10));
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, path + ": cannot write over it: it is a directory, not a regular file; "
                              "nothing was changed"))
      << s.message();
  EXPECT_TRUE(std::filesystem::is_directory(path));
  EXPECT_EQ(ReadBytes(dir.Path("d/inside")), (std::vector<unsigned char>{1, 2}));

  const std::string fifo = dir.Path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  s = WriteFileAtomically(fifo, Pattern(10));
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(s, "it is a device, pipe or socket, not a regular file")) << s.message();
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
  EXPECT_EQ(dir.List(), (std::vector<std::string>{"d", "fifo"}));
}

// Saving over a private checkpoint must not make it readable by others.
TEST(FilesTest, AReplacedFileKeepsItsPermissions) {
  ScratchDir dir;
  const std::string path = dir.Path("private.bin");
  WriteBytes(path, Pattern(3));
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_TRUE(WriteFileAtomically(path, Pattern(7)).ok());
  struct stat info;
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_EQ(ReadBytes(path), Pattern(7));

  // A new file: 0666 minus the umask.
  const mode_t umask_now = ::umask(022);
  ASSERT_TRUE(WriteFileAtomically(dir.Path("new.bin"), Pattern(1)).ok());
  ::umask(umask_now);
  ASSERT_EQ(::stat(dir.Path("new.bin").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0644u);
}

// The temporary's suffix must not push a legal name past 255 bytes.
TEST(FilesTest, ALongestLegalFileNameCanBeWritten) {
  ScratchDir dir;
  const std::string name(255, 'n');
  ASSERT_TRUE(WriteFileAtomically(dir.Path(name), Pattern(9)).ok());
  EXPECT_EQ(ReadBytes(dir.Path(name)), Pattern(9));
  EXPECT_EQ(dir.List(), std::vector<std::string>{name});
}

// Temporary names are not guessable: links planted at every name the old
// scheme ("<path>.tmp.<pid>.<n>") would try do not block a save, and are not
// followed or removed.
TEST(FilesTest, PlantedLinksDoNotBlockASave) {
  ScratchDir dir;
  const std::string path = dir.Path("ckpt");
  const std::string victim = dir.Path("victim");
  WriteBytes(victim, {7});
  for (int n = 0; n < 100; ++n) {
    const std::string link = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n);
    ASSERT_EQ(::symlink(victim.c_str(), link.c_str()), 0);
  }
  ASSERT_TRUE(WriteFileAtomically(path, Pattern(5)).ok());
  EXPECT_EQ(ReadBytes(path), Pattern(5));
  EXPECT_EQ(ReadBytes(victim), std::vector<unsigned char>{7});
  EXPECT_EQ(dir.List().size(), 102u);  // ckpt, victim and the 100 links
}

// A save killed mid-way leaves its temporary; the next save of that path
// removes every temporary whose process is gone, and none of a live one.
TEST(FilesTest, TemporariesOfKilledSavesAreRemovedByTheNextSave) {
  ScratchDir dir;
  const std::string path = dir.Path("ckpt");
  const std::vector<unsigned char> big = Pattern(8 << 20);
  int interrupted = 0;
  for (int kill_round = 0; kill_round < 20; ++kill_round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (;;) {
        if (!WriteFileAtomically(path, big).ok()) ::_exit(1);
      }
    }
    // Kill it while a temporary exists (a save is under way), at varying
    // points of that save.
    const std::string child_tag = ".tmp." + std::to_string(child) + ".";
    auto child_temporary_exists = [&] {
      for (const std::string& name : dir.List()) {
        if (name.find(child_tag) != std::string::npos) return true;
      }
      return false;
    };
    for (int wait = 0; wait < 5000 && !child_temporary_exists(); ++wait) ::usleep(200);
    ::usleep(300 * (kill_round % 8));
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status));
    interrupted += child_temporary_exists() ? 1 : 0;
  }
  const std::string live = path + ".tmp." + std::to_string(::getpid()) + ".0123456789abcdef";
  WriteBytes(live, {1});
  ASSERT_TRUE(WriteFileAtomically(path, Pattern(11)).ok());
  EXPECT_EQ(ReadBytes(path), Pattern(11));
  EXPECT_EQ(dir.List(), (std::vector<std::string>{"ckpt", BaseName(live)}));
  // The kills must have hit saves, or the test shows nothing.
  EXPECT_GT(interrupted, 0);
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
