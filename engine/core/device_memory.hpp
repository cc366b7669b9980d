#pragma once
// DeviceMemory: the memory primitives of a compute device, the part of a backend that the core
// types need. The Workspace carves a step's tensors from it and Segments copy their offsets to
// the device through it; every Backend (engine/backend/backend.hpp) implements it, so core
// includes nothing above itself.
#include <cstddef>

#include "engine/core/tensor.hpp"

namespace diffpool {

class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  virtual Device device() const = 0;
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* ptr) noexcept = 0;
  // Copies between host and this device (or within either). Synchronous with respect to the host
  // when one side is host memory.
  virtual void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device,
                          std::size_t bytes) = 0;
  // Host memory of at least `bytes` to write an upload to this device in, sent by a copy_bytes
  // from it (the next one that reads it) without a further host copy: page-locked memory on CUDA,
  // whose copies never wait for the device. It stays the caller's until that copy; null where
  // there is none to offer (a host device, or more bytes than the backend stages), and the caller
  // uploads from its own memory.
  virtual void* staging_buffer(std::size_t bytes) {
    (void)bytes;
    return nullptr;
  }
  virtual void fill(Tensor& out, double value) = 0;
};

}  // namespace diffpool
