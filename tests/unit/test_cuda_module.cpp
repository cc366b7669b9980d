// The CUDA backend lives in a module (libdiffpool_cuda.so) that the engine loads on first use:
// a process that only uses the CPU backend must not map the CUDA runtime or cuBLAS (they cost
// about 200 MB of resident memory per process), and asking for the CUDA device count loads it.
// Everything runs in one test, because the module, once loaded, stays loaded.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "engine/backend/backend.hpp"
#include "engine/core/error.hpp"

namespace diffpool {
namespace {

// The files of /proc/self/maps whose name contains `part`.
std::vector<std::string> mapped_files_containing(const std::string& part) {
  std::ifstream maps("/proc/self/maps");
  std::vector<std::string> found;
  std::string line;
  while (std::getline(maps, line)) {
    const std::size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.find(part) != std::string::npos && (found.empty() || found.back() != path)) found.push_back(path);
  }
  return found;
}

std::string joined(const std::vector<std::string>& paths) {
  std::string text;
  for (const std::string& path : paths) text += path + " ";
  return text;
}

TEST(CudaModule, LoadedOnlyWhenACudaDeviceIsAskedFor) {
  // A CPU backend at work: nothing of CUDA in the process.
  BackendOptions options;
  options.kind = BackendKind::cpu;
  std::unique_ptr<Backend> cpu = make_backend(options);
  const std::vector<float> values{1, 2, 3, 4, 5, 6};
  Tensor t = upload(*cpu, values.data(), Shape{2, 3});
  EXPECT_EQ(download<float>(*cpu, t), values);
  for (const char* library : {"libdiffpool_cuda", "libcudart", "libcublas", "libcusparse"})
    EXPECT_TRUE(mapped_files_containing(library).empty())
        << library << " is mapped by a process that only used the CPU backend: "
        << joined(mapped_files_containing(library));

  const int count = cuda_device_count();
  EXPECT_GE(count, 0);
  if (!cuda_backend_built()) {
    EXPECT_EQ(count, 0);
    EXPECT_EQ(cuda_module_problem(), "");
    EXPECT_TRUE(mapped_files_containing("libcudart").empty());
    return;
  }
  // The build makes the module beside the executables, so it must load here, GPU or not.
  ASSERT_EQ(cuda_module_problem(), "");
  EXPECT_EQ(mapped_files_containing("libdiffpool_cuda.so").size(), 1u);
  EXPECT_FALSE(mapped_files_containing("libcudart").empty()) << "the module is loaded, so is the CUDA runtime";
  if (count == 0) {
    options.kind = BackendKind::cuda;
    try {
      make_backend(options);
      ADD_FAILURE() << "backend cuda was made on a host with no CUDA device";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("no CUDA device is usable"), std::string::npos) << e.what();
    }
    options.kind = BackendKind::automatic;
    EXPECT_EQ(make_backend(options)->device(), Device::cpu);
  }
}

}  // namespace
}  // namespace diffpool
