#!/bin/sh
# Open MPI's remote-shell agent for the fake hosts: `netns_agent.sh HOST COMMAND...` runs COMMAND in network namespace HOST.
host="$1"; shift; exec ip netns exec "$host" sh -c "$*"
