// thaw/tests/status_text.h — a check on a Status's sentence that means what it
// can in either build.
//
//   EXPECT_TRUE(MessageContains(s, "not 64-byte aligned")) << s.message();
//
// With error strings (THAW_ERROR_STRINGS=1, every build but the firmware
// profile's OFF variant) the sentence must contain the text. Without them a
// Status has no sentence to search: the check is then that the call failed
// with its code's fixed text (the code itself is asserted where the test
// asserts it). Only that build is looser.
#ifndef THAW_TESTS_STATUS_TEXT_H_
#define THAW_TESTS_STATUS_TEXT_H_

#include <string>

#include "platform/status.h"

namespace thaw {

inline bool MessageContains(const Status& s, const std::string& text) {
#if THAW_ERROR_STRINGS
  return std::string(s.message()).find(text) != std::string::npos;
#else
  (void)text;
  return !s.ok() && s.message()[0] != '\0';
#endif
}

// The same for a sentence already copied out of a Status (the C API hands
// it over as text): without error strings, there must be a text.
inline bool TextContains(const char* message, const std::string& text) {
#if THAW_ERROR_STRINGS
  return std::string(message).find(text) != std::string::npos;
#else
  (void)text;
  return message[0] != '\0';
#endif
}

}  // namespace thaw

#endif  // THAW_TESTS_STATUS_TEXT_H_
