#include "engine/ops/backward.hpp"

#include "engine/core/error.hpp"

namespace diffpool::ops {

BackwardFn backward_function(OpKind kind) {
  static constexpr BackwardFn table[] = {
#define DIFFPOOL_BACKWARD_ENTRY(name) &name##_backward,
      DIFFPOOL_OPS(DIFFPOOL_BACKWARD_ENTRY)
#undef DIFFPOOL_BACKWARD_ENTRY
  };
  static_assert(sizeof(table) / sizeof(table[0]) == kOpKindCount, "one backward function per OpKind");
  const auto i = static_cast<std::size_t>(kind);
  DP_CHECK(i < kOpKindCount, "no backward rule for op kind {} ({})", static_cast<int>(kind), op_kind_name(kind));
  return table[i];
}

}  // namespace diffpool::ops
