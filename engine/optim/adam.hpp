#pragma once
// Adam over the flat parameter arenas, with optional gradient-norm clipping.
//
// step(): scale = min(1, max_norm / (||g||_2 + 1e-6)) is computed on the device (no host round
// trip), then one fused loop updates every parameter: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), as torch.optim.Adam with
// torch.nn.utils.clip_grad_norm_.
#include <cstdint>

#include "engine/backend/backend.hpp"
#include "engine/nn/parameters.hpp"

namespace diffpool {

class Adam {
 public:
  Adam(ParameterStore& params, AdamSettings settings, double clip_norm);
  // One update from the gradients in the arena (which are left as they are; zero them before the
  // next backward with ParameterStore::zero_grad).
  void step();
  int64_t steps() const { return step_; }
  void set_steps(int64_t steps) { step_ = steps; }  // when resuming from a checkpoint
  const AdamSettings& settings() const { return settings_; }
  void set_learning_rate(double lr) { settings_.learning_rate = lr; }
  // The gradient norm of the last step (reads the device; for logs, not for the hot path).
  double last_grad_norm() const;

 private:
  ParameterStore& params_;
  AdamSettings settings_;
  double clip_norm_;  // <= 0: no clipping
  int64_t step_ = 0;
  Tensor grad_sumsq_;  // [1] on the device
  Tensor grad_scale_;  // [1] on the device
};

}  // namespace diffpool
