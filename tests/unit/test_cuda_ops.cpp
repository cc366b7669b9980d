// CUDA op parity: every differentiable op (engine/ops), forward and backward, on the CUDA backend
// against the CPU reference backend from identical random inputs; then a full training step of
// the model and ten Adam steps on both backends from identical parameters.
//
// Where test_backend_parity.cpp checks each backend primitive on its own, this checks what the
// ops build from them: the argument plumbing of every op (leading dimensions, offsets into
// segments, beta of accumulated gradients, saved tensors), over batches of several graphs of
// unequal sizes with an empty one, in f32 and f64. Every OpKind must have a case (OpCoverage).
//
// Tolerances (parity_util.hpp): ops built on products (linear, bmm, spmm, segment_matmul_tn,
// segment_gram_sq) use the bounded tolerance, with the bound computed by running the same case
// on the CPU in f64 on the magnitudes of the inputs and of the upstream gradient (for a product
// that is exactly the sum of the magnitudes of its terms); all other ops use the scaled
// tolerance. The model tolerances are documented at kModelTolerance below.
//
// Without a CUDA device (or in a build without the CUDA backend) the backend tests skip with
// "no CUDA device: ...". Built with DIFFPOOL_CUDA_EMULATION (tests/cuda_emulation), the same
// tests run against the backend's sources compiled for a CPU emulation of CUDA.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/autodiff/tape.hpp"
#include "engine/backend/backend.hpp"
#include "engine/backend/counting_backend.hpp"
#include "engine/core/error.hpp"
#include "engine/core/random.hpp"
#include "engine/core/workspace.hpp"
#include "engine/data/batch.hpp"
#include "engine/data/dataset.hpp"
#include "engine/nn/model.hpp"
#include "engine/ops/ops.hpp"
#include "engine/optim/adam.hpp"
#include "engine/train/trainer.hpp"
#include "tests/test_util.hpp"
#include "tests/unit/gradcheck.hpp"
#include "tests/unit/parity_util.hpp"
#include "tests/unit/synthetic.hpp"

#if defined(DIFFPOOL_CUDA_EMULATION)
#include "emulator_counters.h"
#endif


namespace diffpool {
namespace {

using testing::expect_close;
using testing::for_each_float;
using testing::GradInput;
using testing::random_input;
using testing::Tolerance;

// ---- op cases -------------------------------------------------------------------------------------

// Copies host values into a new workspace tensor of a floating dtype.
Tensor upload_as(Workspace& ws, const std::vector<double>& host, Shape shape, DType dtype) {
  Tensor t = ws.empty(shape, dtype);
  upload_converted(ws.backend(), host, t);
  return t;
}

// What an op case needs besides its input variables, made on the backend that runs it. Records
// point to the sparse matrices and segments, so they live here until the backward has run.
class OpEnv {
 public:
  OpEnv(Tape& tape, DType dtype) : tape_(tape), dtype_(dtype) {}
  Tape& tape() const { return tape_; }

  const Segments& segments(std::vector<int64_t> offsets) {
    return segments_.emplace_back(make_segments(tape_.workspace(), std::move(offsets)));
  }
  const Segments& uniform_segments(int64_t count, int64_t size) {
    return segments_.emplace_back(make_uniform_segments(tape_.workspace(), count, size));
  }
  // A constant sparse matrix with its transpose (which spmm's backward multiplies by).
  std::pair<const Csr*, const Csr*> csr(const HostCsr& a) {
    const Csr& forward = csrs_.emplace_back(upload_csr(tape_.workspace(), a, dtype_));
    const Csr& backward = csrs_.emplace_back(upload_csr(tape_.workspace(), transpose(a), dtype_));
    return {&forward, &backward};
  }
  Tensor labels(const std::vector<int32_t>& host) {
    Tensor t = tape_.workspace().empty(Shape{static_cast<int64_t>(host.size())}, DType::i32);
    tape_.backend().copy_bytes(t.data(), t.device(), host.data(), Device::cpu, t.bytes());
    return t;
  }
  // A tensor that the op updates in place (batch-norm running statistics); compared after the op.
  Tensor state(std::string name, const std::vector<double>& host) {
    Tensor t = upload_as(tape_.workspace(), host, Shape{static_cast<int64_t>(host.size())}, dtype_);
    states_.push_back({std::move(name), t});
    return t;
  }
  const std::vector<std::pair<std::string, Tensor>>& states() const { return states_; }
  // Per-graph blocks and the context of an op over them (engine/ops/blocks.hpp).
  const Blocks& blocks(Blocks b) { return blocks_.emplace_back(std::move(b)); }
  BlockContext& context(const Blocks* a, const Blocks* b = nullptr, const Blocks* c = nullptr, Trans ta = Trans::no) {
    BlockContext& ctx = contexts_.emplace_back();
    ctx.a = a;
    ctx.b = b;
    ctx.c = c;
    ctx.trans_a = ta;
    return ctx;
  }
  // A block-diagonal sparse matrix split into graph-local matrices, with each graph's {0, n_g}.
  void per_graph_csr(const HostCsr& a, const std::vector<int64_t>& offsets, BlockContext& ctx) {
    auto& csrs = per_graph_.emplace_back();
    auto& bounds = per_graph_offsets_.emplace_back();
    for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
      HostCsr local;
      local.rows = local.cols = offsets[g + 1] - offsets[g];
      local.row_ptr.push_back(0);
      for (int64_t r = offsets[g]; r < offsets[g + 1]; ++r) {
        for (int32_t e = a.row_ptr[static_cast<std::size_t>(r)]; e < a.row_ptr[static_cast<std::size_t>(r) + 1]; ++e) {
          local.col_idx.push_back(a.col_idx[static_cast<std::size_t>(e)] - static_cast<int32_t>(offsets[g]));
          local.values.push_back(a.values[static_cast<std::size_t>(e)]);
        }
        local.row_ptr.push_back(static_cast<int32_t>(local.col_idx.size()));
      }
      csrs.push_back(upload_csr(tape_.workspace(), local, dtype_));
      bounds.push_back(labels({0, static_cast<int32_t>(local.rows)}));
    }
    ctx.adjacency = &csrs;
    ctx.offsets = &bounds;
  }

