// thaw/platform/files.h — reads of regular files and atomic whole-file writes.
//
//   thaw::FileReader file;
//   THAW_RETURN_IF_ERROR(file.Open("model.safetensors"));
//   std::vector<unsigned char> bytes(file.size());
//   THAW_RETURN_IF_ERROR(file.ReadAt(0, bytes.size(), bytes.data()));
//   THAW_RETURN_IF_ERROR(thaw::WriteFileAtomically("model.safetensors", bytes));
//   // Several pieces, written in order as one file, without joining them first:
//   THAW_RETURN_IF_ERROR(thaw::WriteFileAtomically("out.bin", {header, body}));
//
// An atomic write never leaves a half-written file at `path`: the bytes go to a
// temporary file in the same directory, which is flushed to the device
// (fsync), closed, and renamed over `path`. rename() within one directory
// replaces the old file in one step, so a reader (or a crash) sees either the
// whole old file or the whole new one. On failure the temporary file is
// removed and the old file at `path` is left as it was.
//
// These are setup-time calls: they allocate (paths, messages)
// and may block on the disk. They are safe to call from several threads on
// different paths.
#ifndef THAW_PLATFORM_FILES_H_
#define THAW_PLATFORM_FILES_H_

#include <cstdint>
#include <string>

#include "platform/span.h"
#include "platform/status.h"

namespace thaw {

// Reads parts of a regular file through one open descriptor, so every part
// comes from the same file even if another is renamed over the path meanwhile.
//
//   FileReader file;
//   THAW_RETURN_IF_ERROR(file.Open(path));
//   unsigned char head[8];
//   THAW_RETURN_IF_ERROR(file.ReadAt(0, sizeof(head), head));
class FileReader {
 public:
  FileReader() = default;
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Opens the regular file at `path`. Returns NotFound when it does not exist
  // and IoError for a directory, a device, pipe or socket (which may never
  // end), no permission and any other failure; the message names the path.
  Status Open(const std::string& path);
  // The file's size when it was opened.
  uint64_t size() const { return size_; }
  // Reads exactly n bytes at `offset` into out; IoError (naming the path) if
  // the read fails or the file ends first.
  Status ReadAt(uint64_t offset, size_t n, unsigned char* out) const;

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

// Writes `bytes` as the whole new contents of `path`, atomically (see above).
// A new file gets 0666 minus the umask; a replaced regular file's permission
// bits are kept (and its owner and group, where the process may set them). If
// `path` is a symbolic link, the link itself is replaced by a regular file; a
// directory, device, pipe or socket at `path` is refused. The temporary file
// is "<path>.tmp.<pid>.<16 random hex digits>" (the file name part cut to fit
// 255 bytes), created exclusively, never through a link; temporaries that a
// killed process left for `path` (their pid no longer exists) are removed by
// the next write. Returns IoError naming the path and the reason on any
// failure; the old file stays whole.
Status WriteFileAtomically(const std::string& path, Span<const unsigned char> bytes);

// The same for a file made of several pieces, written in order.
Status WriteFileAtomically(const std::string& path,
                           Span<const Span<const unsigned char>> pieces);

}  // namespace thaw

#endif  // THAW_PLATFORM_FILES_H_
