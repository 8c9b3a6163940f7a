#include "core/io/progress.h"

#include <cstdio>

#include "platform/clock.h"
#include "platform/terminal.h"

namespace thaw {

ProgressBar::ProgressBar(Style style)
    : bar_(style == Style::kBar || (style == Style::kAuto && StdoutIsTerminal())) {}

void ProgressBar::OnTrainBegin(const FitInfo& info) { info_ = info; }

void ProgressBar::OnEpochBegin(int epoch) {
  if (bar_) std::printf("Epoch %d/%d\n", epoch + 1, info_.epochs);
  epoch_start_ = MonotonicSeconds();
  last_draw_ = 0.0;
}

void ProgressBar::OnBatchEnd(size_t done, const Metrics& running) {
  const double now = MonotonicSeconds();
  if (!bar_ || (done != info_.steps && now - last_draw_ < 0.1)) return;
  last_draw_ = now;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * done / info_.steps);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '=' : '.';
  if (filled > 0 && filled < kWidth) bar[filled - 1] = '>';
  bar[kWidth] = '\0';
  std::printf("\r%zu/%zu [%s] - %.1fs - loss: %.4f", done, info_.steps, bar,
              now - epoch_start_, running.loss);
  if (info_.accuracy) std::printf(" - accuracy: %.4f", running.accuracy);
  std::fflush(stdout);
}

void ProgressBar::OnEpochEnd(int epoch, const EpochResult& r) {
  if (bar_) {
    std::printf("\r%zu/%zu [==============================] - %.1fs %.3gms/step - loss: %.4f",
                info_.steps, info_.steps, r.seconds, 1e3 * r.step_seconds / r.steps, r.train.loss);
  } else {
    std::printf("Epoch %d/%d - %zu steps - %.2fs - loss: %.4f", epoch + 1, info_.epochs,
                info_.steps, r.seconds, r.train.loss);
  }
  if (info_.accuracy) std::printf(" - accuracy: %.4f", r.train.accuracy);
  if (r.validation.count > 0) {
    std::printf(" - val_loss: %.4f", r.validation.loss);
    if (info_.accuracy) std::printf(" - val_accuracy: %.4f", r.validation.accuracy);
  }
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace thaw