 private:
  Tape& tape_;
  DType dtype_;
  std::deque<Segments> segments_;
  std::deque<Csr> csrs_;
  std::vector<std::pair<std::string, Tensor>> states_;
  std::deque<Blocks> blocks_;
  std::deque<BlockContext> contexts_;
  std::deque<std::vector<Csr>> per_graph_;
  std::deque<std::vector<Tensor>> per_graph_offsets_;
};

using OpBuild = std::function<Variable*(OpEnv&, const std::vector<Variable*>&)>;

struct OpCase {
  std::string name;
  OpKind kind;  // the op under test; the case must record it
  std::vector<GradInput> inputs;
  OpBuild build;
  bool product = false;       // accumulates products in the working precision: bounded tolerance
  bool forward_only = false;  // records nothing (batch norm in evaluation mode)
};

// The packed node rows of a batch of five graphs of 5, 0, 1, 7 and 9 nodes: unequal sizes, an
// empty graph and a single node.
const std::vector<int64_t> kOffsets = {0, 5, 5, 6, 13, 22};
constexpr int64_t kRows = 22;

// A random sparse matrix over the rows of kOffsets, block-diagonal like a batch's adjacency.
HostCsr block_diagonal_csr(uint64_t seed) {
  Rng rng(seed);
  HostCsr a;
  a.rows = a.cols = kRows;
  a.row_ptr.push_back(0);
  for (std::size_t g = 0; g + 1 < kOffsets.size(); ++g)
    for (int64_t r = kOffsets[g]; r < kOffsets[g + 1]; ++r) {
      for (int64_t c = kOffsets[g]; c < kOffsets[g + 1]; ++c)
        if (c != r && rng.uniform() < 0.6) {
          a.col_idx.push_back(static_cast<int32_t>(c));
          a.values.push_back(rng.uniform(0.1, 1.0));
        }
      a.row_ptr.push_back(static_cast<int32_t>(a.col_idx.size()));
    }
  return a;
}

// Distinct values (no ties for a maximum within a segment).
GradInput distinct_input(std::string name, Shape shape, uint64_t seed) {
  GradInput in = random_input(std::move(name), shape, seed);
  for (std::size_t i = 0; i < in.values.size(); ++i) in.values[i] += 0.01 * static_cast<double>(i);
  return in;
}

std::vector<OpCase> make_op_cases() {
  std::vector<OpCase> cases;
  auto add_case = [&](std::string name, OpKind kind, std::vector<GradInput> inputs, OpBuild build) -> OpCase& {
    return cases.emplace_back(OpCase{std::move(name), kind, std::move(inputs), std::move(build)});
  };
  using V = const std::vector<Variable*>&;

  // dense
  add_case("linear", OpKind::linear, {random_input("x", {kRows, 7}, 1), random_input("w", {7, 9}, 2),
                                      random_input("b", {9}, 3)},
           [](OpEnv& e, V v) { return ops::linear(e.tape(), v[0], v[1], v[2]); })
      .product = true;
  add_case("linear without bias", OpKind::linear, {random_input("x", {kRows, 7}, 4), random_input("w", {7, 3}, 5)},
           [](OpEnv& e, V v) { return ops::linear(e.tape(), v[0], v[1], nullptr); })
      .product = true;
  // GraphSAGE's form, [x | x2] w + b: one backend call forward (gemm_sum_from_row) and one for
  // both input gradients; x2 = x (one gradient, two terms); and a batch over the grouped
  // kernel's limit (cuBLAS per term, as before).
  add_case("linear with x2", OpKind::linear,
           {random_input("x", {kRows, 7}, 61), random_input("w", {12, 9}, 62), random_input("b", {9}, 63),
            random_input("x2", {kRows, 5}, 64)},
           [](OpEnv& e, V v) { return ops::linear(e.tape(), v[0], v[1], v[2], v[3]); })
      .product = true;
  add_case("linear with x2, no bias", OpKind::linear,
           {random_input("x", {kRows, 3}, 65), random_input("w", {7, 20}, 66), random_input("x2", {kRows, 4}, 67)},
           [](OpEnv& e, V v) { return ops::linear(e.tape(), v[0], v[1], nullptr, v[2]); })
      .product = true;
  add_case("linear with x2 = x", OpKind::linear,
           {random_input("x", {kRows, 6}, 68), random_input("w", {12, 5}, 69), random_input("b", {5}, 70)},
           [](OpEnv& e, V v) { return ops::linear(e.tape(), v[0], v[1], v[2], v[0]); })
      .product = true;
  add_case("linear with x2, over the grouped kernel's limit", OpKind::linear,
           {random_input("x", {300, 64}, 71), random_input("w", {128, 60}, 72), random_input("b", {60}, 73),
            random_input("x2", {300, 64}, 74)},
           [](OpEnv& e, V v) { return ops::linear(e.tape(), v[0], v[1], v[2], v[3]); })
      .product = true;
  add_case("bmm", OpKind::bmm, {random_input("a", {3 * 4, 5}, 6), random_input("b", {3 * 5, 6}, 7)},
           [](OpEnv& e, V v) { return ops::bmm(e.tape(), v[0], v[1], 3); })
      .product = true;
  add_case("concat of five", OpKind::concat_cols,
           {random_input("a", {kRows, 2}, 8), random_input("b", {kRows, 3}, 9), random_input("c", {kRows, 1}, 10),
            random_input("d", {kRows, 4}, 11), random_input("e", {kRows, 2}, 12)},
           [](OpEnv& e, V v) { return ops::concat_all(e.tape(), v); });

  // graphs
  add_case("spmm", OpKind::spmm, {random_input("x", {kRows, 6}, 13)}, [](OpEnv& e, V v) {
    auto [a, at] = e.csr(block_diagonal_csr(14));
    return ops::spmm(e.tape(), *a, *at, v[0]);
  }).product = true;
  add_case("segment_matmul_tn unequal", OpKind::segment_matmul_tn,
           {random_input("s", {kRows, 4}, 15), random_input("z", {kRows, 6}, 16)},
           [](OpEnv& e, V v) { return ops::segment_matmul_tn(e.tape(), v[0], v[1], e.segments(kOffsets)); })
      .product = true;
  add_case("segment_matmul_tn uniform", OpKind::segment_matmul_tn,
           {random_input("s", {3 * 4, 3}, 17), random_input("z", {3 * 4, 5}, 18)},
           [](OpEnv& e, V v) { return ops::segment_matmul_tn(e.tape(), v[0], v[1], e.uniform_segments(3, 4)); })
      .product = true;
  add_case("segment_matmul_tn s^T s", OpKind::segment_matmul_tn, {random_input("s", {kRows, 4}, 19)},
           [](OpEnv& e, V v) { return ops::segment_matmul_tn(e.tape(), v[0], v[0], e.segments(kOffsets)); })
      .product = true;
  for (SegmentReduce kind : {SegmentReduce::sum, SegmentReduce::mean, SegmentReduce::max})
    add_case(std::string("segment_reduce ") + segment_reduce_name(kind), OpKind::segment_reduce,
             {distinct_input("x", {kRows, 7}, 20)},
             [kind](OpEnv& e, V v) { return ops::segment_reduce(e.tape(), v[0], e.segments(kOffsets), kind); });
  // Rows in [0.02, 0.3]: P = s s^T inside the logarithms' domain (as softmax rows would keep it).
  {
    GradInput s = random_input("s", {kRows, 4}, 41);
    for (double& v : s.values) v = 0.02 + 0.28 * (v - std::floor(v));
    add_case("link_bce", OpKind::link_bce, {s}, [](OpEnv& e, V v) {
      return ops::link_bce(e.tape(), v[0], *e.csr(block_diagonal_csr(42)).first, e.segments(kOffsets));
    });  // both backends accumulate its dot products and sums in double: the scaled tolerance
  }
  // Graphs smaller and larger than the 4 columns (both Gram forms) and an empty one.
  add_case("segment_gram_sq", OpKind::segment_gram_sq, {random_input("s", {kRows, 4}, 21)},
           [](OpEnv& e, V v) { return ops::segment_gram_sq(e.tape(), v[0], e.segments({0, 2, 2, 7, 10, 22})); })
      .product = true;

  // per-graph blocks: graphs of 5, 0, 1, 7 and 9 rows with 2, 1, 1, 3 and 4 clusters (K = 4)
  {
    static const std::vector<int64_t> rows = {5, 0, 1, 7, 9}, ks = {2, 1, 1, 3, 4};
    const int64_t e_s = ragged_blocks(rows, ks).elements, e_a = ragged_blocks(rows, rows).elements;
    add_case("block_linear", OpKind::block_linear,
             {random_input("x", {kRows, 6}, 51), random_input("w", {6, 4}, 52), random_input("b", {4}, 53)},
             [](OpEnv& e, V v) {
               return ops::block_linear(e.tape(), v[0], v[1], v[2], e.context(&e.blocks(ragged_blocks(rows, ks))));
             }).product = true;
    add_case("block_linear with x2", OpKind::block_linear,
             {random_input("x", {kRows, 6}, 75), random_input("w", {9, 4}, 76), random_input("b", {4}, 77),
              random_input("x2", {kRows, 3}, 78)},
             [](OpEnv& e, V v) {
               return ops::block_linear(e.tape(), v[0], v[1], v[2], e.context(&e.blocks(ragged_blocks(rows, ks))),
                                        v[3]);
             }).product = true;
    add_case("block_softmax", OpKind::block_softmax, {random_input("x", {e_s, 1}, 54, -3, 3)}, [](OpEnv& e, V v) {
      return ops::block_softmax(e.tape(), v[0], e.context(&e.blocks(ragged_blocks(rows, ks))));
    });
    add_case("block_matmul s^T z", OpKind::block_matmul, {random_input("s", {e_s, 1}, 55), random_input("z", {kRows, 5}, 56)},
             [](OpEnv& e, V v) {
               const Blocks& s = e.blocks(ragged_blocks(rows, ks));
               const Blocks& z = e.blocks(packed_blocks(e.segments(kOffsets), 5));
               const Blocks& x = e.blocks(packed_blocks(e.segments({0, 2, 3, 4, 7, 11}), 5));
               return ops::block_matmul(e.tape(), v[0], v[1], e.context(&s, &z, &x, Trans::yes));
             }).product = true;
    add_case("block_matmul a s", OpKind::block_matmul, {random_input("a", {e_a, 1}, 57), random_input("s", {e_s, 1}, 58)},
             [](OpEnv& e, V v) {
               const Blocks& a = e.blocks(ragged_blocks(rows, rows));
               const Blocks& s = e.blocks(ragged_blocks(rows, ks));
               return ops::block_matmul(e.tape(), v[0], v[1], e.context(&a, &s, &s));
             }).product = true;
    add_case("block_spmm", OpKind::block_spmm, {random_input("s", {e_s, 1}, 59)}, [](OpEnv& e, V v) {
      BlockContext& ctx = e.context(&e.blocks(ragged_blocks(rows, ks)));
      e.per_graph_csr(block_diagonal_csr(60), kOffsets, ctx);
      return ops::block_spmm(e.tape(), v[0], ctx);
    }).product = true;
    add_case("block_dot", OpKind::block_dot, {random_input("a", {e_s, 1}, 61), random_input("b", {e_s, 1}, 62)},
             [](OpEnv& e, V v) { return ops::block_dot(e.tape(), v[0], v[1], e.context(&e.blocks(ragged_blocks(rows, ks)))); })
        .product = true;
    add_case("block_gram_sq", OpKind::block_gram_sq, {random_input("s", {e_s, 1}, 63)}, [](OpEnv& e, V v) {
      return ops::block_gram_sq(e.tape(), v[0], e.context(&e.blocks(ragged_blocks(rows, ks))));
    }).product = true;
    add_case("block_row_sum", OpKind::block_row_sum, {random_input("x", {e_s, 1}, 64)}, [](OpEnv& e, V v) {
      return ops::block_row_sum(e.tape(), v[0], e.context(&e.blocks(ragged_blocks(rows, ks))));
    });
    add_case("block_row_xlogx", OpKind::block_row_xlogx, {random_input("x", {e_s, 1}, 65, 0.05, 1.0)}, [](OpEnv& e, V v) {
      return ops::block_row_xlogx(e.tape(), v[0], e.context(&e.blocks(ragged_blocks(rows, ks))));
    });
    GradInput s = random_input("s", {e_s, 1}, 66);
    for (double& x : s.values) x = 0.02 + 0.28 * (x - std::floor(x));
    add_case("block_link_bce", OpKind::block_link_bce, {s}, [](OpEnv& e, V v) {
      BlockContext& ctx = e.context(&e.blocks(ragged_blocks(rows, ks)));
      e.per_graph_csr(block_diagonal_csr(67), kOffsets, ctx);
      return ops::block_link_bce(e.tape(), v[0], ctx);
    });
  }

  // elementwise
  add_case("add", OpKind::add, {random_input("a", {kRows, 5}, 22), random_input("b", {kRows, 5}, 23)},
           [](OpEnv& e, V v) { return ops::add(e.tape(), v[0], v[1], 0.7, -1.3); });
  add_case("add scaled", OpKind::add, {random_input("a", {kRows, 5}, 24)},
           [](OpEnv& e, V v) { return ops::add(e.tape(), v[0], nullptr, -2.5); });
  add_case("add to itself", OpKind::add, {random_input("a", {kRows, 5}, 25)},
           [](OpEnv& e, V v) { return ops::add(e.tape(), v[0], v[0], 1.5, 0.25); });
  add_case("mul", OpKind::mul, {random_input("a", {kRows, 5}, 26), random_input("b", {kRows, 5}, 27)},
           [](OpEnv& e, V v) { return ops::mul(e.tape(), v[0], v[1]); });
  add_case("mul square", OpKind::mul, {random_input("a", {kRows, 5}, 28)},
           [](OpEnv& e, V v) { return ops::mul(e.tape(), v[0], v[0]); });
  add_case("scale_rows", OpKind::scale_rows, {random_input("x", {kRows, 5}, 29), random_input("r", {kRows, 1}, 30)},
           [](OpEnv& e, V v) { return ops::scale_rows(e.tape(), v[0], v[1]); });
  add_case("relu", OpKind::relu, {random_input("x", {kRows, 5}, 31)},
           [](OpEnv& e, V v) { return ops::relu(e.tape(), v[0]); });
  add_case("sqrt", OpKind::sqrt, {random_input("x", {kRows, 5}, 32, 0.2, 2.0)},
           [](OpEnv& e, V v) { return ops::sqrt(e.tape(), v[0], 1e-6); });
  add_case("reciprocal", OpKind::reciprocal, {random_input("x", {kRows, 5}, 33, 0.2, 2.0)},
           [](OpEnv& e, V v) { return ops::reciprocal(e.tape(), v[0], 1e-3); });
  add_case("dropout", OpKind::dropout, {random_input("x", {kRows, 9}, 34)},
           [](OpEnv& e, V v) { return ops::dropout(e.tape(), v[0], 0.3, 1234); });

  // reductions
  add_case("row_sum", OpKind::row_sum, {random_input("x", {kRows, 5}, 35)},
           [](OpEnv& e, V v) { return ops::row_sum(e.tape(), v[0]); });
  add_case("row_dot", OpKind::row_dot, {random_input("a", {kRows, 5}, 36), random_input("b", {kRows, 5}, 37)},
           [](OpEnv& e, V v) { return ops::row_dot(e.tape(), v[0], v[1]); });
  add_case("row_dot square", OpKind::row_dot, {random_input("a", {kRows, 5}, 38)},
           [](OpEnv& e, V v) { return ops::row_dot(e.tape(), v[0], v[0]); });
  add_case("mean_all", OpKind::mean_all, {random_input("x", {kRows, 5}, 39)},
           [](OpEnv& e, V v) { return ops::mean_all(e.tape(), v[0]); });
  add_case("mean_all scaled", OpKind::mean_all, {random_input("x", {kRows, 5}, 45)},
           [](OpEnv& e, V v) { return ops::mean_all(e.tape(), v[0], -1.0); });
  add_case("row_xlogx", OpKind::row_xlogx, {random_input("x", {kRows, 5}, 40, 0.05, 1.0)},
           [](OpEnv& e, V v) { return ops::row_xlogx(e.tape(), v[0]); });

  // normalisation
  add_case("l2_normalize_rows", OpKind::l2_normalize_rows, {random_input("x", {kRows, 6}, 41)},
           [](OpEnv& e, V v) { return ops::l2_normalize_rows(e.tape(), v[0]); });
  add_case("l2_normalize_rows with relu", OpKind::l2_normalize_rows, {random_input("x", {kRows, 6}, 141)},
           [](OpEnv& e, V v) { return ops::l2_normalize_rows(e.tape(), v[0], 1e-12, true); });
  const std::vector<double> running_mean = random_input("", {5}, 42).values;
  const std::vector<double> running_var = random_input("", {5}, 43, 0.5, 2.0).values;
  auto batch_norm = [running_mean, running_var](bool training) {
    return [=](OpEnv& e, V v) {
      return ops::batch_norm(e.tape(), v[0], v[1], v[2], e.state("running mean", running_mean),
                             e.state("running var", running_var), training);
    };
  };
  const std::vector<GradInput> bn_inputs = {random_input("x", {kRows, 5}, 44), random_input("gamma", {5}, 45, 0.5, 1.5),
                                            random_input("beta", {5}, 46)};
  add_case("batch_norm training", OpKind::batch_norm, bn_inputs, batch_norm(true));
  add_case("batch_norm evaluation", OpKind::batch_norm, bn_inputs, batch_norm(false)).forward_only = true;

  // softmax and loss; 37 columns: more than one warp's share of a row
  add_case("softmax_rows", OpKind::softmax_rows, {random_input("x", {kRows, 37}, 47, -3, 3)},
           [](OpEnv& e, V v) { return ops::softmax_rows(e.tape(), v[0]); });
  add_case("softmax_rows in place", OpKind::softmax_rows, {random_input("x", {kRows, 5}, 48, -3, 3)},
           [](OpEnv& e, V v) { return ops::softmax_rows(e.tape(), v[0], true); });
  add_case("cross_entropy", OpKind::cross_entropy, {random_input("logits", {5, 4}, 49, -2, 2)},
           [](OpEnv& e, V v) { return ops::cross_entropy(e.tape(), v[0], e.labels({2, 0, 3, 1, 3})); });
  return cases;
}

// The kinds recorded on a tape, read from its description ("  12 linear  f32[...] <- ...").
std::set<std::string> recorded_kinds(const Tape& tape) {
  std::set<std::string> kinds;
  std::istringstream lines(tape.describe());
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string index, kind;
    words >> index >> kind;
    kinds.insert(kind);
  }
  return kinds;
}

