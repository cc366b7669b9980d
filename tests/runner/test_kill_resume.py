"""Killing a run with SIGKILL at random moments, then rerunning the same command each time, ends
with exactly the results of an uninterrupted run; every finished job file stays readable
throughout (checked after every kill).

  test_kill_resume.py RANKS [per_graph] [paper]   per_graph: two pooling levels with per-graph cluster
                                                   counts; paper: the paper protocol (test predictions
                                                   of every epoch)"""
import os
import random
import shutil
import signal
import sys
import tempfile
import time

from common import compare_dirs, job_files, readable, run, start

ranks = int(sys.argv[1]) if len(sys.argv) > 1 else 0  # 0: one process without MPI
launcher = None if ranks == 0 else ranks
base = ()
if "per_graph" in sys.argv[2:]:
    base += ("--set", "model.cluster_rule=per_graph", "--set", "model.pool_levels=2")
if "paper" in sys.argv[2:]:
    base += ("--set", "evaluation.protocol=paper")
root = tempfile.mkdtemp(prefix="diffpool-kill-")
rng = random.Random(20261125)
try:
    # The uninterrupted reference run. It must last long enough for eight kills at random moments:
    # on a fast or idle machine the epoch count grows until the run takes at least 8 s.
    reference = os.path.join(root, "reference")
    epochs = 120
    while True:
        extra = base + ("--set", f"training.epochs={epochs}")
        started = time.time()
        run(reference, launcher, extra)
        took = time.time() - started
        if took >= 8 or epochs >= 4000:
            break
        shutil.rmtree(reference)
        epochs = min(4000, int(epochs * 10 / max(took, 0.5)) + 1)
    print(f"reference: {epochs} epochs per job, {took:.1f} s")
    longest_wait = min(3.0, took / 4)
    out = os.path.join(root, "killed")
    kills = 0
    for attempt in range(60):
        p = start(out, launcher, extra)
        if kills < 8:
            time.sleep(rng.uniform(0.3, longest_wait))
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                kills += 1
                for name in job_files(out):
                    if not readable(os.path.join(out, "jobs", name)):
                        sys.exit(f"after kill {kills}: finished job file {name} is not readable")
                print(f"kill {kills} after attempt {attempt}: {len(job_files(out))} job files, all readable")
                continue
        output = p.communicate(timeout=600)[0]
        if p.returncode != 0:
            sys.exit(f"rerun failed with {p.returncode}:\n{output}")
        if "resumed from" not in "".join(open(os.path.join(out, "logs", f)).read() for f in os.listdir(os.path.join(out, "logs"))):
            print("note: no job was resumed from a checkpoint in this sequence")
        break
    if kills < 3:
        sys.exit(f"only {kills} kills happened: the run was too fast for the test to mean anything")
    compare_dirs(reference, out, f"after {kills} kills")
    print(f"ok: {kills} kills, results identical to the uninterrupted run")
finally:
    shutil.rmtree(root, ignore_errors=True)
