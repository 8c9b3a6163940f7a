#include "core/io/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <utility>

#include "platform/checked.h"
#include "platform/files.h"

namespace thaw {
namespace {

constexpr uint32_t kImageMagic = 0x00000803;  // unsigned byte, 3 dimensions
constexpr uint32_t kLabelMagic = 0x00000801;  // unsigned byte, 1 dimension
constexpr uint32_t kUnsignedByteType = 0x08;

// Compressed bytes are read from the file in pieces of this size and
// inflated straight into the caller's buffer.
constexpr size_t kInputBytes = 128 * 1024;
// zlib counts in uInt (32 bits): one inflate call fills at most this much.
constexpr size_t kInflateSliceBytes = 1 << 30;
// The raw data grows from this size, doubling as bytes actually arrive, so a
// header that lies about its size costs no more memory than the file holds.
constexpr size_t kFirstBufferBytes = 1 << 20;

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Resizes without letting std::bad_alloc (or length_error) escape thaw.
template <typename T>
Status Resize(std::vector<T>* v, size_t n, const std::string& path) {
  try {
    v->resize(n);
  } catch (const std::exception&) {
    return ResourceExhausted(
        "%s: could not allocate %zu bytes to hold its data", path.c_str(),
        n * sizeof(T));
  }
  return Status::Ok();
}

// `message` without a leading "<path>: ", which ours adds.
const char* WithoutPath(const char* message, const std::string& path) {
  if (std::strncmp(message, path.c_str(), path.size()) == 0 &&
      std::strncmp(message + path.size(), ": ", 2) == 0) {
    return message + path.size() + 2;
  }
  return message;
}

// Reads a file as gzread does: a gzip file (one member or several, back to
// back) is inflated, anything else is read as it is. The file comes through
// platform's FileReader in kInputBytes pieces, and zlib inflates them from
// memory (its stream API), so no OS call is made here.
class GzReader {
 public:
  GzReader() = default;
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;
  ~GzReader() {
    if (inflating_) inflateEnd(&stream_);
  }

  Status Open(const std::string& path) {
    path_ = path;
    const Status opened = file_.Open(path);
    if (opened.code() == StatusCode::kNotFound) {
      if (path.rfind(kFashionMnistDir, 0) == 0) {
        return NotFound(
            "%s: no such file; install the Debian package "
            "dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
            path.c_str());
      }
      return NotFound(
          "%s: no such file; for Fashion-MNIST, install the Debian package "
          "dataset-fashion-mnist (apt-get install dataset-fashion-mnist), "
          "which puts it in %s",
          path.c_str(), kFashionMnistDir);
    }
    if (!opened.ok()) {
      return IoError("%s: read failed: %s", path.c_str(),
                     WithoutPath(opened.message(), path));
    }
    THAW_RETURN_IF_ERROR(Resize(&input_, kInputBytes, path));
    THAW_RETURN_IF_ERROR(Refill(2));
    gzip_ = stream_.avail_in >= 2 && stream_.next_in[0] == 0x1f &&
            stream_.next_in[1] == 0x8b;
    if (!gzip_) return Status::Ok();
    // 16 + MAX_WBITS: a gzip wrapper (header and CRC-32 trailer) only.
    const int code = inflateInit2(&stream_, 16 + MAX_WBITS);
    if (code == Z_MEM_ERROR) {
      return ResourceExhausted("%s: zlib could not allocate memory to read it",
                               path.c_str());
    }
    if (code != Z_OK) {
      return IoError("%s: zlib could not start inflating it (error %d)",
                     path.c_str(), code);
    }
    inflating_ = true;
    return Status::Ok();
  }

  // Reads up to `size` bytes into `data`; *got is how many arrived. Fewer
  // than `size` means the end of the data; truncated() then says whether it
  // came in the middle of a gzip stream. Corrupt gzip data and failing reads
  // are errors.
  Status Read(void* data, size_t size, size_t* got) {
    unsigned char* out = static_cast<unsigned char*>(data);
    size_t total = 0;
    while (total < size && !ended_) {
      if (stream_.avail_in == 0) THAW_RETURN_IF_ERROR(Refill(1));
      if (!gzip_) {
        const size_t n = std::min<size_t>(stream_.avail_in, size - total);
        if (n == 0) {
          ended_ = true;
          break;
        }
        std::memcpy(out + total, stream_.next_in, n);
        Consume(n);
        total += n;
        continue;
      }
      if (stream_.avail_in == 0) {  // the file ends inside a gzip member
        truncated_ = true;
        ended_ = true;
        break;
      }
      size_t inflated = 0;
      THAW_RETURN_IF_ERROR(Inflate(out + total, size - total, &inflated));
      total += inflated;
    }
    *got = total;
    return Status::Ok();
  }