template <class T> struct OpRun {
  std::vector<T> output;
  std::vector<std::vector<T>> grads;  // per input; empty for inputs without a gradient
  std::vector<std::vector<T>> states;
  std::set<std::string> kinds;
};

// Runs a case's forward and backward in T. The output is reduced to the scalar
// loss = mean(out * R) with fixed random weights R scaled by the output's size, so every output
// element receives its own upstream gradient of magnitude about 1. magnitudes: the absolute
// values of the inputs and of R, for the bounds of the product ops.
template <class T> OpRun<T> run_op(Backend& be, const OpCase& c, bool magnitudes) {
  const DType dtype = std::is_same_v<T, float> ? DType::f32 : DType::f64;
  Workspace ws(be);
  Tape tape(be, ws);
  OpEnv env(tape, dtype);
  std::vector<Variable*> vars;
  for (const GradInput& in : c.inputs) {
    std::vector<double> values = in.values;
    if (magnitudes)
      for (double& x : values) x = std::abs(x);
    vars.push_back(tape.input(upload_as(ws, values, in.shape, dtype), in.requires_grad));
  }
  Variable* out = c.build(env, vars);
  OpRun<T> run;
  run.kinds = recorded_kinds(tape);
  run.output = download<T>(be, out->value);
  for (const auto& [name, tensor] : env.states()) run.states.push_back(download<T>(be, tensor));
  if (c.forward_only) return run;

  const int64_t n = out->value.numel();
  Rng rng(0xC0FFEE);
  std::vector<double> weights(static_cast<std::size_t>(n));
  for (double& w : weights)
    w = static_cast<double>(n) * rng.uniform(0.5, 1.5) * (magnitudes || rng.uniform() < 0.5 ? 1.0 : -1.0);
  Variable* r = tape.constant(upload_as(ws, weights, out->value.shape(), dtype));
  tape.backward(ops::mean_all(tape, ops::mul(tape, out, r)));
  for (std::size_t i = 0; i < c.inputs.size(); ++i) {
    if (!c.inputs[i].requires_grad) run.grads.emplace_back();
    else if (!vars[i]->grad.defined()) run.grads.emplace_back(c.inputs[i].values.size(), T(0));  // none reached it
    else run.grads.push_back(download<T>(be, vars[i]->grad));
  }
  return run;
}

// ---- the backend pair -----------------------------------------------------------------------------

class CudaOps : public testing::BackendPairTest {};

// Every OpKind has a case, so a new op without a parity case fails here (no device needed).
TEST(OpCoverage, EveryOpKindHasACase) {
  std::set<OpKind> covered;
  for (const OpCase& c : make_op_cases()) covered.insert(c.kind);
  for (int k = 0; k < static_cast<int>(OpKind::count); ++k)
    EXPECT_TRUE(covered.count(static_cast<OpKind>(k))) << "no parity case for op " << op_kind_name(static_cast<OpKind>(k));
}

