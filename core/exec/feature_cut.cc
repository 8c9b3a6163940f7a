#include "core/exec/feature_cut.h"

#include <algorithm>

#include "core/graph/op.h"

namespace thaw {

namespace {

constexpr uint64_t kInfinite = uint64_t{1} << 62;

}  // namespace

void FeatureCut::Reserve(const Graph& graph) {
  const size_t nv = static_cast<size_t>(graph.num_values());
  size_t inputs = 0;
  for (int i = 0; i < graph.num_nodes(); ++i) inputs += graph.node(i)->num_inputs;
  values_.reserve(nv);
  variables_.reserve(nv);
  for (std::vector<char>* v : {&needed_, &cacheable_, &frontier_, &uses_variable_}) v->reserve(nv);
  const size_t vertices = 2 * nv + 2;
  // Per value its split edge and its edge to the sink, per node input one,
  // and the source's: each with its reverse.
  const size_t edges = 2 * (2 * nv + inputs + 1);
  head_.reserve(vertices);
  parent_edge_.reserve(vertices);
  queue_.reserve(vertices);
  next_.reserve(edges);
  to_.reserve(edges);
  capacity_.reserve(edges);
}

void FeatureCut::AddEdge(int from, int to, uint64_t capacity) {
  THAW_CHECK(to_.size() + 2 <= to_.capacity());  // FeatureCut::Reserve'd for this graph
  for (int k = 0; k < 2; ++k) {
    to_.push_back(k == 0 ? to : from);
    capacity_.push_back(k == 0 ? capacity : 0);
    next_.push_back(head_[k == 0 ? from : to]);
    head_[k == 0 ? from : to] = static_cast<int>(to_.size()) - 1;
  }
}

// Edmonds-Karp: shortest augmenting paths. The networks are a model's
// graph (tens to hundreds of values), so this runs in microseconds.
uint64_t FeatureCut::MaxFlow(int source, int sink) {
  uint64_t flow = 0;
  for (;;) {
    parent_edge_.assign(head_.size(), -1);
    queue_.clear();
    queue_.push_back(source);
    parent_edge_[source] = -2;
    for (size_t q = 0; q < queue_.size() && parent_edge_[sink] == -1; ++q) {
      const int u = queue_[q];
      for (int e = head_[u]; e >= 0; e = next_[e]) {
        if (capacity_[e] == 0 || parent_edge_[to_[e]] != -1) continue;
        parent_edge_[to_[e]] = e;
        queue_.push_back(to_[e]);
      }
    }
    if (parent_edge_[sink] == -1) return flow;
    uint64_t bottleneck = kInfinite;
    for (int v = sink; v != source; v = to_[parent_edge_[v] ^ 1]) {
      bottleneck = std::min(bottleneck, capacity_[parent_edge_[v]]);
    }
    for (int v = sink; v != source; v = to_[parent_edge_[v] ^ 1]) {
      capacity_[parent_edge_[v]] -= bottleneck;
      capacity_[parent_edge_[v] ^ 1] += bottleneck;
    }
    flow += bottleneck;
    if (flow >= kInfinite) return flow;  // an uncuttable path: the input reaches the sink
  }
}

void FeatureCut::Choose(const Graph& graph, const VariableSet& vars, const Bitmap& trainable,
                        const Value* input, const Value* loss_input) {
  const int nv = graph.num_values(), nn = graph.num_nodes();
  THAW_CHECK(static_cast<size_t>(nv) <= needed_.capacity());  // Reserve'd for this graph
  values_.clear();
  variables_.clear();
  example_floats_ = 0;
  needed_.assign(nv, 0);
  cacheable_.assign(nv, 0);
  frontier_.assign(nv, 0);
  uses_variable_.assign(nv, 0);
  auto frozen = [&](int var) {
    return vars.role(var) != VariableRole::kParameter || !trainable.Test(var);
  };

  // 1. The nodes a training step runs (as Program::Compile finds them).
  needed_[loss_input->index] = 1;
  for (int i = nn - 1; i >= 0; --i) {
    const Node& n = *graph.node(i);
    if (!needed_[n.out->index]) continue;
    for (int k = 0; k < n.num_inputs; ++k) needed_[n.in[k]->index] = 1;
  }
  // 2. Cacheable values, in graph order.
  cacheable_[input->index] = 1;
  for (int i = 0; i < nn; ++i) {
    const Node& n = *graph.node(i);
    if (!needed_[n.out->index] || !n.out->batched) continue;
    bool ok = true, has_parameter = false, trains = false;
    for (int k = 0; k < n.num_inputs && ok; ++k) {
      const Value& u = *n.in[k];
      if (u.variable >= 0) {
        const bool parameter = vars.role(u.variable) == VariableRole::kParameter;
        has_parameter |= parameter;
        trains |= parameter && trainable.Test(u.variable);
        ok = frozen(u.variable);
      } else {
        ok = u.batched && cacheable_[u.index];
      }
    }
    // The node's mode in a training step (core/exec/program.h).
    const bool training_mode = !has_parameter || trains;
    if (ok && training_mode && (n.op->training_differs || n.op->commit != nullptr)) ok = false;
    cacheable_[n.out->index] = ok;
  }
  // 3. The frontier: cacheable values the rest of the step reads.
  for (int i = 0; i < nn; ++i) {
    const Node& n = *graph.node(i);
    if (!needed_[n.out->index] || cacheable_[n.out->index]) continue;
    for (int k = 0; k < n.num_inputs; ++k) {
      if (n.in[k]->variable < 0 && cacheable_[n.in[k]->index]) frontier_[n.in[k]->index] = 1;
    }
  }
  if (cacheable_[loss_input->index]) frontier_[loss_input->index] = 1;
  frontier_[input->index] = 0;  // read where it is: nothing to cache
  bool any = false;
  for (int v = 0; v < nv; ++v) any |= frontier_[v] != 0;
  if (!any) return;

  // 4. The minimum vertex cut between the input and the frontier. A value's
  // capacity is its floats per example (scaled), plus a tie-break that makes
  // later values cheaper; the input cannot be cut.
  const int source = 2 * nv, sink = 2 * nv + 1;
  head_.assign(2 * nv + 2, -1);
  next_.clear();
  to_.clear();
  capacity_.clear();
  constexpr uint64_t kTieBits = 12, kMaxFloats = uint64_t{1} << 32;
  auto capacity = [&](int v) {
    const uint64_t floats = std::min<uint64_t>(graph.value(v)->shape.num_elements(), kMaxFloats);
    const uint64_t tie = nv < (1 << kTieBits) ? static_cast<uint64_t>(nv - v) : 0;
    return (floats << kTieBits) + tie;
  };
  AddEdge(source, 2 * input->index + 1, kInfinite);
  for (int v = 0; v < nv; ++v) {
    if (!cacheable_[v] || v == input->index) continue;
    AddEdge(2 * v, 2 * v + 1, capacity(v));
    if (frontier_[v]) AddEdge(2 * v + 1, sink, kInfinite);
  }
  for (int i = 0; i < nn; ++i) {
    const Node& n = *graph.node(i);
    if (!cacheable_[n.out->index] || !needed_[n.out->index]) continue;
    for (int k = 0; k < n.num_inputs; ++k) {
      if (n.in[k]->variable < 0) AddEdge(2 * n.in[k]->index + 1, 2 * n.out->index, kInfinite);
    }
  }
  if (MaxFlow(source, sink) >= kInfinite) return;
  // The cut: values whose entry the source still reaches and whose exit it
  // does not (parent_edge_ holds the last search's reach).
  for (int v = 0; v < nv; ++v) {
    if (!cacheable_[v] || v == input->index) continue;
    if (parent_edge_[2 * v] != -1 && parent_edge_[2 * v + 1] == -1) {
      values_.push_back(v);
      example_floats_ += graph.value(v)->shape.num_elements();
    }
  }
  // 5. The variables the cut is computed from: those of the nodes between
  // the input and the cut (needed_ is reused to mark them).
  needed_.assign(nv, 0);
  for (int v : values_) needed_[v] = 1;
  for (int i = nn - 1; i >= 0; --i) {
    const Node& n = *graph.node(i);
    if (!needed_[n.out->index]) continue;
    for (int k = 0; k < n.num_inputs; ++k) {
      const Value& u = *n.in[k];
      if (u.variable >= 0) {
        uses_variable_[u.variable] = 1;
      } else if (u.index != input->index) {
        needed_[u.index] = 1;
      }
    }
  }
  for (int var = 0; var < nv; ++var) {
    if (uses_variable_[var]) variables_.push_back(var);
  }
}

}  // namespace thaw