  bool truncated() const { return truncated_; }

 private:
  // Makes at least `want` unread bytes available, or as many as the file has
  // left: the unread rest moves to the front and the file fills up the input.
  Status Refill(size_t want) {
    if (stream_.avail_in >= want) return Status::Ok();
    // (next_in is null before the first fill: memmove may not be given it.)
    if (stream_.avail_in > 0) std::memmove(input_.data(), stream_.next_in, stream_.avail_in);
    size_t held = stream_.avail_in;
    const uint64_t left = file_.size() - offset_;
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>(left, input_.size() - held));
    if (n > 0) THAW_RETURN_IF_ERROR(file_.ReadAt(offset_, n, input_.data() + held));
    offset_ += n;
    held += n;
    stream_.next_in = input_.data();
    stream_.avail_in = static_cast<uInt>(held);
    return Status::Ok();
  }

  void Consume(size_t n) {
    stream_.next_in += n;
    stream_.avail_in -= static_cast<uInt>(n);
  }

  // One inflate call into [out, out + size); *inflated is what it produced.
  // At the end of a gzip member, another member may follow (as gzip -c a b
  // writes); bytes that are not one end the data, as gzread ignores them.
  Status Inflate(unsigned char* out, size_t size, size_t* inflated) {
    const uInt room = static_cast<uInt>(std::min(size, kInflateSliceBytes));
    stream_.next_out = out;
    stream_.avail_out = room;
    const int code = inflate(&stream_, Z_NO_FLUSH);
    *inflated = room - stream_.avail_out;
    switch (code) {
      case Z_OK:
      case Z_BUF_ERROR:  // no progress: more input is needed (Read refills)
        return Status::Ok();
      case Z_STREAM_END:
        THAW_RETURN_IF_ERROR(Refill(2));
        if (stream_.avail_in >= 2 && stream_.next_in[0] == 0x1f &&
            stream_.next_in[1] == 0x8b) {
          inflateReset(&stream_);
        } else {
          ended_ = true;
        }
        return Status::Ok();
      case Z_MEM_ERROR:
        return ResourceExhausted("%s: zlib ran out of memory while reading it",
                                 path_.c_str());
      default:  // Z_DATA_ERROR, Z_NEED_DICT
        return DataLoss("%s: the gzip stream is corrupt (zlib: %s)",
                        path_.c_str(),
                        stream_.msg != nullptr ? stream_.msg : "no message");
    }
  }

