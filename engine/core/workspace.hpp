#pragma once
// Workspace: a bump allocator for the tensors of one training step.
//
// Activations, intermediate gradients and scratch buffers of a step are carved from large chunks
// of device memory and released together by reset() at the end of the step, so a step allocates
// nothing from the system once the workspace has grown to the step's high-water mark. Tensors it
// hands out are plain views: they must not be used after reset().
#include <cstddef>
#include <vector>

#include "engine/core/device_memory.hpp"
#include "engine/core/tensor.hpp"

namespace diffpool {

class Workspace {
 public:
  explicit Workspace(DeviceMemory& backend, std::size_t initial_bytes = std::size_t{1} << 20);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // Uninitialised tensor; zeros() fills it with zeros.
  Tensor empty(Shape shape, DType dtype);
  Tensor zeros(Shape shape, DType dtype);
  // Releases everything handed out since the last reset. If the step needed more than one chunk,
  // the chunks are merged into one of the high-water size for the next step.
  void reset();

  std::size_t bytes_in_use() const { return in_use_; }
  std::size_t high_water_bytes() const { return high_water_; }
  std::size_t reserved_bytes() const;
  // The backend the memory comes from, as the memory primitives the core types need.
  DeviceMemory& backend() const { return backend_; }

 private:
  struct Chunk {
    char* data = nullptr;
    std::size_t size = 0;
    std::size_t used = 0;
  };
  void add_chunk(std::size_t min_bytes);

  DeviceMemory& backend_;
  std::vector<Chunk> chunks_;
  std::size_t in_use_ = 0;
  std::size_t high_water_ = 0;
};

}  // namespace diffpool
