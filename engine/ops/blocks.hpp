#pragma once
// Blocks: one dense block per graph, of its own size, packed one after the other.
//
// With per-graph cluster counts (model.cluster_rule: per_graph) graph g of a batch pools its n_g
// rows into its own k_g clusters, so the assignment S, the product A S and the pooled adjacency
// A' = S^T A S are a [n_g, k_g] or [k_g, k_g] block per graph. Such a ragged tensor is stored flat,
// shape [elements, 1]: block g is row-major, rows[g] x cols[g], starting at element offset[g], and
// nothing is padded. A packed matrix of uniform width F (node rows of every graph, [N, F]) is also
// a block list: block g is graph g's rows, offset row_begin[g] * F. Ops over blocks
// (engine/ops/blocks.cpp) take a BlockContext and run each product or reduction over every
// graph's block, mostly as one grouped backend call (one launch per chunk of graphs on CUDA).
#include <cstdint>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/core/error.hpp"
#include "engine/core/segments.hpp"
#include "engine/core/tensor.hpp"

namespace diffpool {

struct Blocks {
  std::vector<int64_t> rows, cols;  // per graph
  std::vector<int64_t> offset;      // first element of each block
  std::vector<int64_t> row_begin;   // first row of each block counting every block's rows, [count + 1]
  int64_t elements = 0;             // sum of rows * cols
  bool packed = false;              // one matrix [total_rows, width]: every cols[g] is the same width

  int64_t count() const { return static_cast<int64_t>(rows.size()); }
  int64_t total_rows() const { return row_begin.empty() ? 0 : row_begin.back(); }
  int64_t max_elements() const;
  // Block g of a tensor laid out by these blocks, as a [rows, cols] matrix view. Inline: the
  // per-graph ops take a view of every graph's block of each operand (host time of every step).
  Tensor view(const Tensor& t, int64_t g) const {
    const auto i = static_cast<std::size_t>(g);
    DP_CHECK(t.numel() == elements, "blocks of {} elements over tensor {}", elements, t.describe());
    return Tensor(static_cast<char*>(t.data()) + static_cast<std::size_t>(offset[i]) * dtype_size(t.dtype()),
                  Shape{rows[i], cols[i]}, t.dtype(), t.device());
  }
  // Rows [row_begin[g], row_begin[g+1]) of a tensor with one row per block row, [total_rows, w].
  Tensor row_view(const Tensor& t, int64_t g) const;
  // The tensor shape these blocks fill: [total_rows, width] when packed, else [elements, 1].
  Shape shape() const;
};

// Ragged blocks rows[g] x cols[g].
Blocks ragged_blocks(const std::vector<int64_t>& rows, const std::vector<int64_t>& cols);
// The rows of each segment, all of width `width`: a packed [total_rows, width] matrix.
Blocks packed_blocks(const Segments& segments, int64_t width);

// What an op over blocks needs, owned by the caller for as long as the tape (ForwardOutput keeps them).
struct BlockContext {
  const Blocks* a = nullptr;  // the first input's blocks
  const Blocks* b = nullptr;  // the second input's blocks (products)
  const Blocks* c = nullptr;  // the output's blocks (products)
  Trans trans_a = Trans::no, trans_b = Trans::no;
  const std::vector<Csr>* adjacency = nullptr;  // per graph, graph-local indices (level 0)
  const std::vector<Tensor>* offsets = nullptr; // per graph, i32 [2] = {0, n_g} (level 0, link_bce)
};

}  // namespace diffpool