  FileReader file_;
  std::string path_;
  std::vector<unsigned char> input_;
  uint64_t offset_ = 0;  // of the next file byte to read into input_
  z_stream stream_ = {};
  bool gzip_ = false;
  bool inflating_ = false;
  bool ended_ = false;
  bool truncated_ = false;
};

// The end of a message about a short read: says so when the gzip stream was
// cut off in the middle.
const char* TruncatedNote(const GzReader& reader) {
  return reader.truncated()
             ? "; the gzip stream ends in the middle, so the file is truncated"
             : "";
}

struct IdxHeader {
  uint32_t dims[3] = {0, 0, 0};
};

// Reads and checks the header of an unsigned-byte IDX file of `rank`
// dimensions (1 or 3).
Status ReadHeader(GzReader* reader, const std::string& path, int rank,
                  IdxHeader* header) {
  const size_t header_bytes = 4 + 4 * static_cast<size_t>(rank);
  unsigned char bytes[16];
  size_t got = 0;
  THAW_RETURN_IF_ERROR(reader->Read(bytes, header_bytes, &got));
  const uint32_t expected_magic = rank == 3 ? kImageMagic : kLabelMagic;
  const char* kind = rank == 3 ? "an image" : "a label";
  if (got >= 4) {
    const uint32_t magic = BigEndian32(bytes);
    if ((magic >> 16) != 0) {
      return DataLoss(
          "%s: not an IDX file: it starts with 0x%08x, and IDX files start "
          "with 0x0000 (%s file with 0x%08x)",
          path.c_str(), magic, kind, expected_magic);
    }
    const uint32_t type = (magic >> 8) & 0xff;
    const uint32_t file_rank = magic & 0xff;
    if (type != kUnsignedByteType) {
      return InvalidArgument(
          "%s: IDX element type 0x%02x is not supported; thaw reads unsigned "
          "bytes (type 0x08, magic 0x%08x)",
          path.c_str(), type, expected_magic);
    }
    if (file_rank != static_cast<uint32_t>(rank)) {
      return InvalidArgument(
          "%s: the IDX file has %u dimension(s), but %s file has %d (magic "
          "0x%08x expected, found 0x%08x)",
          path.c_str(), file_rank, kind, rank, expected_magic, magic);
    }
  }
  if (got < header_bytes) {
    return DataLoss("%s: expected a %zu-byte IDX header, found %zu bytes%s",
                    path.c_str(), header_bytes, got, TruncatedNote(*reader));
  }
  for (int i = 0; i < rank; ++i)
    header->dims[i] = BigEndian32(bytes + 4 + 4 * i);
  return Status::Ok();
}

// Reads exactly `expected` data bytes after the header and checks that the
// file ends there. `what` names the data in messages ("pixels", "labels").
Status ReadData(GzReader* reader, const std::string& path, size_t expected,
                const char* what, std::vector<uint8_t>* data) {
  std::vector<uint8_t> buffer;
  size_t filled = 0;
  while (filled < expected) {
    const size_t capacity =
        std::min(expected, std::max(kFirstBufferBytes, 2 * buffer.size()));
    THAW_RETURN_IF_ERROR(Resize(&buffer, capacity, path));
    size_t got = 0;
    THAW_RETURN_IF_ERROR(
        reader->Read(buffer.data() + filled, capacity - filled, &got));
    filled += got;
    if (filled < capacity) {
      return DataLoss(
          "%s: expected %zu bytes of %s after the header, found %zu%s",
          path.c_str(), expected, what, filled, TruncatedNote(*reader));
    }
  }
  // The file must end here: one more byte is trailing data. Reading on also
  // makes zlib check the gzip trailer (CRC-32 and length).
  unsigned char extra[1];
  size_t got = 0;
  THAW_RETURN_IF_ERROR(reader->Read(extra, 1, &got));
  if (got != 0) {
    return DataLoss(
        "%s: expected %zu bytes of %s after the header, found more: the file "
        "has trailing data",
        path.c_str(), expected, what);
  }
  if (reader->truncated()) {
    return DataLoss(
        "%s: all %zu bytes of %s are there, but the gzip stream ends before "
        "its trailer, so the file is truncated",
        path.c_str(), expected, what);
  }
  *data = std::move(buffer);
  return Status::Ok();
}

// byte / 255.0f for every byte value, computed once.
struct PixelTable {
  float value[256];
  PixelTable() {
    for (int b = 0; b < 256; ++b) value[b] = static_cast<float>(b) / 255.0f;
  }
};

}  // namespace

Status LoadIdxImages(const std::string& path, std::vector<float>* images,
                     size_t* count, size_t* rows, size_t* cols) {
  GzReader reader;
  THAW_RETURN_IF_ERROR(reader.Open(path));
  IdxHeader header;
  THAW_RETURN_IF_ERROR(ReadHeader(&reader, path, 3, &header));
  const uint64_t n = header.dims[0], r = header.dims[1], c = header.dims[2];
  if (r == 0 || c == 0) {
    return DataLoss("%s: images of %llu x %llu pixels are empty", path.c_str(),
                    static_cast<unsigned long long>(r),
                    static_cast<unsigned long long>(c));
  }
  // r * c < 2^64 (both < 2^32); once r * c <= 2^31, n * r * c < 2^63.
  const uint64_t pixels = r * c;
  if (pixels > kMaxIdxDataBytes || n * pixels > kMaxIdxDataBytes) {
    return DataLoss(
        "%s: the header announces %llu images of %llu x %llu pixels, more "
        "than the %llu bytes thaw reads; the header is corrupt or the file "
        "too large",
        path.c_str(), static_cast<unsigned long long>(n),
        static_cast<unsigned long long>(r), static_cast<unsigned long long>(c),
        static_cast<unsigned long long>(kMaxIdxDataBytes));
  }
  std::vector<uint8_t> bytes;
  THAW_RETURN_IF_ERROR(ReadData(&reader, path, static_cast<size_t>(n * pixels),
                                "pixels", &bytes));

  std::vector<float> result;
  THAW_RETURN_IF_ERROR(Resize(&result, bytes.size(), path));
  static const PixelTable table;
  for (size_t i = 0; i < bytes.size(); ++i) result[i] = table.value[bytes[i]];

  *images = std::move(result);
  *count = static_cast<size_t>(n);
  *rows = static_cast<size_t>(r);
  *cols = static_cast<size_t>(c);
  return Status::Ok();
}

