// thaw/core/ops/dropout.h — Keras Dropout.
//
//   model.Add(thaw::Dropout::Make(0.2f));   // training: zero 20%, scale the rest by 1.25
//
// Training zeroes each input with probability `rate` and scales the rest by
// 1 / (1 - rate); inference is the identity. The mask is a hash of (seed,
// step, element), so a run is reproducible for any thread count; it is saved
// for the backward pass when one runs.
#ifndef THAW_CORE_OPS_DROPOUT_H_
#define THAW_CORE_OPS_DROPOUT_H_

#include <cstdint>
#include <memory>

#include "core/graph/layer.h"
#include "core/graph/op.h"

namespace thaw {

struct DropoutAttrs {
  float rate = 0.0f;
  uint64_t seed = 0;
};

namespace ops {
extern const OpDef kDropout;
}  // namespace ops

class Dropout : public Layer {
 public:
  explicit Dropout(float rate, uint64_t seed = 0) : rate_(rate), seed_(seed) {}
  static std::unique_ptr<Layer> Make(float rate, uint64_t seed = 0) {
    return std::make_unique<Dropout>(rate, seed);
  }
  const char* kind() const override { return "dropout"; }
  float rate() const { return rate_; }
  Status Call(LayerBuilder& builder, Span<Value* const> inputs, Value** output) override;

 private:
  float rate_;
  uint64_t seed_;
};

}  // namespace thaw

#endif  // THAW_CORE_OPS_DROPOUT_H_
