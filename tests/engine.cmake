# Engine tests: ops, gradient checks, model, training.
diffpool_add_gtest(test_gradcheck LABELS "gradcheck;unit" SOURCES unit/test_gradcheck.cpp)
diffpool_add_gtest(test_cost LABELS "unit" SOURCES unit/test_cost.cpp)
diffpool_add_gtest(test_cluster_rule LABELS "unit" SOURCES unit/test_cluster_rule.cpp)
diffpool_add_gtest(test_cpu_loops LABELS "unit" SOURCES unit/test_cpu_loops.cpp)
diffpool_add_gtest(test_tf32 LABELS "unit" SOURCES unit/test_tf32.cpp)
diffpool_add_gtest(test_dense_level LABELS "unit" SOURCES unit/test_dense_level.cpp)
diffpool_add_gtest(test_huge_pages LABELS "unit" SOURCES unit/test_huge_pages.cpp)
# The OpenBLAS kernels in the backend's name, and the note when they leave AVX-512 unused (runs
# `diffpool train` on MUTAG for one epoch, twice).
diffpool_add_gtest(test_blas_kernels LABELS "unit" SOURCES unit/test_blas_kernels.cpp)
add_dependencies(test_blas_kernels diffpool)
# The AVX2 copy of the CPU backend's loops keeps its instructions to its own namespace (GCC only:
# other compilers build that copy without the pragma).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  add_test(NAME cpu_avx2_isolation
           COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/unit/check_avx2_isolation.py
                   $<TARGET_OBJECTS:diffpool_engine>)
  set_tests_properties(cpu_avx2_isolation PROPERTIES LABELS "unit" TIMEOUT 120)
endif()
