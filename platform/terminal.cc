#include "platform/terminal.h"

#include <unistd.h>

namespace thaw {

bool StdoutIsTerminal() { return isatty(STDOUT_FILENO) == 1; }

}  // namespace thaw
