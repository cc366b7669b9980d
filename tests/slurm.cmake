# Slurm tests: the job scripts of jobs/slurm under a real single-node Slurm that each test starts
# (munged, slurmctld, slurmd in a temporary folder, stopped by PID at the end, also on failure).
# They need root and the Debian packages slurmctld slurmd slurm-client munge (jobs/install-deps.sh
# --tests); without them they report "SKIP: ..." and count as skipped (exit code 77).
function(diffpool_add_slurm_test name script)
  cmake_parse_arguments(ARG "" "TIMEOUT" "ARGS" ${ARGN})
  add_test(NAME ${name} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/slurm/${script} ${ARG_ARGS}
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/slurm)
  set_tests_properties(${name} PROPERTIES LABELS "slurm" TIMEOUT ${ARG_TIMEOUT} RUN_SERIAL TRUE SKIP_RETURN_CODE 77
    ENVIRONMENT "DIFFPOOL_DATA=${DIFFPOOL_TEST_DATA_DIR};DIFFPOOL_BINARY_DIR=${PROJECT_BINARY_DIR};DIFFPOOL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
diffpool_add_slurm_test(slurm_sbatch test_sbatch.py TIMEOUT 600)
diffpool_add_slurm_test(slurm_preempt_srun test_preempt.py ARGS srun TIMEOUT 600)
diffpool_add_slurm_test(slurm_preempt_mpirun test_preempt.py ARGS mpirun TIMEOUT 600)

# The workstation script jobs/mpirun.sh (no Slurm needed).
add_test(NAME jobs_mpirun_script COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/slurm/test_mpirun_script.py
         WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/slurm)
set_tests_properties(jobs_mpirun_script PROPERTIES LABELS "mpi;jobs" TIMEOUT 600
  ENVIRONMENT "DIFFPOOL_DATA=${DIFFPOOL_TEST_DATA_DIR};DIFFPOOL_BINARY_DIR=${PROJECT_BINARY_DIR};DIFFPOOL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
add_test(NAME jobs_mpirun_mps COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/slurm/test_mpirun_mps.py
         WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/slurm)
set_tests_properties(jobs_mpirun_mps PROPERTIES LABELS "mpi;jobs" TIMEOUT 300
  ENVIRONMENT "DIFFPOOL_DATA=${DIFFPOOL_TEST_DATA_DIR};DIFFPOOL_BINARY_DIR=${PROJECT_BINARY_DIR};DIFFPOOL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
