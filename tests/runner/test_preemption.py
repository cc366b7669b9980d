"""SIGTERM or SIGUSR1 (how SLURM warns before preemption or the time limit) makes every rank
checkpoint its running job and exit with code 75; the rerun continues from the checkpoints and
ends with the results of an undisturbed run."""
import os
import shutil
import signal
import sys
import tempfile
import time

from common import compare_dirs, run, start

STOPPED = 75
ranks = int(sys.argv[1]) if len(sys.argv) > 1 else 0
sig = {"TERM": signal.SIGTERM, "USR1": signal.SIGUSR1}[sys.argv[2] if len(sys.argv) > 2 else "TERM"]
launcher = None if ranks == 0 else ranks
# Longer jobs, so that the signal lands in the middle of one; checkpoints only at the signal.
extra = ("--set", "training.epochs=40", "--set", "output.checkpoint_every=0")
root = tempfile.mkdtemp(prefix="diffpool-preempt-")
try:
    reference = os.path.join(root, "reference")
    run(reference, launcher, extra)
    out = os.path.join(root, "preempted")
    p = start(out, launcher, extra)
    deadline = time.time() + 120
    # Wait until a job is running (its log exists), then signal the launcher or the process.
    while time.time() < deadline and p.poll() is None:
        logs = os.path.join(out, "logs")
        if os.path.isdir(logs) and any(open(os.path.join(logs, f)).read().count("epoch ") >= 3 for f in os.listdir(logs)):
            break
        time.sleep(0.05)
    if p.poll() is not None:
        sys.exit("the run finished before it could be signalled")
    sent = time.time()
    p.send_signal(sig)
    output = p.communicate(timeout=120)[0]
    print(output[-2000:])
    if p.returncode != STOPPED:
        sys.exit(f"exit code {p.returncode} after {sig.name}, expected {STOPPED}")
    checkpoints = [f for f in os.listdir(os.path.join(out, "checkpoints")) if f.endswith(".h5")]
    if not checkpoints:
        sys.exit("no checkpoint was written")
    print(f"stopped {time.time() - sent:.2f}s after {sig.name} with {len(checkpoints)} checkpoint(s)")
    p = run(out, launcher, extra)
    logs = "".join(open(os.path.join(out, "logs", f)).read() for f in os.listdir(os.path.join(out, "logs")))
    if "resumed from the checkpoint" not in logs:
        sys.exit("the rerun did not continue from a checkpoint")
    if os.listdir(os.path.join(out, "checkpoints")):
        leftover = [f for f in os.listdir(os.path.join(out, "checkpoints")) if f.endswith(".h5")]
        if leftover:
            sys.exit(f"checkpoints left after the run finished: {leftover}")
    compare_dirs(reference, out, "after preemption")
    print("ok: resumed from checkpoints, results identical")
finally:
    shutil.rmtree(root, ignore_errors=True)
