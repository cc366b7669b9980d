#pragma once
// The op table: one line per differentiable op, the one list an op is added to.
//
// From it are generated the OpKind enum and its name table (here), and the declarations of the
// backward functions and the table that dispatches to them (engine/ops/backward.hpp, .cpp): an
// op listed here whose file does not define ops::<name>_backward fails to link. The op's forward
// and backward live side by side in the file named in the comment (engine/ops/). The recipe for
// adding an op is in engine/README.md.
#include <cstddef>
#include <cstdint>

// X(name): the op's name, as OpKind::name, "name" and ops::name_backward.
#define DIFFPOOL_OPS(X)                                                                            \
  X(linear)            /* dense.cpp: y = x w + b                                            */   \
  X(bmm)               /* dense.cpp: c_g = a_g b_g per block                                */   \
  X(spmm)              /* graph.cpp: y = A x, A sparse and constant                         */   \
  X(segment_matmul_tn) /* graph.cpp: y_g = s_g^T z_g per segment                            */   \
  X(segment_reduce)    /* graph.cpp: sum, mean or max of each segment's rows                */   \
  X(segment_gram_sq)   /* graph.cpp: ||s_g^T s_g||_F^2 per segment                          */   \
  X(link_bce)          /* graph.cpp: binary cross-entropy between A and min(s s^T, 1)       */   \
  X(concat_cols)       /* dense.cpp: y = [x1 | x2 | ...]                                    */   \
  X(add)               /* elementwise.cpp: y = alpha a + beta b                             */   \
  X(mul)               /* elementwise.cpp: y = a * b                                        */   \
  X(scale_rows)        /* elementwise.cpp: y = x * r, one factor per row                    */   \
  X(relu)              /* elementwise.cpp                                                   */   \
  X(sqrt)              /* elementwise.cpp: y = sqrt(max(x, 0) + eps)                        */   \
  X(reciprocal)        /* elementwise.cpp: y = 1 / (x + eps)                                */   \
  X(row_xlogx)         /* reduce.cpp: y_i = sum_j x_ij log x_ij                             */   \
  X(row_sum)           /* reduce.cpp                                                        */   \
  X(row_dot)           /* reduce.cpp                                                        */   \
  X(mean_all)          /* reduce.cpp                                                        */   \
  X(l2_normalize_rows) /* normalize.cpp: y = x / ||x|| per row, optionally max(y, 0) too    */   \
  X(batch_norm)        /* normalize.cpp                                                     */   \
  X(dropout)           /* elementwise.cpp: inverted dropout, counter-based mask             */   \
  X(softmax_rows)      /* softmax.cpp                                                       */   \
  X(cross_entropy)     /* softmax.cpp: -log softmax(logits)[label]                          */   \
  X(block_matmul)      /* blocks.cpp: c_g = op(a_g) op(b_g), one block per graph            */   \
  X(block_linear)      /* blocks.cpp: y_g = x_g w[:, :k_g] + b[:k_g]                        */   \
  X(block_softmax)     /* blocks.cpp: row softmax within each graph's block                 */   \
  X(block_spmm)        /* blocks.cpp: y_g = A_g s_g, A_g the graph's sparse adjacency       */   \
  X(block_dot)         /* blocks.cpp: y_g = sum(a_g * b_g)                                  */   \
  X(block_gram_sq)     /* blocks.cpp: ||s_g^T s_g||_F^2 per graph's block                   */   \
  X(block_row_sum)     /* blocks.cpp: each block row's sum                                  */   \
  X(block_row_xlogx)   /* blocks.cpp: each block row's sum of x log x                       */   \
  X(block_link_bce)    /* blocks.cpp: link_bce of each graph's block                        */

namespace diffpool {

enum class OpKind : uint8_t {
#define DIFFPOOL_OP_ENUM(name) name,
  DIFFPOOL_OPS(DIFFPOOL_OP_ENUM)
#undef DIFFPOOL_OP_ENUM
  count
};

constexpr std::size_t kOpKindCount = static_cast<std::size_t>(OpKind::count);

// "linear", ...; "invalid" for a value outside the table.
constexpr const char* op_kind_name(OpKind kind) {
  constexpr const char* names[] = {
#define DIFFPOOL_OP_NAME(name) #name,
      DIFFPOOL_OPS(DIFFPOOL_OP_NAME)
#undef DIFFPOOL_OP_NAME
  };
  static_assert(sizeof(names) / sizeof(names[0]) == kOpKindCount, "one name per OpKind");
  const auto i = static_cast<std::size_t>(kind);
  return i < kOpKindCount ? names[i] : "invalid";
}

}  // namespace diffpool
