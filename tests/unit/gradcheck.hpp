#pragma once
// Gradient checking in double precision: analytic gradients from the tape against central
// differences, for every input that requires a gradient.
//
// The op or layer under test maps inputs to an output of any shape; the check reduces it to a
// scalar with fixed random weights, loss = mean(out * R), so every output element receives a
// different upstream gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "engine/autodiff/tape.hpp"
#include "engine/backend/backend.hpp"
#include "engine/core/random.hpp"
#include "engine/core/workspace.hpp"
#include "engine/ops/ops.hpp"

namespace diffpool::testing {

struct GradInput {
  std::string name;
  Shape shape;
  std::vector<double> values;
  bool requires_grad = true;
};

inline GradInput random_input(std::string name, Shape shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                              bool requires_grad = true) {
  Rng rng(seed);
  GradInput in{std::move(name), shape, {}, requires_grad};
  in.values.resize(static_cast<std::size_t>(shape.numel()));
  for (double& v : in.values) v = rng.uniform(lo, hi);
  return in;
}

// The input's values as a constant of the tape, in double precision on the tape's backend.
inline Variable* constant_input(Tape& tape, const GradInput& in) {
  Tensor t = tape.workspace().empty(in.shape, DType::f64);
  tape.backend().copy_bytes(t.data(), t.device(), in.values.data(), Device::cpu, t.bytes());
  return tape.constant(t);
}

// Builds the output from the input variables (in the order given).
using GradBuild = std::function<Variable*(Tape&, const std::vector<Variable*>&)>;

struct GradCheckOptions {
  double step = 1e-6;
  double rel_tol = 1e-5;
  double abs_tol = 1e-8;
};

inline void expect_gradients_match(Backend& backend, std::vector<GradInput> inputs, const GradBuild& build,
                                   GradCheckOptions options = {}) {
  Workspace workspace(backend);
  std::vector<double> weights;  // R, fixed after the first evaluation

  auto evaluate = [&](bool with_grad, std::vector<std::vector<double>>* grads) -> double {
    workspace.reset();
    Tape tape(backend, workspace);
    std::vector<Variable*> vars;
    for (const GradInput& in : inputs) {
      Tensor t = workspace.empty(in.shape, DType::f64);
      backend.copy_bytes(t.data(), t.device(), in.values.data(), Device::cpu, t.bytes());
      vars.push_back(tape.input(t, with_grad && in.requires_grad));
    }
    Variable* out = build(tape, vars);
    if (weights.empty()) {
      Rng rng(0xC0FFEE);
      weights.resize(static_cast<std::size_t>(out->value.numel()));
      for (double& w : weights) w = rng.uniform(0.5, 1.5) * (rng.uniform() < 0.5 ? -1.0 : 1.0);
    }
    Tensor r = workspace.empty(out->value.shape(), DType::f64);
    backend.copy_bytes(r.data(), r.device(), weights.data(), Device::cpu, r.bytes());
    Variable* loss = ops::mean_all(tape, ops::mul(tape, out, tape.constant(r)));
    const double value = read_scalar(backend, loss->value);
    if (with_grad) {
      tape.backward(loss);
      grads->clear();
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (!inputs[i].requires_grad) {
          grads->emplace_back();
          continue;
        }
        if (!vars[i]->grad.defined()) {
          grads->emplace_back(inputs[i].values.size(), 0.0);  // no gradient reached it: zero
        } else {
          grads->push_back(download<double>(backend, vars[i]->grad));
        }
      }
    }
    return value;
  };

  std::vector<std::vector<double>> analytic;
  evaluate(true, &analytic);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad) continue;
    int failures = 0;
    for (std::size_t j = 0; j < inputs[i].values.size(); ++j) {
      const double saved = inputs[i].values[j];
      inputs[i].values[j] = saved + options.step;
      const double plus = evaluate(false, nullptr);
      inputs[i].values[j] = saved - options.step;
      const double minus = evaluate(false, nullptr);
      inputs[i].values[j] = saved;
      const double numeric = (plus - minus) / (2 * options.step);
      const double a = analytic[i][j];
      const double tol = options.abs_tol + options.rel_tol * std::max(std::abs(a), std::abs(numeric));
      if (!(std::abs(a - numeric) <= tol) && failures++ < 5) {
        ADD_FAILURE() << "gradient of input '" << inputs[i].name << "' element " << j << ": analytic " << a
                      << ", numeric " << numeric << " (difference " << std::abs(a - numeric) << ", tolerance "
                      << tol << ")";
      }
    }
  }
}

}  // namespace diffpool::testing
