// thaw/platform/status.h — recoverable errors and the abort-on-bug assert.
//
//   thaw::Status s = model.Load("head.safetensors");
//   if (!s.ok()) std::fprintf(stderr, "%s\n", s.message());
//
// A Status is what a user can cause (bad shapes, bad files, an arena that is too
// small). It carries a code and one sentence naming the thing, the value and the
// reason. An ok Status holds no message and never allocates. Broken invariants,
// which only a bug can cause, abort through THAW_CHECK instead. No exception
// crosses the public API.
#ifndef THAW_PLATFORM_STATUS_H_
#define THAW_PLATFORM_STATUS_H_

#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace thaw {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the caller passed something malformed
  kFailedPrecondition,  // the call is not valid in the current state
  kResourceExhausted,   // the arena (or another fixed budget) is too small
  kNotFound,            // a file, tensor or name does not exist
  kDataLoss,            // a file exists but its contents are corrupt
  kIoError,             // the operating system refused a read or write
  kInternal,            // an unexpected failure inside thaw
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  // The sentence describing the problem; "" when ok.
  const char* message() const { return message_.c_str(); }
  // "<code name>: <message>", for logs.
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// printf-style constructors: InvalidArgument("%s: expected rank 2, got %d", name, r).
Status InvalidArgument(const char* format, ...)
    __attribute__((format(printf, 1, 2)));
Status FailedPrecondition(const char* format, ...)
    __attribute__((format(printf, 1, 2)));
Status ResourceExhausted(const char* format, ...)
    __attribute__((format(printf, 1, 2)));
Status NotFound(const char* format, ...) __attribute__((format(printf, 1, 2)));
Status DataLoss(const char* format, ...) __attribute__((format(printf, 1, 2)));
Status IoError(const char* format, ...) __attribute__((format(printf, 1, 2)));

// Runs `body`, a setup-time call that allocates on the heap, and returns its
// Status; if an allocation fails (std::bad_alloc, or a length_error from a
// container asked for more than it can hold) it returns ResourceExhausted
// naming `what` instead, so no exception leaves thaw's API. The body must
// leave its object usable when an allocation throws part-way (the caller may
// retry). Built without exceptions, it just runs `body`.
template <class Body>
Status ResourceExhaustedOnBadAlloc(const char* what, Body&& body) {
#if defined(__cpp_exceptions)
  try {
    return body();
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
  return ResourceExhausted("%s: out of memory (a heap allocation failed); nothing was changed",
                           what);
#else
  return body();
#endif
}

// Aborts with file and line; used by THAW_CHECK. Never returns.
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition);

}  // namespace thaw

// Returns from the enclosing function when `expr` is not ok.
#define THAW_RETURN_IF_ERROR(expr)                  \
  do {                                              \
    ::thaw::Status thaw_status_internal_ = (expr);  \
    if (!thaw_status_internal_.ok()) return thaw_status_internal_; \
  } while (0)

// Always on, also in release builds: a failed check is a bug in thaw.
#define THAW_CHECK(condition)                                    \
  do {                                                           \
    if (__builtin_expect(!(condition), 0))                       \
      ::thaw::CheckFailed(__FILE__, __LINE__, #condition);       \
  } while (0)

#endif  // THAW_PLATFORM_STATUS_H_
