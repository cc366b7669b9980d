// The CUDA backend's kernels_gemm.cu, compiled by the host compiler against the emulated runtime
// (include/cuda_runtime.h) into namespace diffpool::cuda_emulated. See README.md.
#include "engine/backend/cuda/kernels_gemm.cu"
