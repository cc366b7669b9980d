#pragma once
// The CUDA backend's factory with its internal options. Users call diffpool::make_cuda_backend
// (backend.hpp); this header is for tests (the CPU emulation in tests/cuda_emulation).
#include <memory>

#include "engine/backend/cuda/kernels.hpp"

namespace diffpool::DP_CUDA_NS {

struct CudaBackendOptions {
  // Keep freed blocks in size-bucketed free lists for reuse. Off: every allocate is a cudaMalloc of
  // exactly the bytes asked for (lets a memory checker see overruns of a tensor).
  bool caching_allocator = true;
};

// Makes `device` current and creates the backend on it (one stream, cuBLAS bound to it).
std::unique_ptr<Backend> create_cuda_backend(int device, const CudaBackendOptions& options = {});

}  // namespace diffpool::DP_CUDA_NS
