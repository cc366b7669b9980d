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

# A host's link cut mid-run: exit 75 within the heartbeat timeout (backend.heartbeat_seconds, 10 s
# here) plus a margin, no diffpool process left, then a rerun identical to one process (about 50 s).
diffpool_add_hosts_test(hosts_lost_host test_lost_host.py TIMEOUT 900)