// Ops take their backward function from the op table (detail::record); a record that reaches
// the tape without one is refused when it is recorded, naming the op, not at backward time.
TEST(OpTable, TapeRefusesARecordWithoutBackward) {
  auto backend = make_cpu_backend(1);
  Workspace ws(*backend);
  Tape tape(*backend, ws);
  Variable* x = tape.input(ws.zeros(Shape{2, 3}, DType::f64), true);
  Variable* y = ops::relu(tape, x);
  ASSERT_EQ(tape.record_count(), 1u);  // the op's own record, with its backward
  Record r;
  r.kind = OpKind::relu;
  r.inputs = {x, nullptr, nullptr, nullptr};
  r.output = tape.make_output(ws.empty(Shape{2, 3}, DType::f64));
  try {
    tape.record(r);
    ADD_FAILURE() << "a record without a backward function was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("relu without a backward function"), std::string::npos) << e.what();
  }
  EXPECT_EQ(tape.record_count(), 1u);
  tape.backward(ops::mean_all(tape, y));  // the op's record runs its backward
  EXPECT_TRUE(x->grad.defined());
}

TEST_F(CudaOps, EveryOpForwardAndBackward) {
  for (const OpCase& c : make_op_cases()) {
    SCOPED_TRACE(c.name);
    for_each_float([&](auto zero) {
      using T = decltype(zero);
      const OpRun<T> expected = run_op<T>(ref(), c, false);
      const OpRun<T> actual = run_op<T>(gpu(), c, false);
      if (!c.forward_only) {
        EXPECT_TRUE(actual.kinds.count(op_kind_name(c.kind))) << "the case does not record " << op_kind_name(c.kind);
      }
      EXPECT_EQ(expected.kinds, actual.kinds);
      std::vector<std::vector<double>> bounds;  // output, then each input's gradient
      if (c.product) {
        const OpRun<double> magnitudes = run_op<double>(ref(), c, true);
        bounds.push_back(magnitudes.output);
        for (const auto& g : magnitudes.grads) bounds.push_back(g);
      }
      auto bound = [&](std::size_t i) { return c.product ? &bounds[i] : nullptr; };
      expect_close<T>(c.name + " output", expected.output, actual.output, bound(0));
      for (std::size_t i = 0; i < expected.grads.size(); ++i)
        expect_close<T>(c.name + " gradient of " + c.inputs[i].name, expected.grads[i], actual.grads[i], bound(i + 1));
      for (std::size_t i = 0; i < expected.states.size(); ++i)
        expect_close<T>(c.name + " state " + std::to_string(i), expected.states[i], actual.states[i]);
    });
  }
}

// ---- the model: a training step and ten Adam steps -------------------------------------------------

// A training step runs dozens of ops in f32 whose rounding differs between the backends (cuBLAS
// and OpenBLAS sum products in different orders; device expf/logf); batch norm, l2-normalisation
// and softmax pass those differences on, relative to their inputs, so the step's results agree to
// a few f32 digits less than one op's. Adam then divides each gradient by its own running
// magnitude: an element whose gradient is mostly rounding noise moves by up to the learning rate
// either way, so parameter differences grow with the steps. Tolerances (scaled, per parameter
// tensor; see parity_util.hpp):
//   loss parts and gradients of the first step: rtol 1e-3, atol 1e-4
//   loss after t Adam steps:                    rtol 1e-3 (1 + t), atol 1e-4 (1 + t)
//   parameters after t steps:                   rtol 1e-4 t, atol 0.01 learning rate t
// The last one is far below what Adam can move a parameter in t steps (learning rate t), so a
// wrong update still fails it. Under the CUDA emulation the worst differences are 1/30 or less of
// these tolerances (the emulated cuBLAS sums in another order than OpenBLAS); a GPU adds fused
// multiply-adds and its own expf/logf.
constexpr Tolerance kModelTolerance{1e-3, 1e-4};
constexpr int kAdamSteps = 10;
constexpr double kLearningRate = 1e-3;

struct StepLosses {
  double loss = 0, classification = 0, link = 0, entropy = 0;
};

struct ModelRun {
  std::vector<StepLosses> losses;  // before each Adam step and after the last
  std::vector<float> first_grads;  // the parameter gradients of the first step
  std::vector<float> values;       // the parameters after the last step
  std::vector<float> buffers;      // batch-norm running statistics after the last step
  bool dense = false;              // level 0 as dense per-graph blocks (GraphBatch::dense())
};

double scalar_or_zero(Backend& be, const Variable* v) { return v ? read_scalar(be, v->value) : 0.0; }

ModelRun run_model(Backend& be, const GraphDataset& data, const std::vector<int64_t>& ids, const ModelConfig& config) {
  DiffPoolModel model(config, data.num_features, data.num_classes(), data.max_nodes());
  ParameterStore& params = model.parameters();
  params.allocate(be, DType::f32);
  params.initialize(2018);  // drawn on the host: the same values on every backend
  AdamSettings settings;
  settings.learning_rate = kLearningRate;
  Adam adam(params, settings, 2.0);
  Workspace ws(be);
  ModelRun run;
  for (int step = 0; step <= kAdamSteps; ++step) {
    ws.reset();
    Tape tape(be, ws);
    GraphBatch batch = build_batch(data, ids, ws, DType::f32);
    run.dense = batch.dense();
    // Dropout masks depend on the seed alone, so both backends drop the same elements.
    ForwardOutput out = model.forward(tape, batch, true, Rng::derive(77, static_cast<uint64_t>(step)));
    run.losses.push_back({scalar_or_zero(be, out.loss), scalar_or_zero(be, out.classification_loss),
                          scalar_or_zero(be, out.link_loss), scalar_or_zero(be, out.entropy_loss)});
    if (step == kAdamSteps) break;
    params.zero_grad();
    tape.backward(out.loss);
    if (step == 0) run.first_grads = download<float>(be, params.grads());
    adam.step();
  }
  run.values = download<float>(be, params.values());
  run.buffers = download<float>(be, params.buffers());
  return run;
}

// Compares arena slices parameter by parameter, so each tolerance scales with its own tensor.
void expect_params_close(const std::string& what, const ParameterStore& params, const std::vector<float>& expected,
                         const std::vector<float>& actual, Tolerance tolerance) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  for (const auto& e : params.entries()) {
    const auto begin = static_cast<std::ptrdiff_t>(e.offset), end = begin + static_cast<std::ptrdiff_t>(e.shape.numel());
    expect_close<float>(what + " " + e.name, std::vector<float>(expected.begin() + begin, expected.begin() + end),
                        std::vector<float>(actual.begin() + begin, actual.begin() + end), nullptr, tolerance);
  }
}

class CudaModel : public CudaOps {
 protected:
  static void SetUpTestSuite() {
    CudaOps::SetUpTestSuite();
    if (!tested_) return;  // every test skips or fails in SetUp
    try {
      DatasetOptions options;
      options.data_dir = testing::data_dir();
      data_ = std::make_unique<GraphDataset>(load_tu_dataset("ENZYMES", options));
      source_ = "ENZYMES";
    } catch (const std::exception& e) {
      // Without the data the same checks run on synthetic graphs of unequal sizes.
      data_ = std::make_unique<GraphDataset>(testing::synthetic_dataset({30, 4, 17, 9, 25, 2, 12}, 18, 6, 5));
      source_ = std::string("synthetic graphs (ENZYMES not loaded: ") + e.what() + ")";
    }
    std::string sizes;
    for (int64_t g : batch_ids()) sizes += (sizes.empty() ? "" : ", ") + std::to_string(data_->num_nodes(g));
    std::printf("model batch: %s, graphs of %s nodes\n", source_.c_str(), sizes.c_str());
  }
  static void TearDownTestSuite() {
    data_.reset();
    CudaOps::TearDownTestSuite();
  }

  // Seven graphs spread over the size range, the smallest and the largest included, not sorted.
  static std::vector<int64_t> batch_ids() {
    const GraphDataset& d = *data_;
    std::vector<int64_t> order(static_cast<std::size_t>(d.num_graphs()));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return d.num_nodes(a) < d.num_nodes(b); });
    const std::size_t last = order.size() - 1;
    return {order[last / 2], order[0], order[last], order[last / 6], order[5 * last / 6], order[last / 3],
            order[2 * last / 3]};
  }

  void check_model(const std::string& name, const ModelConfig& config) {
    check_model(name, config, *data_, source_, batch_ids());
  }
  void check_model(const std::string& name, const ModelConfig& config, const GraphDataset& data,
                   const std::string& source, const std::vector<int64_t>& ids) {
    SCOPED_TRACE(name + " on " + source);
    const ModelRun expected = run_model(ref(), data, ids, config);
    const ModelRun actual = run_model(gpu(), data, ids, config);
    EXPECT_EQ(expected.dense, actual.dense) << "both backends take the same level-0 path";
    // Parameter names and offsets for the comparisons (the same layout on every backend).
    DiffPoolModel layout(config, data.num_features, data.num_classes(), data.max_nodes());

    ASSERT_EQ(expected.losses.size(), actual.losses.size());
    for (std::size_t t = 0; t < expected.losses.size(); ++t) {
      const double widen = 1.0 + static_cast<double>(t);
      const Tolerance tolerance{kModelTolerance.rtol * widen, kModelTolerance.atol * widen};
      const StepLosses &e = expected.losses[t], &a = actual.losses[t];
      expect_close<double>(name + " losses (total, classification, link, entropy) after " + std::to_string(t) +
                               " Adam steps",
                           {e.loss, e.classification, e.link, e.entropy}, {a.loss, a.classification, a.link, a.entropy},
                           nullptr, tolerance);
    }
    if (config.has_pooling()) {
      EXPECT_GT(expected.losses[0].link, 0.0) << "the link-prediction loss is part of the step";
    }
    expect_params_close(name + " gradient of", layout.parameters(), expected.first_grads, actual.first_grads,
                        kModelTolerance);
    const Tolerance after{1e-4 * kAdamSteps, 0.01 * kLearningRate * kAdamSteps};
    expect_params_close(name + " after " + std::to_string(kAdamSteps) + " Adam steps,", layout.parameters(),
                        expected.values, actual.values, after);
    expect_close<float>(name + " batch-norm running statistics", expected.buffers, actual.buffers, nullptr, after);
  }

  static ModelConfig paper_config(int levels) {  // the paper's ENZYMES setup (section 4.1)
    ModelConfig c;
    c.variant = Variant::diffpool;
    c.pool_levels = levels;
    c.cluster_ratio = levels == 1 ? 0.1 : 0.25;
    c.hidden_dim = 30;
    c.embedding_dim = 30;
    return c;
  }

  static std::unique_ptr<GraphDataset> data_;
  static std::string source_;
};
std::unique_ptr<GraphDataset> CudaModel::data_;
std::string CudaModel::source_;

