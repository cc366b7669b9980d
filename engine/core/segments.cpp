#include "engine/core/segments.hpp"

#include <algorithm>

#include "engine/core/error.hpp"
#include "engine/core/workspace.hpp"

namespace diffpool {

int64_t Segments::max_size() const {
  int64_t m = 0;
  for (int64_t s = 0; s < count(); ++s) m = std::max(m, size(s));
  return m;
}

Segments make_segments(Workspace& workspace, std::vector<int64_t> offsets) {
  std::vector<int32_t> dev(offsets.size());
  Tensor device = workspace.empty(Shape{static_cast<int64_t>(offsets.size())}, DType::i32);
  Segments s = make_segments_staged(std::move(offsets), device, dev.data());
  workspace.backend().copy_bytes(device.data(), device.device(), dev.data(), Device::cpu, dev.size() * sizeof(int32_t));
  return s;
}

Segments make_segments_staged(std::vector<int64_t> offsets, Tensor device_offsets, int32_t* staged) {
  DP_CHECK(!offsets.empty() && offsets.front() == 0, "segment offsets must start at 0");
  DP_CHECK(device_offsets.numel() == static_cast<int64_t>(offsets.size()) && device_offsets.dtype() == DType::i32,
           "segment offsets: {} for {} offsets", device_offsets.describe(), offsets.size());
  Segments s;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    DP_CHECK(i == 0 || offsets[i] >= offsets[i - 1], "segment offsets decrease at {}: {} < {}", i, offsets[i],
             offsets[i - 1]);
    DP_CHECK(offsets[i] <= INT32_MAX, "segment offset {} exceeds the 32-bit index range", offsets[i]);
    staged[i] = static_cast<int32_t>(offsets[i]);
  }
  const int64_t count = static_cast<int64_t>(offsets.size()) - 1;
  if (count > 0) {
    const int64_t first = offsets[1] - offsets[0];
    bool uniform = true;
    for (int64_t g = 1; g < count && uniform; ++g)
      uniform = offsets[static_cast<std::size_t>(g) + 1] - offsets[static_cast<std::size_t>(g)] == first;
    s.uniform_size = uniform ? first : -1;
  }
  s.device_offsets = device_offsets;
  s.offsets = std::move(offsets);
  return s;
}

Segments make_uniform_segments(Workspace& workspace, int64_t count, int64_t size) {
  std::vector<int64_t> offsets(static_cast<std::size_t>(count) + 1);
  for (int64_t g = 0; g <= count; ++g) offsets[static_cast<std::size_t>(g)] = g * size;
  return make_segments(workspace, std::move(offsets));
}

}  // namespace diffpool
