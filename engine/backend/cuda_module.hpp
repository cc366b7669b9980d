#pragma once
// The one entry point of the CUDA backend module, libdiffpool_cuda.so (engine/backend/cuda/ built
// as a shared module that links cudart and cuBLAS). The engine dlopens the module the first time a
// CUDA backend or the CUDA device count is asked for (cuda_loader.cpp), so a process that only
// uses the CPU never maps the CUDA libraries (about 200 MB of resident memory).
//
// The module and the executable come from the same build: the table carries the interface
// version, and the loader refuses a module of another version.

namespace diffpool {
class Backend;
}

extern "C" {

// Functions of the module. Both may throw diffpool::InputError / LibraryError, which reach the
// caller as from any C++ function (same compiler and C++ runtime on both sides).
struct DiffpoolCudaModule {
  int interface_version;
  int (*device_count)();                       // 0 when no driver, no device or a too old driver
  diffpool::Backend* (*create_backend)(int device);  // device checked against device_count
};

// Exported by libdiffpool_cuda.so under this name; returns a table that lives as long as the module.
const DiffpoolCudaModule* diffpool_cuda_module();

}  // extern "C"

namespace diffpool {
inline constexpr int cuda_module_interface_version = 2;  // 2: Backend::set_matmul_precision
inline constexpr const char* cuda_module_file_name = "libdiffpool_cuda.so";
inline constexpr const char* cuda_module_entry_name = "diffpool_cuda_module";
}  // namespace diffpool
