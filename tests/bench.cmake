# Benchmarks (not tests): built with the suite, run by hand or by tests/bench/*.sh.
add_executable(bench_epoch bench/bench_epoch.cpp)
target_link_libraries(bench_epoch PRIVATE diffpool_runner)
set_target_properties(bench_epoch PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
add_executable(bench_dense_level bench/bench_dense_level.cpp)
target_link_libraries(bench_dense_level PRIVATE diffpool_engine fmt::fmt CLI11::CLI11)
set_target_properties(bench_dense_level PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
