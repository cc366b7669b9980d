#pragma once
// Segments: consecutive row ranges of a packed matrix, one per graph of a batch.
//
// Level 0 of a batch packs the node rows of all graphs into one matrix [N_total, F]; graph g owns
// rows [offsets[g], offsets[g+1]). After pooling every graph has exactly k rows (uniform segments).
#include <cstdint>
#include <vector>

#include "engine/core/tensor.hpp"

namespace diffpool {

class Workspace;

struct Segments {
  std::vector<int64_t> offsets;  // host copy, count + 1 entries, offsets[0] = 0
  Tensor device_offsets;         // i32 [count + 1] on the compute device
  int64_t uniform_size = -1;     // every segment has this many rows, or -1

  int64_t count() const { return offsets.empty() ? 0 : static_cast<int64_t>(offsets.size()) - 1; }
  int64_t total_rows() const { return offsets.empty() ? 0 : offsets.back(); }
  int64_t begin(int64_t s) const { return offsets[static_cast<std::size_t>(s)]; }
  int64_t size(int64_t s) const { return offsets[static_cast<std::size_t>(s) + 1] - offsets[static_cast<std::size_t>(s)]; }
  int64_t max_size() const;
};

// Segments from host offsets; the device copy lives in the workspace.
Segments make_segments(Workspace& workspace, std::vector<int64_t> offsets);
// The same for a caller that uploads the device copy itself (with other arrays, in one copy):
// checks the offsets, writes their i32 form to `staged` (offsets.size() elements) and takes
// `device_offsets` (i32, offsets.size() elements) as the device copy, which the caller fills.
Segments make_segments_staged(std::vector<int64_t> offsets, Tensor device_offsets, int32_t* staged);
// `count` segments of `size` rows each.
Segments make_uniform_segments(Workspace& workspace, int64_t count, int64_t size);

}  // namespace diffpool
