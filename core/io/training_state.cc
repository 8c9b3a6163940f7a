#include "core/io/training_state.h"

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "core/io/safetensors_file.h"
#include "core/train/optimizers.h"

namespace thaw {
namespace {

constexpr char kPrefix[] = "optimizer/";
constexpr char kStep[] = "step";

std::string Format(const char* format, double value) {
  char text[40];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

std::string StateName(const std::string& variable, const char* what) {
  return kPrefix + variable + "/" + what;
}

// Metadata `key` parsed by `parse` (returns false on a malformed value).
template <class Parse>
Status ReadMetadata(const char* p, const safetensors::Metadata& metadata, const char* key,
                    Parse&& parse) {
  const std::string* value = safetensors::Find(metadata, key);
  if (value == nullptr) {
    return DataLoss("%s: the training state has no \"%s\" in its metadata", p, key);
  }
  if (!parse(*value)) {
    return DataLoss("%s: the training state's \"%s\" is \"%s\", which is not what it should hold",
                    p, key, value->c_str());
  }
  return Status::Ok();
}

bool ParseUnsigned(const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 20 || text.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  errno = 0;
  *out = std::strtoull(text.c_str(), nullptr, 10);
  return errno == 0;
}

bool ParseDouble(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

// Everything a load will change, checked and ready to apply.
struct Restore {
  std::vector<bool> trainable;
  std::vector<safetensors::VariableCopy> variables;
  // Per variable: its slot tensors and step, when the file has its state.
  std::vector<std::vector<const safetensors::Entry*>> slots;
  std::vector<uint64_t> steps;
  float learning_rate = 0.0f;
  uint64_t model_steps = 0;
  FitPosition position;
};

// Checks the file against the model and fills *r; changes nothing.
Status Check(const char* p, const safetensors::Contents& contents, Model& model, Restore* r) {
  VariableSet& vars = model.variables();
  Optimizer& optimizer = *model.optimizer();
  const safetensors::Metadata& metadata = contents.metadata;
  THAW_RETURN_IF_ERROR(ReadMetadata(p, metadata, "thaw.training_state",
                                    [](const std::string& v) { return v == "1"; }));
  const std::string* kind = safetensors::Find(metadata, "thaw.optimizer");
  if (kind == nullptr) return DataLoss("%s: the training state names no optimizer", p);
  if (*kind != optimizer.kind()) {
    return FailedPrecondition("%s: the training state holds the state of %s, but the model is "
                              "compiled with %s; compile it as the saved run was",
                              p, kind->c_str(), optimizer.kind());
  }
  const int n = vars.size();
  THAW_RETURN_IF_ERROR(ReadMetadata(p, metadata, "thaw.trainable", [&](const std::string& v) {
    if (v.size() != static_cast<size_t>(n)) return false;
    r->trainable.assign(n, false);
    for (int i = 0; i < n; ++i) {
      if (v[i] != '0' && v[i] != '1') return false;
      if (v[i] == '1' && vars.role(i) != VariableRole::kParameter) return false;
      r->trainable[i] = v[i] == '1';
    }
    return true;
  }));
  THAW_RETURN_IF_ERROR(ReadMetadata(p, metadata, "thaw.learning_rate", [&](const std::string& v) {
    double rate;
    if (!ParseDouble(v, &rate)) return false;
    r->learning_rate = static_cast<float>(rate);
    return rate >= 0.0 && std::isfinite(r->learning_rate);
  }));
  THAW_RETURN_IF_ERROR(ReadMetadata(p, metadata, "thaw.model_steps", [&](const std::string& v) {
    return ParseUnsigned(v, &r->model_steps);
  }));
  uint64_t epoch = 0, step = 0;
  THAW_RETURN_IF_ERROR(ReadMetadata(p, metadata, "thaw.fit.epoch", [&](const std::string& v) {
    return ParseUnsigned(v, &epoch) && epoch <= INT32_MAX;
  }));
  THAW_RETURN_IF_ERROR(ReadMetadata(p, metadata, "thaw.fit.step", [&](const std::string& v) {
    return ParseUnsigned(v, &step) && step <= SIZE_MAX;
  }));
  r->position.epoch = static_cast<int>(epoch);
  r->position.step = static_cast<size_t>(step);
  THAW_RETURN_IF_ERROR(ReadMetadata(p, metadata, "thaw.fit.loss_sum", [&](const std::string& v) {
    return ParseDouble(v, &r->position.loss_sum);
  }));
  THAW_RETURN_IF_ERROR(ReadMetadata(p, metadata, "thaw.fit.correct_sum", [&](const std::string& v) {
    return ParseDouble(v, &r->position.correct_sum);
  }));

  // The variables, as a strict checkpoint load; the optimizer's tensors aside.
  THAW_RETURN_IF_ERROR(safetensors::MatchVariables(p, contents, vars, LoadOptions(), kPrefix,
                                                   &r->variables));
  // The optimizer's tensors: "optimizer/<variable>/<slot or step>", for
  // variables the file has trainable; all of a variable's or none.
  const int slots = optimizer.slots();
  r->slots.assign(n, std::vector<const safetensors::Entry*>(slots, nullptr));
  r->steps.assign(n, 0);
  std::vector<const safetensors::Entry*> step_entry(n, nullptr);
  for (const safetensors::Entry& e : contents.entries) {
    if (e.name.rfind(kPrefix, 0) != 0) continue;
    const size_t slash = e.name.rfind('/');
    if (slash < sizeof(kPrefix)) {
      return InvalidArgument("%s: %s: optimizer state is named optimizer/<variable>/<what>", p,
                             e.name.c_str());
    }
    const std::string owner = e.name.substr(sizeof(kPrefix) - 1, slash - (sizeof(kPrefix) - 1));
    const std::string what = e.name.substr(slash + 1);
    const Variable variable = vars.Find(owner);
    const int index = variable.valid() ? variable.index() : -1;
    if (index < 0 || !r->trainable[index]) {
      return InvalidArgument("%s: %s: optimizer state for %s, which %s", p, e.name.c_str(),
                             owner.c_str(),
                             index < 0 ? "the model does not have" : "the file has frozen");
    }
    if (what == kStep) {
      if (e.dtype != "I64" || !e.dims.empty()) {
        return InvalidArgument("%s: %s: a step count is a scalar I64, the file has %s of %zu "
                               "dimensions",
                               p, e.name.c_str(), e.dtype.c_str(), e.dims.size());
      }
      int64_t count;
      std::memcpy(&count, contents.data + e.begin, 8);
      if (count < 0) return InvalidArgument("%s: %s: a negative step count", p, e.name.c_str());
      r->steps[index] = static_cast<uint64_t>(count);
      step_entry[index] = &e;
      continue;
    }
    int slot = -1;
    for (int s = 0; s < slots; ++s) {
      if (what == optimizer.slot_name(s)) slot = s;
    }
    if (slot < 0) {
      return InvalidArgument("%s: %s: %s keeps no state called \"%s\"", p, e.name.c_str(),
                             optimizer.kind(), what.c_str());
    }
    THAW_RETURN_IF_ERROR(safetensors::CheckBuffer(p, contents, e, vars, index, false));
    r->slots[index][slot] = &e;
  }
  for (int i = 0; i < n; ++i) {
    int present = step_entry[i] != nullptr;
    for (int s = 0; s < slots; ++s) present += r->slots[i][s] != nullptr;
    if (present != 0 && present != slots + 1) {
      return DataLoss("%s: %s: the file has part of this variable's optimizer state (%d of %d "
                      "tensors)",
                      p, vars.name(i).c_str(), present, slots + 1);
    }
  }
  return Status::Ok();
}

// Applies a checked restore. Only the freeze set's new layout can fail (the
// arena is too small for it); then nothing has changed.
Status Apply(const safetensors::Contents& contents, const Restore& r, Model& model) {
  VariableSet& vars = model.variables();
  const Bitmap before = vars.trainable_bits();
  auto set_flags = [&](auto trainable_of) {
    for (int i = 0; i < vars.size(); ++i) {
      if (vars.role(i) != VariableRole::kParameter) continue;
      const Status s = vars.SetTrainable(vars[i], trainable_of(i));
      THAW_CHECK(s.ok());  // parameters of this set
    }
  };
  set_flags([&](int i) { return r.trainable[i]; });
  const Status prepared = vars.Prepare();
  if (!prepared.ok()) {
    set_flags([&](int i) { return before.Test(i); });
    return prepared;
  }
  safetensors::CopyVariables(contents, r.variables, &vars);
  // Trainable variables get the file's state, or none (zeros, step 0: as if
  // just thawed) when the file has none for them.
  for (int i = 0; i < vars.size(); ++i) {
    if (!vars.planned_trainable(i)) continue;
    const size_t n = vars.shape(i).num_elements();
    for (size_t s = 0; s < r.slots[i].size(); ++s) {
      float* slot = vars.slot_data(i, static_cast<int>(s));
      if (r.slots[i][s] != nullptr) {
        safetensors::CopyBuffer(contents, *r.slots[i][s], vars, i, slot);
      } else {
        std::memset(slot, 0, n * sizeof(float));
      }
    }
    vars.steps(i) = r.steps[i];
  }
  model.optimizer()->SetLearningRate(r.learning_rate);
  model.set_step_count(r.model_steps);
  return Status::Ok();
}

Status Save(Model& model, const FitPosition& position, const std::string& path) {
  VariableSet& vars = model.variables();
  Optimizer& optimizer = *model.optimizer();
  std::vector<safetensors::OutTensor> tensors = safetensors::CheckpointTensors(vars, {});
  std::vector<int64_t> steps;  // the step counts' bytes, in place before they are written
  steps.reserve(vars.size());
  std::string trainable;
  for (int i = 0; i < vars.size(); ++i) trainable += vars.trainable(i) ? '1' : '0';
  for (int i = 0; i < vars.size(); ++i) {
    // State exists for the variables the last step trained; it is saved for
    // those still trainable (a variable frozen since loses it at the next
    // step anyway, and one thawed since starts from zero).
    if (!vars.planned_trainable(i) || !vars.trainable(i)) continue;
    for (int s = 0; s < optimizer.slots(); ++s) {
      tensors.push_back(safetensors::VariableTensor(
          vars, i, StateName(vars.name(i), optimizer.slot_name(s)), vars.slot_data(i, s)));
    }
    steps.push_back(static_cast<int64_t>(vars.steps(i)));  // little-endian, as the file
    safetensors::OutTensor step;
    step.name = StateName(vars.name(i), kStep);
    step.int64 = true;
    step.bytes = 8;
    step.variable = i;
    step.raw = reinterpret_cast<const unsigned char*>(&steps.back());
    tensors.push_back(std::move(step));
  }
  const safetensors::Metadata metadata = {
      {"thaw.training_state", "1"},
      {"thaw.optimizer", optimizer.kind()},
      {"thaw.learning_rate", Format("%.9g", optimizer.learning_rate())},
      {"thaw.trainable", trainable},
      {"thaw.model_steps", std::to_string(model.step_count())},
      {"thaw.fit.epoch", std::to_string(position.epoch)},
      {"thaw.fit.step", std::to_string(position.step)},
      {"thaw.fit.loss_sum", Format("%.17g", position.loss_sum)},
      {"thaw.fit.correct_sum", Format("%.17g", position.correct_sum)},
  };
  return safetensors::Write(path, vars, tensors, metadata);
}

Status CheckModel(const char* p, Model* model) {
  if (model == nullptr || !model->built() || model->optimizer() == nullptr) {
    return FailedPrecondition("%s: a training state needs a built and compiled model", p);
  }
  return Status::Ok();
}

}  // namespace

Status SaveTrainingState(Model& model, const FitPosition& position, const std::string& path) {
  THAW_RETURN_IF_ERROR(CheckModel(path.c_str(), &model));
  if (position.epoch < 0) {
    return InvalidArgument("%s: the position's epoch is %d", path.c_str(), position.epoch);
  }
  if (!safetensors::kHostIsLittleEndian) return safetensors::BigEndianHost(path.c_str());
  return ResourceExhaustedOnBadAlloc(path.c_str(), [&] { return Save(model, position, path); });
}

Status LoadTrainingState(const std::string& path, Model* model, FitPosition* position) {
  const char* p = path.c_str();
  THAW_RETURN_IF_ERROR(CheckModel(p, model));
  THAW_CHECK(position != nullptr);
  if (!safetensors::kHostIsLittleEndian) return safetensors::BigEndianHost(p);
  return ResourceExhaustedOnBadAlloc(p, [&]() -> Status {
    safetensors::Contents contents;
    THAW_RETURN_IF_ERROR(safetensors::Read(path, &contents));
    Restore restore;
    THAW_RETURN_IF_ERROR(Check(p, contents, *model, &restore));
    THAW_RETURN_IF_ERROR(Apply(contents, restore, *model));
    *position = restore.position;
    return Status::Ok();
  });
}

Status TrainingStateSaver::OnStepEnd(const FitPosition& next) {
  ++steps_;
  if (steps_ % every_steps_ != 0 && next.step != 0) return Status::Ok();
  THAW_RETURN_IF_ERROR(SaveTrainingState(*model_, next, path_));
  ++saves_;
  return Status::Ok();
}

}  // namespace thaw
