# CUDA backend tests (label "cuda"): every Backend primitive (test_backend_parity), and every op
# forward and backward plus a training step and ten Adam steps of the model (test_cuda_ops), on the
# CUDA backend against the CPU backend. They skip with "no CUDA device: ..." where the build has no CUDA backend or no GPU is
# visible, so `ctest -L cuda` passes everywhere and checks something only on a GPU machine.
diffpool_add_gtest(test_backend_parity LABELS cuda SOURCES unit/test_backend_parity.cpp)
# ctest reports the test as skipped (not passed) where it could not check anything.
set_tests_properties(test_backend_parity PROPERTIES SKIP_REGULAR_EXPRESSION "no CUDA device: ")
diffpool_add_gtest(test_cuda_ops LABELS cuda SOURCES unit/test_cuda_ops.cpp)
set_tests_properties(test_cuda_ops PROPERTIES SKIP_REGULAR_EXPRESSION "no CUDA device: ")

# The same parity tests against the CUDA backend's own sources compiled for a CPU emulation of
# CUDA (tests/cuda_emulation/README.md): runs the kernels, with their barriers and warp shuffles,
# on machines without a GPU. Label "cuda_emulation"; about 1.5 minutes; off by default, on in
# tests/run.sh (the README's test command and CI).
option(DIFFPOOL_CUDA_EMULATION "Build the CPU emulation of the CUDA backend and its parity tests" OFF)
if(DIFFPOOL_CUDA_EMULATION)
  add_library(diffpool_cuda_emulated STATIC
    cuda_emulation/emulator.cpp
    cuda_emulation/emulated_cuda_backend.cpp
    cuda_emulation/emulated_kernels_elementwise.cpp
    cuda_emulation/emulated_kernels_gemm.cpp
    cuda_emulation/emulated_kernels_reduce.cpp
    cuda_emulation/emulated_kernels_rows.cpp)
  # The emulated <cuda_runtime.h> and <cublas_v2.h> come first on the include path.
  target_include_directories(diffpool_cuda_emulated BEFORE PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/cuda_emulation/include)
  target_compile_definitions(diffpool_cuda_emulated PUBLIC DIFFPOOL_CUDA_EMULATION=1 DP_CUDA_NS=cuda_emulated)
  target_link_libraries(diffpool_cuda_emulated PUBLIC diffpool_engine)
  diffpool_add_gtest(test_backend_parity_emulated LABELS cuda_emulation SOURCES unit/test_backend_parity.cpp
                     LIBS diffpool_cuda_emulated TIMEOUT 1800)
  # Again with the threads of each block scheduled last to first (exposes missing barriers).
  add_test(NAME test_backend_parity_emulated_reverse COMMAND test_backend_parity_emulated)
  set_tests_properties(test_backend_parity_emulated_reverse PROPERTIES LABELS cuda_emulation TIMEOUT 1800
                       ENVIRONMENT "DIFFPOOL_CUDA_EMULATION_ORDER=reverse")
  # The grouped kernels again with every chunk of descriptors at the largest capacity (as before
  # chunks were sized to their groups), the comparison DIFFPOOL_CUDA_FULL_CHUNKS=1 offers on a GPU.
  add_test(NAME test_backend_parity_emulated_full_chunks COMMAND test_backend_parity_emulated --gtest_filter=*Grouped*)
  set_tests_properties(test_backend_parity_emulated_full_chunks PROPERTIES LABELS cuda_emulation TIMEOUT 600
                       ENVIRONMENT "DIFFPOOL_CUDA_FULL_CHUNKS=1")
  diffpool_add_gtest(test_cuda_ops_emulated LABELS cuda_emulation SOURCES unit/test_cuda_ops.cpp
                     LIBS diffpool_cuda_emulated TIMEOUT 1800)
  # The emulation itself: barriers, shuffles, fibers reused across launches, a failed launch.
  diffpool_add_gtest(test_cuda_emulator LABELS cuda_emulation SOURCES cuda_emulation/test_emulator.cpp
                     LIBS diffpool_cuda_emulated)
  # A benchmark, not a test: the host's side of a CUDA training step, kernels skipped.
  add_executable(bench_cuda_host bench/bench_cuda_host.cpp)
  target_link_libraries(bench_cuda_host PRIVATE diffpool_cuda_emulated fmt::fmt CLI11::CLI11)
  target_include_directories(bench_cuda_host PRIVATE ${PROJECT_SOURCE_DIR})
  set_target_properties(bench_cuda_host PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
endif()

# The module is loaded on first use only: a CPU process maps no CUDA library, and the CUDA device
# count loads it (test_cuda_module); a CPU `diffpool train` maps none, and a missing or damaged
# module is an exit-2 error naming the file (runner/test_cuda_module.py, in runner.cmake). Both run
# without a GPU.
diffpool_add_gtest(test_cuda_module LABELS "unit;cuda" SOURCES unit/test_cuda_module.cpp)
