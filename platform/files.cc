#include "platform/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace thaw {
namespace {

// strerror_r comes in two flavours (GNU returns the text, POSIX fills the
// buffer and returns 0); these overloads accept either.
[[maybe_unused]] const char* ErrnoTextFrom(int result, const char* buffer) {
  return result == 0 ? buffer : "unknown error";
}
[[maybe_unused]] const char* ErrnoTextFrom(const char* result, const char* /*buffer*/) {
  return result;
}

// The system's sentence for `error`, thread-safe unlike strerror().
std::string ErrnoText(int error) {
  char buffer[256] = {};
  return ErrnoTextFrom(strerror_r(error, buffer, sizeof(buffer)), buffer);
}

// The directory holding `path`, for the temporary file and the directory sync.
std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Closes a descriptor on scope exit unless released.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  // Gives up ownership: the descriptor stays open.
  void Release() { fd_ = -1; }
  // Closes now and returns close()'s result (0, or -1 with errno set); 0 when
  // already closed.
  int Close() {
    if (fd_ < 0) return 0;
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd);
  }

 private:
  int fd_;
};

// Writes all of [data, data + size), retrying short writes and EINTR.
// Returns 0, or the errno of the failing write.
int WriteAll(int fd, const unsigned char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// Temporary files are named "<name>.tmp.<pid>.<16 hex digits>" next to the
// file they will replace. The random part makes the name unguessable, so
// another user cannot block saves by planting files or links where they would
// go; the pid lets a later save tell a temporary left by a killed process
// (its pid is gone) from one another process is writing right now. <name> is
// the target's file name cut short enough that the whole name fits NAME_MAX.
constexpr char kTempTag[] = ".tmp.";
constexpr size_t kMaxNameBytes = 255;  // NAME_MAX on Linux file systems
constexpr size_t kTempSuffixBytes = sizeof(kTempTag) - 1 + 10 + 1 + 16;  // pid <= 10 digits

// The file name part of `path` (after the last '/').
std::string BaseNameOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The prefix every temporary of `path` starts with, as a directory entry name.
std::string TempPrefixOf(const std::string& path) {
  std::string base = BaseNameOf(path);
  if (base.size() + kTempSuffixBytes > kMaxNameBytes) base.resize(kMaxNameBytes - kTempSuffixBytes);
  return base + kTempTag;
}

// 64 unpredictable bits from the kernel; if it has none to give (very early
// boot), the clock, the pid and a counter, which still differ per call.
uint64_t UnpredictableBits() {
  uint64_t bits = 0;
  if (::getrandom(&bits, sizeof(bits), GRND_NONBLOCK) == static_cast<ssize_t>(sizeof(bits))) {
    return bits;
  }
  static std::atomic<uint64_t> counter{0};
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t x = static_cast<uint64_t>(now.tv_nsec) ^ (static_cast<uint64_t>(now.tv_sec) << 30) ^
               (static_cast<uint64_t>(::getpid()) << 40) ^ counter.fetch_add(1);
  x = (x ^ (x >> 31)) * 0x7FB5D329728EA185ull;  // mixes every input bit into the result
  return (x ^ (x >> 27)) * 0x81DADEF4BC2DD44Dull;
}

// Removes the temporaries of `path` that processes which no longer exist left
// behind (a save killed mid-way), so repeated crashes cannot fill the disk.
// Only regular files of this user are removed; a temporary whose process is
// alive (a save in progress elsewhere) is left alone. Best effort: a
// directory that cannot be listed is not an error here.
void RemoveStaleTemporaries(const std::string& path) {
  const std::string directory = DirectoryOf(path);
  const std::string prefix = TempPrefixOf(path);
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return;
  while (const dirent* entry = ::readdir(dir)) {
    const char* name = entry->d_name;
    if (std::strncmp(name, prefix.c_str(), prefix.size()) != 0) continue;
    // "<pid>.<16 hex digits>" must follow.
    char* end = nullptr;
    const long pid = std::strtol(name + prefix.size(), &end, 10);
    if (pid <= 0 || *end != '.' || std::strlen(end + 1) != 16) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or unknown
    struct stat info;
    if (::fstatat(::dirfd(dir), name, &info, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(info.st_mode) || info.st_uid != ::geteuid()) continue;
    ::unlinkat(::dirfd(dir), name, 0);
  }
  ::closedir(dir);
}

// Creates a new, empty temporary file for `path` (see kTempTag). O_EXCL |
// O_NOFOLLOW: the name is never an existing file or a link followed
// somewhere else. Mode 0666 lets the umask decide, as for any new file.
int CreateTemporary(const std::string& path, std::string* temp_path) {
  const size_t slash = path.find_last_of('/');
  const std::string prefix =
      (slash == std::string::npos ? "" : path.substr(0, slash + 1)) + TempPrefixOf(path);
  for (int attempt = 0; attempt < 16; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof(suffix), "%ld.%016llx", static_cast<long>(::getpid()),
                  static_cast<unsigned long long>(UnpredictableBits()));
    *temp_path = prefix + suffix;
    const int fd = ::open(temp_path->c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  errno = EEXIST;
  return -1;
}

}  // namespace

FileReader::~FileReader() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileReader::Open(const std::string& path) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  size_ = 0;
  path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) {
      return NotFound("%s: cannot open the file for reading: %s", path.c_str(),
                      ErrnoText(error).c_str());
    }
    return IoError("%s: cannot open the file for reading: %s", path.c_str(),
                   ErrnoText(error).c_str());
  }
  FdCloser closer(fd);
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    return IoError("%s: cannot stat the file: %s", path.c_str(), ErrnoText(errno).c_str());
  }
  if (S_ISDIR(info.st_mode)) {
    return IoError("%s: cannot read: it is a directory, not a file", path.c_str());
  }
  // A device or a pipe may never end (/dev/zero): its size means nothing.
  // (O_NONBLOCK above: opening a pipe would otherwise wait for a writer.)
  if (!S_ISREG(info.st_mode)) {
    return IoError("%s: cannot read: it is not a regular file (a device, pipe or socket)",
                   path.c_str());
  }
  size_ = static_cast<uint64_t>(info.st_size);
  fd_ = fd;
  closer.Release();
  return Status::Ok();
}

