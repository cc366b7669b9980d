#pragma once
// Reverse-mode automatic differentiation on a tape.
//
// Every op (engine/ops/*.cpp) computes its output at once and, when the tape is recording and an
// input needs a gradient, appends a Record naming the op kind, its inputs, its output and what
// the backward pass needs. Tape::backward walks the records in reverse and calls each kind's
// backward function (one switch, in tape.cpp). Backward functions always accumulate (+=) into
// input gradients; zeroing is an explicit step (gradients of intermediates start at zero when
// they are first needed; parameter gradients are zeroed by the optimiser).
//
// Variables and records live until clear(); tensors come from the step's Workspace.
#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "engine/core/tensor.hpp"

namespace diffpool {

class Backend;
class Workspace;

// The op kinds. Adding one without a name in op_kind_name's table breaks the build.
enum class OpKind : uint8_t {
  linear,
  bmm,
  spmm,
  segment_matmul_tn,
  segment_reduce,
  segment_gram_sq,
  link_bce,
  concat_cols,
  add,
  mul,
  scale_rows,
  relu,
  sqrt,
  reciprocal,
  row_xlogx,
  row_sum,
  row_dot,
  mean_all,
  l2_normalize_rows,
  batch_norm,
  dropout,
  softmax_rows,
  cross_entropy,
  block_matmul,
  block_linear,
  block_softmax,
  block_spmm,
  block_dot,
  block_gram_sq,
  block_row_sum,
  block_row_xlogx,
  block_link_bce,
  count
};
const char* op_kind_name(OpKind kind);

struct Variable {
  Tensor value;
  Tensor grad;  // undefined until a gradient reaches it (parameters: a view into the grad arena)
  bool requires_grad = false;
};

struct Record {
  static constexpr int kMaxInputs = 4;
  OpKind kind = OpKind::count;
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
  // output's requires_grad accordingly.
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
