#pragma once
// Reverse-mode automatic differentiation on a tape.
//
// Every op (engine/ops/*.cpp) computes its output at once and, when the tape is recording and an
// input needs a gradient, appends a Record naming the op kind, its backward function, its inputs,
// its output and what the backward pass needs. Tape::backward walks the records in reverse and
// calls each record's backward function. The tape knows no op: the op kinds are the table in
// op_kinds.hpp, and the ops layer fills in each record's backward function from the table
// generated from it (engine/ops/backward.cpp). Backward functions always accumulate (+=) into
// input gradients; zeroing is an explicit step (gradients of intermediates start at zero when
// they are first needed; parameter gradients are zeroed by the optimiser).
//
// Variables and records live until clear(); tensors come from the step's Workspace.
#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "engine/autodiff/op_kinds.hpp"
#include "engine/core/tensor.hpp"

namespace diffpool {

class Backend;
class Workspace;
class Tape;
struct Record;

// Accumulates the gradients of a record's inputs from the gradient of its output.
using BackwardFn = void (*)(Tape& tape, const Record& record);

struct Variable {
  Tensor value;
  Tensor grad;  // undefined until a gradient reaches it (parameters: a view into the grad arena)
  bool requires_grad = false;
};

struct Record {
  static constexpr int kMaxInputs = 4;
  OpKind kind = OpKind::count;
  BackwardFn backward = nullptr;      // set by the ops layer from the kind (ops/backward.cpp)
  std::array<Variable*, kMaxInputs> inputs{};
  Variable* output = nullptr;
  std::array<Tensor, 2> saved{};      // extra tensors the backward needs (argmax, norms, ...)
  std::array<double, 3> scalars{};    // op constants (eps, scale factors, dropout p)
  std::array<int64_t, 2> ints{};      // op integers (batch count, reduce kind, input count)
  const void* context = nullptr;      // op context owned by the caller (Csr, Segments)
};

class Tape {
 public:
  Tape(Backend& backend, Workspace& workspace);
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  Backend& backend() const { return backend_; }
  Workspace& workspace() const { return workspace_; }

  // Leaves. A parameter's gradient is a view into the gradient arena (accumulated into).
  Variable* constant(Tensor value);
  Variable* parameter(Tensor value, Tensor grad);
  Variable* input(Tensor value, bool requires_grad);

  // A new variable holding an op's output; requires_grad is set when the op is recorded.
  Variable* make_output(Tensor value);
  // Records an op if the tape is recording and some input requires a gradient; sets the
  // output's requires_grad accordingly. The record must carry its backward function.
  void record(Record record);
  bool recording() const { return recording_; }
  void set_recording(bool on) { recording_ = on; }

  // The gradient of v, allocated (zero) on first use.
  Tensor& grad(Variable* v);
  // The gradient of v for a backward that writes "out = value + beta * out": returns it with
  // beta = 0 when it is new (its memory is then uninitialised and the first write overwrites it,
  // saving the zero fill) and beta = 1 when earlier contributions must be kept. Ask right before
  // each write: an op whose inputs are the same variable gets 0 for the first write, 1 after.
  struct GradTarget {
    Tensor& tensor;
    double beta;
  };
  GradTarget grad_target(Variable* v);
  // Hands an op's output gradient on as v's gradient, without a copy, where that is the whole of
  // v's gradient so far (v has none yet) and the same shape: the op passes its gradient through
  // unscaled (a sum's backward) and nothing reads the output's gradient after the op's backward.
  // Returns false (and changes nothing) where v needs its own tensor.
  bool pass_grad(Variable* v, const Tensor& output_grad);
  // Seeds d(loss)/d(loss) = 1 for a one-element loss and runs every recorded backward.
  void backward(Variable* loss);

  // Drops all records and variables (the tensors stay in the workspace until it is reset).
  void clear();
  std::size_t record_count() const { return records_.size(); }
  // One line per record: "12 linear f32[40, 64] <- f32[40, 128] f32[128, 64] f32[64]".
  std::string describe() const;

 private:
  Backend& backend_;
  Workspace& workspace_;
  std::deque<Variable> variables_;
  std::vector<Record> records_;
  bool recording_ = true;
};

// Turns recording off for a scope (evaluation).
class NoGradScope {
 public:
  explicit NoGradScope(Tape& tape) : tape_(tape), previous_(tape.recording()) { tape.set_recording(false); }
  ~NoGradScope() { tape_.set_recording(previous_); }
  NoGradScope(const NoGradScope&) = delete;
  NoGradScope& operator=(const NoGradScope&) = delete;

 private:
  Tape& tape_;
  bool previous_;
};

}  // namespace diffpool
