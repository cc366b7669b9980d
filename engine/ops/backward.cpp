#include "engine/ops/backward.hpp"

#include "engine/core/error.hpp"

namespace diffpool {

void run_backward(Tape& tape, const Record& r) {
  switch (r.kind) {
    case OpKind::linear: ops::linear_backward(tape, r); return;
    case OpKind::bmm: ops::bmm_backward(tape, r); return;
    case OpKind::spmm: ops::spmm_backward(tape, r); return;
    case OpKind::segment_matmul_tn: ops::segment_matmul_tn_backward(tape, r); return;
    case OpKind::segment_reduce: ops::segment_reduce_backward(tape, r); return;
    case OpKind::segment_gram_sq: ops::segment_gram_sq_backward(tape, r); return;
    case OpKind::link_bce: ops::link_bce_backward(tape, r); return;
    case OpKind::concat_cols: ops::concat_cols_backward(tape, r); return;
    case OpKind::add: ops::add_backward(tape, r); return;
    case OpKind::mul: ops::mul_backward(tape, r); return;
    case OpKind::scale_rows: ops::scale_rows_backward(tape, r); return;
    case OpKind::relu: ops::relu_backward(tape, r); return;
    case OpKind::sqrt: ops::sqrt_backward(tape, r); return;
    case OpKind::reciprocal: ops::reciprocal_backward(tape, r); return;
    case OpKind::row_xlogx: ops::row_xlogx_backward(tape, r); return;
    case OpKind::row_sum: ops::row_sum_backward(tape, r); return;
    case OpKind::row_dot: ops::row_dot_backward(tape, r); return;
    case OpKind::mean_all: ops::mean_all_backward(tape, r); return;
    case OpKind::l2_normalize_rows: ops::l2_normalize_rows_backward(tape, r); return;
    case OpKind::batch_norm: ops::batch_norm_backward(tape, r); return;
    case OpKind::dropout: ops::dropout_backward(tape, r); return;
    case OpKind::softmax_rows: ops::softmax_rows_backward(tape, r); return;
    case OpKind::cross_entropy: ops::cross_entropy_backward(tape, r); return;
    case OpKind::block_matmul: ops::block_matmul_backward(tape, r); return;
    case OpKind::block_linear: ops::block_linear_backward(tape, r); return;
    case OpKind::block_softmax: ops::block_softmax_backward(tape, r); return;
    case OpKind::block_spmm: ops::block_spmm_backward(tape, r); return;
    case OpKind::block_dot: ops::block_dot_backward(tape, r); return;
    case OpKind::block_gram_sq: ops::block_gram_sq_backward(tape, r); return;
    case OpKind::block_row_sum: ops::block_row_sum_backward(tape, r); return;
    case OpKind::block_row_xlogx: ops::block_row_xlogx_backward(tape, r); return;
    case OpKind::block_link_bce: ops::block_link_bce_backward(tape, r); return;
    case OpKind::count: break;
  }
  DP_CHECK(false, "no backward rule for op kind {} ({})", static_cast<int>(r.kind), op_kind_name(r.kind));
}

}  // namespace diffpool
