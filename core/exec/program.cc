#include "core/exec/program.h"

#include <algorithm>

#include "core/graph/op.h"

namespace thaw {

void Program::Reserve(const Graph& graph) {
  const size_t values = static_cast<size_t>(graph.num_values());
  const size_t nodes = static_cast<size_t>(graph.num_nodes());
  forward_.reserve(nodes);
  backward_.reserve(nodes);
  for (std::vector<char>* v : {&needed_, &requires_grad_, &reaches_, &written_}) {
    v->reserve(values);
  }
  for (std::vector<int>* v : {&data_root_, &first_, &last_, &data_buffer_, &cut_slot_, &grad_root_,
                              &grad_first_, &grad_last_, &grad_buffer_, &writers_, &readers_}) {
    v->reserve(values);
  }
  backward_time_.reserve(nodes);
  updates_.reserve(values);
  stepped_.reserve(values);
  // A buffer per value (data and gradient), per node its saved state, its
  // two scratch calls and a term per input, and the gathered labels/targets.
  plan_.Reserve(2 * values + nodes * (3 + kMaxNodeInputs) + 2);
}

void Program::Compile(const Graph& graph, const VariableSet& vars, const Bitmap& trainable,
                      const ProgramSpec& spec) {
  spec_ = spec;
  const int nv = graph.num_values(), nn = graph.num_nodes();
  const bool training = spec.mode == StepMode::kTrain;
  const bool predict = spec.mode == StepMode::kPredict;
  const bool provide = spec.cut_use == CutUse::kProvide;
  const bool produce = spec.cut_use == CutUse::kProduce;
  THAW_CHECK(spec.input != nullptr &&
             (produce || (predict ? spec.output : spec.loss_input) != nullptr));
  THAW_CHECK(!produce || (predict && spec.cut.size() > 0));  // a produce program predicts
  THAW_CHECK(!provide || (training && spec.cut.size() > 0));
  THAW_CHECK(static_cast<size_t>(nv) <= needed_.capacity());  // Reserve'd for this graph
  forward_.clear();
  backward_.clear();
  plan_.Clear();
  needed_.assign(nv, 0);
  requires_grad_.assign(nv, 0);
  reaches_.assign(nv, 0);
  written_.assign(nv, 0);
  data_root_.assign(nv, -1);
  first_.assign(nv, -1);
  last_.assign(nv, -1);
  data_buffer_.assign(nv, -1);
  cut_slot_.assign(nv, -1);
  for (size_t i = 0; i < spec.cut.size(); ++i) cut_slot_[spec.cut[i]] = static_cast<int>(i);
  grad_root_.assign(nv, -1);
  grad_first_.assign(nv, -1);
  grad_last_.assign(nv, -1);
  grad_buffer_.assign(nv, -1);
  writers_.assign(nv, 0);
  readers_.assign(nv, 0);
  backward_time_.assign(nn, -1);
  updates_.clear();
  stepped_.clear();
  update_in_backward_ = training && !vars.gradient_buffers();
  gradient_bytes_ = 0;
  labels_buffer_ = targets_buffer_ = -1;
  first_backward_layer_ = -1;
  auto bytes = [&](int v) { return graph.value(v)->ElementsAt(spec.batch) * sizeof(float); };

  // 1. Forward: the nodes the target depends on, in graph order (the cut's
  // values for a produce program; a provide program does not look behind
  // them).
  const Value* target = produce ? nullptr : predict ? spec.output : spec.loss_input;
  if (produce) {
    for (int v : spec.cut) needed_[v] = 1;
  } else {
    needed_[target->index] = 1;
  }
  auto provided = [&](int v) { return provide && cut_slot_[v] >= 0; };
  for (int i = nn - 1; i >= 0; --i) {
    const Node& n = *graph.node(i);
    if (!needed_[n.out->index] || provided(n.out->index)) continue;
    for (int k = 0; k < n.num_inputs; ++k) needed_[n.in[k]->index] = 1;
  }
  for (int i = 0; i < nn; ++i) {
    const Node* n = graph.node(i);
    if (!needed_[n->out->index] || provided(n->out->index)) continue;
    ForwardStep f;
    f.node = const_cast<Node*>(n);
    forward_.push_back(f);
  }
  const int num_forward = static_cast<int>(forward_.size());
  const int loss_at = num_forward + 1;
  // Each node's mode: training unless it has parameters and all are frozen.
  for (ForwardStep& f : forward_) {
    bool has_parameter = false, trains = false;
    for (int i = 0; i < f.node->num_inputs; ++i) {
      const int var = f.node->in[i]->variable;
      if (var < 0 || vars.role(var) != VariableRole::kParameter) continue;
      has_parameter = true;
      trains = trains || trainable.Test(var);
    }
    f.training = training && (!has_parameter || trains);
  }

  // 2. What depends on a trainable parameter, through ops with a gradient.
  for (int v = 0; v < nv; ++v) {
    const int var = graph.value(v)->variable;
    requires_grad_[v] = training && var >= 0 && trainable.Test(var) &&
                        vars.role(var) == VariableRole::kParameter;
  }
  for (const ForwardStep& f : forward_) {
    const Node& n = *f.node;
    if (n.op->backward == nullptr) continue;
    for (int k = 0; k < n.num_inputs; ++k) {
      if (requires_grad_[n.in[k]->index]) requires_grad_[n.out->index] = 1;
    }
  }

  // 3. Backward, from the loss, pruned: a node runs only if its output
  // depends on a trainable parameter and its gradient reaches back from the
  // loss, and asks only for the gradients of inputs that depend on one.
  const int loss_input = predict ? -1 : spec.loss_input->index;
  if (training && requires_grad_[loss_input]) {
    reaches_[loss_input] = 1;
    for (int k = num_forward - 1; k >= 0; --k) {
      const Node& n = *forward_[k].node;
      if (!requires_grad_[n.out->index] || !reaches_[n.out->index]) continue;
      BackwardStep b;
      b.node = forward_[k].node;
      b.forward = k;
      for (int i = 0; i < n.num_inputs; ++i) {
        if (!requires_grad_[n.in[i]->index]) continue;
        b.wanted |= 1u << i;
        reaches_[n.in[i]->index] = 1;
      }
      backward_time_[n.index] = loss_at + 1 + static_cast<int>(backward_.size());
      backward_.push_back(b);
      if (n.layer >= 0 && (first_backward_layer_ < 0 || n.layer < first_backward_layer_)) {
        first_backward_layer_ = n.layer;
      }
    }
  }

  // 3b. Folds: a node that is, in its mode, a per-channel affine map of its
  // input (a frozen BatchNormalization) runs inside the epilogue of the node
  // producing that input, when nothing else needs the unmapped values: the
  // input is read by the folded node alone and is not the target, the
  // producer ends with no activation (the map comes after its bias, before
  // any activation) and neither node runs backward.
  for (const ForwardStep& f : forward_) {
    for (int i = 0; i < f.node->num_inputs; ++i) ++readers_[f.node->in[i]->index];
  }
  for (int k = 0; k < num_forward; ++k) {
    ForwardStep& f = forward_[k];
    const Node& n = *f.node;
    const Value& u = *n.in[0];
    if (n.op->channel_affine == nullptr || backward_time_[n.index] >= 0 ||
        readers_[u.index] != 1 || &u == target || u.producer == nullptr ||
        cut_slot_[u.index] >= 0) {
      continue;
    }
    OpCall ask;
    ask.node = &n;
    ask.training = f.training;
    if (!n.op->channel_affine(ask, nullptr)) continue;
    const Node& p = *u.producer;
    if (!p.op->takes_affine || FinalActivationOf(p) != Activation::kLinear ||
        backward_time_[p.index] >= 0) {
      continue;
    }
    for (int j = k - 1; j >= 0; --j) {
      if (forward_[j].node != &p) continue;
      forward_[j].affine_from = k;
      f.folded_into = j;
      break;
    }
  }

  // 3c. Masks: a ReLU or ReLU6 output read by one node alone, which can
  // apply that activation's derivative to the gradient it writes (max
  // pooling), has it applied there, not in a pass of its producer's own
  // over dy. Not for the target or a cut value (read by others too).
  for (BackwardStep& b : backward_) {
    const Value& u = *b.node->in[0];
    if (!b.node->op->masks_input || (b.wanted & 1u) == 0 || readers_[u.index] != 1 ||
        &u == target || cut_slot_[u.index] >= 0 || u.producer == nullptr ||
        backward_time_[u.producer->index] < 0) {
      continue;
    }
    const Activation f = FinalActivationOf(*u.producer);
    if (f != Activation::kRelu && f != Activation::kRelu6) continue;
    b.mask = f;
    backward_[backward_time_[u.producer->index] - loss_at - 1].dout_masked = true;
  }

  // 4. Values: who holds the bytes (a view holds its input's), first written,
  // last read, forward or backward.
  for (int v = 0; v < nv; ++v) data_root_[v] = v;
  auto read = [&](const Value* v, int t) {
    const int r = data_root_[v->index];
    last_[r] = std::max(last_[r], t);
  };
  if (spec.gather && needed_[spec.input->index]) first_[spec.input->index] = 0;
  if (provide && spec.gather) {
    for (int v : spec.cut) first_[v] = 0;  // gathered with the batch
  }
  for (int k = 0; k < num_forward; ++k) {
    const Node& n = *forward_[k].node;
    if (n.op->aliases_input || forward_[k].folded_into >= 0) {
      data_root_[n.out->index] = data_root_[n.in[0]->index];
      continue;
    }
    for (int i = 0; i < n.num_inputs; ++i) read(n.in[i], 1 + k);
    first_[n.out->index] = 1 + k;
  }
  const int output = predict && !produce ? spec.output->index : -1;
  const bool to_caller =
      output >= 0 && spec.output_to_caller && data_root_[output] == output;
  if (produce) {
    for (int v : spec.cut) read(graph.value(v), loss_at);  // copied into the cache at the end
  } else if (!predict) {
    read(spec.loss_input, loss_at);
  } else if (!to_caller) {
    read(spec.output, loss_at);  // copied out at the end
  }
  for (const BackwardStep& b : backward_) {
    const Node& n = *b.node;
    const BackwardReads reads = ReadsOf(n, b.wanted, forward_[b.forward].training);
    for (int i = 0; i < n.num_inputs; ++i) {
      if (reads.inputs & (1u << i)) read(n.in[i], backward_time_[n.index]);
    }
    if (reads.output) read(n.out, backward_time_[n.index]);
  }
  for (int v = 0; v < nv; ++v) {
    if (data_root_[v] != v || first_[v] < 0 || (to_caller && v == output)) continue;
    const int last = std::max(first_[v], last_[v]);
    data_buffer_[v] = plan_.Add(bytes(v), last > loss_at ? Region::kActivations : Region::kScratch,
                                first_[v], last,
                                v == spec.input->index ? "input"
                                : provided(v)          ? "cached"
                                                       : "output",
                                v);
  }

  // 5. Saved state and scratch of each call.
  for (int k = 0; k < num_forward; ++k) {
    ForwardStep& f = forward_[k];
    const Node& n = *f.node;
    const int t = 1 + (f.folded_into >= 0 ? f.folded_into : k);  // folded: with its producer
    const size_t saved = SavedFloatsOf(n, spec.batch, f.training);
    if (saved > 0) {
      // Until the node's backward call, or the commit that reads it.
      const int last = n.op->commit != nullptr && f.training
                           ? commit_time()
                           : std::max(t, backward_time_[n.index]);
      f.saved = plan_.Add(saved * sizeof(float),
                          last > loss_at ? Region::kActivations : Region::kScratch, t, last,
                          "saved", n.index);
    }
    const size_t scratch = ScratchFloatsOf(n, spec.batch, spec.threads, Pass::kForward, 0);
    if (scratch > 0) f.scratch = plan_.Add(scratch * sizeof(float), Region::kScratch, t, t, "scratch", n.index);
  }
  for (BackwardStep& b : backward_) {
    const Node& n = *b.node;
    const int t = backward_time_[n.index];
    const size_t scratch = ScratchFloatsOf(n, spec.batch, spec.threads, Pass::kBackward, b.wanted);
    if (scratch > 0) b.scratch = plan_.Add(scratch * sizeof(float), Region::kScratch, t, t, "scratch", n.index);
  }

  // 6. Gradients. The loss writes its input's; each backward node writes
  // those of its wanted inputs. The first writer of a value writes its
  // buffer (a trainable parameter's persistent gradient, or a planned one);
  // later writers write a term that is added in. A view's input shares the
  // view's gradient when the view is its only writer. With update in the
  // backward pass, parameters' gradients are planned too, and grad_last_
  // of a parameter is its last write.
  for (int v = 0; v < nv; ++v) grad_root_[v] = v;
  for (const BackwardStep& b : backward_) {
    for (int i = 0; i < b.node->num_inputs; ++i) {
      if (b.wanted & (1u << i)) ++writers_[b.node->in[i]->index];
    }
  }
  for (const BackwardStep& b : backward_) {
    const Node& n = *b.node;
    const Value& u = *n.in[0];
    if (n.op->aliases_input && writers_[u.index] == 1 && u.variable < 0) {
      grad_root_[u.index] = grad_root_[n.out->index];
    }
  }
  auto write = [&](const Value& u, int t) -> bool {  // true: the first write
    const bool planned = u.variable < 0 || update_in_backward_;
    if (u.variable >= 0 && planned) grad_last_[u.index] = t;  // writes come in time order
    if (written_[u.index]) return false;
    written_[u.index] = 1;
    const int r = grad_root_[u.index];
    if (planned && grad_first_[r] < 0) grad_first_[r] = t;
    return true;
  };
  if (!backward_.empty()) write(*spec.loss_input, loss_at);
  for (BackwardStep& b : backward_) {
    const Node& n = *b.node;
    const int t = backward_time_[n.index];
    const int dout = grad_root_[n.out->index];
    grad_last_[dout] = std::max(grad_last_[dout], t);
    for (int i = 0; i < n.num_inputs; ++i) {
      if (!(b.wanted & (1u << i))) continue;
      if (write(*n.in[i], t)) continue;
      b.accumulate |= 1u << i;
      b.temp[i] = plan_.Add(bytes(n.in[i]->index), Region::kScratch, t, t, "gradient term",
                            n.in[i]->index);
    }
  }
  for (int v = 0; v < nv; ++v) {
    const int variable = graph.value(v)->variable;
    if (variable >= 0 && written_[v]) stepped_.push_back(variable);
  }
  std::sort(stepped_.begin(), stepped_.end());
  for (int v = 0; v < nv; ++v) {
    if (grad_root_[v] != v || grad_first_[v] < 0) continue;
    const int variable = graph.value(v)->variable;
    if (variable >= 0) {
      // Updated once its last write and the last backward read of its
      // value (last_, from part 4) are done.
      Update u;
      u.time = std::max(grad_last_[v], last_[v]);
      u.variable = variable;
      u.value = v;
      updates_.push_back(u);
      grad_buffer_[v] = plan_.Add(bytes(v), Region::kGradients, grad_first_[v], u.time,
                                  "gradient", v);
      continue;
    }
    grad_buffer_[v] = plan_.Add(bytes(v), Region::kScratch, grad_first_[v],
                                std::max(grad_first_[v], grad_last_[v]), "gradient", v);
  }
  // In time order; at one time, in variable order (the same bits in any
  // order: each update reads only its own variable's gradient and state).
  std::sort(updates_.begin(), updates_.end(), [](const Update& a, const Update& b) {
    return a.time != b.time ? a.time < b.time : a.variable < b.variable;
  });
  for (int v = 0; v < nv; ++v) grad_buffer_[v] = grad_buffer_[grad_root_[v]];

  // 7. The gathered labels or targets, read by the loss.
  if (spec.gather && !predict) {
    if (spec.label_bytes > 0) {
      labels_buffer_ = plan_.Add(spec.batch * spec.label_bytes, Region::kScratch, 0, loss_at,
                                 "labels");
    }
    if (spec.target_floats > 0) {
      targets_buffer_ = plan_.Add(spec.batch * spec.target_floats * sizeof(float),
                                  Region::kScratch, 0, loss_at, "targets");
    }
  }
  plan_.PlaceByLifetime();
  if (update_in_backward_) {
    gradient_bytes_ = std::min(plan_.PeakRegionBytes(Region::kGradients),
                               plan_.total() - activation_bytes());
  }
}

}  // namespace thaw