TEST_F(CudaModel, DiffPoolOneLevel) { check_model("diffpool, 1 level", paper_config(1)); }

TEST_F(CudaModel, DiffPoolTwoLevelsWithDropout) {
  ModelConfig c = paper_config(2);
  c.dropout = 0.1;
  check_model("diffpool, 2 levels, dropout 0.1", c);
}

// Dense graphs (9 to 40 nodes, 90% of node pairs linked): level 0 as one GEMM per graph over
// dense blocks (GraphBatch::dense()), on both backends, with each cluster rule.
TEST_F(CudaModel, DenseFirstLevel) {
  const GraphDataset dense = testing::synthetic_dataset({23, 9, 40, 14, 31, 12}, 18, 3, 6, 0.9);
  const std::vector<int64_t> ids = {0, 1, 2, 3, 4, 5};
  Workspace ws(ref());
  ASSERT_TRUE(build_batch(dense, ids, ws, DType::f32).dense());
  ModelConfig c = paper_config(1);
  check_model("diffpool, 1 level, dense level 0", c, dense, "dense synthetic graphs", ids);
  c = paper_config(2);
  c.cluster_rule = ClusterRule::per_graph;
  check_model("diffpool, 2 levels, per-graph clusters, dense level 0", c, dense, "dense synthetic graphs", ids);
}

// Per-graph cluster counts: every pooled block at its graph's own size, both link-loss forms.
TEST_F(CudaModel, PerGraphClustersTwoLevels) {
  ModelConfig c = paper_config(2);
  c.cluster_rule = ClusterRule::per_graph;
  check_model("diffpool, 2 levels, per-graph clusters", c);
  c.link_norm = LinkLossNorm::bce;
  check_model("diffpool, 2 levels, per-graph clusters, binary cross-entropy", c);
}

TEST_F(CudaModel, GraphSageBaseline) {
  ModelConfig c = paper_config(1);
  c.variant = Variant::graphsage;
  check_model("graphsage", c);
}

// An evaluation's cluster usage (the argmax of every graph's block of S, read back once per
// batch) is the CPU's: after the same training, both cluster rules, two levels, f64.
TEST_F(CudaModel, EvaluationCountsTheClustersInUseAsTheCpu) {
  const GraphDataset data = testing::synthetic_dataset({30, 4, 17, 9, 25, 2, 12, 21, 6, 14, 11}, 18, 6, 5);
  for (const ClusterRule rule : {ClusterRule::per_graph, ClusterRule::largest_graph}) {
    ModelConfig m;
    m.hidden_dim = 12;
    m.embedding_dim = 12;
    m.pool_levels = 2;
    m.cluster_rule = rule;
    TrainConfig t;
    t.epochs = 1;
    t.batch_size = 4;
    t.dtype = DType::f64;
    Split split;
    split.train = {0, 1, 2, 3, 4, 5, 6, 7};
    split.validation = {8, 9, 10, 0, 3};
    std::vector<Metrics> validation;
    for (Backend* be : {&ref(), &gpu()}) {
      Trainer trainer(*be, data, m, t, split);
      const EpochMetrics e = trainer.run_epoch();
      ASSERT_TRUE(e.validation.has_value());
      validation.push_back(*e.validation);
    }
    ASSERT_EQ(validation[0].cluster_usage.size(), 2u);
    ASSERT_EQ(validation[1].cluster_usage.size(), 2u);
    for (std::size_t l = 0; l < 2; ++l) {
      EXPECT_NEAR(validation[1].cluster_usage[l], validation[0].cluster_usage[l], 1e-12)
          << (rule == ClusterRule::per_graph ? "per_graph" : "largest_graph") << " level " << l;
    }
    EXPECT_NEAR(validation[1].accuracy, validation[0].accuracy, 1e-12);
  }
}

#if defined(DIFFPOOL_CUDA_EMULATION)
// A workspace that grows step after step (D&D: a batch with more nodes than any before) merges its
// chunks into a larger one each time. The caching allocator must not keep the chunks it merged
// away: their sizes never come back, so the device memory held would be the sum of every size the
// workspace ever had. Outside a capture, and inside one (given back after the graph's launch).
TEST(CudaAllocator, AGrowingWorkspaceGivesItsOldChunksBack) {
  for (const bool graphs : {false, true}) {
    SCOPED_TRACE(graphs ? "each step a CUDA graph" : "launches");
    auto be = DP_CUDA_NS::create_cuda_backend(0, {.caching_allocator = true, .cublas_grouped = {}, .graphs = graphs});
    const long long held_before = diffpool_emulator_counters().device_bytes;
    constexpr int64_t kMiB = int64_t{1} << 20;
    int64_t largest = 0;
    {
      Workspace ws(*be);
      for (const int64_t mib : {40, 50, 64, 80, 40}) {
        ws.reset();
        StepScope scope(*be);
        (void)ws.empty(Shape{mib * kMiB / 4}, DType::f32);
        scope.end();
        largest = std::max(largest, mib * kMiB);
      }
      ws.reset();
      const long long held = diffpool_emulator_counters().device_bytes - held_before;
      // The merged chunk (the high-water mark and 1 MiB), and small blocks of the backend's own.
      EXPECT_LE(held, largest + 16 * kMiB) << "device bytes held after the workspace grew to " << largest / kMiB << " MiB";
      EXPECT_GE(held, largest) << "the workspace's chunk is not counted";
    }
  }
}

// A gemm_grouped call whose groups are partly over the grouped kernel's limit (D&D's per-graph
// products with the largest graph's cluster count): the small ones are one kernel launch, the
// large ones one grouped cuBLAS call with CudaBackendOptions::cublas_grouped (one call per group
// without it, the default), plus the upload of its pointer arrays; a single large group is a plain
// cuBLAS call. Values are checked by BackendParity.GemmGrouped.
TEST(CudaLaunches, LargeGroupsInOneCublasCall) {
  for (const bool grouped : {true, false}) {
    SCOPED_TRACE(grouped ? "cublas_grouped on" : "cublas_grouped off");
    auto be = DP_CUDA_NS::create_cuda_backend(0, {.cublas_grouped = grouped, .graphs = {}});
    Workspace ws(*be);
    Rng rng(12);
    auto matrix = [&](int64_t rows, int64_t cols) {
      std::vector<double> values(static_cast<std::size_t>(rows * cols));
      for (double& v : values) v = rng.uniform(-1, 1);
      return upload_as(ws, values, Shape{rows, cols}, DType::f32);
    };
    // Three large groups (m x n x k over 2^20 multiply-adds) and two small ones.
    const std::vector<std::array<int64_t, 3>> sizes = {{300, 300, 40}, {20, 10, 5}, {200, 150, 60}, {9, 9, 9}, {120, 160, 70}};
    std::vector<Tensor> as, bs, cs;
    for (const auto& [m, n, k] : sizes) {
      as.push_back(matrix(m, k));
      bs.push_back(matrix(k, n));
      cs.push_back(matrix(m, n));
    }
    auto groups_of = [&](std::size_t first, std::size_t last) {
      std::vector<GemmGroup> groups;
      for (std::size_t i = first; i < last; ++i)
        groups.push_back(GemmGroup{sizes[i][0], sizes[i][1], sizes[i][2], as[i].data(), sizes[i][2], bs[i].data(),
                                   sizes[i][1], cs[i].data(), sizes[i][1]});
      return groups;
    };
    be->synchronize();
    auto site = [](const std::string& name) {
      const auto sites = diffpool_emulator_launches_by_site();
      const auto it = sites.find(name);
      return it == sites.end() ? 0LL : it->second;
    };
    const long long cublas0 = site("cublas"), kernel0 = site("gemm_grouped");
    const DiffpoolEmulatorCounters before = diffpool_emulator_counters();
    be->gemm_grouped(Trans::no, Trans::no, groups_of(0, sizes.size()), 1.0, 0.0, DType::f32);
    be->synchronize();
    EXPECT_EQ(site("cublas") - cublas0, grouped ? 1 : 3) << "the three large groups";
    EXPECT_EQ(site("gemm_grouped") - kernel0, 1) << "the two small groups in one launch";
    EXPECT_EQ(diffpool_emulator_counters().host_to_device - before.host_to_device, grouped ? 1 : 0)
        << "the pointer arrays";
    const long long cublas1 = site("cublas");
    be->gemm_grouped(Trans::no, Trans::no, groups_of(0, 1), 1.0, 0.0, DType::f32);
    be->synchronize();
    EXPECT_EQ(site("cublas") - cublas1, 1) << "one large group: a plain cuBLAS call";
  }
}

