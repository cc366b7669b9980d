#!/bin/sh
# Open MPI's remote-shell agent for the fake hosts (fake_hosts.py): `netns_agent.sh HOST COMMAND...`
# runs COMMAND in network namespace HOST, with HOST's own temporary folder $FAKE_HOSTS_TMP/HOST:
# the fake hosts share /tmp and the host name, so Open MPI's session folders would collide.
host="$1"; shift; export TMPDIR="${FAKE_HOSTS_TMP:?not set}/$host"; exec ip netns exec "$host" sh -c "$*"
