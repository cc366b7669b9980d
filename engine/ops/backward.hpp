#pragma once
// The backward functions of the ops, declared from the op table (engine/autodiff/op_kinds.hpp):
// ops::<name>_backward for every X(name), defined next to its forward in the op's file. Each
// accumulates into the gradients of the record's inputs that require one.
#include "engine/autodiff/tape.hpp"

namespace diffpool::ops {

#define DIFFPOOL_DECLARE_BACKWARD(name) void name##_backward(Tape& tape, const Record& record);
DIFFPOOL_OPS(DIFFPOOL_DECLARE_BACKWARD)
#undef DIFFPOOL_DECLARE_BACKWARD

// The backward function of an op kind, from the table generated in backward.cpp.
BackwardFn backward_function(OpKind kind);

}  // namespace diffpool::ops
