// The C entry point of libdiffpool_cuda.so (see ../cuda_module.hpp): device count and backend
// creation, over the CUDA runtime. Only this function is exported; everything else in the module
// has hidden visibility.
#include <cuda_runtime.h>

#include "engine/backend/cuda/cuda_backend.hpp"
#include "engine/backend/cuda_module.hpp"
#include "engine/core/error.hpp"

namespace diffpool::cuda {
namespace {

int device_count() {
  int count = 0;
  // No driver, no device, or a driver too old for this runtime: report no device, never throw.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

Backend* create_backend(int device) {
  const int count = device_count();
  if (count == 0)
    throw InputError("no CUDA device is usable on this host (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides them all)");
  if (device < 0 || device >= count)
    throw InputError(fmt::format("CUDA device {} does not exist: {} device{} visible (0 to {})", device, count,
                                 count == 1 ? " is" : "s are", count - 1));
  return create_cuda_backend(device).release();
}

constexpr DiffpoolCudaModule module_table{cuda_module_interface_version, &device_count, &create_backend};

}  // namespace
}  // namespace diffpool::cuda

extern "C" __attribute__((visibility("default"))) const DiffpoolCudaModule* diffpool_cuda_module() {
  return &diffpool::cuda::module_table;
}
