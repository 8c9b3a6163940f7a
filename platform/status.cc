#include "platform/status.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace thaw {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kFailedPrecondition: return "failed precondition";
    case StatusCode::kResourceExhausted: return "resource exhausted";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kDataLoss: return "data loss";
    case StatusCode::kIoError: return "i/o error";
    case StatusCode::kInternal: return "internal";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(StatusCodeName(code_)) + ": " + message();
}

#if THAW_ERROR_STRINGS
namespace {
Status Format(StatusCode code, const char* format, va_list args) {
  va_list copy;
  va_copy(copy, args);
  const int length = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::string message(length > 0 ? static_cast<size_t>(length) : 0, '\0');
  if (length > 0) std::vsnprintf(&message[0], message.size() + 1, format, args);
  return Status(code, std::move(message));
}
}  // namespace

#define THAW_STATUS_FACTORY(Name, code)       \
  Status Name(const char* format, ...) {      \
    va_list args;                             \
    va_start(args, format);                   \
    Status status = Format(code, format, args); \
    va_end(args);                             \
    return status;                            \
  }
THAW_STATUS_FACTORY(InvalidArgument, StatusCode::kInvalidArgument)
THAW_STATUS_FACTORY(FailedPrecondition, StatusCode::kFailedPrecondition)
THAW_STATUS_FACTORY(ResourceExhausted, StatusCode::kResourceExhausted)
THAW_STATUS_FACTORY(NotFound, StatusCode::kNotFound)
THAW_STATUS_FACTORY(DataLoss, StatusCode::kDataLoss)
THAW_STATUS_FACTORY(IoError, StatusCode::kIoError)
#undef THAW_STATUS_FACTORY
#else
// One short text per code, in place of the sentence (the enum's comments).
const char* Status::message() const {
  switch (code_) {
    case StatusCode::kOk: return "";
    case StatusCode::kInvalidArgument: return "an argument is malformed";
    case StatusCode::kFailedPrecondition: return "the call is not valid in the current state";
    case StatusCode::kResourceExhausted: return "the arena or another fixed budget is too small";
    case StatusCode::kNotFound: return "a file, tensor or name does not exist";
    case StatusCode::kDataLoss: return "a file's contents are corrupt";
    case StatusCode::kIoError: return "the operating system refused a read or write";
    case StatusCode::kInternal: return "an unexpected failure inside thaw";
  }
  return "unknown error";
}
#endif  // THAW_ERROR_STRINGS

void CheckFailed(const char* file, int line, const char* condition) {
  std::fprintf(stderr, "thaw: check failed at %s:%d: %s\n", file, line,
               condition);
  std::fflush(stderr);
  std::abort();
}

}  // namespace thaw
