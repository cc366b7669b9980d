// The CUDA backend's cuda_backend.cpp, compiled by the host compiler against the emulated runtime
// (include/cuda_runtime.h) into namespace diffpool::cuda_emulated. See README.md.
#include "engine/backend/cuda/cuda_backend.cpp"
