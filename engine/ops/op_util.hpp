#pragma once
// Small helpers shared by the op files (not part of the public op API).
#include "engine/autodiff/tape.hpp"
#include "engine/backend/backend.hpp"
#include "engine/core/error.hpp"
#include "engine/core/workspace.hpp"
#include "engine/ops/backward.hpp"

namespace diffpool::ops::detail {

inline Variable* new_output(Tape& tape, Shape shape, DType dtype) {
  return tape.make_output(tape.workspace().empty(shape, dtype));
}

// Records an op on the tape with the backward function of its kind (from the op table).
inline void record(Tape& tape, Record record) {
  record.backward = backward_function(record.kind);
  tape.record(record);
}

inline bool wants_grad(const Variable* v) { return v != nullptr && v->requires_grad; }

// The first element of row `row` of a 2-D tensor (a sub-matrix of its rows from there on).
inline void* row_ptr(const Tensor& t, int64_t row) {
  return static_cast<char*>(t.data()) + row * t.cols() * static_cast<int64_t>(dtype_size(t.dtype()));
}

inline void check_float_pair(const char* op, const Variable* a, const Variable* b) {
  DP_CHECK(a->value.dtype() == b->value.dtype(), "{}: dtypes differ: {} and {}", op, a->value.describe(),
           b->value.describe());
}

}  // namespace diffpool::ops::detail
