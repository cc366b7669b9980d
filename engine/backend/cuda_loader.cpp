// Linked in builds with the CUDA backend: the backend lives in the shared module
// libdiffpool_cuda.so (cuda_module.hpp), loaded here on first use, so that cudart and cuBLAS are
// mapped only into processes that ask for a CUDA device (backend cuda or auto, or the runner's
// device selection for them). A CPU run, `plan`, `validate` and `--help` never load it.
//
// Where the module is looked for, first found wins:
//   1. $DIFFPOOL_CUDA_MODULE, the module file itself (nothing else is tried when it is set);
//   2. the folder of the running executable (/proc/self/exe), where the build and the GPU
//      bundle put it beside diffpool and bench_epoch;
//   3. the build folder this engine was compiled for (DIFFPOOL_CUDA_MODULE_DIR), for the test
//      executables in its subfolders.
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/backend/cuda_device.hpp"
#include "engine/backend/cuda_module.hpp"
#include "engine/core/error.hpp"

namespace diffpool {
namespace {

struct LoadedModule {
  const DiffpoolCudaModule* table = nullptr;
  std::string problem;  // why it could not be loaded; empty when table is set
};

std::vector<std::filesystem::path> module_candidates() {
  if (const char* explicit_path = std::getenv("DIFFPOOL_CUDA_MODULE"); explicit_path && *explicit_path)
    return {explicit_path};
  std::vector<std::filesystem::path> candidates;
  std::error_code error;
  const std::filesystem::path executable = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) candidates.push_back(executable.parent_path() / cuda_module_file_name);
#if defined(DIFFPOOL_CUDA_MODULE_DIR)
  const std::filesystem::path build_copy = std::filesystem::path(DIFFPOOL_CUDA_MODULE_DIR) / cuda_module_file_name;
  if (candidates.empty() || candidates.front() != build_copy) candidates.push_back(build_copy);
#endif
  return candidates;
}

LoadedModule load_module() {
  const std::vector<std::filesystem::path> candidates = module_candidates();
  std::string searched;
  for (const std::filesystem::path& path : candidates) {
    searched += (searched.empty() ? "" : ", ") + path.string();
    std::error_code error;
    if (!std::filesystem::exists(path, error)) continue;
    // RTLD_NOW: a missing libcublas is reported here, naming it, not at the first product.
    // The module is never closed: backends made by it may live until the process ends.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* reason = dlerror();
      return {nullptr, fmt::format("the CUDA backend module {} could not be loaded: {}", path.string(),
                                   reason ? reason : "unknown dlopen error")};
    }
    using Entry = const DiffpoolCudaModule* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, cuda_module_entry_name));
    if (!entry)
      return {nullptr, fmt::format("{} is not a diffpool CUDA backend module (it has no function {})", path.string(),
                                   cuda_module_entry_name)};
    const DiffpoolCudaModule* table = entry();
    if (!table || table->interface_version != cuda_module_interface_version)
      return {nullptr, fmt::format("{} is a CUDA backend module of interface version {}, this diffpool needs {} "
                                   "(a module from another build; rebuild both together)",
                                   path.string(), table ? table->interface_version : -1,
                                   cuda_module_interface_version)};
    return {table, {}};
  }
  return {nullptr, fmt::format("the CUDA backend module {} was not found (looked for {}; set DIFFPOOL_CUDA_MODULE "
                               "to its path)", cuda_module_file_name, searched)};
}

const LoadedModule& loaded_module() {
  static const LoadedModule module = load_module();  // once per process, thread-safe
  return module;
}

}  // namespace

bool cuda_backend_built() { return true; }

std::string cuda_module_problem() { return loaded_module().problem; }

int cuda_device_count() {
  const LoadedModule& module = loaded_module();
  return module.table ? module.table->device_count() : 0;
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  const LoadedModule& module = loaded_module();
  if (!module.table) throw InputError(module.problem);
  return std::unique_ptr<Backend>(module.table->create_backend(device));
}

int select_cuda_device_for_local_rank(int local_rank) {
  const int count = cuda_device_count();
  if (count == 0) return -1;
  const int device = local_rank % count;
  return device < 0 ? device + count : device;
}

}  // namespace diffpool
