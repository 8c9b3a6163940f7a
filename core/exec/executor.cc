#include "core/exec/executor.h"

#include <cmath>
#include <cstring>

#include "platform/memory.h"
#include "simd/elementwise.h"

namespace thaw {

void RunBackward(const OpCall& call, uint32_t accumulate) {
  const Node& n = *call.node;
  n.op->backward(call);
  for (int i = 0; i < n.num_inputs; ++i) {
    if (!(accumulate & (1u << i))) continue;
    float* grad = n.in[i]->grad;
    simd::Add(grad, call.din[i], grad, call.in_elements(i), *call.pool);
  }
}

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPoison = true;
#else
constexpr bool kPoison = false;
#endif

// Under ASan, buffers become usable at their first step time and poisoned
// after their last.
class Lifetimes {
 public:
  Lifetimes(const MemoryPlan& plan, unsigned char* block, size_t free_bytes)
      : plan_(plan), block_(block), free_bytes_(free_bytes) {
    if (kPoison) PoisonMemory(block_, free_bytes_);
  }
  ~Lifetimes() {
    if (kPoison) UnpoisonMemory(block_, free_bytes_);
  }
  void Begin(int t) const {
    if (!kPoison) return;
    for (int i = 0; i < plan_.size(); ++i) {
      if (plan_[i].first == t) UnpoisonMemory(block_ + plan_[i].offset, plan_[i].bytes);
    }
  }
  void End(int t) const {
    if (!kPoison) return;
    for (int i = 0; i < plan_.size(); ++i) {
      if (plan_[i].last == t) PoisonMemory(block_ + plan_[i].offset, plan_[i].bytes);
    }
  }

 private:
  const MemoryPlan& plan_;
  unsigned char* block_;
  size_t free_bytes_;
};

}  // namespace

