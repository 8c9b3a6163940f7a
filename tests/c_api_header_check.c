/* core/c/thaw_c.h compiled as strict C99 (-std=c99 -pedantic -Werror, see
 * tests/CMakeLists.txt): it must not need C11 or C++. c_api_test calls this. */
#include "core/c/thaw_c.h"

#include <string.h>

int thaw_c_header_check(void) {
  thaw_memory_plan plan = {0, 0, 0, 0, 0, 0, 0};
  thaw_optimizer optimizer;
  thaw_optimizer_defaults(THAW_OPTIMIZER_ADAM, &optimizer);
  /* Adam's defaults, and a status name, seen from C. */
  if (optimizer.kind != THAW_OPTIMIZER_ADAM || optimizer.beta1 != 0.9f || plan.total != 0) return 1;
  if (optimizer.update_in_backward != 0) return 1; /* the default mode */
  return strcmp(thaw_status_name(THAW_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
}
