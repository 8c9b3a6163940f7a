// thaw/core/io/progress.h — Keras's progress display for Fit, as a callback.
//
//   thaw::ProgressBar bar;                       // a live bar on a terminal,
//   thaw::FitOptions fit;                        // one line per epoch otherwise
//   fit.callback = &bar;
//   THAW_RETURN_IF_ERROR(model.Fit(train, fit));
//
// The runtime prints nothing; this is the one place Fit's progress reaches a
// terminal (stdout).
#ifndef THAW_CORE_IO_PROGRESS_H_
#define THAW_CORE_IO_PROGRESS_H_

#include <cstddef>

#include "core/api/model.h"

namespace thaw {

class ProgressBar : public FitCallback {
 public:
  enum class Style {
    kAuto,        // the bar on a terminal, lines otherwise
    kBar,         // Keras's bar, redrawn in place
    kEpochLines,  // one line per epoch
  };
  explicit ProgressBar(Style style = Style::kAuto);

  void OnTrainBegin(const FitInfo& info) override;
  void OnEpochBegin(int epoch) override;
  void OnBatchEnd(size_t done, const Metrics& running) override;
  void OnEpochEnd(int epoch, const EpochResult& result) override;

 private:
  bool bar_;
  FitInfo info_;
  double epoch_start_ = 0.0;
  double last_draw_ = 0.0;
};

}  // namespace thaw

#endif  // THAW_CORE_IO_PROGRESS_H_