// A GraphSAGE layer's linear part, [x | x2] w + b, over a batch of 20 ENZYMES graphs' size (652
// rows, width 30, as the paper model's hidden layers): the forward is one launch (the grouped-sum
// kernel starting from the bias; before, a broadcast and two cuBLAS calls), the two input
// gradients one more (before, two cuBLAS calls), and the weight and bias gradients one more
// (weight_gradients' column reduction; before, two cuBLAS calls and a column sum). Over the
// grouped kernel's limit, the calls of before.
TEST(CudaLaunches, GraphSageLinearPart) {
  auto be = DP_CUDA_NS::create_cuda_backend(0);
  for (const int64_t rows : {int64_t{652}, int64_t{1200}}) {
    SCOPED_TRACE(std::to_string(rows) + " rows");
    const bool small = rows * 30 * 30 <= (int64_t{1} << 20);
    Workspace ws(*be);
    Tape tape(*be, ws);
    Rng rng(rows);
    auto input = [&](Shape shape) {
      std::vector<double> values(static_cast<std::size_t>(shape.numel()));
      for (double& v : values) v = rng.uniform(-1, 1);
      return tape.input(upload_as(ws, values, shape, DType::f32), true);
    };
    Variable *x = input(Shape{rows, 30}), *x2 = input(Shape{rows, 30}), *w = input(Shape{60, 30}), *b = input(Shape{30});
    Variable* r = input(Shape{rows, 30});  // weights of the loss, mean(y * r)
    be->synchronize();
    auto sites = [] { return diffpool_emulator_launches_by_site(); };
    auto count = [](const std::map<std::string, long long>& after, const std::map<std::string, long long>& before,
                    const std::string& site) {
      const auto a = after.find(site), b = before.find(site);
      return (a == after.end() ? 0 : a->second) - (b == before.end() ? 0 : b->second);
    };
    auto total = [](const std::map<std::string, long long>& after, const std::map<std::string, long long>& before) {
      long long n = 0;
      for (const auto& [site, c] : after) n += c - (before.count(site) ? before.at(site) : 0);
      return n;
    };
    const auto start = sites();
    Variable* y = ops::linear(tape, x, w, b, x2);
    const auto forward = sites();
    EXPECT_EQ(total(forward, start), small ? 1 : 3) << "launches and cuBLAS calls of the forward";
    EXPECT_EQ(count(forward, start, "gemm_sum_from_row"), small ? 1 : 0);
    Variable* loss = ops::mean_all(tape, ops::mul(tape, y, r));
    tape.backward(loss);
    const auto backward = sites();
    EXPECT_EQ(count(backward, forward, "gemm_grouped"), small ? 1 : 0) << "both input gradients in one launch";
    EXPECT_EQ(count(backward, forward, "weight_gradients"), small ? 1 : 0) << "dW and db in one launch";
    EXPECT_EQ(count(backward, forward, "cublas"), small ? 0 : 4) << "over the limit: dx, dx2 and dW's two blocks";
    EXPECT_EQ(count(backward, forward, "reduce_cols"), small ? 0 : 1) << "over the limit: db";
    // The result is the product's: y = x w[:30] + x2 w[30:] + b against the CPU's.
    const auto host = [&](Variable* v) { return download<float>(*be, v->value); };
    std::vector<float> hx = host(x), hx2 = host(x2), hw = host(w), hb = host(b), hy = host(y);
    for (int64_t i = 0; i < rows; i += 97)
      for (int64_t j = 0; j < 30; ++j) {
        double expected = hb[static_cast<std::size_t>(j)];
        for (int64_t p = 0; p < 30; ++p)
          expected += static_cast<double>(hx[static_cast<std::size_t>(i * 30 + p)]) * hw[static_cast<std::size_t>(p * 30 + j)] +
                      static_cast<double>(hx2[static_cast<std::size_t>(i * 30 + p)]) * hw[static_cast<std::size_t>((30 + p) * 30 + j)];
        EXPECT_NEAR(hy[static_cast<std::size_t>(i * 30 + j)], expected, 1e-4) << "y[" << i << ", " << j << "]";
      }
  }
}

// A grouped launch passes its groups' descriptors in a chunk of 8, 24 or the kernel's largest
// capacity (48 for gemm_grouped), the smallest that holds them (device_common.cuh), so a batch of
// 20 graphs does not pass 48 descriptors. Checked by the launches and argument bytes the emulation
// counts for 1 to 100 groups, and every product's values against a host product in double.
TEST(CudaLaunches, GroupChunksSizedToTheirGroups) {
  auto be = DP_CUDA_NS::create_cuda_backend(0);
  Workspace ws(*be);
  Rng rng(21);
  const int64_t most = 100;
  std::vector<std::array<int64_t, 3>> sizes;
  std::vector<std::vector<double>> a_host, b_host;
  std::vector<Tensor> as, bs, cs;
  for (int64_t g = 0; g < most; ++g) {
    const int64_t m = 1 + static_cast<int64_t>(rng.below(9)), n = 1 + static_cast<int64_t>(rng.below(9)),
                  k = 1 + static_cast<int64_t>(rng.below(9));
    sizes.push_back({m, n, k});
    a_host.emplace_back(static_cast<std::size_t>(m * k));
    b_host.emplace_back(static_cast<std::size_t>(k * n));
    for (double& v : a_host.back()) v = rng.uniform(-1, 1);
    for (double& v : b_host.back()) v = rng.uniform(-1, 1);
    as.push_back(upload_as(ws, a_host.back(), Shape{m, k}, DType::f32));
    bs.push_back(upload_as(ws, b_host.back(), Shape{k, n}, DType::f32));
    cs.push_back(upload_as(ws, std::vector<double>(static_cast<std::size_t>(m * n), 0.0), Shape{m, n}, DType::f32));
  }
  auto site = [](const std::map<std::string, long long>& sites) {
    const auto it = sites.find("gemm_grouped");
    return it == sites.end() ? 0LL : it->second;
  };
  // Launches and argument bytes of one gemm_grouped call over the first `count` groups.
  auto call = [&](int64_t count) {
    std::vector<GemmGroup> groups;
    for (int64_t i = 0; i < count; ++i) {
      const auto& [m, n, k] = sizes[static_cast<std::size_t>(i)];
      groups.push_back(GemmGroup{m, n, k, as[static_cast<std::size_t>(i)].data(), k, bs[static_cast<std::size_t>(i)].data(), n,
                                 cs[static_cast<std::size_t>(i)].data(), n});
    }
    be->synchronize();
    const long long launches0 = site(diffpool_emulator_launches_by_site());
    const long long bytes0 = site(diffpool_emulator_argument_bytes_by_site());
    be->gemm_grouped(Trans::no, Trans::no, groups, 1.0, 0.0, DType::f32);
    be->synchronize();
    for (int64_t i = 0; i < count; ++i) {
      const auto& [m, n, k] = sizes[static_cast<std::size_t>(i)];
      const std::vector<float> c = download<float>(*be, cs[static_cast<std::size_t>(i)]);
      for (int64_t r = 0; r < m; ++r)
        for (int64_t j = 0; j < n; ++j) {
          double expected = 0;
          for (int64_t p = 0; p < k; ++p)
            expected += a_host[static_cast<std::size_t>(i)][static_cast<std::size_t>(r * k + p)] *
                        b_host[static_cast<std::size_t>(i)][static_cast<std::size_t>(p * n + j)];
          EXPECT_NEAR(c[static_cast<std::size_t>(r * n + j)], expected, 1e-5)
              << count << " groups: group " << i << " C[" << r << ", " << j << "]";
        }
    }
    return std::pair<long long, long long>{site(diffpool_emulator_launches_by_site()) - launches0,
                                           site(diffpool_emulator_argument_bytes_by_site()) - bytes0};
  };
  const auto [l1, small] = call(1);
  const auto [l8, small8] = call(8);
  const auto [l9, medium] = call(9);
  const auto [l24, medium24] = call(24);
  const auto [l25, large] = call(25);
  const auto [l48, large48] = call(48);
  for (const long long l : {l1, l8, l9, l24, l25, l48}) EXPECT_EQ(l, 1);
  EXPECT_EQ(small, small8) << "1 to 8 groups: the capacity of 8";
  EXPECT_EQ(medium, medium24) << "9 to 24 groups: the capacity of 24";
  EXPECT_EQ(large, large48) << "25 to 48 groups: the largest capacity";
  EXPECT_LT(small, medium);
  EXPECT_LT(medium, large);
  // 24 descriptors of 48 bytes fewer than the largest capacity's, 16 fewer than the medium one's.
  EXPECT_EQ(large - medium, 24 * 48);
  EXPECT_EQ(medium - small, 16 * 48);
  const auto [l49, bytes49] = call(49);
  EXPECT_EQ(l49, 2);
  EXPECT_EQ(bytes49, large + small) << "48 groups, then 1";
  const auto [l100, bytes100] = call(most);
  EXPECT_EQ(l100, 3);
  EXPECT_EQ(bytes100, 2 * large + small) << "48, 48, then 4";
}

