#include "engine/core/workspace.hpp"

#include <algorithm>

#include "engine/core/error.hpp"

namespace diffpool {

namespace {
constexpr std::size_t kAlignment = 256;  // enough for vector loads and for cuBLAS
std::size_t align_up(std::size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }
}  // namespace

Workspace::Workspace(DeviceMemory& backend, std::size_t initial_bytes) : backend_(backend) {
  add_chunk(initial_bytes);
}

Workspace::~Workspace() {
  for (Chunk& c : chunks_) backend_.deallocate(c.data);
}

void Workspace::add_chunk(std::size_t min_bytes) {
  // A new chunk is at least as large as the last one (capped at 256 MiB), so a step that
  // outgrows the workspace needs few chunks; reset() merges them afterwards.
  std::size_t previous = chunks_.empty() ? 0 : std::min<std::size_t>(chunks_.back().size, std::size_t{256} << 20);
  std::size_t size = align_up(std::max(min_bytes, previous));
  Chunk c;
  c.data = static_cast<char*>(backend_.allocate(size));
  c.size = size;
  chunks_.push_back(c);
}

Tensor Workspace::empty(Shape shape, DType dtype) {
  std::size_t bytes = align_up(std::max<std::size_t>(1, static_cast<std::size_t>(shape.numel()) * dtype_size(dtype)));
  Chunk* chunk = &chunks_.back();
  if (chunk->used + bytes > chunk->size) {
    add_chunk(bytes);
    chunk = &chunks_.back();
  }
  void* p = chunk->data + chunk->used;
  chunk->used += bytes;
  in_use_ += bytes;
  high_water_ = std::max(high_water_, in_use_);
  return Tensor(p, shape, dtype, backend_.device());
}

Tensor Workspace::zeros(Shape shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  backend_.fill(t, 0.0);
  return t;
}

void Workspace::reset() {
  if (chunks_.size() > 1) {
    for (Chunk& c : chunks_) backend_.deallocate(c.data);
    chunks_.clear();
    // One chunk that holds the high-water mark, so a step like the largest so far needs no second.
    std::size_t size = align_up(high_water_ + (std::size_t{1} << 20));
    Chunk c;
    c.data = static_cast<char*>(backend_.allocate(size));
    c.size = size;
    chunks_.push_back(c);
  }
  chunks_.back().used = 0;
  in_use_ = 0;
}

std::size_t Workspace::reserved_bytes() const {
  std::size_t total = 0;
  for (const Chunk& c : chunks_) total += c.size;
  return total;
}

}  // namespace diffpool