Status FileReader::ReadAt(uint64_t offset, size_t n, unsigned char* out) const {
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      return IoError("%s: read of %zu bytes at offset %llu failed: %s", path_.c_str(), n,
                     static_cast<unsigned long long>(offset), ErrnoText(errno).c_str());
    }
    if (got == 0) {
      return IoError("%s: the file ended at byte %llu while reading %zu bytes at offset %llu "
                     "(it shrank while being read)",
                     path_.c_str(), static_cast<unsigned long long>(offset + done), n,
                     static_cast<unsigned long long>(offset));
    }
    done += static_cast<size_t>(got);
  }
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, Span<const unsigned char> bytes) {
  const Span<const unsigned char> pieces[1] = {bytes};
  return WriteFileAtomically(path, pieces);
}

Status WriteFileAtomically(const std::string& path,
                           Span<const Span<const unsigned char>> pieces) {
  // Only a regular file (or a link, which is replaced, or nothing) may be
  // replaced: a rename over a device node would turn it into a plain file.
  struct stat old_file;
  const bool replacing = ::lstat(path.c_str(), &old_file) == 0;
  if (replacing && !S_ISREG(old_file.st_mode) && !S_ISLNK(old_file.st_mode)) {
    return IoError("%s: cannot write over it: it is %s, not a regular file; nothing was changed",
                   path.c_str(), S_ISDIR(old_file.st_mode) ? "a directory"
                                                           : "a device, pipe or socket");
  }
  RemoveStaleTemporaries(path);
  std::string temp_path;
  const int fd = CreateTemporary(path, &temp_path);
  if (fd < 0) {
    return IoError("%s: cannot create a temporary file next to it: %s", path.c_str(),
                   ErrnoText(errno).c_str());
  }
  FdCloser closer(fd);
  // From here on every failure removes the temporary file; the file at `path`
  // has not been touched until rename() succeeds.
  auto fail = [&](const char* what, int error) {
    closer.Close();
    ::unlink(temp_path.c_str());
    return IoError("%s: %s (temporary file %s): %s; the file at this path was not changed",
                   path.c_str(), what, temp_path.c_str(), ErrnoText(error).c_str());
  };
  for (const Span<const unsigned char>& piece : pieces) {
    const int error = WriteAll(fd, piece.data(), piece.size());
    if (error != 0) return fail("write failed", error);
  }
  // The new file keeps the old one's permissions, and its owner and group
  // where this process may set them (root saving over a user's file).
  if (replacing && S_ISREG(old_file.st_mode)) {
    if ((old_file.st_uid != ::geteuid() || old_file.st_gid != ::getegid()) &&
        ::fchown(fd, old_file.st_uid, old_file.st_gid) != 0 && errno != EPERM) {
      return fail("cannot copy the owner", errno);
    }
    // After fchown, which clears set-id bits.
    if (::fchmod(fd, old_file.st_mode & 07777) != 0) return fail("cannot copy the permissions", errno);
  }
  // Data on the device before the rename makes it visible: otherwise a crash
  // could leave the new name pointing at a file whose blocks never landed.
  if (::fsync(fd) != 0) return fail("fsync failed", errno);
  if (closer.Close() != 0) return fail("close failed", errno);
  if (::rename(temp_path.c_str(), path.c_str()) != 0) {
    return fail("cannot rename the temporary file over it", errno);
  }
  // Persist the rename itself (the directory entry). Some file systems cannot
  // sync a directory (EINVAL), and a directory we may not open cannot be
  // synced by us at all; the rename has happened, so neither is an error.
  const std::string directory = DirectoryOf(path);
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    FdCloser dir_closer(dir_fd);
    if (::fsync(dir_fd) != 0 && errno != EINVAL) {
      return IoError("%s: the new file is in place, but syncing its directory %s failed: %s; "
                     "after a power loss the old file may reappear",
                     path.c_str(), directory.c_str(), ErrnoText(errno).c_str());
    }
  }
  return Status::Ok();
}

}  // namespace thaw
