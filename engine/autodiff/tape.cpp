#include "engine/autodiff/tape.hpp"

#include "engine/backend/backend.hpp"
#include "engine/core/error.hpp"
#include "engine/core/workspace.hpp"

namespace diffpool {

Tape::Tape(Backend& backend, Workspace& workspace) : backend_(backend), workspace_(workspace) {}

Variable* Tape::constant(Tensor value) {
  variables_.push_back(Variable{std::move(value), Tensor{}, false});
  return &variables_.back();
}

Variable* Tape::parameter(Tensor value, Tensor grad) {
  DP_CHECK(value.shape() == grad.shape(), "parameter {} with gradient {}", value.describe(), grad.describe());
  variables_.push_back(Variable{std::move(value), std::move(grad), true});
  return &variables_.back();
}

Variable* Tape::input(Tensor value, bool requires_grad) {
  variables_.push_back(Variable{std::move(value), Tensor{}, requires_grad});
  return &variables_.back();
}

Variable* Tape::make_output(Tensor value) {
  variables_.push_back(Variable{std::move(value), Tensor{}, false});
  return &variables_.back();
}

void Tape::record(Record record) {
  if (!recording_) return;
  bool needs = false;
  for (Variable* v : record.inputs) needs = needs || (v && v->requires_grad);
  if (!needs) return;
  DP_CHECK(record.output != nullptr, "record of {} without output", op_kind_name(record.kind));
  DP_CHECK(record.backward != nullptr, "record of {} without a backward function", op_kind_name(record.kind));
  record.output->requires_grad = true;
  records_.push_back(record);
}

Tensor& Tape::grad(Variable* v) {
  if (!v->grad.defined()) v->grad = workspace_.zeros(v->value.shape(), v->value.dtype());
  return v->grad;
}

Tape::GradTarget Tape::grad_target(Variable* v) {
  if (v->grad.defined()) return GradTarget{v->grad, 1.0};
  v->grad = workspace_.empty(v->value.shape(), v->value.dtype());
  return GradTarget{v->grad, 0.0};
}

bool Tape::pass_grad(Variable* v, const Tensor& output_grad) {
  if (v->grad.defined() || v->value.shape() != output_grad.shape() || v->value.dtype() != output_grad.dtype())
    return false;
  v->grad = output_grad;
  return true;
}

void Tape::backward(Variable* loss) {
  DP_CHECK(loss->value.numel() == 1, "backward from a loss of shape {}; a one-element loss is needed",
           loss->value.shape().str());
  Tensor& seed = grad(loss);
  backend_.fill(seed, 1.0);
  for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
    const Record& r = *it;
    if (!r.output->grad.defined()) continue;  // no gradient flowed into this op's output
    r.backward(*this, r);
  }
}

void Tape::clear() {
  records_.clear();
  variables_.clear();
}

std::string Tape::describe() const {
  std::string out;
  for (std::size_t i = 0; i < records_.size(); ++i) {
    const Record& r = records_[i];
    out += fmt::format("{:4} {:<18} {}", i, op_kind_name(r.kind), r.output->value.describe());
    out += " <-";
    for (Variable* v : r.inputs)
      if (v) out += fmt::format(" {}", v->value.shape().str());
    out += "\n";
  }
  return out;
}

}  // namespace diffpool
