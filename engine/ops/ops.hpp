#pragma once
// The differentiable ops. Each takes the tape and input variables, computes its output at once,
// and records itself for the backward pass (see autodiff/tape.hpp). Forward and backward of an op
// are next to each other in one file of this folder.
//
// Dimension letters used across the ops:
//   N  packed node rows of a batch (all graphs)       B  graphs in the batch
//   F  input features                                  H  output features
//   K  clusters (rows per graph after pooling)         C  classes
// "Blocks" are B equal row ranges of a matrix: a dense batch [B, M, K] is stored as [B*M, K].
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "engine/autodiff/tape.hpp"
#include "engine/backend/backend.hpp"
#include "engine/core/segments.hpp"
#include "engine/ops/blocks.hpp"

namespace diffpool::ops {

// ---- dense (dense.cpp) -----------------------------------------------------------------------
// y (N,H) = x (N,F) w (F,H) + b (H); b may be null. With x2 (N,F2): y = [x | x2] w + b for w
// (F+F2, H), as two products into y, without forming the concatenation (a GraphSAGE layer's
// [x | mean_neighbours(x)]): x meets w's first F rows, x2 the others.
Variable* linear(Tape& tape, Variable* x, Variable* w, Variable* b, Variable* x2 = nullptr);
// c (B*M,N) = a_g (M,K) b_g (K,N) per block g; a is (B*M,K), b is (B*K,N).
Variable* bmm(Tape& tape, Variable* a, Variable* b, int64_t batch);
// y (N, F1+F2+...) = [x1 | x2 | ...], 1 to 4 inputs with equal row counts.
Variable* concat_cols(Tape& tape, std::initializer_list<Variable*> inputs);
// The same for any number of inputs (chains concat_cols four at a time); one input is returned as is.
Variable* concat_all(Tape& tape, const std::vector<Variable*>& inputs);

// ---- graphs (graph.cpp) ----------------------------------------------------------------------
// y (R,F) = A x, x (C,F), for a constant sparse A (R,C); a_transposed is A^T (for backward).
Variable* spmm(Tape& tape, const Csr& a, const Csr& a_transposed, Variable* x);
// y (B*K,F): y_g = s_g^T z_g per segment g of rows; s is (N,K), z is (N,F).
Variable* segment_matmul_tn(Tape& tape, Variable* s, Variable* z, const Segments& segments);
// y (B,F) = sum, mean or max of x's rows (N,F) per segment.
Variable* segment_reduce(Tape& tape, Variable* x, const Segments& segments, SegmentReduce kind);
// y (B,1): y_g = ||s_g^T s_g||_F^2 per segment g of s (N,K), computed through the smaller of
// s_g^T s_g (K x K) and s_g s_g^T (n_g x n_g), which have the same Frobenius norm.
Variable* segment_gram_sq(Tape& tape, Variable* s, const Segments& segments);
// y (N,1): the authors' binary cross-entropy link loss per row of s (N,K):
// y_i = -sum_{j in seg(i)} [A_ij log(min(P_ij,1) + eps) + (1 - A_ij) log(1 - min(P_ij,1) + eps)],
// P = s s^T within each segment, A the 0/1 pattern of `adjacency` (block-diagonal over the
// segments). P is never stored: O(n_g^2 K) time per segment, O(N) memory.
Variable* link_bce(Tape& tape, Variable* s, const Csr& adjacency, const Segments& segments, double eps = 1e-7);

// ---- elementwise (elementwise.cpp) -----------------------------------------------------------
// y = alpha * a + beta * b (same shapes); b may be null (then y = alpha * a).
Variable* add(Tape& tape, Variable* a, Variable* b, double alpha = 1.0, double beta = 1.0);
// y = a * b (same shapes).
Variable* mul(Tape& tape, Variable* a, Variable* b);
// y (N,F) = x (N,F) * r (N,1), each row scaled by its own factor.
Variable* scale_rows(Tape& tape, Variable* x, Variable* r);
Variable* relu(Tape& tape, Variable* x);
// y = sqrt(max(x, 0) + eps)
Variable* sqrt(Tape& tape, Variable* x, double eps);
// y = 1 / (x + eps)
Variable* reciprocal(Tape& tape, Variable* x, double eps);
// Inverted dropout with keep probability 1 - p and a counter-based mask from seed.
Variable* dropout(Tape& tape, Variable* x, double p, uint64_t seed);

// ---- reductions (reduce.cpp) -----------------------------------------------------------------
Variable* row_sum(Tape& tape, Variable* x);               // (N,F) -> (N,1)
Variable* row_dot(Tape& tape, Variable* a, Variable* b);  // (N,F),(N,F) -> (N,1)
Variable* mean_all(Tape& tape, Variable* x, double scale = 1.0);  // any -> (1): scale * mean
// y_i = sum_j x_ij log x_ij (N,F) -> (N,1), 0 log 0 = 0: minus the entropy of each row of an
// assignment matrix, without keeping any (N,F) intermediate.
Variable* row_xlogx(Tape& tape, Variable* x);

// ---- normalisation (normalize.cpp) -----------------------------------------------------------
// y = x / max(||x||_2, eps) per row.
// With relu: max(l2_normalize_rows(x), 0) as one op (one primitive each way).
Variable* l2_normalize_rows(Tape& tape, Variable* x, double eps = 1e-12, bool relu = false);
// Batch norm over rows, per column. running_mean/var (F) are updated in training mode.
Variable* batch_norm(Tape& tape, Variable* x, Variable* gamma, Variable* beta, Tensor running_mean,
                     Tensor running_var, bool training, double momentum = 0.1, double eps = 1e-5);

// ---- softmax and loss (softmax.cpp) ----------------------------------------------------------
// in_place: y takes x's memory (x's values are lost); only for an x that no other op reads, such
// as the logits of an assignment GNN (its backward needs y alone). Saves one (N,K) matrix.
Variable* softmax_rows(Tape& tape, Variable* x, bool in_place = false);
// losses (B,1) = -log softmax(logits)[label]; labels i32 (B) on the device.
Variable* cross_entropy(Tape& tape, Variable* logits, const Tensor& labels);

// ---- per-graph blocks (blocks.cpp): pooling with a cluster count per graph ------------------
// C_g = op(A_g) op(B_g): context.a, .b, .c are the blocks of a, b and the output; trans_a/b the ops.
Variable* block_matmul(Tape& tape, Variable* a, Variable* b, const BlockContext& context);
// Y_g = X_g W[:, :k_g] + b[:k_g]: x packed rows (N, F), w (F, K), b (K) or null; context.a the
// output's ragged blocks (n_g, k_g). With x2 (N, F2): [x | x2] in place of x, as in linear.
Variable* block_linear(Tape& tape, Variable* x, Variable* w, Variable* b, const BlockContext& context,
                       Variable* x2 = nullptr);
// Row softmax within each block of context.a; in_place reuses x's memory for the output.
Variable* block_softmax(Tape& tape, Variable* x, const BlockContext& context, bool in_place = false);
// Y_g = A_g S_g with context.adjacency[g] (graph-local, symmetric) and S's blocks context.a.
Variable* block_spmm(Tape& tape, Variable* s, const BlockContext& context);
// (B, 1): sum of a_g * b_g over each block of context.a (a and b share the layout; may be equal).
Variable* block_dot(Tape& tape, Variable* a, Variable* b, const BlockContext& context);
// (B, 1): ||S_g^T S_g||_F^2 per block of context.a.
Variable* block_gram_sq(Tape& tape, Variable* s, const BlockContext& context);
// (rows, 1): each block row's sum, or sum of x log x, over the blocks of context.a.
Variable* block_row_sum(Tape& tape, Variable* x, const BlockContext& context);
Variable* block_row_xlogx(Tape& tape, Variable* x, const BlockContext& context);
// (rows, 1): link_bce of each graph's block (context.a) with context.adjacency and context.offsets.
Variable* block_link_bce(Tape& tape, Variable* s, const BlockContext& context, double eps = 1e-7);

}  // namespace diffpool::ops
