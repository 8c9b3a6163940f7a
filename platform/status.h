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
//
// Built with THAW_ERROR_STRINGS=0 (CMake: -DTHAW_ERROR_STRINGS=OFF, firmware
// profile only), a Status holds its code alone: the factories below format
// nothing and allocate nothing, their sentences are not in the binary, and
// message() is a fixed text per code ("an argument is malformed", ...). The
// calls are the same in both builds.
#ifndef THAW_PLATFORM_STATUS_H_
#define THAW_PLATFORM_STATUS_H_

#include <new>
#include <stdexcept>
#include <string>
#include <utility>

// CMake defines it for the library and everything that links it; 1 when a
// program compiles thaw's headers without thaw's build flags.
#ifndef THAW_ERROR_STRINGS
#define THAW_ERROR_STRINGS 1
#endif

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
#if THAW_ERROR_STRINGS
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}
#else
  // The message is dropped; a literal reaches here without becoming a string.
  Status(StatusCode code, const char* /*message*/) : code_(code) {}
  Status(StatusCode code, const std::string& /*message*/) : code_(code) {}
#endif

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  // The sentence describing the problem; "" when ok. Without error strings,
  // the code's fixed text.
#if THAW_ERROR_STRINGS
  const char* message() const { return message_.c_str(); }
#else
  const char* message() const;
#endif
  // "<code name>: <message>", for logs.
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
#if THAW_ERROR_STRINGS
  std::string message_;
#endif
};

// printf-style constructors: InvalidArgument("%s: expected rank 2, got %d", name, r).
#if THAW_ERROR_STRINGS
Status InvalidArgument(const char* format, ...)
    __attribute__((format(printf, 1, 2)));
Status FailedPrecondition(const char* format, ...)
    __attribute__((format(printf, 1, 2)));
Status ResourceExhausted(const char* format, ...)
    __attribute__((format(printf, 1, 2)));
Status NotFound(const char* format, ...) __attribute__((format(printf, 1, 2)));
Status DataLoss(const char* format, ...) __attribute__((format(printf, 1, 2)));
Status IoError(const char* format, ...) __attribute__((format(printf, 1, 2)));
#else
// The compiler still checks the arguments against the format; inline and
// unused, the format string itself is not emitted.
#define THAW_STATUS_FACTORY(Name, code)                                  \
  __attribute__((format(printf, 1, 2))) inline Status Name(const char*, ...) { \
    return Status(code, "");                                             \
  }
THAW_STATUS_FACTORY(InvalidArgument, StatusCode::kInvalidArgument)
THAW_STATUS_FACTORY(FailedPrecondition, StatusCode::kFailedPrecondition)
THAW_STATUS_FACTORY(ResourceExhausted, StatusCode::kResourceExhausted)
THAW_STATUS_FACTORY(NotFound, StatusCode::kNotFound)
THAW_STATUS_FACTORY(DataLoss, StatusCode::kDataLoss)
THAW_STATUS_FACTORY(IoError, StatusCode::kIoError)
#undef THAW_STATUS_FACTORY
#endif

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