LossResult RunProgram(const Program& program, Graph* graph, VariableSet* vars,
                      unsigned char* block, size_t free_bytes, const StepData& data,
                      Loss loss, ThreadPool& pool, uint64_t step, UpdateHook* updates) {
  const ProgramSpec& spec = program.spec();
  const MemoryPlan& plan = program.plan();
  THAW_CHECK(plan.total() <= free_bytes);
  THAW_CHECK(!program.update_in_backward() || updates != nullptr);
  auto at = [&](int buffer) -> unsigned char* {
    return buffer < 0 ? nullptr : block + plan.offset(buffer);
  };
  // 1. Bind every value. A view's root comes before it in graph order.
  const Value* input = spec.input;
  const bool provide = spec.cut_use == CutUse::kProvide;
  for (int v = 0; v < graph->num_values(); ++v) {
    Value& value = *graph->value(v);
    value.grad = reinterpret_cast<float*>(at(program.grad_buffer(v)));
    if (value.variable >= 0) {
      value.data = (*vars)[value.variable].value().data();
      if (program.requires_grad(v) && !program.update_in_backward()) {
        value.grad = vars->gradient_data(value.variable);
      }
    } else if (program.data_buffer(v) >= 0) {
      value.data = reinterpret_cast<float*>(at(program.data_buffer(v)));
    } else if (program.data_root(v) != v) {
      value.data = graph->value(program.data_root(v))->data;
    } else if (provide && program.cut_slot(v) >= 0) {  // read in place, never written
      value.data = data.cache[program.cut_slot(v)] + data.cache_row * value.shape.num_elements();
    } else if (&value == input) {
      value.data = const_cast<float*>(data.x);  // read, never written
    } else if (&value == spec.output && spec.mode == StepMode::kPredict) {
      value.data = data.out;
    } else {
      value.data = nullptr;  // not computed by this program
    }
  }
  const Lifetimes lifetimes(plan, block, free_bytes);
  const size_t batch = spec.batch;

  // 2. The batch, copied in when the program gathers it.
  const int32_t* labels = data.labels;
  const float* targets = data.targets;
  lifetimes.Begin(0);
  if (spec.gather) {
    const size_t row = input->shape.num_elements();
    auto source = [&](size_t r) { return data.index != nullptr ? data.index[r] : r; };
    if (program.data_buffer(input->index) >= 0) {  // not when the cut provides all it feeds
      for (size_t r = 0; r < batch; ++r) {
        std::memcpy(input->data + r * row, data.x + source(r) * row, row * sizeof(float));
      }
    }
    for (size_t i = 0; provide && i < spec.cut.size(); ++i) {
      const Value& value = *graph->value(spec.cut[i]);
      const size_t n = value.shape.num_elements();
      const size_t first = data.index != nullptr ? 0 : data.cache_row;
      for (size_t r = 0; r < batch; ++r) {
        std::memcpy(value.data + r * n, data.cache[i] + (first + source(r)) * n, n * sizeof(float));
      }
    }
    if (program.labels_buffer() >= 0) {
      int32_t* copy = reinterpret_cast<int32_t*>(at(program.labels_buffer()));
      for (size_t r = 0; r < batch; ++r) copy[r] = data.labels[source(r)];
      labels = copy;
    }
    if (program.targets_buffer() >= 0) {
      float* copy = reinterpret_cast<float*>(at(program.targets_buffer()));
      for (size_t r = 0; r < batch; ++r) {
        std::memcpy(copy + r * spec.target_floats, data.targets + source(r) * spec.target_floats,
                    spec.target_floats * sizeof(float));
      }
      targets = copy;
    }
  }
  lifetimes.End(0);

  // 3. Forward.
  OpCall call;
  call.batch = batch;
  call.pool = &pool;
  call.step = step;
  const std::vector<Program::ForwardStep>& forward = program.forward();
  for (size_t k = 0; k < forward.size(); ++k) {
    const int t = 1 + static_cast<int>(k);
    lifetimes.Begin(t);
    const Program::ForwardStep& f = forward[k];
    if (!f.node->op->aliases_input && f.folded_into < 0) {
      // A folded node computes its map into its saved state, for this
      // node's epilogue.
      ChannelAffine affine;
      call.affine = nullptr;
      if (f.affine_from >= 0) {
        const Program::ForwardStep& g = forward[f.affine_from];
        call.node = g.node;
        call.training = g.training;
        call.saved = reinterpret_cast<float*>(at(g.saved));
        THAW_CHECK(g.node->op->channel_affine(call, &affine));
        call.affine = &affine;
      }
      call.node = f.node;
      call.training = f.training;
      call.saved = reinterpret_cast<float*>(at(f.saved));
      call.scratch = reinterpret_cast<float*>(at(f.scratch));
      f.node->op->forward(call);
      call.affine = nullptr;
    }
    lifetimes.End(t);
  }

  // 4. The loss (or Predict's output).
  const int loss_at = program.loss_time();
  LossResult result;
  lifetimes.Begin(loss_at);
  if (spec.cut_use == CutUse::kProduce) {
    for (size_t i = 0; i < spec.cut.size(); ++i) {
      const Value& value = *graph->value(spec.cut[i]);
      const size_t n = value.shape.num_elements();
      std::memcpy(data.cache[i] + data.cache_row * n, value.data, batch * n * sizeof(float));
    }
  } else if (spec.mode == StepMode::kPredict) {
    const Value& out = *spec.output;
    if (out.data != data.out) {
      std::memcpy(data.out, out.data, out.ElementsAt(batch) * sizeof(float));
    }
  } else {
    const Value& logits = *spec.loss_input;
    const size_t outputs = logits.shape.num_elements();
    result = ops::ComputeLoss(loss, logits.data, labels, targets, batch, outputs, logits.grad);
  }
  lifetimes.End(loss_at);
  if (program.update_in_backward() && !std::isfinite(result.sum)) return result;

  // 5. Backward, with the updates due after each call.
  const std::vector<Program::BackwardStep>& backward = program.backward();
  const std::vector<Program::Update>& due = program.updates();
  size_t next_update = 0;
  for (size_t j = 0; j < backward.size(); ++j) {
    const int t = loss_at + 1 + static_cast<int>(j);
    lifetimes.Begin(t);
    const Program::BackwardStep& b = backward[j];
    const Node& n = *b.node;
    call.node = b.node;
    call.training = forward[b.forward].training;
    call.saved = reinterpret_cast<float*>(at(forward[b.forward].saved));
    call.scratch = reinterpret_cast<float*>(at(b.scratch));
    call.mask = b.mask;
    call.dout_masked = b.dout_masked;
    for (int i = 0; i < kMaxNodeInputs; ++i) {
      const uint32_t bit = 1u << i;
      call.din[i] = !(b.wanted & bit)      ? nullptr
                    : (b.accumulate & bit) ? reinterpret_cast<float*>(at(b.temp[i]))
                                           : n.in[i]->grad;
    }
    RunBackward(call, b.accumulate);
    int variables[kMaxNodeInputs];
    float* grads[kMaxNodeInputs];
    int count = 0;
    for (; next_update < due.size() && due[next_update].time == t; ++next_update) {
      THAW_CHECK(count < kMaxNodeInputs);  // the variables are inputs of this node
      variables[count] = due[next_update].variable;
      grads[count++] = graph->value(due[next_update].value)->grad;
    }
    if (count > 0 && !updates->Update(n, variables, grads, count)) return result;
    lifetimes.End(t);
  }
  THAW_CHECK(next_update == due.size());  // every update is due at a backward call
  return result;
}

Status CommitProgram(const Program& program, unsigned char* block, ThreadPool& pool,
                     uint64_t step, const Node** failed) {
  OpCall call;
  call.batch = program.spec().batch;
  call.pool = &pool;
  call.step = step;
  for (const Program::ForwardStep& f : program.forward()) {
    if (f.node->op->commit == nullptr || !f.training) continue;
    call.node = f.node;
    call.training = true;
    call.saved = reinterpret_cast<float*>(block + program.plan().offset(f.saved));
    Status s = f.node->op->commit(call);
    if (!s.ok()) {
      *failed = f.node;
      return s;
    }
  }
  return Status::Ok();
}

}  // namespace thaw
