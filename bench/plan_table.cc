// bench/plan_table.cc — the arenas thaw's planner asks for, before anything
// is built: per model, freeze set, optimizer, SIMD target and thread count.
// Plans are exact (tests/model_plan_test: plan = measured high-water), so
// this is a table of sizes, not a measurement; it runs in milliseconds.
//
//   build/release/bench/thaw_plan_table          (bench/README-style markdown)
//   build/release/bench/thaw_plan_table AVX3 NEON SVE2:512   (those targets only)
#include <cstdio>
#include <string>
#include <vector>

#include "core/io/checkpoint_memory.h"
#include "core/thaw.h"

namespace {

using namespace thaw;

struct Row {
  const char* freeze;  // what is frozen
  const char* optimizer;
  size_t batch;
  StepMode mode;
};

// A model being described, with the layers a freeze set names.
struct Described {
  explicit Described(const char* kind) : model(ThreadPool::Serial()), kind(kind) {
    const std::string k = kind;
    Symbol x, h;
    if (k == "mlp 64-32-10") {
      x = model.Input(Shape{64});
      h = model.Call(Dense::Make(32, Activation::kRelu), x, "hidden");
      output = model.Call(Dense::Make(10), h, "head");
      backbone = {"hidden"};
    } else if (k == "mlp 784-256-128-10") {
      x = model.Input(Shape{784});
      h = model.Call(Dense::Make(256, Activation::kRelu), x, "dense_0");
      h = model.Call(Dense::Make(128, Activation::kRelu), h, "dense_1");
      output = model.Call(Dense::Make(10), h, "head");
      backbone = {"dense_0", "dense_1"};
    } else {  // the reference CNN of bench/run_cnn.sh
      x = model.Input(Shape{28, 28, 1}, Layout::kNHWC);
      h = model.Call(Conv2D::Make(16, 3, 1, Padding::kSame, Activation::kRelu), x, "conv_0");
      h = model.Call(MaxPool2D::Make(2), h);
      h = model.Call(Conv2D::Make(32, 3, 1, Padding::kSame, Activation::kRelu), h, "conv_1");
      h = model.Call(MaxPool2D::Make(2), h);
      h = model.Call(Flatten::Make(), h);
      output = model.Call(Dense::Make(10), h, "head");
      backbone = {"conv_0", "conv_1"};
    }
  }
  // 0: nothing frozen, 1: the backbone, 2: every layer.
  void Freeze(int level) {
    for (const char* name : backbone) model.FindLayer(name)->SetTrainable(level < 1);
    model.FindLayer("head")->SetTrainable(level < 2);
  }
  Model model;
  Symbol output;
  const char* kind;
  std::vector<const char*> backbone;
};

// A checkpoint of the model's freshly drawn weights, for the in-place rows.
std::vector<unsigned char> Checkpoint(const char* kind) {
  Described d(kind);
  Arena arena;
  if (!Arena::Create(8 << 20, &arena).ok() || !d.model.Build(d.output, 1, &arena).ok()) return {};
  size_t size = 0;
  if (!CheckpointSize(d.model.variables(), &size).ok()) return {};
  std::vector<unsigned char> bytes(size);
  if (!SaveCheckpointToMemory(d.model.variables(), Span<unsigned char>(bytes), &size).ok()) {
    return {};
  }
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  // The targets: named on the command line ("AVX3 NEON SVE2:512"), else
  // every target this build compiled plus the other architecture's (x86
  // or 64-bit Arm), all planned from data: none of them need run here.
  std::vector<std::string> names;
  for (int i = 1; i < argc; ++i) names.push_back(argv[i]);
  if (names.empty()) {
    for (const char* name : {"AVX3_DL", "AVX3", "AVX2", "SSE4", "SSSE3", "SVE2_128", "SVE_256",
                             "SVE:256", "SVE2:512", "NEON", "SCALAR"}) {
      names.push_back(name);
    }
  }
  struct Target {
    std::string name;
    simd::TargetDescription description;
  };
  std::vector<Target> targets;
  for (const std::string& name : names) {
    Target t{name, {}};
    const Status s = simd::DescribeTargetNamed(name.c_str(), &t.description);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.message());
      return 1;
    }
    targets.push_back(t);
  }
  std::printf("thaw plan table: arena bytes (ModelPlan::arena_bytes: every batch up to the one "
              "named, and for training also evaluation and prediction)\n");
  std::printf("CPU runs %s; every column is planned from the target's lanes and GEMM tiles "
              "(simd/target_shapes.h), whether or not this CPU runs it; %d cores\n\n",
              simd::DispatchedTargetName(), ThreadPool(0).num_threads());
  SgdOptions plain, momentum;
  momentum.momentum = 0.9f;
  const OptimizerConfig sgd = OptimizerConfig::Sgd(plain);
  const OptimizerConfig sgd_momentum = OptimizerConfig::Sgd(momentum);
  const OptimizerConfig adam = OptimizerConfig::Adam(AdamOptions());
  const Loss loss = Loss::kSparseCategoricalCrossentropyFromLogits;
  struct Model {
    const char* kind;
    size_t batch;
  };
  for (const Model& m : {Model{"mlp 64-32-10", 8}, Model{"mlp 784-256-128-10", 8},
                         Model{"reference cnn", 32}}) {
    const std::vector<unsigned char> checkpoint = Checkpoint(m.kind);
    std::printf("%s, batch %zu\n\n| step | optimizer |", m.kind, m.batch);
    for (const Target& t : targets) {
      for (int threads : {1, 2}) std::printf(" %s %dt |", t.name.c_str(), threads);
    }
    std::printf("\n|---|---|");
    for (size_t i = 0; i < 2 * targets.size(); ++i) std::printf("---:|");
    std::printf("\n");
    struct Step {
      const char* name;
      int frozen;
      bool in_place;
      StepMode mode;
      size_t batch;
    };
    const Step steps[] = {
        {"train, all layers", 0, false, StepMode::kTrain, m.batch},
        {"train, backbone frozen", 1, false, StepMode::kTrain, m.batch},
        {"train, backbone frozen and read in place", 1, true, StepMode::kTrain, m.batch},
        {"predict, batch 1", 0, false, StepMode::kPredict, 1},
        {"predict, batch 1, all frozen and read in place", 2, true, StepMode::kPredict, 1},
    };
    for (const Step& step : steps) {
      for (const auto& o : {std::make_pair("SGD", &sgd), std::make_pair("SGD momentum", &sgd_momentum),
                            std::make_pair("Adam", &adam)}) {
        if (step.mode == StepMode::kPredict && o.second != &sgd) continue;
        std::printf("| %s | %s |", step.name, step.mode == StepMode::kPredict ? "-" : o.first);
        for (const Target& t : targets) {
          for (int threads : {1, 2}) {
            Described d(m.kind);
            d.Freeze(step.frozen);
            PlanOptions options;
            options.batch = step.batch;
            options.mode = step.mode;
            options.output = d.output;
            options.optimizer = o.second;
            options.loss = &loss;
            options.target = t.description.shape->target;
            options.vector_bits =
                t.description.shape->vector_bytes == 0 ? t.description.lanes * 32 : 0;
            options.threads = threads;
            if (step.in_place) options.weights = Span<const unsigned char>(checkpoint);
            ModelPlan plan;
            const Status s = d.model.PlanMemory(options, &plan);
            if (s.ok()) {
              std::printf(" %zu |", plan.arena_bytes);
            } else {
              std::printf(" (%s) |", s.message());
            }
          }
        }
        std::printf("\n");
      }
    }
    std::printf("\n");
  }
  return 0;
}
