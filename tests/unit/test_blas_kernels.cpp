// Which OpenBLAS kernels the CPU backend runs: named in the backend's description (and so in every
// job file and log), and a note from `diffpool run`/`train` when they leave a CPU's AVX-512 unused.
#include <cblas.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include "engine/backend/backend.hpp"

namespace diffpool {
namespace {

TEST(BlasKernels, TheBackendNamesTheKernelsOpenBlasChose) {
  const std::string kernels = blas_kernels();
  EXPECT_EQ(kernels, std::string(openblas_get_corename()));
  EXPECT_FALSE(kernels.empty());
  const std::string name = make_cpu_backend(1)->name();
  const std::string loops = name.find("AVX2 loops") != std::string::npos ? "AVX2" : "baseline";
  EXPECT_EQ(name, "cpu (OpenBLAS " + kernels + " kernels, " + loops + " loops, 1 thread)");
  EXPECT_EQ(make_cpu_backend(4)->name(), "cpu (OpenBLAS " + kernels + " kernels, " + loops + " loops, 4 threads)");
}

TEST(BlasKernels, AdviceOnlyWhenAvx512IsLeftUnused) {
  // No AVX-512: nothing to say, whatever the kernels.
  EXPECT_EQ(blas_kernel_advice(false, "Haswell", "Haswell"), "");
  EXPECT_EQ(blas_kernel_advice(false, "Sandybridge", nullptr), "");
  // AVX-512 kernels (names compared without case): nothing to say.
  for (const char* k : {"SkylakeX", "Cooperlake", "SAPPHIRERAPIDS", "skylakex", "Zen4"})
    EXPECT_EQ(blas_kernel_advice(true, k, nullptr), "") << k;
  // AVX2 kernels forced by the variable: the note names the variable and its value.
  const std::string forced = blas_kernel_advice(true, "Haswell", "Haswell");
  EXPECT_NE(forced.find("OpenBLAS runs its Haswell kernels because OPENBLAS_CORETYPE=Haswell is set"),
            std::string::npos)
      << forced;
  EXPECT_NE(forced.find("OPENBLAS_CORETYPE=SkylakeX"), std::string::npos) << forced;
  // Chosen by an OpenBLAS that does not know the CPU.
  const std::string unknown = blas_kernel_advice(true, "Zen", nullptr);
  EXPECT_NE(unknown.find("OpenBLAS runs its Zen kernels by its own choice (an OpenBLAS release older than the CPU"),
            std::string::npos)
      << unknown;
}

// Runs `diffpool train` for one MUTAG epoch with OPENBLAS_CORETYPE set, and returns its output.
std::string train_with_coretype(const std::string& coretype) {
  const std::string command = "OPENBLAS_CORETYPE=" + coretype + " OPENBLAS_NUM_THREADS=1 '" DIFFPOOL_BINARY_DIR
                              "/diffpool' train --dataset MUTAG --fold 0 --epochs 1 --backend cpu 2>&1";
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), p)) > 0) out.append(buffer.data(), n);
  EXPECT_EQ(pclose(p), 0) << out;
  return out;
}

TEST(BlasKernels, TrainReportsTheKernelsAndNotesUnusedAvx512) {
  const std::string haswell = train_with_coretype("Haswell");
  EXPECT_NE(haswell.find("backend cpu (OpenBLAS Haswell kernels, "), std::string::npos) << haswell;
  const bool noted = haswell.find("note: OpenBLAS runs its Haswell kernels because OPENBLAS_CORETYPE=Haswell") !=
                     std::string::npos;
  EXPECT_EQ(noted, cpu_has_avx512()) << haswell;
  if (cpu_has_avx512()) {  // SkylakeX's kernels would stop with an illegal instruction elsewhere
    const std::string skylake = train_with_coretype("SkylakeX");
    EXPECT_NE(skylake.find("backend cpu (OpenBLAS SkylakeX kernels, "), std::string::npos) << skylake;
    EXPECT_EQ(skylake.find("note: OpenBLAS"), std::string::npos) << skylake;
  }
}

}  // namespace
}  // namespace diffpool