Status LoadIdxLabels(const std::string& path, std::vector<uint8_t>* labels,
                     size_t* count) {
  GzReader reader;
  THAW_RETURN_IF_ERROR(reader.Open(path));
  IdxHeader header;
  THAW_RETURN_IF_ERROR(ReadHeader(&reader, path, 1, &header));
  const uint64_t n = header.dims[0];
  if (n > kMaxIdxDataBytes) {
    return DataLoss(
        "%s: the header announces %llu labels, more than the %llu bytes thaw "
        "reads; the header is corrupt or the file too large",
        path.c_str(), static_cast<unsigned long long>(n),
        static_cast<unsigned long long>(kMaxIdxDataBytes));
  }
  std::vector<uint8_t> bytes;
  THAW_RETURN_IF_ERROR(
      ReadData(&reader, path, static_cast<size_t>(n), "labels", &bytes));
  // Every byte is a valid label (0..255): there is nothing more to check.
  *labels = std::move(bytes);
  *count = static_cast<size_t>(n);
  return Status::Ok();
}

Status LoadIdxDataset(const std::string& dir, const std::string& split,
                      Dataset* out) {
  if (split != "train" && split != "t10k") {
    return InvalidArgument(
        "split \"%s\" is not an IDX split; use \"train\" or \"t10k\"",
        split.c_str());
  }
  const std::string images_path = dir + "/" + split + "-images-idx3-ubyte.gz";
  const std::string labels_path = dir + "/" + split + "-labels-idx1-ubyte.gz";
  Dataset result;
  THAW_RETURN_IF_ERROR(LoadIdxImages(images_path, &result.images, &result.count,
                                     &result.rows, &result.cols));
  size_t label_count = 0;
  THAW_RETURN_IF_ERROR(
      LoadIdxLabels(labels_path, &result.labels, &label_count));
  if (label_count != result.count) {
    return DataLoss(
        "%s holds %zu labels, but %s holds %zu images; they must "
        "match one to one",
        labels_path.c_str(), label_count, images_path.c_str(), result.count);
  }
  *out = std::move(result);
  return Status::Ok();
}

Status FilterClasses(const Dataset& in, int first, int last, size_t per_class,
                     Dataset* out) {
  if (first < 0 || last > 255 || first > last) {
    return InvalidArgument(
        "class range [%d, %d] is not valid; labels are bytes, so it needs "
        "0 <= first <= last <= 255",
        first, last);
  }
  size_t features = 0, floats = 0;
  if (!CheckedMul(in.rows, in.cols, &features) || !CheckedMul(in.count, features, &floats)) {
    return InvalidArgument("dataset of count %zu and %zu x %zu images is larger than memory can hold",
                           in.count, in.rows, in.cols);
  }
  if (in.labels.size() != in.count || in.images.size() != floats) {
    return InvalidArgument(
        "dataset of count %zu and %zu x %zu images holds %zu labels and %zu "
        "floats; expected %zu and %zu",
        in.count, in.rows, in.cols, in.labels.size(), in.images.size(),
        in.count, floats);
  }
  // Pass 1: choose, so the result is allocated once.
  size_t kept_per_class[256] = {};
  std::vector<size_t> kept;
  for (size_t i = 0; i < in.count; ++i) {
    const int label = in.labels[i];
    if (label < first || label > last) continue;
    if (per_class != 0 && kept_per_class[label] == per_class) continue;
    ++kept_per_class[label];
    kept.push_back(i);
  }
  // Pass 2: copy.
  Dataset result;
  result.count = kept.size();
  result.rows = in.rows;
  result.cols = in.cols;
  result.images.resize(kept.size() * features);
  result.labels.resize(kept.size());
  for (size_t k = 0; k < kept.size(); ++k) {
    const size_t i = kept[k];
    std::copy(in.images.begin() + i * features,
              in.images.begin() + (i + 1) * features,
              result.images.begin() + k * features);
    result.labels[k] = static_cast<uint8_t>(in.labels[i] - first);
  }
  *out = std::move(result);
  return Status::Ok();
}

}  // namespace thaw
