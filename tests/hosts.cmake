# Multi-host tests: three fake hosts on this machine (network namespaces joined by veth pairs to a
# bridge, addresses 10.77.0.0/24 inside them only), mpirun across them through an `ip netns exec`
# agent, Open MPI over TCP (tests/hosts/fake_hosts.py). Each test creates and removes its own
# namespaces, named after its PID, also when it fails or is killed. They need root and `ip netns`
# (iproute2, jobs/install-deps.sh --tests); without them they print "SKIP: ..." and count as
# skipped (exit code 77).
function(diffpool_add_hosts_test name script)
  cmake_parse_arguments(ARG "" "TIMEOUT" "" ${ARGN})
  add_test(NAME ${name} COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/hosts/${script}
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/hosts)
  set_tests_properties(${name} PROPERTIES LABELS "hosts;mpi" TIMEOUT ${ARG_TIMEOUT} RUN_SERIAL TRUE SKIP_RETURN_CODE 77
    ENVIRONMENT "DIFFPOOL_DATA=${DIFFPOOL_TEST_DATA_DIR};DIFFPOOL_BINARY_DIR=${PROJECT_BINARY_DIR};DIFFPOOL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

# A run across the three hosts equals a one-process run (about 10 s).
diffpool_add_hosts_test(hosts_equal test_hosts_equal.py TIMEOUT 300)

# A host's link cut mid-run: exit 75 within the heartbeat timeout plus a margin, then a rerun
# identical to one process. It needs the heartbeat setting (HEARTBEAT_SETTING at the top of
# test_lost_host.py); until that exists the run hangs after the cut (about 8 minutes, until Open
# MPI's TCP keepalive gives up and mpirun exits with 205) and the test fails, so it is registered
# DISABLED (ctest lists it as "Not Run (Disabled)") unless -DDIFFPOOL_TEST_LOST_HOST=ON.
option(DIFFPOOL_TEST_LOST_HOST "run the hosts_lost_host test (needs the heartbeat setting)" OFF)
diffpool_add_hosts_test(hosts_lost_host test_lost_host.py TIMEOUT 900)
if(NOT DIFFPOOL_TEST_LOST_HOST)
  set_tests_properties(hosts_lost_host PROPERTIES DISABLED TRUE)
endif()
