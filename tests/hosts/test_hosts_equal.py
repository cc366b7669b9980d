"""An experiment run across three fake hosts (fake_hosts.py: network namespaces on a bridge,
mpirun through an `ip netns exec` agent, Open MPI over TCP) gives exactly the results of a
one-process run: the same job ids, the same settings, splits and metrics in every job file, the
same summary.h5 and a byte-identical summary.csv. For the holdout protocol and for the nested
one (whose retraining jobs wait for their outer fold's selection). Before that, it checks that
the fake hosts are what the test needs: one rank on each, each in its own network stack; and
after each run that every host's link carried traffic and every rank ran jobs."""
import os
import re
import shutil
import sys
import tempfile
import time

from fake_hosts import HERE, FakeHosts, Failure, skip_unless_possible

skip_unless_possible()
sys.path.insert(0, os.path.join(HERE, "..", "runner"))
from common import DIFFPOOL, ENV, TINY, compare_dirs, run  # noqa: E402


def ranks_in_logs(out):
    """The ranks named in the job logs ("job ... on HOST rank R: ...")."""
    ranks = set()
    logs = os.path.join(out, "logs")
    for name in os.listdir(logs):
        with open(os.path.join(logs, name)) as f:
            match = re.search(r" rank (\d+): ", f.readline())
        if match:
            ranks.add(int(match.group(1)))
    return ranks


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


started = time.monotonic()
root = tempfile.mkdtemp(prefix="diffpool-hosts-")
try:
    with FakeHosts(root) as hosts:
        # Placement: rank r on host r, each seeing only its own address on eth0.
        code, output = hosts.run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"], os.path.join(root, "placement.log"),
                                 ENV, timeout=60)
        seen = sorted(re.findall(r"inet (10\.77\.0\.\d+)/24", output))
        if code != 0 or seen != hosts.addresses:
            sys.exit(f"FAILED: one rank per fake host expected, addresses {hosts.addresses}; mpirun exit {code}, "
                     f"addresses seen {seen}:\n{output}")
        print(f"placement: one rank on each of {', '.join(hosts.names)} ({time.monotonic() - started:.1f} s)")

        for protocol in ("holdout", "nested"):
            extra = ("--set", f"evaluation.protocol={protocol}", "--set", "evaluation.repeats=2")
            reference = os.path.join(root, f"{protocol}-single")
            t = time.monotonic()
            run(reference, None, extra, timeout=300)
            single_seconds = time.monotonic() - t

            out = os.path.join(root, f"{protocol}-hosts")
            before = hosts.port_bytes()
            t = time.monotonic()
            code, output = hosts.run([DIFFPOOL, "run", TINY, "--set", f"output.dir={out}", *extra],
                                     os.path.join(root, f"{protocol}-hosts.log"), ENV, timeout=300)
            hosts_seconds = time.monotonic() - t
            if code != 0:
                sys.exit(f"FAILED: the {protocol} run across the fake hosts exited with {code}:\n{output[-4000:]}")
            carried = [after - b for after, b in zip(hosts.port_bytes(), before)]
            if min(carried) <= 0:
                sys.exit(f"FAILED: a fake host's link carried no traffic during the run (bytes per host {carried})")
            ranks = ranks_in_logs(out)
            if ranks != {0, 1, 2}:
                sys.exit(f"FAILED: jobs ran on ranks {sorted(ranks)}, expected one or more on each of ranks 0, 1, 2")

            compare_dirs(reference, out, f"{protocol} across three hosts")
            if read_bytes(os.path.join(reference, "summary.csv")) != read_bytes(os.path.join(out, "summary.csv")):
                sys.exit(f"FAILED: {protocol}: summary.csv differs from the one-process run")
            jobs = len(os.listdir(os.path.join(out, "jobs")))
            print(f"{protocol}: {jobs} jobs across three hosts identical to one process "
                  f"(one process {single_seconds:.1f} s, three hosts {hosts_seconds:.1f} s, "
                  f"bytes through each host's link {carried})")
except Failure as e:
    sys.exit(f"FAILED: {e}")
finally:
    shutil.rmtree(root, ignore_errors=True)
print(f"ok ({time.monotonic() - started:.1f} s in all)")
