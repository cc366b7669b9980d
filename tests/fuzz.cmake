# libFuzzer targets (label "fuzz"), built only with -DDIFFPOOL_FUZZ=ON, which needs clang: the
# build folder of tests/fuzz/build.sh (build-fuzz), separate from the gcc build of the suite.
#   fuzz_tu_reader   the TU dataset reader, every file of a dataset, plain and gzip
#   fuzz_experiment  parse_experiment (runner/config.hpp) with --set overrides
#   fuzz_job_record  read_job_record (results/job_record.hpp), the HDF5 job-file reader
# AddressSanitizer and UndefinedBehaviorSanitizer (any report aborts) are compiled into the
# engine, results and runner libraries too. Each ctest runs the regression corpus
# (tests/fuzz/corpus/<target>/), then fuzzes for DIFFPOOL_FUZZ_SECONDS (60) from it.
option(DIFFPOOL_FUZZ "Build the libFuzzer targets of tests/fuzz (needs clang)" OFF)
if(NOT DIFFPOOL_FUZZ)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "DIFFPOOL_FUZZ=ON needs clang (libFuzzer), but the C++ compiler is "
                      "${CMAKE_CXX_COMPILER_ID}: configure with -DCMAKE_CXX_COMPILER=clang++ "
                      "(tests/fuzz/build.sh does)")
endif()
set(DIFFPOOL_FUZZ_SECONDS 60 CACHE STRING "Seconds each fuzz target runs in ctest -L fuzz")

set(DIFFPOOL_SANITIZE -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
foreach(library diffpool_engine diffpool_results diffpool_runner)
  target_compile_options(${library} PRIVATE ${DIFFPOOL_SANITIZE} -fsanitize=fuzzer-no-link)
endforeach()

set(DIFFPOOL_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
foreach(target tu_reader experiment job_record)
  add_executable(fuzz_${target} ${DIFFPOOL_FUZZ_DIR}/fuzz_${target}.cpp)
  target_include_directories(fuzz_${target} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(fuzz_${target} PRIVATE ${DIFFPOOL_SANITIZE} -fsanitize=fuzzer)
  target_link_options(fuzz_${target} PRIVATE ${DIFFPOOL_SANITIZE} -fsanitize=fuzzer)
  add_test(NAME fuzz_${target}
           COMMAND ${DIFFPOOL_FUZZ_DIR}/run_target.sh $<TARGET_FILE:fuzz_${target}>
                   ${DIFFPOOL_FUZZ_DIR}/corpus/${target} ${DIFFPOOL_FUZZ_SECONDS}
                   ${CMAKE_CURRENT_BINARY_DIR}/fuzz-work/${target})
  set_tests_properties(fuzz_${target} PROPERTIES LABELS fuzz TIMEOUT 300)
endforeach()
target_link_libraries(fuzz_tu_reader PRIVATE diffpool_engine ZLIB::ZLIB)
target_link_libraries(fuzz_experiment PRIVATE diffpool_runner)
target_link_libraries(fuzz_job_record PRIVATE diffpool_results)