// What a training step asks of the device, counted by the emulation: once the caching allocator
// holds the step's memory, a step (batch upload, forward, backward, Adam with clipping) must
// never make the host wait: no device-to-host copy, no stream synchronisation, no cudaMalloc or
// cudaFree (both synchronise the device on a GPU), no upload from pageable memory (the driver may
// wait for the stream before staging it), no new page-locked buffer, no wait for an upload slot. Losses and metrics are read once per epoch
// (engine/train/trainer.cpp). It also prints the step's launches, cuBLAS calls and uploads, the
// figures docs/PERFORMANCE.md quotes for an ENZYMES step.
TEST(CudaStep, NeverWaitsForTheDevice) {
  DatasetOptions options;
  options.data_dir = testing::data_dir();
  std::unique_ptr<GraphDataset> data;
  std::string source = "ENZYMES";
  try {
    data = std::make_unique<GraphDataset>(load_tu_dataset("ENZYMES", options));
  } catch (const std::exception& e) {
    data = std::make_unique<GraphDataset>(testing::synthetic_dataset({30, 4, 17, 9, 25, 2, 12}, 18, 6, 5));
    source = std::string("synthetic graphs (ENZYMES not loaded: ") + e.what() + ")";
  }
  std::vector<int64_t> ids;
  for (int64_t g = 0; g < std::min<int64_t>(20, data->num_graphs()); ++g) ids.push_back(g);
  struct Case {
    std::string name;
    ModelConfig config;
  };
  std::vector<Case> cases;
  {
    ModelConfig c;  // configs/paper/enzymes-diffpool.yaml: 1 pooling level, 10% of the largest graph
    c.variant = Variant::diffpool;
    c.hidden_dim = 30;
    c.embedding_dim = 30;
    c.cluster_ratio = 0.1;
    cases.push_back({"paper ENZYMES model (1 level)", c});
    c.pool_levels = 2;
    c.cluster_ratio = 0.25;
    c.cluster_rule = ClusterRule::per_graph;
    cases.push_back({"2 levels, per-graph clusters", c});
  }
  // With the caching allocator, as in training, and each step a CUDA graph (DIFFPOOL_CUDA_GRAPHS=1).
  auto be = DP_CUDA_NS::create_cuda_backend(0, {.caching_allocator = true, .cublas_grouped = {}, .graphs = true});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name + " on " + source);
    DiffPoolModel model(c.config, data->num_features, data->num_classes(), data->max_nodes());
    ParameterStore& params = model.parameters();
    params.allocate(*be, DType::f32);
    params.initialize(2018);
    Adam adam(params, AdamSettings{}, 2.0);
    Workspace ws(*be);
    auto step = [&](int i) {
      ws.reset();
      Tape tape(*be, ws);
      StepScope scope(*be);  // as the trainer: the step one CUDA graph
      GraphBatch batch = build_batch(*data, ids, ws, DType::f32);
      ForwardOutput out = model.forward(tape, batch, true, Rng::derive(5, static_cast<uint64_t>(i)));
      params.zero_grad();
      tape.backward(out.loss);
      adam.step();
      scope.end();
    };
    // The workspace and the allocator's cache fill up, and every slot of the upload ring (8,
    // each allocated at its first use: 2 or 4 uploads a step) gets its page-locked buffer; then a
    // step's graph is instantiated once and updated from then on.
    const int warm = 5;
    for (int i = 0; i < warm; ++i) step(i);
    const DiffpoolEmulatorCounters before = diffpool_emulator_counters();
    const std::map<std::string, long long> sites_before = diffpool_emulator_launches_by_site();
    const int steps = 3;
    for (int i = warm; i < warm + steps; ++i) step(i);
    const DiffpoolEmulatorCounters after = diffpool_emulator_counters();
    std::vector<std::pair<long long, std::string>> sites;
    for (const auto& [site, count] : diffpool_emulator_launches_by_site()) {
      const auto it = sites_before.find(site);
      const long long per_step = (count - (it == sites_before.end() ? 0 : it->second)) / steps;
      if (per_step > 0) sites.emplace_back(per_step, site);
    }
    std::sort(sites.rbegin(), sites.rend());
    EXPECT_EQ(after.device_to_host - before.device_to_host, 0) << "device-to-host copies in training steps";
    EXPECT_EQ(after.stream_synchronizations - before.stream_synchronizations, 0) << "stream synchronisations";
    EXPECT_EQ(after.mallocs - before.mallocs, 0) << "cudaMalloc calls in steady-state steps";
    EXPECT_EQ(after.frees - before.frees, 0) << "cudaFree calls in steady-state steps";
    // Uploads from page-locked memory only (a pageable source may make the driver wait for the
    // stream), no new page-locked buffers, and no wait for an upload slot's event.
    EXPECT_EQ(after.host_to_device_pageable - before.host_to_device_pageable, 0) << "uploads from pageable memory";
    EXPECT_EQ(after.pinned_allocations - before.pinned_allocations, 0) << "cudaHostAlloc calls in steady-state steps";
    EXPECT_EQ(after.event_waits - before.event_waits, 0) << "waits for an upload slot";
    EXPECT_GT(after.kernel_launches - before.kernel_launches, 0);
    // Each step one graph, updated from the last one (same shapes, so no new instantiation).
    EXPECT_EQ(after.graph_launches - before.graph_launches, steps) << "graph launches";
    EXPECT_EQ(after.graph_instantiations - before.graph_instantiations, 0) << "graph instantiations in steady state";
    EXPECT_EQ(after.graph_updates - before.graph_updates, steps) << "graph updates";
    std::printf("%s, batch of %zu graphs of %s: per step %lld kernel launches, %lld cuBLAS calls, %lld uploads "
                "(%lld bytes), %lld device-to-device copies\n",
                c.name.c_str(), ids.size(), source.c_str(), (after.kernel_launches - before.kernel_launches) / steps,
                (after.cublas_calls - before.cublas_calls) / steps, (after.host_to_device - before.host_to_device) / steps,
                (after.host_to_device_bytes - before.host_to_device_bytes) / steps,
                (after.device_to_device - before.device_to_device) / steps);
    std::printf("  launches per step by site:");
    for (std::size_t i = 0; i < sites.size() && i < 40; ++i) std::printf(" %s %lld;", sites[i].second.c_str(), sites[i].first);
    std::printf("\n");
    // The counters do count: reading a loss back is one copy and one wait.
    const DiffpoolEmulatorCounters read_before = diffpool_emulator_counters();
    (void)download<float>(*be, params.values());
    const DiffpoolEmulatorCounters read_after = diffpool_emulator_counters();
    EXPECT_EQ(read_after.device_to_host - read_before.device_to_host, 1);
    EXPECT_GE(read_after.stream_synchronizations - read_before.stream_synchronizations, 1);
  }
}

// Steps as CUDA graphs (Backend::begin_step): training with every step captured and launched as
// one graph gives exactly the parameters of training with every launch issued as it comes
// (graphs off), over batches of different sizes (graph updates with other sizes and pointers, a
// smaller last batch with a graph of its own), 2 pooling levels with per-graph clusters, and
// with exact-size allocations (blocks given back inside a step are freed after its graph ran).
TEST(CudaGraphs, StepsAsGraphsTrainAsIssued) {
  const GraphDataset data = testing::synthetic_dataset({30, 4, 17, 9, 25, 2, 12, 21, 6, 14, 11}, 18, 6, 5);
  const std::vector<std::vector<int64_t>> batches = {{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 0}, {1, 3, 5, 7}, {2, 4}};
  ModelConfig config;
  config.hidden_dim = 16;
  config.embedding_dim = 16;
  config.pool_levels = 2;
  config.cluster_ratio = 0.25;
  config.cluster_rule = ClusterRule::per_graph;
  for (const bool caching : {true, false}) {
    SCOPED_TRACE(caching ? "caching allocator" : "exact-size allocations");
    std::vector<std::vector<double>> trained;
    std::vector<double> losses[2];
    for (const bool graphs : {false, true}) {
      auto be = DP_CUDA_NS::create_cuda_backend(0, {.caching_allocator = caching, .cublas_grouped = {}, .graphs = graphs});
      DiffPoolModel model(config, data.num_features, data.num_classes(), data.max_nodes());
      ParameterStore& params = model.parameters();
      params.allocate(*be, DType::f64);
      params.initialize(7);
      Adam adam(params, AdamSettings{}, 1.0);
      Workspace ws(*be);
      const DiffpoolEmulatorCounters before = diffpool_emulator_counters();
      for (int epoch = 0; epoch < 2; ++epoch)
        for (std::size_t i = 0; i < batches.size(); ++i) {
          ws.reset();
          Tape tape(*be, ws);
          StepScope scope(*be);
          GraphBatch batch = build_batch(data, batches[i], ws, DType::f64);
          ForwardOutput out = model.forward(tape, batch, true, Rng::derive(3, i));
          params.zero_grad();
          tape.backward(out.loss);
          adam.step();
          scope.end();
          losses[graphs].push_back(download<double>(*be, out.loss->value)[0]);  // after the step: its graph ran
        }
      const DiffpoolEmulatorCounters after = diffpool_emulator_counters();
      if (graphs) {
        EXPECT_GE(after.graph_launches - before.graph_launches, 10) << "a graph a step at least";
        EXPECT_GT(after.graph_updates - before.graph_updates, 0) << "graphs updated, not all instantiated anew";
      } else {
        EXPECT_EQ(after.graph_launches - before.graph_launches, 0);
      }
      trained.push_back(download<double>(*be, params.values()));
    }
    ASSERT_EQ(trained[0].size(), trained[1].size());
    for (std::size_t i = 0; i < trained[0].size(); ++i) ASSERT_EQ(trained[0][i], trained[1][i]) << "parameter " << i;
    EXPECT_EQ(losses[0], losses[1]);
  }
}

