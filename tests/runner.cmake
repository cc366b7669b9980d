# Runner tests: experiment files, plans, the task farm under MPI, kill-and-resume, preemption.
diffpool_add_gtest(test_config LABELS "unit;runner" SOURCES unit/test_config.cpp LIBS diffpool_runner)
