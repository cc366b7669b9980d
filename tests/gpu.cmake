# The GPU bundle (tests/gpu/): packs this build's CUDA binaries, their libraries, Open MPI and the
# datasets into one archive, unpacks it into a temporary folder and runs its run_on_gpu.sh --no-gpu
# with the system's copies of the bundled libraries hidden (tests/gpu/check_bundle.sh). About 2.5
# minutes on 2 cores, most of it compressing the archive, so it is opt-in:
# -DDIFFPOOL_TEST_GPU_BUNDLE=ON, then ctest -L gpu_bundle. Needs a CUDA build (nvcc here, no GPU).
option(DIFFPOOL_TEST_GPU_BUNDLE "Register the gpu_bundle test (tests/gpu/check_bundle.sh, about 2.5 minutes)" OFF)
if(DIFFPOOL_TEST_GPU_BUNDLE)
  if(NOT DIFFPOOL_HAVE_CUDA)
    message(WARNING "DIFFPOOL_TEST_GPU_BUNDLE=ON needs the CUDA backend (nvcc); gpu_bundle is not registered")
  else()
    add_test(NAME gpu_bundle COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/gpu/check_bundle.sh --no-build)
    set_tests_properties(gpu_bundle PROPERTIES LABELS gpu_bundle TIMEOUT 900 RUN_SERIAL TRUE
      ENVIRONMENT "GPU_BUILD_DIR=${PROJECT_BINARY_DIR};DIFFPOOL_DATA=${DIFFPOOL_TEST_DATA_DIR}")
  endif()
endif()
