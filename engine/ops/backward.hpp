#pragma once
// Backward functions of the ops, dispatched by Tape::backward through run_backward's switch.
// Each accumulates into the gradients of the inputs that require one.
#include "engine/autodiff/tape.hpp"

namespace diffpool {

void run_backward(Tape& tape, const Record& record);

namespace ops {
void linear_backward(Tape& tape, const Record& r);
void block_matmul_backward(Tape& tape, const Record& r);
void block_linear_backward(Tape& tape, const Record& r);
void block_softmax_backward(Tape& tape, const Record& r);
void block_spmm_backward(Tape& tape, const Record& r);
void block_dot_backward(Tape& tape, const Record& r);
void block_gram_sq_backward(Tape& tape, const Record& r);
void block_row_sum_backward(Tape& tape, const Record& r);
void block_row_xlogx_backward(Tape& tape, const Record& r);
void block_link_bce_backward(Tape& tape, const Record& r);

void bmm_backward(Tape& tape, const Record& r);
void concat_cols_backward(Tape& tape, const Record& r);
void spmm_backward(Tape& tape, const Record& r);
void segment_matmul_tn_backward(Tape& tape, const Record& r);
void segment_reduce_backward(Tape& tape, const Record& r);
void segment_gram_sq_backward(Tape& tape, const Record& r);
void link_bce_backward(Tape& tape, const Record& r);
void add_backward(Tape& tape, const Record& r);
void mul_backward(Tape& tape, const Record& r);
void scale_rows_backward(Tape& tape, const Record& r);
void relu_backward(Tape& tape, const Record& r);
void sqrt_backward(Tape& tape, const Record& r);
void reciprocal_backward(Tape& tape, const Record& r);
void row_xlogx_backward(Tape& tape, const Record& r);
void dropout_backward(Tape& tape, const Record& r);
void row_sum_backward(Tape& tape, const Record& r);
void row_dot_backward(Tape& tape, const Record& r);
void mean_all_backward(Tape& tape, const Record& r);
void l2_normalize_rows_backward(Tape& tape, const Record& r);
void batch_norm_backward(Tape& tape, const Record& r);
void softmax_rows_backward(Tape& tape, const Record& r);
void cross_entropy_backward(Tape& tape, const Record& r);
}  // namespace ops

}  // namespace diffpool
