// Linked when the build has no CUDA backend: CUDA is reported as absent.
#include "engine/backend/backend.hpp"
#include "engine/backend/cuda_device.hpp"
#include "engine/core/error.hpp"

namespace diffpool {

bool cuda_backend_built() { return false; }
int cuda_device_count() { return 0; }
std::string cuda_module_problem() { return {}; }
std::unique_ptr<Backend> make_cuda_backend(int) {
  throw InputError("this build of diffpool has no CUDA backend (configure with the CUDA toolkit present)");
}
int select_cuda_device_for_local_rank(int) { return -1; }

}  // namespace diffpool
