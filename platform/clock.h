// thaw/platform/clock.h — a monotonic clock, for the times Fit reports.
//
//   const double start = thaw::MonotonicSeconds();
//   ...
//   double elapsed = thaw::MonotonicSeconds() - start;
#ifndef THAW_PLATFORM_CLOCK_H_
#define THAW_PLATFORM_CLOCK_H_

namespace thaw {

// Seconds since an arbitrary fixed point; never goes back.
double MonotonicSeconds();

}  // namespace thaw

#endif  // THAW_PLATFORM_CLOCK_H_
