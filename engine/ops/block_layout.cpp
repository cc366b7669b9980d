#include "engine/ops/blocks.hpp"

#include <algorithm>

#include "engine/core/error.hpp"

namespace diffpool {

int64_t Blocks::max_elements() const {
  int64_t m = 0;
  for (int64_t g = 0; g < count(); ++g) m = std::max(m, rows[static_cast<std::size_t>(g)] * cols[static_cast<std::size_t>(g)]);
  return m;
}

Tensor Blocks::row_view(const Tensor& t, int64_t g) const {
  const auto i = static_cast<std::size_t>(g);
  DP_CHECK(t.rows() == total_rows(), "blocks of {} rows over tensor {}", total_rows(), t.describe());
  return t.rows_slice(row_begin[i], row_begin[i + 1]);
}

Shape Blocks::shape() const {
  if (packed) return Shape{total_rows(), cols.empty() ? 0 : cols.front()};
  return Shape{elements, 1};
}

Blocks ragged_blocks(const std::vector<int64_t>& rows, const std::vector<int64_t>& cols) {
  DP_CHECK(rows.size() == cols.size(), "{} block row counts and {} column counts", rows.size(), cols.size());
  Blocks b;
  b.rows = rows;
  b.cols = cols;
  b.offset.resize(rows.size());
  b.row_begin.assign(rows.size() + 1, 0);
  for (std::size_t g = 0; g < rows.size(); ++g) {
    DP_CHECK(rows[g] >= 0 && cols[g] >= 0, "block {} is {} x {}", g, rows[g], cols[g]);
    b.offset[g] = b.elements;
    b.elements += rows[g] * cols[g];
    b.row_begin[g + 1] = b.row_begin[g] + rows[g];
  }
  return b;
}

Blocks packed_blocks(const Segments& segments, int64_t width) {
  std::vector<int64_t> rows(static_cast<std::size_t>(segments.count()));
  for (int64_t g = 0; g < segments.count(); ++g) rows[static_cast<std::size_t>(g)] = segments.size(g);
  Blocks b = ragged_blocks(rows, std::vector<int64_t>(rows.size(), width));
  b.packed = true;
  return b;
}

}  // namespace diffpool