// Inside a captured step, zero fills and device-to-device copies are kernels (a kernel node
// updates with any size; a memset or 2-D memcpy node may make the next step's graph update fail),
// bit for bit what the driver's memset and memcpy give outside a step: f32 and i32 zeros, a
// strided copy_2d, and copies of whole 8-byte words, of 4-byte words and of odd bytes at odd
// addresses. Outside a step the same calls are the driver's.
TEST(CudaGraphs, CapturedFillsAndCopiesAreKernels) {
  for (const bool graphs : {true, false}) {
    SCOPED_TRACE(graphs ? "in a captured step" : "graphs off");
    auto be = DP_CUDA_NS::create_cuda_backend(0, {.caching_allocator = true, .cublas_grouped = {}, .graphs = graphs});
    std::vector<float> a_host(7 * 9);
    for (std::size_t i = 0; i < a_host.size(); ++i) a_host[i] = -3.5f + 0.25f * static_cast<float>(i);
    a_host[5] = std::numeric_limits<float>::quiet_NaN();
    a_host[6] = -0.0f;
    a_host[7] = std::numeric_limits<float>::denorm_min();
    const Tensor a = upload<float>(*be, a_host, Shape{7, 9});
    std::vector<int32_t> i_host(37);
    std::iota(i_host.begin(), i_host.end(), -11);
    const Tensor ints = upload<int32_t>(*be, i_host, Shape{37});
    Tensor filled = upload<float>(*be, a_host, Shape{7, 9});
    Tensor filled_ints = upload<int32_t>(*be, i_host, Shape{37});
    Tensor strided = upload<float>(*be, std::vector<float>(7 * 5, 9.0f), Shape{7, 5});
    Tensor words = upload<int32_t>(*be, std::vector<int32_t>(37, 0), Shape{37});
    Tensor bytes = upload<int32_t>(*be, std::vector<int32_t>(37, 0), Shape{37});
    const DiffpoolEmulatorCounters before = diffpool_emulator_counters();
    const std::map<std::string, long long> sites_before = diffpool_emulator_launches_by_site();
    {
      StepScope scope(*be);
      be->fill(filled, 0.0);
      be->fill(filled_ints, 0.0);
      be->copy_2d(7, 3, DType::f32, static_cast<const float*>(a.data()) + 2, 9, static_cast<float*>(strided.data()) + 1,
                  5, 1.0, 0.0);
      be->copy_bytes(static_cast<int32_t*>(words.data()) + 1, Device::cuda, static_cast<const int32_t*>(ints.data()) + 3,
                     Device::cuda, 4 * 33);  // 4-byte words (the addresses are not 8-byte aligned)
      be->copy_bytes(static_cast<char*>(bytes.data()) + 3, Device::cuda, static_cast<const char*>(ints.data()) + 5,
                     Device::cuda, 101);  // odd bytes at odd addresses
      scope.end();
    }
    const DiffpoolEmulatorCounters after = diffpool_emulator_counters();
    std::map<std::string, long long> sites = diffpool_emulator_launches_by_site();
    const auto launched = [&](const std::string& site) { return sites[site] - (sites_before.count(site) ? sites_before.at(site) : 0); };
    if (graphs) {
      EXPECT_EQ(after.device_to_device - before.device_to_device, 0) << "a memcpy node in the step";
      EXPECT_EQ(launched("fill f32"), 1);
      EXPECT_EQ(launched("fill i32"), 1);
      EXPECT_EQ(launched("copy_rows 4-byte words"), 2);  // copy_2d's rows and the 4-byte copy
      EXPECT_EQ(launched("copy_rows bytes"), 1);
      EXPECT_EQ(after.graph_launches - before.graph_launches, 1);
    } else {
      EXPECT_EQ(after.device_to_device - before.device_to_device, 3);
      EXPECT_EQ(launched("fill f32") + launched("copy_rows 4-byte words") + launched("copy_rows bytes"), 0);
    }
    const std::vector<float> got_filled = download<float>(*be, filled);
    for (float v : got_filled) ASSERT_EQ(std::bit_cast<uint32_t>(v), 0u);
    for (int32_t v : download<int32_t>(*be, filled_ints)) ASSERT_EQ(v, 0);
    const std::vector<float> got_strided = download<float>(*be, strided);
    for (int r = 0; r < 7; ++r)
      for (int c = 0; c < 5; ++c) {
        const float want = c >= 1 && c < 4 ? a_host[static_cast<std::size_t>(r * 9 + 2 + c - 1)] : 9.0f;
        ASSERT_EQ(std::bit_cast<uint32_t>(got_strided[static_cast<std::size_t>(r * 5 + c)]), std::bit_cast<uint32_t>(want))
            << "row " << r << " column " << c;
      }
    const std::vector<int32_t> got_words = download<int32_t>(*be, words);
    for (int i = 0; i < 37; ++i)
      ASSERT_EQ(got_words[static_cast<std::size_t>(i)], i >= 1 && i < 34 ? i_host[static_cast<std::size_t>(i + 2)] : 0) << i;
    const std::vector<int32_t> got_bytes = download<int32_t>(*be, bytes);
    std::vector<char> want_bytes(37 * 4, 0);
    std::memcpy(want_bytes.data() + 3, reinterpret_cast<const char*>(i_host.data()) + 5, 101);
    ASSERT_EQ(std::memcmp(got_bytes.data(), want_bytes.data(), want_bytes.size()), 0);
  }
}

// Graphs are the default, and a backend wrapped for counting products (bench_epoch, the cost
// estimate) passes the step on: the CUDA backend under it still captures the step into one graph,
// and reports it.
TEST(CudaGraphs, OnByDefaultAndThroughACountingBackend) {
  ::unsetenv("DIFFPOOL_CUDA_GRAPHS");
  auto be = DP_CUDA_NS::create_cuda_backend(0);
  CountingBackend counting(*be);
  Tensor t = allocate_tensor(counting, Shape{10}, DType::f32);
  const DiffpoolEmulatorCounters before = diffpool_emulator_counters();
  {
    StepScope scope(counting);
    counting.fill(t, 3.0);
    counting.map(MapOp::copy, t, nullptr, Broadcast::full, 0, 2.0, 0.0, t);
    scope.end();
  }
  EXPECT_EQ(diffpool_emulator_counters().graph_launches - before.graph_launches, 1);
  EXPECT_EQ(download<float>(counting, t)[9], 6.0f);
  const std::string statistics = counting.step_statistics();
  EXPECT_EQ(statistics.rfind("graphs launched 1, updated 0, instantiated 1; per graph 2.0 nodes, host us: capturing ", 0), 0u)
      << statistics;
}

// What a capture cannot hold, inside a step: more uploads than the ring has slots, a download in
// the middle (the host reads it at once), synchronize(). Each submits the part captured so far,
// and every value arrives; a step abandoned (its scope left by an exception) never runs.
TEST(CudaGraphs, StepsSubmitWhatACaptureCannotHold) {
  auto be = DP_CUDA_NS::create_cuda_backend(0, {.caching_allocator = true, .cublas_grouped = {}, .graphs = true});
  const int uploads = 20;  // the ring has 8 slots
  std::vector<Tensor> dst;
  for (int i = 0; i < uploads; ++i) dst.push_back(allocate_tensor(*be, Shape{100}, DType::f32));
  for (int i = 0; i < 8; ++i) {  // every slot of the ring gets its page-locked buffer
    const std::vector<float> zeros(100, 0.0f);
    be->copy_bytes(dst[0].data(), Device::cuda, zeros.data(), Device::cpu, dst[0].bytes());
  }
  const DiffpoolEmulatorCounters before = diffpool_emulator_counters();
  {
    StepScope scope(*be);
    for (int i = 0; i < uploads; ++i) {
      std::vector<float> host(100);
      std::iota(host.begin(), host.end(), static_cast<float>(1000 * i));
      Tensor& d = dst[static_cast<std::size_t>(i)];
      be->copy_bytes(d.data(), Device::cuda, host.data(), Device::cpu, d.bytes());  // staged: host reused at once
      be->map(MapOp::copy, d, nullptr, Broadcast::full, 0, 2.0, 0.0, d);
      if (i == 10) {  // a download inside the step: the work before it has run
        EXPECT_EQ(download<float>(*be, dst[10])[5], 2.0f * 10005.0f);
      }
    }
    be->synchronize();
    EXPECT_EQ(download<float>(*be, dst[3])[1], 2.0f * 3001.0f);
    be->fill(dst[0], 7.0);
    scope.end();
  }
  for (int i = 0; i < uploads; ++i) {
    const std::vector<float> got = download<float>(*be, dst[static_cast<std::size_t>(i)]);
    for (int j = 0; j < 100; ++j)
      ASSERT_EQ(got[static_cast<std::size_t>(j)], i == 0 ? 7.0f : 2.0f * static_cast<float>(1000 * i + j))
          << "upload " << i << " element " << j;
  }
  const DiffpoolEmulatorCounters after = diffpool_emulator_counters();
  EXPECT_GE(after.graph_launches - before.graph_launches, 3) << "the step submitted in parts";
  EXPECT_EQ(after.host_to_device_pageable - before.host_to_device_pageable, 0);
  // An abandoned step: its work is dropped, and the next step runs normally.
  try {
    StepScope scope(*be);
    be->fill(dst[1], -1.0);
    throw std::runtime_error("a step that fails half issued");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(download<float>(*be, dst[1])[0], 2000.0f) << "an abandoned step's work ran";
  {
    StepScope scope(*be);
    be->fill(dst[1], 5.0);
    scope.end();
  }
  EXPECT_EQ(download<float>(*be, dst[1])[0], 5.0f);
}
#endif

}  // namespace
}  // namespace diffpool
