# Runner tests: experiment files, plans, the task farm under MPI, kill-and-resume, preemption.
diffpool_add_gtest(test_config LABELS "unit;runner" SOURCES unit/test_config.cpp LIBS diffpool_runner)

# Integration tests of `diffpool run` (Python drivers run with Debian's /usr/bin/python3).
function(diffpool_add_runner_test name script)
  cmake_parse_arguments(ARG "" "TIMEOUT" "LABELS;ARGS" ${ARGN})
  add_test(NAME ${name} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/runner/${script} ${ARG_ARGS}
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/runner)
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "DIFFPOOL_DATA=${DIFFPOOL_TEST_DATA_DIR};DIFFPOOL_BINARY_DIR=${PROJECT_BINARY_DIR};DIFFPOOL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
# Peak memory of plan, validate and run's start per job of a 20000-job sweep, against a bound (about 20 s).
diffpool_add_runner_test(plan_memory test_plan_memory.py LABELS "runner" TIMEOUT 300)
diffpool_add_runner_test(mpi_rank_counts test_rank_counts.py LABELS "mpi;runner" TIMEOUT 900)
diffpool_add_runner_test(mpi_balance test_balance.py LABELS "mpi;runner" TIMEOUT 300)
diffpool_add_runner_test(kill_resume_single test_kill_resume.py LABELS "runner;resume" ARGS 0 TIMEOUT 900)
diffpool_add_runner_test(kill_resume_mpi test_kill_resume.py LABELS "mpi;runner;resume" ARGS 2 TIMEOUT 900)
diffpool_add_runner_test(kill_resume_per_graph test_kill_resume.py LABELS "runner;resume" ARGS 0 per_graph TIMEOUT 900)
# The paper protocol: the per-epoch test predictions travel through the checkpoints.
diffpool_add_runner_test(kill_resume_paper test_kill_resume.py LABELS "runner;resume" ARGS 0 paper TIMEOUT 900)
diffpool_add_runner_test(preemption_sigterm test_preemption.py LABELS "runner;resume" ARGS 0 TERM TIMEOUT 600)
diffpool_add_runner_test(preemption_mpi_sigusr1 test_preemption.py LABELS "mpi;runner;resume" ARGS 2 USR1 TIMEOUT 600)
# The heartbeat (backend.heartbeat_seconds): a frozen worker, then a frozen rank 0, end the run with 75
# within the timeout plus a margin; the rerun finishes (about 40 s).
diffpool_add_runner_test(mpi_lost_rank test_lost_rank.py LABELS "mpi;runner;resume" TIMEOUT 600)
# The protocol modules and the scheduler on their own (no MPI, no files).
diffpool_add_gtest(test_protocols LABELS "unit;runner" SOURCES unit/test_protocols.cpp LIBS diffpool_runner)
diffpool_add_gtest(test_scheduler LABELS "unit;runner" SOURCES unit/test_scheduler.cpp LIBS diffpool_runner)
diffpool_add_gtest(test_idle_wait LABELS "unit;runner" SOURCES unit/test_idle_wait.cpp LIBS diffpool_runner)
diffpool_add_runner_test(scheduler_cpu test_scheduler_cpu.py LABELS "mpi;runner" TIMEOUT 600)
diffpool_add_gtest(test_progress LABELS "unit;runner" SOURCES unit/test_progress.cpp LIBS diffpool_runner)
diffpool_add_runner_test(progress_mpi test_progress_mpi.py LABELS "mpi;runner" TIMEOUT 300)
diffpool_add_gtest(test_plan_cost LABELS "unit;runner" SOURCES unit/test_plan_cost.cpp LIBS diffpool_runner)
diffpool_add_gtest(test_output_folder LABELS "unit;runner;resume" SOURCES unit/test_output_folder.cpp LIBS diffpool_runner)
# Job claims: one run at a time trains a job of a shared output folder; stale claims are taken over.
diffpool_add_gtest(test_job_claims LABELS "unit;runner;resume" SOURCES unit/test_job_claims.cpp LIBS diffpool_runner)
diffpool_add_runner_test(exit_codes test_exit_codes.py LABELS "runner" TIMEOUT 300)
diffpool_add_runner_test(damaged_files test_damaged_files.py LABELS "runner;resume" TIMEOUT 300)
# A full file system (a tmpfs of 2 MiB it mounts; skipped where mounting is not allowed): checkpoints
# skipped, a result waiting for room, exit 74, the resume (about 15 s).
diffpool_add_runner_test(storage_full test_storage_full.py LABELS "runner;resume" TIMEOUT 600)
set_tests_properties(storage_full PROPERTIES SKIP_RETURN_CODE 77)
# Job files and checkpoints record the data's digest; a folder of results from other data exits 2
# (MUTAG copied and changed; about 15 s).
diffpool_add_runner_test(dataset_digest test_dataset_digest.py LABELS "runner;resume" TIMEOUT 300)
# The output folder deleted under a run of 2 ranks (a scratch purge): put back, later results kept,
# the lost jobs named (exit 3) and run again by the rerun (about 30 s).
diffpool_add_runner_test(output_purge test_output_purge.py LABELS "mpi;runner;resume" TIMEOUT 600)
# Several runs into one output folder share its jobs through claims: two runs side by side (2 ranks
# and 1), claims of other hosts (stale, fresh), a run killed on this host (about 60 s).
diffpool_add_runner_test(shared_folder test_shared_folder.py LABELS "mpi;runner;resume" TIMEOUT 900)
# Stored test predictions against every reported accuracy, under each protocol (MUTAG, a few epochs).
diffpool_add_runner_test(stored_predictions test_predictions.py LABELS "runner;results" TIMEOUT 600)
# The CUDA backend module is loaded on first use only: a CPU `diffpool train` maps no CUDA library,
# and `--backend cuda` with the module missing or damaged exits 2 naming the file (about 10 s).
diffpool_add_runner_test(cuda_module test_cuda_module.py LABELS "runner;cuda" TIMEOUT 300)
# `diffpool merge`: summaries of runs of different folds in separate folders merge into the summary
# of one run of all folds, under each protocol, without job files (MUTAG, a few epochs).
diffpool_add_runner_test(merge_folds test_merge.py LABELS "runner;results" TIMEOUT 600)
# The git revision recorded in job files is taken at every build, with -dirty for changed tracked
# files (cmake/git_revision.cmake on scratch repositories; a few seconds).
diffpool_add_runner_test(git_revision test_git_revision.py LABELS "runner" TIMEOUT 120)
