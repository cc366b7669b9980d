"""A host that goes silent ends the run with the requeue status instead of hanging it, and the
rerun finishes the work. Across three fake hosts (fake_hosts.py), while the rank of the third
host is training, that host's link is taken down (a pulled cable: no error reaches anyone, packets
are just dropped). The run must then exit with status 75 within the heartbeat timeout plus a
margin, leave no diffpool process running on any host, and, once the link is back, a rerun of
the same command must finish with exactly the summary of a one-process run and every job file
readable.

The heartbeat between rank 0 and the workers (HEARTBEAT_SETTING below, runner/task_farm.cpp) is
what notices the silent rank: rank 0 names it, checkpoints the other jobs and calls MPI_Abort with
75 about HEARTBEAT_SECONDS after the cut; the cut rank, hearing nothing from rank 0, checkpoints
and exits 75 on its side. mpirun itself then still waits until TCP gives up on the cut host's
daemon (its order to stop the job cannot be delivered): net.ipv4.tcp_retries2 retransmissions,
15 by default, about 15 minutes. The test sets 5 (about 13 s) in the namespace of mpirun's host,
as a cluster would on the nodes that run mpirun; the ranks' own connections (rank 0 runs there
too) then also give up after about 13 s, later than the heartbeat. Without the setting
(DIFFPOOL_TEST_HEARTBEAT_SETTING= , empty) the cut run hangs: the test then stops it after the
timeout plus the margin and fails, saying what was still running where. (Left alone, such a run
hangs for about 8 minutes, until Open MPI's out-of-band TCP keepalive gives up on the cut host's
daemon, 300 s + 9 x 20 s, and mpirun kills the job and exits with 205, not 75.)
It prints the timings: when rank 0 reported the lost rank, and when mpirun exited."""
import os
import re
import shutil
import sys
import tempfile
import time

from fake_hosts import HERE, FakeHosts, Failure, skip_unless_possible, tail

# The heartbeat: the setting's key (one place to adapt), its value in seconds for this test, and
# how much longer than the timeout the run may take to checkpoint and exit.
HEARTBEAT_SETTING = os.environ.get("DIFFPOOL_TEST_HEARTBEAT_SETTING", "backend.heartbeat_seconds")
HEARTBEAT_SECONDS = 10
MARGIN_SECONDS = 20
TCP_RETRIES = 5  # net.ipv4.tcp_retries2 on mpirun's host: TCP gives up on the cut host after about 13 s
STOPPED = 75  # the documented requeue status of `diffpool run`
CUT_HOST = 2  # the third host, whose rank is 2 (not the first, where mpirun runs)
# Jobs long enough that the cut rank is still training when the heartbeat times out (the run must
# notice a worker that goes silent in the middle of a job): on 2 cores a job takes about 25 s with
# three ranks, 4 s alone (the one-process reference run, 6 jobs).
EPOCHS = 800

skip_unless_possible()
sys.path.insert(0, os.path.join(HERE, "..", "runner"))
from common import DIFFPOOL, ENV, TINY, compare_dirs, job_files, readable, run  # noqa: E402

extra = ["--set", f"training.epochs={EPOCHS}", "--set", "output.checkpoint_every=100", "--set", "evaluation.folds=3"]
if HEARTBEAT_SETTING:
    extra += ["--set", f"{HEARTBEAT_SETTING}={HEARTBEAT_SECONDS}"]


def epochs_on_rank(out, rank):
    """Epochs logged so far by each job of rank (from the job logs)."""
    logs = os.path.join(out, "logs")
    counts = []
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        text = tail(os.path.join(logs, name), 1000000)
        if re.search(rf" rank {rank}: ", text.split("\n", 1)[0]):
            counts.append(text.count("\nepoch "))
    return counts


