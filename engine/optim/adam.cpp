#include "engine/optim/adam.hpp"

#include <cmath>

#include "engine/core/error.hpp"

namespace diffpool {

Adam::Adam(ParameterStore& params, AdamSettings settings, double clip_norm)
    : params_(params), settings_(settings), clip_norm_(clip_norm) {
  DP_CHECK(params.allocated(), "Adam needs allocated parameters");
  grad_sumsq_ = allocate_tensor(params.backend(), Shape{1}, params.dtype());
  grad_scale_ = allocate_tensor(params.backend(), Shape{1}, params.dtype());
  params.backend().fill(grad_sumsq_, 0.0);
  params.backend().fill(grad_scale_, 1.0);
}

void Adam::step() {
  Backend& be = params_.backend();
  Tensor grads = params_.grads();
  be.reduce_all(Reduce::dot, grads, &grads, 1.0, 0.0, grad_sumsq_);
  if (clip_norm_ > 0) be.map(MapOp::clip_coefficient, grad_sumsq_, nullptr, Broadcast::full, clip_norm_, 1.0, 0.0, grad_scale_);
  ++step_;
  Tensor values = params_.values(), m = params_.adam_m(), v = params_.adam_v();
  be.adam_step(settings_, step_, grad_scale_, values, grads, m, v);
}

double Adam::last_grad_norm() const { return std::sqrt(read_scalar(params_.backend(), grad_sumsq_)); }

}  // namespace diffpool
