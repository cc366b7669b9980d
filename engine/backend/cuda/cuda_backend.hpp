#pragma once
// The CUDA backend's factory with its internal options. Users call diffpool::make_cuda_backend
// (backend.hpp); this header is for tests (the CPU emulation in tests/cuda_emulation).
#include <memory>
#include <optional>

#include "engine/backend/cuda/kernels.hpp"

namespace diffpool::DP_CUDA_NS {

struct CudaBackendOptions {
  // Keep freed blocks in size-bucketed free lists for reuse. Off: every allocate is a cudaMalloc of
  // exactly the bytes asked for (lets a memory checker see overruns of a tensor).
  bool caching_allocator = true;
  // gemm_grouped's groups over the grouped kernel's limit as one cuBLAS grouped batched call
  // instead of one call per group. Unset: on where DIFFPOOL_CUDA_CUBLAS_GROUPED=1. Off by default
  // until it has been run and timed on a GPU (tests/gpu/run_on_gpu.sh times both).
  std::optional<bool> cublas_grouped;
  // Capture each step (Backend::begin_step to end_step) into a CUDA graph and launch it as one.
  // Unset: on unless DIFFPOOL_CUDA_GRAPHS=0 (README.md, "Steps as CUDA graphs": timed on an H200,
  // faster wherever one call timed both ways; tests/gpu/run_on_gpu.sh times both and trains both ways).
  std::optional<bool> graphs;
};

// Makes `device` current and creates the backend on it (one stream, cuBLAS bound to it).
std::unique_ptr<Backend> create_cuda_backend(int device, const CudaBackendOptions& options = {});

}  // namespace diffpool::DP_CUDA_NS
