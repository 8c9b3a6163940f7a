// thaw/platform/terminal.h — whether output goes to a person's terminal.
//
//   if (thaw::StdoutIsTerminal()) { ...redraw a progress bar in place... }
#ifndef THAW_PLATFORM_TERMINAL_H_
#define THAW_PLATFORM_TERMINAL_H_

namespace thaw {

// True when standard output is a terminal (not a file, a pipe or nothing).
bool StdoutIsTerminal();

}  // namespace thaw

#endif  // THAW_PLATFORM_TERMINAL_H_