def training_on_rank(out, rank):
    """True when a job of rank is past its third epoch and not past a tenth of its epochs."""
    return any(3 <= epochs <= EPOCHS // 10 for epochs in epochs_on_rank(out, rank))


def last_progress(log):
    lines = [line.replace("\x1b[K", "").strip() for line in re.split(r"[\r\n]", tail(log))]
    lines = [line for line in lines if re.match(r"jobs \d+/\d+ done", line)]
    return lines[-1] if lines else "(no progress line yet)"


def diffpool_processes(hosts):
    """(host name, pid) of every diffpool process on the fake hosts."""
    return [(hosts.names[h], pid) for h in range(len(hosts.names)) for pid, command in hosts.processes(h)
            if command.startswith(DIFFPOOL)]


def what_runs(hosts):
    return "\n".join(f"  {name}: " + ("; ".join(command[:80] for _, command in hosts.processes(h)) or "nothing")
                     for h, name in enumerate(hosts.names))


started = time.monotonic()
root = tempfile.mkdtemp(prefix="diffpool-lost-host-")
try:
    reference = os.path.join(root, "single")
    run(reference, None, extra, timeout=300)
    print(f"one-process run: {time.monotonic() - started:.1f} s")

    with FakeHosts(root) as hosts:
        hosts.tcp_retries(0, TCP_RETRIES)
        out = os.path.join(root, "hosts")
        args = [DIFFPOOL, "run", TINY, "--set", f"output.dir={out}", *extra]
        log = os.path.join(root, "cut.log")
        p = hosts.start(args, log, ENV)
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline and not training_on_rank(out, CUT_HOST):
            time.sleep(0.1)
        if p.poll() is not None:
            sys.exit(f"FAILED: the run ended (exit {p.returncode}) before the link could be cut:\n{tail(log)}")
        if not training_on_rank(out, CUT_HOST):
            sys.exit(f"FAILED: no job of rank {CUT_HOST} started training within 120 s:\n{tail(log)}")

        hosts.cut(CUT_HOST)
        cut = time.monotonic()
        limit = HEARTBEAT_SECONDS + MARGIN_SECONDS
        print(f"cut the link of {hosts.names[CUT_HOST]} while rank {CUT_HOST} trained (epochs of its jobs: "
              f"{epochs_on_rank(out, CUT_HOST)} of {EPOCHS}); progress: {last_progress(log)}")
        reported = None  # when rank 0 reported the lost rank
        while p.poll() is None and time.monotonic() - cut < limit:
            if reported is None and re.search(rf"rank {CUT_HOST} on host \S+ lost: no message", tail(log, 100000)):
                reported = time.monotonic() - cut
            time.sleep(0.1)
        if reported is None and re.search(rf"rank {CUT_HOST} on host \S+ lost: no message", tail(log, 100000)):
            reported = time.monotonic() - cut
        if p.poll() is None:
            sys.exit(f"FAILED: the run still hangs {limit} s after the cut (heartbeat {HEARTBEAT_SECONDS} s + "
                     f"margin {MARGIN_SECONDS} s); progress: {last_progress(log)}; epochs of rank {CUT_HOST}'s "
                     f"jobs: {epochs_on_rank(out, CUT_HOST)}\nprocesses:\n{what_runs(hosts)}")
        exited = time.monotonic() - cut
        print(f"rank 0 reported rank {CUT_HOST} lost {reported:.1f} s after the cut" if reported is not None else
              f"rank 0 never reported rank {CUT_HOST} lost")
        print(f"the run exited {exited:.1f} s after the cut with status {p.returncode} (epochs of rank {CUT_HOST}'s "
              f"jobs: {epochs_on_rank(out, CUT_HOST)}):\n{tail(log, 1500)}")
        if p.returncode != STOPPED:
            sys.exit(f"FAILED: exit status {p.returncode} after a lost host, expected {STOPPED} (requeue)")
        # The cut host's rank has lost rank 0 and must stop too, and nothing may be left writing
        # into the results when the rerun starts.
        while diffpool_processes(hosts) and time.monotonic() - cut < limit:
            time.sleep(0.1)
        if diffpool_processes(hosts):
            sys.exit(f"FAILED: diffpool still running {limit} s after the cut: {diffpool_processes(hosts)}\n"
                     f"processes:\n{what_runs(hosts)}")
        print(f"no diffpool process left on any host {time.monotonic() - cut:.1f} s after the cut; "
              f"left of Open MPI (killed now):\n{what_runs(hosts)}")
        hosts.kill_processes()

        hosts.restore(CUT_HOST)
        t = time.monotonic()
        code, output = hosts.run(args, os.path.join(root, "rerun.log"), ENV, timeout=300)
        if code != 0:
            sys.exit(f"FAILED: the rerun after restoring the link exited with {code}:\n{output[-4000:]}")
        print(f"rerun after restoring the link: {time.monotonic() - t:.1f} s")
        unreadable = [name for name in job_files(out) if not readable(os.path.join(out, "jobs", name))]
        if unreadable:
            sys.exit(f"FAILED: job files not readable after the rerun: {unreadable}")
        compare_dirs(reference, out, "rerun after a lost host")
        with open(os.path.join(reference, "summary.csv"), "rb") as a, open(os.path.join(out, "summary.csv"), "rb") as b:
            if a.read() != b.read():
                sys.exit("FAILED: summary.csv of the rerun differs from the one-process run")
        print(f"lost host: reported by rank 0 {reported:.1f} s and exit {STOPPED} {exited:.1f} s after the cut "
              f"(heartbeat {HEARTBEAT_SECONDS} s, tcp_retries2 {TCP_RETRIES} on mpirun's host), "
              f"rerun identical to one process, {len(job_files(out))} job files readable")
except Failure as e:
    sys.exit(f"FAILED: {e}")
finally:
    shutil.rmtree(root, ignore_errors=True)
print(f"ok ({time.monotonic() - started:.1f} s in all)")
