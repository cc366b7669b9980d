// The names of the primitives' operation enums, for messages. A file of its own because the CUDA
// backend module (libdiffpool_cuda.so) compiles it too, without the rest of backend.cpp.
#include "engine/backend/backend.hpp"

namespace diffpool {

const char* map_op_name(MapOp op) {
  static constexpr const char* names[] = {"copy",       "broadcast",      "add",
                                          "mul",        "div",            "relu",
                                          "relu_backward", "sqrt",        "reciprocal",
                                          "reciprocal_backward", "log", "plus_one_times",
                                          "clip_coefficient"};
  static_assert(sizeof(names) / sizeof(names[0]) == static_cast<std::size_t>(MapOp::count),
                "every MapOp needs a name");
  auto i = static_cast<std::size_t>(op);
  return i < static_cast<std::size_t>(MapOp::count) ? names[i] : "invalid";
}

const char* segment_reduce_name(SegmentReduce kind) {
  switch (kind) {
    case SegmentReduce::sum: return "sum";
    case SegmentReduce::mean: return "mean";
    case SegmentReduce::max: return "max";
  }
  return "invalid";
}

}  // namespace diffpool
