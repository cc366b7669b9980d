#pragma once
// CUDA device selection for the runner (implemented by the CUDA backend, or by cuda_stub.cpp in
// builds without CUDA).
namespace diffpool {

// The device a process with node-local rank `local_rank` should use: local_rank modulo the number
// of visible devices (the CUDA runtime already applies CUDA_VISIBLE_DEVICES, which is never
// modified here). Returns -1 when no device is usable or CUDA is not built. Makes no device
// current; pass the result to BackendOptions::cuda_device / make_cuda_backend.
int select_cuda_device_for_local_rank(int local_rank);

}  // namespace diffpool
