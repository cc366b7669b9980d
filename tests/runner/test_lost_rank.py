"""The heartbeat between rank 0 and the workers (backend.heartbeat_seconds), without network
namespaces: a rank that stops answering is frozen with SIGSTOP under a 2-rank mpirun on this
machine (as silent as a host whose cable was pulled, but still reachable by mpirun, which kills it).

1. Worker frozen while training: rank 0 names the lost rank, checkpoints its own job and the run
   exits 75 within the heartbeat timeout plus a margin.
2. Rank 0 frozen while the worker trains: the worker checkpoints its job, says it lost rank 0 and
   exits 75 by itself; mpirun ends with 75 within the timeout plus the margin.
3. The rerun of case 2 finishes (exit 0) from the worker's checkpoint with every job file readable.
Before the heartbeat existed, case 1 and 2 hung until ctest's timeout."""
import os
import re
import shutil
import signal
import sys
import tempfile
import time

from common import job_files, readable, run, start

STOPPED = 75
HEARTBEAT_SECONDS = 4
MARGIN_SECONDS = 10
# A job must outlast the heartbeat timeout by a wide margin even when its rank has a core to itself
# on a fast host (1.2 ms an epoch there: 12 s a job), or in case 2 the worker finishes its job
# while rank 0 is frozen and has nothing left to checkpoint.
EPOCHS = 10000
extra = ("--set", f"training.epochs={EPOCHS}", "--set", "evaluation.folds=2", "--set", "output.checkpoint_every=0",
         "--set", f"backend.heartbeat_seconds={HEARTBEAT_SECONDS}")


def rank_pid(out, rank):
    """PID of the diffpool process of rank writing into out (from /proc: its command line and
    OMPI_COMM_WORLD_RANK)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            if not args[0].endswith(b"diffpool") or f"output.dir={out}".encode() not in args:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"OMPI_COMM_WORLD_RANK={rank}".encode() in f.read().split(b"\0"):
                    return int(pid)
        except OSError:
            continue
    return None


def gone(pid, seconds):
    """True when process pid ends (or is a zombie) within seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def training_on_rank(out, rank):
    """True when a job of rank has logged at least 3 epochs and not a tenth of them."""
    logs = os.path.join(out, "logs")
    for name in os.listdir(logs) if os.path.isdir(logs) else []:
        with open(os.path.join(logs, name)) as f:
            text = f.read()
        if re.search(rf" rank {rank}: ", text.split("\n", 1)[0]) and 3 <= text.count("\nepoch ") <= EPOCHS // 10:
            return True
    return False


def logs_say(out, pattern):
    """True when a job log in out has a line matching pattern."""
    logs = os.path.join(out, "logs")
    for name in os.listdir(logs) if os.path.isdir(logs) else []:
        with open(os.path.join(logs, name)) as f:
            if re.search(pattern, f.read(), re.M):
                return True
    return False


def freeze(out, rank, expect, logged):
    """Starts the run, freezes rank once rank 1 is mid-job, checks exit 75 in time, the message
    `expect` and a job log line `logged` (why the job stopped)."""
    p = start(out, 2, extra)
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline and not training_on_rank(out, 1):
        time.sleep(0.05)
    pid = rank_pid(out, rank)
    if p.poll() is not None or pid is None:
        sys.exit(f"FAILED: rank {rank} was not found training (run exit {p.poll()}):\n{p.communicate()[0][-3000:]}")
    os.kill(pid, signal.SIGSTOP)
    frozen = time.monotonic()
    limit = HEARTBEAT_SECONDS + MARGIN_SECONDS
    try:
        output = p.communicate(timeout=limit)[0]
    except Exception:
        os.killpg(p.pid, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        sys.exit(f"FAILED: the run still hangs {limit} s after rank {rank} was frozen:\n{p.communicate()[0][-3000:]}")
    took = time.monotonic() - frozen
    print(output[-1500:])
    if p.returncode != STOPPED:
        sys.exit(f"FAILED: exit {p.returncode} after rank {rank} went silent, expected {STOPPED}")
    if not re.search(expect, output):
        if "no job running" in output:
            sys.exit(f"FAILED: the frozen rank's partner had finished its job before the heartbeat timeout (jobs too "
                     f"short for this host: raise EPOCHS); the output does not say /{expect}/")
        sys.exit(f"FAILED: the output does not say /{expect}/")
    if not logs_say(out, logged):
        sys.exit(f"FAILED: no job log in {out} says /{logged}/")
    if not gone(pid, 5):
        os.kill(pid, signal.SIGKILL)
        sys.exit(f"FAILED: the frozen rank {rank} (pid {pid}) was left running 5 s after the run ended")
    print(f"rank {rank} frozen: exit {STOPPED} after {took:.1f} s (heartbeat {HEARTBEAT_SECONDS} s)")
    return took


root = tempfile.mkdtemp(prefix="diffpool-lost-rank-")
try:
    out = os.path.join(root, "worker")
    freeze(out, 1, r"rank 1 on host \S+ lost: no message for [0-9.]+ s \(backend.heartbeat_seconds 4\); it ran job \d+",
           r"^stopped by the loss of rank 1 \(silent for more than 4 s\) (in|after) epoch \d+; checkpointed")
    freeze(os.path.join(root, "rank0"), 0, r"rank 1 on host \S+: no message from rank 0 for more than 4 s \(backend.heartbeat_seconds\): "
                   r"job \d+ checkpointed; exiting with 75",
           r"^stopped by the loss of rank 0 \(silent for more than 4 s\) (in|after) epoch \d+; checkpointed")
    checkpoints = [f for f in os.listdir(os.path.join(root, "rank0", "checkpoints")) if f.endswith(".h5")]
    if not checkpoints:
        sys.exit("FAILED: the worker that lost rank 0 wrote no checkpoint")
    out = os.path.join(root, "rank0")
    p = run(out, 2, extra)
    unreadable = [f for f in job_files(out) if not readable(os.path.join(out, "jobs", f))]
    if unreadable or len(job_files(out)) != 4:
        sys.exit(f"FAILED: after the rerun: {len(job_files(out))} job files, unreadable: {unreadable}")
    print(f"rerun: exit 0, {len(job_files(out))} job files readable, resumed from {len(checkpoints)} checkpoint(s)")
finally:
    shutil.rmtree(root, ignore_errors=True)
print("ok")
